import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import LifeboatConnectors
import LifeboatTesting
import Testing
@testable import LifeboatCommands

/// `lifeboat serve` running the catalog by itself against the demo's real OpenBao, PostgreSQL and
/// etcd, with cadences of seconds: two instances on one repository (one holds the lease), a real
/// Prometheus scraping both with the shipped rules. What an operator relies on, in the order it
/// happens: the jobs run, OpenBao's rotation is caught, a store that goes down fails its job and
/// fires its alert, recovers, the lease holder is killed with SIGKILL and the standby takes over,
/// SIGTERM stops the survivor within its bound.
@Suite(.serialized) struct ServeSchedulerTests {
    typealias CLI = CommandLineTests
    typealias Serve = PrometheusAlertingTests.Serve

    struct Snapshot: Decodable {
        var id: String
        var store: String
        var tags: [String]
        var started: Date
        var finished: Date
    }

    static func snapshots(_ c: [String]) async throws -> [Snapshot] {
        let result = try await CLI.run(["snapshots", "--json"] + c)
        try #require(result.status == 0, "\(result.stderr)")
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode([Snapshot].self, from: result.stdoutData)
    }

    /// How many runs of backup.etcd this instance finished (its duration summary's count).
    static func etcdRuns(_ serve: Serve) async throws -> Int {
        let line = try await metrics(serve).split(separator: "\n")
            .first { $0.hasPrefix(#"lifeboat_job_duration_seconds_count{job="backup",store="etcd",name="backup.etcd"}"#) }
        return line.flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0
    }

    static func metrics(_ serve: Serve) async throws -> String {
        let (body, _) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(serve.port)/metrics")!)
        return String(decoding: body, as: UTF8.self)
    }

    static func holdsLease(_ serve: Serve) async -> Bool {
        ((try? await metrics(serve)) ?? "").split(separator: "\n").contains("lifeboat_scheduler_lease_held 1.0")
    }

    /// Polls `condition` every half second until it holds or `timeout` passes.
    static func eventually(_ what: String, timeout: TimeInterval, _ condition: () async throws -> Bool) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(500))
        }
        Issue.record("not within \(Int(timeout)) s: \(what)")
        throw CancellationError()
    }

    @Test(.timeLimit(.minutes(8)))
    func serveKeepsThePlatformCoveredAndSaysSoWhenItIsNot() async throws {
        let (directory, platform) = try await PlatformCommandLineTests.demoPlatform("serve")
        defer { PlatformCommandLineTests.sweep(directory) }
        let c = ["-c", platform.catalogURL.path]
        #expect(try await CLI.run(["repo", "init"] + c).status == 0)
        // etcd every 2 s with a 15 s RPO; OpenBao and PostgreSQL keep their hourly cadence (each
        // runs once at start: never run is overdue) and OpenBao is watched every second.
        var yaml = try String(contentsOf: platform.catalogURL, encoding: .utf8)
        yaml = yaml.replacingOccurrences(of: "    cadence: 15m\n    retention: {keep_last: 96}\n    priority: P1\n    rpo: 15m",
                                         with: "    cadence: 2s\n    retention: {keep_last: 4}\n    priority: P1\n    rpo: 15s")
        try #require(yaml.contains("cadence: 2s"), "the demo catalog's etcd entry changed shape")
        try Data(yaml.utf8).write(to: platform.catalogURL)
        let mirror = directory.appendingPathComponent("mirror")
        let arguments = c + ["--lease-ttl", "8s", "--openbao-poll", "1s", "--retry-delay", "1s", "--retry-attempts", "2",
                             "--verify-cadence", "never", "--mirror-to", mirror.path, "--mirror-cadence", "3s"]
        let first = try await Serve(arguments: arguments, environment: [:], log: directory.appendingPathComponent("serve-1.log"))
        defer { first.stop() }
        let second = try await Serve(arguments: arguments, environment: [:], log: directory.appendingPathComponent("serve-2.log"))
        defer { second.stop() }
        let prometheus = try await LocalPrometheus.start(
            scrapes: [.init(job: "lifeboat", targets: ["127.0.0.1:\(first.port)", "127.0.0.1:\(second.port)"])],
            ruleFiles: [DeployArtefactTests.rules], in: directory)
        defer { prometheus.stop() }

        // One instance holds the lease, never both.
        try await Self.eventually("one instance holds the lease", timeout: 30) {
            let a = await Self.holdsLease(first), b = await Self.holdsLease(second)
            return a || b
        }
        let firstHolds = await Self.holdsLease(first)
        let secondHolds = await Self.holdsLease(second)
        #expect(firstHolds != secondHolds, "exactly one holder")
        let (holder, standby) = firstHolds ? (first, second) : (second, first)

        // Every store backed up by the scheduler alone; etcd on its cadence, pruned to its retention, mirrored.
        try await Self.eventually("every store backed up, etcd several times", timeout: 90) {
            let all = try await Self.snapshots(c)
            return Set(all.map(\.store)) == ["openbao", "postgres", "etcd"] && all.filter { $0.store == "etcd" }.count >= 3
        }
        let openbaoSnapshots = try await Self.snapshots(c).filter { $0.store == "openbao" }
        #expect(openbaoSnapshots.count == 1 && openbaoSnapshots[0].tags.contains("reason:initial"), "\(openbaoSnapshots.map(\.tags))")
        try await Self.eventually("prune keeps etcd to its retention", timeout: 30) {
            try await Self.snapshots(c).filter { $0.store == "etcd" }.count <= 5
        }
        // On its cadence, one run at a time: consecutive etcd snapshots start about 2 s apart (the
        // listing's times are to the second), each after the previous one finished.
        let onCadence = try await Self.snapshots(c).filter { $0.store == "etcd" }.sorted { $0.started < $1.started }
        for (previous, next) in zip(onCadence, onCadence.dropFirst()) {
            let gap = next.started.timeIntervalSince(previous.started)
            #expect(gap >= 1 && gap <= 6, "etcd backups \(gap) s apart on a 2 s cadence")
            #expect(next.started >= previous.finished, "two runs of one job overlapped")
        }
        try await Self.eventually("the mirror holds etcd's snapshots", timeout: 30) {
            let mirrored = try await CLI.run(["snapshots", "--json", "--repo", mirror.path, "--password-file", directory.appendingPathComponent("repository-passphrase").path])
            return mirrored.status == 0 && mirrored.stdout.contains("\"etcd\"")
        }
        let jobs = try await CLI.run(["jobs", "--json"] + arguments)
        #expect(jobs.status == 0, "\(jobs.stdout)\(jobs.stderr)")
        for job in ["backup.etcd", "backup.postgres", "openbao-watch.openbao", "prune.etcd", "mirror"] {
            #expect(jobs.stdout.contains("\"job\":\"\(job)\"") || jobs.stdout.contains("\"job\" : \"\(job)\""), "\(job) is listed: \(jobs.stdout)")
        }
        #expect(jobs.stdout.contains("lease_holder"), "\(jobs.stdout)")
        let holderMetrics = try await Self.metrics(holder)
        #expect(holderMetrics.contains(#"lifeboat_job_last_outcome{job="backup",store="etcd",name="backup.etcd"} 1.0"#), "\(holderMetrics)")
        #expect(holderMetrics.contains("lifeboat_scheduler_up 1.0") && holderMetrics.contains("lifeboat_last_backup_timestamp_seconds{store=\"etcd\"}"))
        // Coverage against reality: OpenBao on raft with a healthy autopilot is as the catalog says.
        #expect(holderMetrics.contains("lifeboat_coverage_problems{store=\"openbao\"} 0"), "\(holderMetrics)")

        // OpenBao's keyring rotated: a snapshot tagged reason:rotation within the poll (1 s) and its run.
        let rotated = try await ExternalTool.locate("bao").run(["operator", "rotate"],
                                                               environment: ["BAO_ADDR": platform.openbao!.address, "BAO_TOKEN": platform.rootToken])
        #expect(rotated.status == 0, "\(rotated.stderr)")
        try await Self.eventually("a snapshot tagged reason:rotation", timeout: 30) {
            try await Self.snapshots(c).contains { $0.store == "openbao" && $0.tags.contains("reason:rotation") }
        }

        // etcd goes down: its backup job fails (and retries), the metrics say so, `jobs` exits 6,
        // and past the 15 s RPO Prometheus fires LifeboatBackupStale for etcd alone.
        let etcd = platform.etcd!
        await etcd.stop()
        try await Self.eventually("backup.etcd fails in the metrics", timeout: 60) {
            try await Self.metrics(holder).contains(#"lifeboat_job_last_outcome{job="backup",store="etcd",name="backup.etcd"} 0.0"#)
        }
        // Between attempts (a retry may be running when asked), `jobs` says the newest run failed: exit 6.
        var failing = try await CLI.run(["jobs"] + arguments)
        try await Self.eventually("lifeboat jobs exits 6", timeout: 30) {
            failing = try await CLI.run(["jobs"] + arguments)
            return failing.status == 6
        }
        #expect(failing.stdout.contains("backup.etcd") && failing.stdout.contains("failed"), "\(failing.stdout)\(failing.stderr)")
        func stale(_ alerts: [LocalPrometheus.Alert]) -> LocalPrometheus.Alert? {
            alerts.first { $0.name == "LifeboatBackupStale" && $0.labels["store"] == "etcd" && $0.state == "firing" }
        }
        let fired = try await prometheus.waitForAlerts(timeout: 90, "LifeboatBackupStale fires for etcd") { stale($0) != nil }
        #expect(!fired.contains { $0.name == "LifeboatBackupStale" && $0.labels["store"] != "etcd" })
        let failures = try await prometheus.query(#"lifeboat_job_failures_total{job="backup",store="etcd"} > 0"#)
        #expect(!failures.isEmpty, "the holder counts the failed attempts")

        // etcd comes back: the next slot succeeds and the alert resolves.
        let restarted = try await LocalEtcd.start(restored: etcd.members, logDirectory: directory.appendingPathComponent("etcd-restarted"),
                                                 clientURLs: etcd.endpoints)
        defer { Task { await restarted.stop() } }
        _ = try await prometheus.waitForAlerts(timeout: 90, "LifeboatBackupStale resolves for etcd") { stale($0) == nil }

        // The holder dies without a word (SIGKILL): the standby takes the lease within ttl + poll
        // (8 s + 1 s, plus the scrape) and etcd's backups go on.
        kill(holder.process.processIdentifier, SIGKILL)
        let killed = Date()
        try await Self.eventually("the standby takes over", timeout: 30) { await Self.holdsLease(standby) }
        let takeover = Date().timeIntervalSince(killed)
        #expect(takeover < 20, "took over after \(takeover) s")
        let countAtTakeover = try await Self.snapshots(c).filter { $0.store == "etcd" }.map(\.id)
        try await Self.eventually("the new holder backs etcd up", timeout: 30) {
            try await Self.snapshots(c).contains { $0.store == "etcd" && !countAtTakeover.contains($0.id) }
        }

        // SIGTERM: jobs cancelled, their end recorded, the lease released, exit 0 — within the bound.
        kill(standby.process.processIdentifier, SIGTERM)
        let stopping = Date()
        while standby.process.isRunning, Date().timeIntervalSince(stopping) < 30 { try await Task.sleep(for: .milliseconds(50)) }
        #expect(!standby.process.isRunning && standby.process.terminationStatus == 0, "serve stops on SIGTERM with exit 0")
        #expect(Date().timeIntervalSince(stopping) < 15, "stopped in \(Date().timeIntervalSince(stopping)) s")
        let after = try await CLI.run(["jobs", "--json"] + arguments)
        #expect(!after.stdout.contains("\"lease_holder\""), "a clean stop releases the lease: \(after.stdout)")

        // Down for 7 s, three of etcd's slots missed: a new instance runs the overdue backup once at
        // start, then keeps the cadence (next slot 2 s later) — not one run per missed slot.
        try await Task.sleep(for: .seconds(7))
        let third = try await Serve(arguments: arguments, environment: [:], log: directory.appendingPathComponent("serve-3.log"))
        defer { third.stop() }
        try await Self.eventually("the restarted instance catches up", timeout: 40) { try await Self.etcdRuns(third) >= 1 }
        try await Task.sleep(for: .seconds(1))
        let early = try await Self.etcdRuns(third)
        #expect(early <= 2, "\(early) runs within a second of the catch-up run: a burst")
        try await Self.eventually("then its cadence", timeout: 20) { try await Self.etcdRuns(third) >= 3 }
    }
}
