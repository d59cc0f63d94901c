import Foundation
import LifeboatConnectors
import LifeboatCore
import LifeboatServer
import LifeboatTesting
import Testing

/// Issue 12 as an operator meets it, through the `lifeboat` commands only: a catalog store with WAL
/// archived continuously and a nightly base backup (rpo 5m), its status and metrics while archiving
/// is healthy, failing and healthy again, a drill right after the backup and one that fails, then
/// two disasters in a row restored with `restore --latest` into the catalog's data directory, a
/// return to timeline 1, and a restore that fails half way followed by `--from-step` with no hand
/// cleanup. When the suite runs as root (CI does), every restore is a root-run restore of a server
/// owned by `postgres`.
@Suite(.serialized) struct PostgresOperatorTests {
    typealias CLI = CommandLineTests
    typealias PITR = PostgresPITRTests

    static func catalog(port: Int, data: String, gateExpects: String = "t") -> String {
        """
        version: 1
        platform: ops
        repository:
          url: repo
          password: file:passphrase
        stores:
          - name: app-db
            kind: postgres
            method: WAL archiving (wal-push) + nightly pg_basebackup
            cadence: [continuous, "0 2 * * *"]
            rpo: 5m
            rto: 30m
            priority: P0
            retention:
              keep_last: 5
            verify:
              - sql: SELECT count(*) > 0 FROM events
                expect: "\(gateExpects)"
            connection:
              host: 127.0.0.1
              port: \(port)
              user: postgres
              password: file:pgpassword
              data_directory: \(data)
        """
    }

    static func status(_ result: CLI.Result) throws -> PlatformStatus.StoreStatus {
        try #require(try PlatformCommandLineTests.decode(PlatformStatus.self, result).stores.first { $0.store == "app-db" })
    }

    static func tags(_ server: LocalPostgres) async throws -> String {
        try await Psql(server.socketEndpoint).output("SELECT tag, count(*) FROM events GROUP BY tag ORDER BY tag")
    }

    /// Every file under `directory` belongs to the server's own user (when Lifeboat runs as root).
    static func ownedByServerUser(_ directory: URL) -> [String] {
        guard geteuid() == 0, let user = getpwnam("postgres") else { return [] }
        let uid = user.pointee.pw_uid
        var wrong: [String] = []
        let enumerator = FileManager.default.enumerator(atPath: directory.path)
        while let relative = enumerator?.nextObject() as? String {
            var info = stat()
            if lstat(directory.appendingPathComponent(relative).path, &info) == 0, info.st_uid != uid { wrong.append(relative) }
        }
        return wrong
    }

