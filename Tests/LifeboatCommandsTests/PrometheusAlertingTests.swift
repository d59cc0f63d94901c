import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import LifeboatTesting
import Testing

/// A real Prometheus (Debian's) scrapes a real `lifeboat serve` on loopback and evaluates
/// deploy/prometheus/lifeboat-rules.yaml every second: the stale-backup alert fires when a store's
/// backups stop and resolves after the next one. Backups here are `lifeboat put` runs under the
/// store's name; once the scheduler is wired, the same helpers watch its jobs instead.
@Suite struct PrometheusAlertingTests {
    typealias CLI = CommandLineTests

    /// `lifeboat serve` as a child process, stopped by PID.
    final class Serve: @unchecked Sendable {
        let process: Process
        let port: Int

        init(arguments: [String], environment: [String: String], log: URL) async throws {
            let process = Process()
            process.executableURL = CLI.binary
            process.arguments = ["serve", "--port", "0"] + arguments
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
            FileManager.default.createFile(atPath: log.path, contents: nil)
            let handle = try FileHandle(forWritingTo: log)
            process.standardError = handle
            process.standardOutput = FileHandle.nullDevice
            try ChildProcess.launch(process)
            // "lifeboat: serving … on http://127.0.0.1:PORT"
            let deadline = Date().addingTimeInterval(60)
            var found: Int?
            while found == nil, Date() < deadline, process.isRunning {
                let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
                if let match = text.firstMatch(of: /http:\/\/127\.0\.0\.1:(\d+)/) { found = Int(match.output.1) }
                if found == nil { try await Task.sleep(for: .milliseconds(100)) }
            }
            guard let found else {
                if process.isRunning { kill(process.processIdentifier, SIGKILL) }
                throw ServerStartError(message: "serve never said where it listens: \((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
            }
            self.process = process
            port = found
        }

        func stop() {
            guard process.isRunning else { return }
            kill(process.processIdentifier, SIGTERM)
            let deadline = Date().addingTimeInterval(15)
            while process.isRunning, Date() < deadline { usleep(20_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }

        deinit { stop() }
    }

    static func catalog(repository: URL) -> String {
        """
        version: 1
        platform: alerting-e2e
        repository:
          url: \(repository.path)
          password: env:LIFEBOAT_PASSWORD
        stores:
          - name: reports
            kind: files
            method: lifeboat put
            cadence: 1m
            retention:
              keep_last: 5
            priority: P1
            rpo: 20s
            verify:
              - file: report.txt
          - name: ledger
            kind: files
            method: lifeboat put
            cadence: 1h
            retention:
              keep_last: 5
            priority: P1
            rpo: 1h
            verify:
              - file: ledger.txt

        """
    }

    @Test(.timeLimit(.minutes(5)))
    func staleBackupAlertFiresWhenBackupsStopAndResolvesAfterTheNextOne() async throws {
        let directory = try RepositoryCommandTests.scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let repository = directory.appendingPathComponent("repo")
        let env = RepositoryCommandTests.environment(repository)
        #expect(try await CLI.run(["repo", "init"], environment: env).status == 0)
        let catalog = directory.appendingPathComponent("lifeboat.yaml")
        try Self.catalog(repository: repository).write(to: catalog, atomically: true, encoding: .utf8)
        let payload = directory.appendingPathComponent("report.txt")
        try "quarterly figures\n".write(to: payload, atomically: true, encoding: .utf8)
        func backup(_ store: String) async throws {
            let put = try await CLI.run(["put", store, payload.path], environment: env)
            try #require(put.status == 0, "put \(store): \(put.stderr)")
        }
        try await backup("ledger")
        try await backup("reports")

        // Backups here are `put` runs by the test: the scheduler stays off (ServeSchedulerTests runs it).
        let serve = try await Serve(arguments: ["-c", catalog.path, "--no-schedule"], environment: env, log: directory.appendingPathComponent("serve.log"))
        defer { serve.stop() }
        let prometheus = try await LocalPrometheus.start(
            scrapes: [.init(job: "lifeboat", targets: ["127.0.0.1:\(serve.port)"])],
            ruleFiles: [DeployArtefactTests.rules], in: directory)
        defer { prometheus.stop() }

        // Scraped: both stores' targets arrive with the scrape's labels.
        let deadline = Date().addingTimeInterval(30)
        var targets: [LocalPrometheus.Sample] = []
        while targets.count < 2, Date() < deadline {
            targets = try await prometheus.query(#"lifeboat_rpo_target_seconds{job="lifeboat"}"#)
            if targets.count < 2 { try await Task.sleep(for: .milliseconds(500)) }
        }
        #expect(Dictionary(uniqueKeysWithValues: targets.map { ($0.metric["store"] ?? "", $0.value) }) == ["reports": 20, "ledger": 3600])

        func stale(_ alerts: [LocalPrometheus.Alert], _ store: String) -> LocalPrometheus.Alert? {
            alerts.first { $0.name == "LifeboatBackupStale" && $0.labels["store"] == store }
        }
        // Backups of `reports` stop: past its 20 s RPO the alert fires, for it alone.
        let fired = try await prometheus.waitForAlerts(timeout: 90, "LifeboatBackupStale fires for reports") { stale($0, "reports")?.state == "firing" }
        let alert = try #require(stale(fired, "reports"))
        #expect(alert.labels["severity"] == "critical")
        #expect(alert.labels["job"] == "lifeboat")
        #expect(alert.annotations["summary"] == "reports: a disaster now would lose more than its RPO")
        #expect(stale(fired, "ledger") == nil)
        #expect(!fired.contains { $0.name == "LifeboatDown" })

        // The next backup succeeds: the exposure drops below the RPO and the alert resolves.
        try await backup("reports")
        let resolved = try await prometheus.waitForAlerts(timeout: 60, "LifeboatBackupStale resolves for reports") { stale($0, "reports") == nil }
        #expect(stale(resolved, "ledger") == nil)
        let exposure = try await prometheus.query(#"lifeboat_rpo_exposure_seconds{store="reports"}"#)
        #expect(exposure.count == 1 && exposure[0].value < 20, "\(exposure.map(\.value))")
    }

    /// The launcher refuses a configuration promtool rejects, naming promtool's reason.
    @Test func launcherRefusesABadRuleFile() async throws {
        let directory = try RepositoryCommandTests.scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let rules = directory.appendingPathComponent("broken.yaml")
        try "groups:\n  - name: x\n    rules:\n      - alert: Broken\n        expr: up ==\n".write(to: rules, atomically: true, encoding: .utf8)
        await #expect {
            _ = try await LocalPrometheus.start(scrapes: [.init(job: "x", targets: ["127.0.0.1:1"])], ruleFiles: [rules], in: directory)
        } throws: { error in
            "\(error)".contains("promtool check config refused") && "\(error)".contains("broken.yaml")
        }
    }
}
