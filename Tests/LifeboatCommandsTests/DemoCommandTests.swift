import Foundation
import LifeboatConnectors
import Testing

/// `lifeboat demo` as a user runs it: the whole story passes for every store, the bucket included,
/// and Ctrl-C in the middle leaves no server behind.
@Suite(.serialized) struct DemoCommandTests {
    @Test(.timeLimit(.minutes(4)))
    func theDemoBringsEveryStoreBackTheBucketToo() async throws {
        let directory = Self.workDirectory()
        defer { Self.sweep(directory) }
        let result = try await CommandLineTests.run(["demo", "--json", "--work-directory", directory.path])
        #expect(result.status == 0, "\(result.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: result.stdoutData) as? [String: Any], "\(result.stdout)")
        let steps = try #require(report["steps"] as? [[String: Any]])
        #expect(steps.map { $0["store"] as? String } == ["openbao", "postgres", "etcd", "objects"])
        #expect(steps.allSatisfy { $0["outcome"] as? String == "passed" }, "\(steps.map { ($0["store"] ?? "", $0["outcome"] ?? "", $0["reason"] ?? "") })")
        let objects = try #require(steps.last)
        let checks = (objects["checks"] as? [[String: Any]]) ?? []
        // The gate read the restored bucket: every object of the snapshot, and the catalog's four objects.
        #expect(checks.count >= 5 && checks.allSatisfy { $0["passed"] as? Bool == true }, "\(checks)")
        #expect(ProcessSweep.processes(mentioning: directory.path).isEmpty, "no server outlives the demo, moto included")
        #expect(!FileManager.default.fileExists(atPath: directory.path), "the work directory is removed")
    }

    @Test(.timeLimit(.minutes(2)))
    func anInterruptedDemoStopsEveryServerItStarted() async throws {
        let directory = Self.workDirectory()
        defer { Self.sweep(directory) }
        // ChildProcess starts it with an empty signal mask, so that it can receive the SIGINT below.
        let (demo, catalog) = try await Self.startDemo(in: directory)
        #expect(!ProcessSweep.processes(mentioning: directory.path).isEmpty, "the demo's servers run")
        let ports = try Self.serverPorts(catalog)
        kill(demo.processIdentifier, SIGINT)
        await CommandLineTests.waitForExit(demo)
        #expect(demo.terminationStatus == 130)
        #expect(ProcessSweep.processes(mentioning: directory.path).isEmpty, "no server outlives the demo")
        #expect(ports.filter(loopbackPortAccepts).isEmpty, "nothing answers on the demo's ports \(ports), moto's included")
        #expect(!FileManager.default.fileExists(atPath: directory.path), "the work directory is removed")
    }

    /// `lifeboat demo | head`: once its output is closed the demo's writes fail, and it must still
    /// stop every server it started (SIGPIPE used to end it on the spot).
    @Test(.timeLimit(.minutes(3)))
    func aDemoWhoseOutputIsClosedStillStopsEveryServer() async throws {
        let directory = Self.workDirectory()
        defer { Self.sweep(directory) }
        let output = ChildProcess.pipe()
        let (demo, catalog) = try await Self.startDemo(in: directory, output: output)
        let ports = try Self.serverPorts(catalog)
        try output.fileHandleForReading.close()
        await CommandLineTests.waitForExit(demo)
        #expect(demo.terminationReason == .exit, "the demo ended on its own, not by a signal (status \(demo.terminationStatus))")
        #expect(ProcessSweep.processes(mentioning: directory.path).isEmpty, "no server outlives the demo")
        #expect(ports.filter(loopbackPortAccepts).isEmpty, "nothing answers on the demo's ports \(ports)")
    }

    /// A fresh path for a demo's work directory (the demo creates it).
    static func workDirectory() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("lifeboat-demo-test-\(UUID().uuidString.prefix(8))")
    }

    /// Whatever a test left: every process naming the directory stopped, the directory removed.
    static func sweep(_ directory: URL) {
        ProcessSweep.stopProcesses(mentioning: directory.path)
        try? FileManager.default.removeItem(at: directory)
    }

    /// Starts `lifeboat demo` in `directory` and returns once its servers are up and its catalog is
    /// written (it is then seeding or backing up).
    static func startDemo(in directory: URL, output: Pipe? = nil) async throws -> (Process, URL) {
        let demo = try CommandLineTests.spawn(["demo", "--work-directory", directory.path], environment: [:])
        if let output {
            demo.standardOutput = output
            demo.standardError = output
        }
        try ChildProcess.launch(demo)
        let catalog = directory.appendingPathComponent("lifeboat.yaml")
        let deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: catalog.path), demo.isRunning, Date() < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        try #require(FileManager.default.fileExists(atPath: catalog.path), "the demo wrote no catalog within 60 s")
        return (demo, catalog)
    }

    /// The loopback ports of the servers a demo catalog names (OpenBao, PostgreSQL, etcd, S3).
    static func serverPorts(_ catalog: URL) throws -> [Int] {
        let text = try String(contentsOf: catalog, encoding: .utf8)
        let urls = text.matches(of: /127\.0\.0\.1:(\d+)/).compactMap { Int($0.output.1) }
        let postgres = text.matches(of: /port: (\d+)/).compactMap { Int($0.output.1) }
        let ports = Array(Set(urls + postgres)).sorted()
        #expect(ports.count >= 4, "the catalog names every server: \(text)")
        return ports
    }
}
