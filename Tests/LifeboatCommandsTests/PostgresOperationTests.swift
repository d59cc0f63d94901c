import Foundation
@testable import LifeboatConnectors
import LifeboatCore
import LifeboatRepository
import LifeboatServer
import LifeboatTesting
import Testing

/// PostgreSQL in real operation, against a real PostgreSQL 15 archiving through this build's
/// `wal-push`: an idle server right after its base backup, a busy one, two disasters in a row with a
/// return to timeline 1, a restore that fails half way and its retry. When the suite runs as root
/// (CI does), every restore here is a root-run restore of servers owned by `postgres`.
@Suite(.serialized) struct PostgresOperationTests {
    typealias PITR = PostgresPITRTests

    /// A server archiving into a fresh shared repository, with a table of tagged rows.
    struct Scenario {
        let shared: SharedRepository
        let wal: WALCommandLine
        let connector: PostgresConnector
        var source: LocalPostgres

        init(_ label: String) async throws {
            shared = try await SharedRepository(label: label)
            wal = WALCommandLine(executable: CommandLineTests.binary.path, repositoryArguments: shared.arguments, store: "app-db")
            source = try await LocalPostgres.initialize(in: shared.directory.appendingPathComponent("source"), archiveCommand: wal.archiveCommand, durable: false)
            connector = PostgresConnector(store: "app-db", endpoint: source.endpoint, defaultMethod: .physical)
            _ = try await Psql(source.endpoint).output("CREATE TABLE events (id bigserial PRIMARY KEY, tag text, n int)")
        }

        var psql: Psql { get throws { try Psql(source.endpoint) } }

        func directory(_ name: String) -> URL { shared.directory.appendingPathComponent(name) }

        /// Restores to `target`, returns the rows per tag, and stops the restored server.
        func tags(after target: RecoveryTarget, timeline: UInt32? = nil, into name: String) async throws -> (tags: String, report: PhysicalRestoreReport) {
            let (report, server) = try await connector.restorePhysical(to: target, timeline: timeline, from: shared.repository,
                                                                       dataDirectory: directory(name), wal: wal)
            defer { Task { await server.stop() } }
            let rows = try await Psql(server.socketEndpoint).output("SELECT tag, count(*) FROM events GROUP BY tag ORDER BY tag")
            await server.stop()
            return (rows, report)
        }

        func stop() async {
            await source.stop()
            shared.remove()
        }

        /// Runs `body` over a new scenario and stops what it started, also when it fails.
        static func run(_ label: String, _ body: (inout Scenario) async throws -> Void) async throws {
            var scenario = try await Scenario(label)
            do {
                try await body(&scenario)
            } catch {
                await scenario.stop()
                throw error
            }
            await scenario.stop()
        }
    }

    /// The auto.conf lines of a restored directory that would steer a later recovery.
    static func recoveryLines(_ directory: URL) throws -> [String] {
        try String(contentsOf: directory.appendingPathComponent("postgresql.auto.conf"), encoding: .utf8)
            .split(separator: "\n").map(String.init)
            .filter { $0.hasPrefix("restore_command") || $0.hasPrefix("recovery_target") }
    }

