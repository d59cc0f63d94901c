import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import LifeboatConnectors
import Testing

/// The `lifeboat` binary as a user runs it: output, exit codes, and `serve` as a real process.
@Suite struct CommandLineTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static let binary: URL = {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent(),
            Bundle.main.bundleURL,
            root.appendingPathComponent(".build/debug"),
        ].map { $0.appendingPathComponent("lifeboat") }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) } ?? candidates[2]
    }()

    struct Result {
        var status: Int32
        var stdoutData: Data
        var stderr: String
        var stdout: String { String(decoding: stdoutData, as: UTF8.self) }
    }

    /// Runs the binary to completion. Async, and its blocking reads happen on GCD threads: a test
    /// that blocked Swift's cooperative pool (two threads on a 2-core machine) would starve every
    /// other test running meanwhile.
    static func run(_ arguments: [String], environment: [String: String] = [:], in directory: URL? = nil) async throws -> Result {
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        process.currentDirectoryURL = directory ?? root
        var env = ProcessInfo.processInfo.environment
        env["LIFEBOAT_CATALOG"] = nil
        for name in ["LIFEBOAT_API_TOKEN", "LIFEBOAT_REPOSITORY", "LIFEBOAT_PASSWORD", "LIFEBOAT_NEW_PASSWORD"] { env[name] = nil }
        env.merge(environment) { $1 }
        process.environment = env
        let stdout = ChildProcess.pipe(), stderr = ChildProcess.pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        try ChildProcess.launch(process)
        async let outputData = readToEnd(stdout.fileHandleForReading)
        async let errorData = readToEnd(stderr.fileHandleForReading)
        let (output, error) = await (outputData, errorData)
        await waitForExit(process)
        return Result(status: process.terminationStatus, stdoutData: output, stderr: String(decoding: error, as: UTF8.self))
    }

    /// Reads a pipe to its end on a GCD thread.
    static func readToEnd(_ handle: FileHandle) async -> Data {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: handle.readDataToEndOfFile()) }
        }
    }

    /// Waits for the process to exit without blocking a thread of the cooperative pool.
    static func waitForExit(_ process: Process) async {
        while process.isRunning { try? await Task.sleep(for: .milliseconds(20)) }
    }

    /// Starts the binary without waiting for it; output is discarded unless the caller replaces it.
    static func spawn(_ arguments: [String], environment: [String: String]) throws -> Process {
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        return process
    }

    static func temporaryFile(_ contents: String, name: String = "lifeboat.yaml") throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("lifeboat-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let file = directory.appendingPathComponent(name)
        try contents.write(to: file, atomically: true, encoding: .utf8)
        return file
    }

    @Test func helpListsEveryCommandWithAnExample() async throws {
        let help = try await Self.run(["--help"])
        #expect(help.status == 0)
        for command in ["validate", "catalog", "plan", "serve"] {
            #expect(help.stdout.contains(command), "--help lists \(command)")
            let sub = try await Self.run([command, "--help"])
            #expect(sub.status == 0)
            #expect(sub.stdout.contains("Example"), "\(command) --help has an example")
        }
        #expect(help.stdout.contains("Exit codes"))
    }

    @Test func validateAcceptsBothExamples() async throws {
        for example in ["examples/platform.yaml", "examples/local.yaml"] {
            let result = try await Self.run(["validate", "--catalog", example])
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout.contains("\(example): valid"))
        }
    }

    @Test func invalidCatalogExitsTwoNamingFileLineAndField() async throws {
        let file = try Self.temporaryFile("""
        stores:
          - name: db
            kind: postgres
            method: dump
            cadence: 1h
            priority: P0
            rpo: 1 hour
        """)
        let result = try await Self.run(["validate", "-c", file.path])
        #expect(result.status == 2)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.contains("\(file.path):7:10: error: stores[0].rpo: bad duration"), "\(result.stderr)")

        let json = try await Self.run(["validate", "-c", file.path, "--json"])
        #expect(json.status == 2)
        let report = try #require(JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(report["valid"] as? Bool == false)
        let errors = try #require(report["errors"] as? [[String: Any]])
        #expect(errors.first?["line"] as? Int == 7)
        #expect(errors.first?["field"] as? String == "stores[0].rpo")
        #expect(errors.first?["code"] as? String == "bad_duration")

        // Every command that reads the catalog refuses it the same way.
        for command in ["catalog", "plan"] {
            let refused = try await Self.run([command, "-c", file.path])
            #expect(refused.status == 2)
            #expect(refused.stderr.contains(":7:10: error: stores[0].rpo"))
        }
    }

    @Test func catalogAndPlanPrintTablesAndJSON() async throws {
        let table = try await Self.run(["catalog", "-c", "examples/platform.yaml"])
        #expect(table.status == 0)
        #expect(table.stdout.contains("STORE"))
        #expect(table.stdout.contains("continuous + daily at 02:00"))
        #expect(table.stdout.contains("WireGuard private keys"))

        let catalog = try await Self.run(["catalog", "-c", "examples/platform.yaml", "--json"])
        #expect(catalog.status == 0)
        let document = try #require(JSONSerialization.jsonObject(with: Data(catalog.stdout.utf8)) as? [String: Any])
        #expect((document["entries"] as? [Any])?.count == 10)

        let plan = try await Self.run(["plan", "-c", "examples/platform.yaml", "--json"])
        #expect(plan.status == 0)
        let sequence = try #require((JSONSerialization.jsonObject(with: Data(plan.stdout.utf8)) as? [String: Any])?["sequence"] as? [[String: Any]])
        #expect(sequence.first?["store"] as? String == "config-as-code")

        let explained = try await Self.run(["plan", "-c", "examples/platform.yaml", "--explain"])
        #expect(explained.status == 0)
        #expect(explained.stdout.contains("2. Restore openbao  [P0, openbao]"))
        #expect(explained.stdout.contains("before 'fleet-etcd', 'postgres': they depend on this store"))
        #expect(explained.stdout.contains("Outside the sequence (restore_step 0): loki"))
    }

    @Test func catalogPathComesFromTheEnvironment() async throws {
        let result = try await Self.run(["plan"], environment: ["LIFEBOAT_CATALOG": "examples/local.yaml"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("lifeboat-demo"))
    }

    @Test func missingCatalogAndBadUsageExitTwo() async throws {
        let missing = try await Self.run(["catalog", "-c", "/nonexistent/lifeboat.yaml"])
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("/nonexistent/lifeboat.yaml: error: (file): cannot read the catalog: no such file"))
        let unknownOption = try await Self.run(["plan", "--explian"])
        #expect(unknownOption.status == 2)
        #expect(unknownOption.stderr.contains("--explian"))
        let unknownCommand = try await Self.run(["restroe"])
        #expect(unknownCommand.status == 2)
        let badPort = try await Self.run(["serve", "-c", "examples/local.yaml", "--port", "70000"])
        #expect(badPort.status == 2)
    }

    @Test func serveAnswersThenStopsGracefullyOnSIGTERM() async throws {
        let tokenFile = try Self.temporaryFile("cli-test-token\n", name: "token")
        let process = Process()
        process.executableURL = Self.binary
        // No passphrase here, so no repository: --no-schedule serves the catalog and plan regardless.
        process.arguments = ["serve", "-c", "examples/local.yaml", "--port", "0", "--token-file", tokenFile.path, "--no-schedule"]
        process.currentDirectoryURL = Self.root
        let stderr = ChildProcess.pipe()
        process.standardError = stderr
        process.standardOutput = FileHandle.nullDevice
        try ChildProcess.launch(process)
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }

        // Wait for the "serving … on http://127.0.0.1:PORT" line.
        var log = ""
        var port: Int?
        let deadline = Date().addingTimeInterval(30)
        while port == nil, Date() < deadline, process.isRunning {
            let chunk = stderr.fileHandleForReading.availableData
            log += String(decoding: chunk, as: UTF8.self)
            if let range = log.range(of: #"http://127\.0\.0\.1:(\d+)"#, options: .regularExpression) {
                port = Int(log[range].split(separator: ":").last!)
            }
        }
        let listening = try #require(port, "the server never said where it listens: \(log)")
        #expect(!log.contains("cli-test-token"), "the token must never be logged")

        let base = "http://127.0.0.1:\(listening)"
        let (_, health) = try await URLSession.shared.data(from: URL(string: "\(base)/healthz")!)
        #expect((health as? HTTPURLResponse)?.statusCode == 200)
        let (_, anonymous) = try await URLSession.shared.data(from: URL(string: "\(base)/v1/platform/backup/catalog")!)
        #expect((anonymous as? HTTPURLResponse)?.statusCode == 401)
        var request = URLRequest(url: URL(string: "\(base)/v1/platform/backup/restore-plan")!)
        request.setValue("Bearer cli-test-token", forHTTPHeaderField: "Authorization")
        let (body, authorised) = try await URLSession.shared.data(for: request)
        #expect((authorised as? HTTPURLResponse)?.statusCode == 200)
        #expect(String(decoding: body, as: UTF8.self).contains("\"order\":1"))

        kill(process.processIdentifier, SIGTERM)
        let stopBy = Date().addingTimeInterval(15)
        while process.isRunning, Date() < stopBy { try await Task.sleep(for: .milliseconds(50)) }
        #expect(!process.isRunning, "serve must stop on SIGTERM")
        if !process.isRunning {
            #expect(process.terminationReason == .exit)
            #expect(process.terminationStatus == 0)
        }
    }

    /// Scheduling needs the repository: without one it can open, serve stops with the reason (the
    /// service manager restarts it) instead of answering /healthz while keeping nothing.
    @Test func serveDoesNotScheduleBlindWhenItsRepositoryCannotBeOpened() async throws {
        let result = try await Self.run(["serve", "-c", "examples/local.yaml", "--port", "0"])
        #expect(result.status != 0, "\(result.stderr)")
        #expect(result.stderr.contains("the repository cannot be opened") && result.stderr.contains("--no-schedule"), "\(result.stderr)")
    }

    @Test func serveRefusesAnEmptyTokenFile() async throws {
        let tokenFile = try Self.temporaryFile("  \n", name: "token")
        let result = try await Self.run(["serve", "-c", "examples/local.yaml", "--port", "0", "--token-file", tokenFile.path])
        #expect(result.status == 2)
        #expect(result.stderr.contains("is empty"))
    }
}