    @Test(.timeLimit(.minutes(10)))
    func anOperatorsStoreThroughTwoDisastersStatusAndAFailedRestore() async throws {
        let shared = try await SharedRepository(label: "pg-operator")
        defer { shared.remove() }
        let catalog = shared.directory.appendingPathComponent("lifeboat.yaml")
        let c = ["--catalog", catalog.path]
        let wal = WALCommandLine(executable: CLI.binary.path, repositoryArguments: c, store: "app-db")
        let data = shared.directory.appendingPathComponent("data")
        // Archiving configured in the data directory, as an operator does (ALTER SYSTEM), not on the
        // command line: what the restored directories keep or lose of it is then under test.
        let initial = try await LocalPostgres.initialize(in: data, durable: false)
        let password = try #require(initial.password)
        for setting in ["wal_level = 'replica'", "archive_mode = 'on'", "archive_command = '\(wal.archiveCommand.replacingOccurrences(of: "'", with: "''"))'"] {
            _ = try await Psql(initial.endpoint).output("ALTER SYSTEM SET \(setting)")
        }
        await initial.stop()
        let first = try await LocalPostgres.start(existing: data, password: password)
        var port = first.port
        var server: LocalPostgres? = first
        defer { if let server { Task { await server.stop() } } }
        func writeCatalog(gateExpects: String = "t") throws {
            try Self.catalog(port: port, data: data.path, gateExpects: gateExpects).write(to: catalog, atomically: true, encoding: .utf8)
        }
        try writeCatalog()
        try Data(password.utf8).write(to: shared.directory.appendingPathComponent("pgpassword"))
        func restart() async throws -> LocalPostgres {
            // No archive settings here: the restored directory must still carry its own.
            let started = try await LocalPostgres.start(existing: data, password: password, readyTimeout: 120)
            server = started
            // The service manager's start, in effect: the catalog names where the server now listens.
            port = started.port
            try writeCatalog()
            return started
        }
        func disaster() async throws {
            await server?.stop()
            server = nil
            try FileManager.default.removeItem(at: data)
        }
        var psql = try Psql(first.endpoint)
        _ = try await psql.output("CREATE TABLE events (id bigserial PRIMARY KEY, tag text, n int)")
        _ = try await PITR.insert(psql, tag: "a", count: 100)

        // The nightly base backup; a drill right after it, on an idle server, restores at once.
        let backup = try await CLI.run(["backup", "--json"] + c)
        #expect(backup.status == 0, "\(backup.stderr)")
        let drill = try await CLI.run(["drill"] + c)
        #expect(drill.status == 0, "\(drill.stdout)\(drill.stderr)")

        // Archiving healthy: the exposure is the newest archived WAL's age, well inside 5m; exit 0.
        let tB = try await PITR.insert(psql, tag: "b", count: 10)
        try await PITR.switchAndAwaitArchive(psql)
        let healthy = try await CLI.run(["status", "--json"] + c)
        #expect(healthy.status == 0, "\(healthy.stdout)\(healthy.stderr)")
        let ok = try Self.status(healthy)
        #expect(ok.exposureFrom == "wal" && ok.rpoMet == true && ok.lastArchivedWAL != nil && ok.archiver?.failing == false && ok.archiver?.error == nil, "\(ok)")
        let healthyMetrics = PrometheusText.render(try PlatformCommandLineTests.decode(PlatformStatus.self, healthy))
        #expect(healthyMetrics.contains("lifeboat_wal_archiving_failing{store=\"app-db\"} 0") && healthyMetrics.contains("lifeboat_wal_archive_lag_seconds{store=\"app-db\"}"))
        #expect(ok.coverageProblems == [], "archiving as the catalog says: \(ok.coverageProblems ?? [])")
        #expect(healthyMetrics.contains("lifeboat_coverage_problems{store=\"app-db\"} 0"))

        // Coverage drift: someone points archive_command elsewhere (here a command that fails, so
        // PostgreSQL keeps every segment; none is lost). status names it without quoting the
        // command (it may hold a secret), exits 6, the metric counts it.
        let marker = "secret-marker-4711"
        _ = try await psql.output("ALTER SYSTEM SET archive_command = 'false \(marker) %p'")
        _ = try await psql.value("SELECT pg_reload_conf()")
        try await Task.sleep(for: .milliseconds(500))
        let drifted = try await CLI.run(["status", "--json"] + c)
        #expect(drifted.status == 6 && drifted.stderr.contains("not covered as the catalog says: app-db"), "\(drifted.stdout)\(drifted.stderr)")
        let drift = try Self.status(drifted).coverageProblems ?? []
        #expect(drift.count == 1 && drift.first?.contains("archive_command does not run `lifeboat postgres wal-push --store app-db`") == true, "\(drift)")
        #expect(PrometheusText.render(try PlatformCommandLineTests.decode(PlatformStatus.self, drifted)).contains("lifeboat_coverage_problems{store=\"app-db\"} 1"))
        let driftTable = try await CLI.run(["status"] + c)
        #expect(driftTable.stdout.contains("app-db: COVERAGE: archive_command does not run"), "\(driftTable.stdout)")
        for text in [drifted.stdout, drifted.stderr, driftTable.stdout, driftTable.stderr,
                     PrometheusText.render(try PlatformCommandLineTests.decode(PlatformStatus.self, drifted))] {
            #expect(!text.contains(marker), "the command itself is never quoted back")
        }
        _ = try await psql.output("ALTER SYSTEM SET archive_command = '\(wal.archiveCommand.replacingOccurrences(of: "'", with: "''"))'")
        _ = try await psql.value("SELECT pg_reload_conf()")
        try await Task.sleep(for: .milliseconds(500))
        #expect(try Self.status(try await CLI.run(["status", "--json"] + c)).coverageProblems == [], "back as the catalog says")

        // archive_command starts failing (wal-push, run as the server's user, cannot read the
        // passphrase): status names it and exits 6, the metric says 1.
        let passphrase = shared.passwordFile.path
        chmod(passphrase, 0o000)
        let failingRows = geteuid() == 0 ? 5 : 0  // as root, only the server's user is locked out
        if failingRows > 0 {
            _ = try await PITR.insert(psql, tag: "c", count: failingRows)
            _ = try await psql.value("SELECT pg_walfile_name(pg_switch_wal())")
            let deadline = Date().addingTimeInterval(60)
            while try await psql.value("SELECT failed_count FROM pg_stat_archiver") == "0", Date() < deadline { try await Task.sleep(for: .milliseconds(200)) }
            let failing = try await CLI.run(["status", "--json"] + c)
            #expect(failing.status == 6 && failing.stderr.contains("WAL archiving failing: app-db"), "\(failing.stdout)\(failing.stderr)")
            #expect(try Self.status(failing).archiver?.failing == true)
            #expect(PrometheusText.render(try PlatformCommandLineTests.decode(PlatformStatus.self, failing)).contains("lifeboat_wal_archiving_failing{store=\"app-db\"} 1"))
            let table = try await CLI.run(["status"] + c)
            #expect(table.stdout.contains("WAL archiving FAILING"), "\(table.stdout)")
        }
        chmod(passphrase, 0o600)
        _ = try await PITR.insert(psql, tag: "c", count: 1)
        try await PITR.switchAndAwaitArchive(psql)
        #expect(try await CLI.run(["status"] + c).status == 0, "archiving caught up")

        // A drill whose gate fails is no proof: status and metrics say so, without its duration.
        try writeCatalog(gateExpects: "f")
        let failedDrill = try await CLI.run(["drill"] + c)
        #expect(failedDrill.status == 5 && failedDrill.stdout.contains("a gate failed"), "\(failedDrill.stdout)\(failedDrill.stderr)")
        try writeCatalog()
        let afterFailedDrill = try await CLI.run(["status", "--json"] + c)
        #expect(afterFailedDrill.status == 6, "\(afterFailedDrill.stderr)")
        let unproven = try Self.status(afterFailedDrill)
        #expect(unproven.lastDrillOutcome == "failed" && unproven.proofStale && unproven.lastDrillStepDuration == nil, "\(unproven)")
        let unprovenMetrics = PrometheusText.render(try PlatformCommandLineTests.decode(PlatformStatus.self, afterFailedDrill))
        #expect(unprovenMetrics.contains("lifeboat_drill_last_passed{store=\"app-db\"} 0") && unprovenMetrics.contains("lifeboat_restore_proof_stale{store=\"app-db\"} 1"))
        #expect(!unprovenMetrics.contains("lifeboat_drill_step_duration_seconds{store=\"app-db\"}"))

        // Disaster 1: the directory is lost. --latest brings back every archived commit.
        let beforeFirst = try await Self.tags(first)
        try await disaster()
        let phrase = "restore ops latest"
        let dryRun = try await CLI.run(["restore", "--latest", "--dry-run"] + c)
        #expect(dryRun.status == 0, "nothing to refuse: \(dryRun.stdout)\(dryRun.stderr)")
        let restored1 = try await CLI.run(["restore", "--latest", "--confirm", phrase] + c)
        #expect(restored1.status == 0, "\(restored1.stdout)\(restored1.stderr)")
        #expect(Self.ownedByServerUser(data).isEmpty, "root-run restore leaves files PostgreSQL cannot own: \(Self.ownedByServerUser(data).prefix(5))")
        #expect(Self.ownedByServerUser(shared.location.appendingPathComponent("wal")).isEmpty, "the archived history must be fetchable by the server")
        let autoConf = try String(contentsOf: data.appendingPathComponent("postgresql.auto.conf"), encoding: .utf8)
        #expect(!autoConf.contains("archive_mode = 'off'") && !autoConf.contains("recovery_target"), "production keeps archiving, and no recovery settings: \(autoConf)")
        let second = try await restart()
        #expect(try await Psql(second.endpoint).value("SHOW archive_mode") == "on")
        #expect(try await Self.tags(second) == beforeFirst)
        psql = try Psql(second.endpoint)
        #expect(try await psql.value("SELECT timeline_id FROM pg_control_checkpoint()") == "2")

        // The platform moves on, on timeline 2: a new base backup, more commits, disaster 2.
        _ = try await PITR.insert(psql, tag: "d", count: 7)
        try await PITR.switchAndAwaitArchive(psql)
        #expect(try await CLI.run(["backup"] + c).status == 0)
        _ = try await PITR.insert(psql, tag: "e", count: 3)
        try await PITR.switchAndAwaitArchive(psql)
        let beforeSecond = try await Self.tags(second)
        try await disaster()
        let restored2 = try await CLI.run(["restore", "--latest", "--confirm", phrase] + c)
        #expect(restored2.status == 0, "the second restore, as root again: \(restored2.stdout)\(restored2.stderr)")
        let third = try await restart()
        #expect(try await Self.tags(third) == beforeSecond)
        psql = try Psql(third.endpoint)
        _ = try await PITR.insert(psql, tag: "f", count: 2)
        try await PITR.switchAndAwaitArchive(psql)
        _ = try await PITR.insert(psql, tag: "g", count: 2)
        try await PITR.switchAndAwaitArchive(psql)
        let beforeThird = try await Self.tags(third)

        // "We restored too early": back to timeline 1, between b and c, beside production.
        let window = try await CLI.run(["postgres", "recovery-window", "--store", "app-db"] + c)
        #expect(window.status == 0 && window.stdout.contains("timeline 1") && window.stdout.contains("timeline 3"), "\(window.stdout)\(window.stderr)")
        let aside = shared.directory.appendingPathComponent("timeline-1").path
        let back = try await CLI.run(["restore", "postgres", "--store", "app-db", "--data-dir", aside,
                                      "--time", SourceTime.format(tB), "--timeline", "1", "--json"] + c)
        #expect(back.status == 0, "\(back.stdout)\(back.stderr)")
        let timelineOne = try await LocalPostgres.start(existing: URL(fileURLWithPath: aside), password: password)
        #expect(try await Psql(timelineOne.endpoint).value("SHOW archive_mode") == "off", "a copy never archives into production's archive")
        let onTimelineOne = try await Self.tags(timelineOne)
        await timelineOne.stop()
        let tagsBack = Set(onTimelineOne.split(separator: "\n").map { String($0.split(separator: "|").first ?? "") })
        #expect(tagsBack == ["a", "b"], "a and b were committed before the instant, c after it: \(onTimelineOne)")

        // Disaster 3, and the restore fails half way: an archived segment in the middle of the
        // chain is damaged, so wal-fetch stops recovery. The directory is left as it was found
        // (absent), and after the segment is repaired, --from-step 1 finishes with no cleanup.
        try await disaster()
        let segments = try FileManager.default.contentsOfDirectory(atPath: shared.location.appendingPathComponent("wal/app-db").path)
            .filter { $0.count == 24 && $0.hasPrefix("00000003") }.sorted()
        #expect(segments.count >= 2, "\(segments)")
        let victim = shared.location.appendingPathComponent("wal/app-db/\(segments[0])")
        let original = try Data(contentsOf: victim)
        try RepositoryCommandTests.flipByte(in: victim)
        let broken = try await CLI.run(["restore", "--latest", "--confirm", phrase] + c)
        #expect(broken.status == 5 && broken.stderr.contains("--from-step 1"), "\(broken.stdout)\(broken.stderr)")
        let leftBehind = (try? FileManager.default.contentsOfDirectory(atPath: data.path)) ?? []
        #expect(leftBehind.isEmpty, "the failed step leaves the target as it found it (absent): \(leftBehind.prefix(5))")
        try original.write(to: victim)
        let retried = try await CLI.run(["restore", "--latest", "--from-step", "1", "--confirm", phrase] + c)
        #expect(retried.status == 0, "\(retried.stdout)\(retried.stderr)")
        let fourth = try await restart()
        #expect(try await Self.tags(fourth) == beforeThird)
        await fourth.stop()
        server = nil
    }
}