    @Test func anIdleServersNewestPointRestoresAtOnceAndLeavesNoRecoverySettingsBehind() async throws {
        try await Scenario.run("pg-idle") { scenario in
            let psql = try scenario.psql
            _ = try await PITR.insert(psql, tag: "before", count: 10)
            // An earlier restore (or an older Lifeboat) left a recovery target in auto.conf: the base
            // backup carries it, and a restore must not inherit it.
            _ = try await psql.output("ALTER SYSTEM SET recovery_target_time = '2000-01-01 00:00:00+00'")
            let base = try await scenario.connector.backup(into: scenario.shared.repository, point: nil, tags: [])
            let baseTime = try #require(base.source["source_time"].flatMap(SourceTime.parse))
            let window = try await scenario.connector.recoveryWindow(in: scenario.shared.repository)
            let own = try #require(window.bases.first)
            #expect(own.from == baseTime)
            #expect(own.stop(for: baseTime) == .immediate)

            // Right after the backup, with no later commit: the point's own time and latest both restore.
            let atPoint = try await scenario.tags(after: .time(baseTime), into: "at-point")
            #expect(atPoint.tags == "before|10")
            #expect(atPoint.report.stop == .immediate)
            #expect(try Self.recoveryLines(scenario.directory("at-point")) == [], "no recovery setting outlives the promotion")
            let autoConf = try String(contentsOf: scenario.directory("at-point").appendingPathComponent("postgresql.auto.conf"), encoding: .utf8)
            #expect(autoConf.contains("archive_mode = 'off'"), "a restored copy never archives into production's archive: \(autoConf)")
            let latest = try await scenario.tags(after: .latest, into: "latest")
            #expect(latest.tags == "before|10")

            // A time after the last archived commit is refused with advice that works; `now` is latest.
            let refusal = await #expect(throws: PostgresError.self) {
                try await scenario.connector.planPhysicalRestore(to: .time(Date().addingTimeInterval(3600)), in: scenario.shared.repository)
            }
            #expect(refusal?.message.contains("--time latest") == true, "\(refusal?.message ?? "")")
            let now = try await CommandLineTests.run(["restore", "postgres", "--store", "app-db", "--data-dir", scenario.directory("now").path,
                                                      "--time", "now"] + scenario.shared.arguments)
            #expect(now.status == 0, "\(now.stderr)")
            #expect(now.stdout.contains("data as of \(SourceTime.format(own.to))"), "\(now.stdout)")
            // recovery-window prints only instants a restore reaches: each window's ends.
            for (index, window) in try await scenario.connector.recoveryWindow(in: scenario.shared.repository).bases.enumerated() {
                for (end, instant) in [("from", window.from), ("to", window.to)] {
                    _ = try await scenario.tags(after: .time(instant), into: "window-\(index)-\(end)")
                }
            }
        }
    }

    @Test func twoDisastersInARowThenBackToTimelineOne() async throws {
        try await Scenario.run("pg-timelines") { scenario in
            var psql = try scenario.psql
            _ = try await scenario.connector.backup(into: scenario.shared.repository, point: nil, tags: [])
            let a = try await PITR.insert(psql, tag: "a", count: 10)
            try await Task.sleep(for: .milliseconds(300))
            let afterA = a.addingTimeInterval(0.15)
            try await Task.sleep(for: .milliseconds(300))
            _ = try await PITR.insert(psql, tag: "b", count: 10)
            try await PITR.switchAndAwaitArchive(psql)

            // Busy: latest is the last archived commit; a time between two commits gets exactly the first.
            #expect(try await scenario.tags(after: .latest, into: "busy-latest").tags == "a|10\nb|10")
            #expect(try await scenario.tags(after: .time(afterA), into: "busy-between").tags == "a|10")

            // Disaster 1: the server is lost; "we restore to just after a" into its data directory,
            // which keeps archiving on timeline 2 (as the ordered production restore does).
            await scenario.source.stop()
            let production = scenario.directory("production")
            let (first, recovering) = try await scenario.connector.restorePhysical(
                to: .time(afterA), from: scenario.shared.repository, dataDirectory: production, wal: scenario.wal, keepArchiving: true)
            await recovering.stop()
            #expect(first.timeline == 2)
            try await scenario.connector.archiveTimelineHistories(of: production, into: scenario.shared.repository)
            let history = scenario.shared.location.appendingPathComponent("wal/app-db/00000002.history")
            if geteuid() == 0 {
                // Archived by root, read back by PostgreSQL as `postgres` at the next restore.
                let owner = try FileManager.default.attributesOfItem(atPath: history.path)[.ownerAccountName] as? String
                #expect(owner == LocalPostgres.serverUser)
            }
            scenario.source = try await LocalPostgres.start(existing: production, archiveCommand: scenario.wal.archiveCommand)
            psql = try Psql(scenario.source.socketEndpoint)
            #expect(try await psql.output("SELECT tag, count(*) FROM events GROUP BY tag ORDER BY tag") == "a|10")
            let c = try await PITR.insert(psql, tag: "c", count: 10)
            try await PITR.switchAndAwaitArchive(psql)
            // A base backup on timeline 2, of the server now at a new address.
            _ = try await PostgresConnector(store: "app-db", endpoint: scenario.source.socketEndpoint, defaultMethod: .physical)
                .backup(into: scenario.shared.repository, point: nil, tags: [])
            _ = try await PITR.insert(psql, tag: "d", count: 10)
            try await PITR.switchAndAwaitArchive(psql)

            // Disaster 2. The archive now holds timeline 1 (with b, never restored) and timeline 2.
            await scenario.source.stop()
            let window = try await scenario.connector.recoveryWindow(in: scenario.shared.repository)
            #expect(window.timelines.map(\.timeline) == [1, 2], "\(window.timelines)")
            let latest = try await scenario.tags(after: .latest, into: "second-latest")
            #expect(latest.tags == "a|10\nc|10\nd|10")
            #expect(latest.report.recoveredAlong == 2)
            #expect(try await scenario.tags(after: .time(c), into: "second-at-c").tags == "a|10\nc|10")
            // "We restored too early": b was committed on timeline 1 after the first restore's point.
            let timelineOne = try #require(window.timelines.first { $0.timeline == 1 })
            let back = try await scenario.tags(after: .time(timelineOne.to), into: "back-to-one")
            #expect(back.tags == "a|10\nb|10")
            #expect(back.report.recoveredAlong == 1)
            #expect(back.report.timeline == 3, "a new timeline id, past both archived ones")
            // Named explicitly, timeline 2 at its latest is the same as latest.
            #expect(try await scenario.tags(after: .latest, timeline: 2, into: "named-two").tags == "a|10\nc|10\nd|10")
            // The promise recovery-window makes, as a property over this archive: its ends and an
            // instant drawn at random inside every window restore (the instant is in the message).
            for (index, base) in window.bases.enumerated() {
                let inside = base.from.addingTimeInterval(Double.random(in: 0...1) * base.to.timeIntervalSince(base.from))
                for (end, instant) in [("from", base.from), ("to", base.to), ("inside-\(SourceTime.format(inside))", inside)] {
                    _ = try await scenario.tags(after: .time(instant), timeline: base.recoveryTimeline, into: "ends-\(index)-\(end)")
                }
            }
        }
    }

    @Test func aRestoreThatFailsHalfWayLeavesTheDirectoryAsFoundAndTheRetryWorks() async throws {
        try await Scenario.run("pg-retry") { scenario in
            let psql = try scenario.psql
            _ = try await scenario.connector.backup(into: scenario.shared.repository, point: nil, tags: [])
            var segments: [String] = []
            for round in 0..<3 {
                _ = try await PITR.insert(psql, tag: "r\(round)", count: 10)
                segments.append(try await psql.value("SELECT pg_walfile_name(pg_current_wal_lsn())"))
                try await PITR.switchAndAwaitArchive(psql)
            }
            let plan = try await scenario.connector.planPhysicalRestore(to: .latest, in: scenario.shared.repository)
            #expect(plan.stop == .endOfChain)
            // A segment the plan counted on disappears before recovery reaches it.
            let lost = scenario.shared.location.appendingPathComponent("wal/app-db/\(segments[1])")
            let saved = try Data(contentsOf: lost)
            try FileManager.default.removeItem(at: lost)
            let target = scenario.directory("target")
            try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
            let failure = await #expect(throws: PostgresError.self) {
                try await scenario.connector.restorePhysical(following: plan, from: scenario.shared.repository, dataDirectory: target, wal: scenario.wal)
            }
            #expect(failure?.code == .missingWAL, "\(String(describing: failure))")
            #expect(try FileManager.default.contentsOfDirectory(atPath: target.path) == [], "the empty directory is empty again")
            // The segment comes back (from a mirror, say): the retry needs no hand cleanup.
            try saved.write(to: lost)
            if geteuid() == 0 { _ = try await ExternalTool.locate("chown").run(["postgres:postgres", lost.path]) }
            let (report, server) = try await scenario.connector.restorePhysical(following: plan, from: scenario.shared.repository,
                                                                                dataDirectory: target, wal: scenario.wal)
            #expect(try await Psql(server.socketEndpoint).output("SELECT tag, count(*) FROM events GROUP BY tag ORDER BY tag") == "r0|10\nr1|10\nr2|10")
            #expect(report.stop == .endOfChain)
            await server.stop()
        }
    }

    /// What the server says of its archiving, healthy and after archive_command starts failing; the
    /// status and metrics built from it say the same.
    @Test func theArchiversHealthIsReportedAndAFailingArchiveCommandIsNamed() async throws {
        try await Scenario.run("pg-archiver") { scenario in
            let psql = try scenario.psql
            _ = try await PITR.insert(psql, tag: "x", count: 1)
            try await PITR.switchAndAwaitArchive(psql)
            let healthy = try await scenario.connector.archiverHealth()
            #expect(!healthy.failing && healthy.lastArchivedWAL?.count == 24 && healthy.error == nil, "\(healthy)")

            // archive_command starts failing: its passphrase file is gone (a rotated secret, say).
            try FileManager.default.removeItem(at: scenario.shared.passwordFile)
            _ = try await PITR.insert(psql, tag: "y", count: 1)
            _ = try await psql.value("SELECT pg_walfile_name(pg_switch_wal())")
            var failing = healthy
            let deadline = Date().addingTimeInterval(60)
            while !failing.failing, Date() < deadline {
                try await Task.sleep(for: .milliseconds(200))
                failing = try await scenario.connector.archiverHealth()
            }
            #expect(failing.failing && (failing.failedCount ?? 0) > 0 && failing.lastFailedWAL?.count == 24, "\(failing)")

            let catalog = try CatalogLoader.load(yaml: """
                version: 1
                stores:
                  - {name: app-db, kind: postgres, method: wal, cadence: [continuous, "0 2 * * *"], priority: P0, rpo: 5m, connection: {host: 127.0.0.1}}
                """, file: "t.yaml").catalog
            let status = PlatformStatus.compute(catalog: catalog, snapshots: [], points: [], drills: [], archivers: ["app-db": failing],
                                                now: Date(), maximumProofAge: 86_400)
            let metrics = PrometheusText.render(status)
            #expect(metrics.contains("lifeboat_wal_archiving_failing{store=\"app-db\"} 1\n"), "\(metrics)")
            #expect(metrics.contains("lifeboat_wal_archive_failures_total{store=\"app-db\"} \(failing.failedCount!)\n"), "\(metrics)")
        }
    }
}
