import Foundation
import LifeboatRepository
import LifeboatTesting
import Testing

/// Physical backups and archived WAL on a real PostgreSQL 15 whose archive_command is this build's
/// `lifeboat postgres wal-push`; recovery runs its `wal-fetch` as restore_command.
@Suite struct PostgresPITRTests {
    /// Waits until the server has archived the segment it just switched away from.
    static func switchAndAwaitArchive(_ psql: Psql) async throws {
        let segment = try await psql.value("SELECT pg_walfile_name(pg_switch_wal())")
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let row = try await psql.rows("SELECT coalesce(last_archived_wal, ''), failed_count, coalesce(last_failed_wal, '') FROM pg_stat_archiver")[0]
            if row[0] >= segment, row[0].count == 24 { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw PostgresError(.toolFailed, "archiver", "segment \(segment) was not archived within 60 s (\(try await psql.output("SELECT * FROM pg_stat_archiver")))")
    }

    static func insert(_ psql: Psql, tag: String, count: Int) async throws -> Date {
        _ = try await psql.output("INSERT INTO events (tag, n) SELECT '\(tag)', g FROM generate_series(1, \(count)) g")
        return parsePostgresTimeForTests(try await psql.value("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"))
    }

    static func parsePostgresTimeForTests(_ text: String) -> Date {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss.SSSSSS"
        return formatter.date(from: text)!
    }

    @Test func restoresToATimeBetweenCommitsAndDetectsABrokenWALChain() async throws {
        let shared = try await SharedRepository(label: "pg-pitr")
        defer { shared.remove() }
        let wal = WALCommandLine(executable: CommandLineTests.binary.path, repositoryArguments: shared.arguments, store: "app-db")
        let source = try await LocalPostgres.initialize(in: shared.directory.appendingPathComponent("source"), archiveCommand: wal.archiveCommand, durable: false)
        var restored: LocalPostgres?
        do {
            let psql = try Psql(source.endpoint)
            _ = try await psql.output("CREATE TABLE events (id bigserial PRIMARY KEY, tag text, n int, at timestamptz DEFAULT clock_timestamp())")
            let connector = PostgresConnector(store: "app-db", endpoint: source.endpoint, defaultMethod: .physical, checks: [
                .sql(query: "SELECT count(*) FROM events", expect: "200", database: nil),
            ])
            let base = try await connector.backup(into: shared.repository, point: nil, tags: [])
            #expect(base.source["method"] == "physical")
            #expect(base.source["timeline"] == "1")
            let start = try #require(base.source["start_lsn"].flatMap(LSN.init))
            let end = try #require(base.source["end_lsn"].flatMap(LSN.init))
            #expect(start <= end)
            #expect(base.source["start_wal_file"]?.count == 24)

            _ = try await Self.insert(psql, tag: "t1", count: 100)
            let t2 = try await Self.insert(psql, tag: "t2", count: 100)
            try await Task.sleep(for: .milliseconds(300))
            let between = t2.addingTimeInterval(0.15)
            try await Task.sleep(for: .milliseconds(300))
            let t3 = try await Self.insert(psql, tag: "t3", count: 100)
            try await Self.switchAndAwaitArchive(psql)
            let switched = Date()

            let window = try await connector.recoveryWindow(in: shared.repository)
            #expect(window.bases.count == 1)
            #expect(try #require(window.earliest) <= between)
            // The latest restorable instant is the last transaction archived: the t3 commit, or one
            // the server made on its own after it (autovacuum's ANALYZE of the new rows commits too),
            // never later than the segment switch that archived it.
            let t3Rows = Self.parsePostgresTimeForTests(try await psql.value("SELECT to_char(max(at) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') FROM events WHERE tag = 't3'"))
            let latest = try #require(window.latest)
            #expect(latest >= t3Rows && latest <= switched, "latest \(latest) vs t3 rows \(t3Rows) … switch \(switched) (t3 \(t3))")
            #expect(window.bases[0].missingSegment == nil)

            let target = shared.directory.appendingPathComponent("restored")
            let (report, server) = try await connector.restorePhysical(to: .time(between), from: shared.repository, dataDirectory: target, wal: wal)
            restored = server
            #expect(report.verifyBackup.contains("successfully verified"))
            #expect(report.timeline == 2, "promotion starts a new timeline")
            let after = try Psql(server.socketEndpoint)
            #expect(try await after.output("SELECT tag, count(*) FROM events GROUP BY tag ORDER BY tag") == "t1|100\nt2|100")
            #expect(try await connector.runChecks(against: server.socketEndpoint).map(\.passed) == [true])
            #expect(try await after.value("SELECT pg_is_in_recovery()") == "f")
            await server.stop()
            restored = nil
            // A second restore into the same, now non-empty, directory is refused.
            let refusal = await #expect(throws: PostgresError.self) {
                try await connector.restorePhysical(to: .latest, from: shared.repository, dataDirectory: target, wal: wal)
            }
            #expect(refusal?.code == .refused)

            // WAL retention: what lies before the base backup's start segment goes, the rest stays.
            let archivedBefore = try await shared.repository.listWAL(store: "app-db").map(\.name)
            let startNumber = WALSegment(timeline: 1, containing: start, segmentSize: 16 << 20).number
            let useless = archivedBefore.filter { (WALSegment(name: String($0.prefix(24)), segmentSize: 16 << 20)?.number ?? .max) < startNumber }
            #expect(!useless.isEmpty, "initdb's segment was archived before the base backup started")
            let dryRun = try await connector.pruneWAL(in: shared.repository, dryRun: true)
            #expect(dryRun.removed == useless)
            #expect(try await shared.repository.listWAL(store: "app-db").map(\.name) == archivedBefore)
            let pruned = try await connector.pruneWAL(in: shared.repository)
            #expect(pruned.removed == useless)
            #expect(try await shared.repository.listWAL(store: "app-db").map(\.name) == archivedBefore.filter { !useless.contains($0) })
            #expect(try await connector.recoveryWindow(in: shared.repository).latest == window.latest)

            // Break the chain: three more segments, then lose the middle one.
            var segments: [String] = []
            for round in 0..<3 {
                _ = try await Self.insert(psql, tag: "later\(round)", count: 10)
                segments.append(try await psql.value("SELECT pg_walfile_name(pg_current_wal_lsn())"))
                try await Self.switchAndAwaitArchive(psql)
            }
            let t4 = try await Self.insert(psql, tag: "t4", count: 10)
            try await Self.switchAndAwaitArchive(psql)
            let lost = segments[1]
            try FileManager.default.removeItem(at: shared.location.appendingPathComponent("wal/app-db/\(lost)"))
            let broken = try await connector.recoveryWindow(in: shared.repository)
            #expect(broken.bases[0].missingSegment == lost)
            #expect(broken.bases[0].lastSegment == segments[0])
            let gap = await #expect(throws: PostgresError.self) {
                try await connector.planPhysicalRestore(to: .time(t4), in: shared.repository)
            }
            #expect(gap?.code == .missingWAL)
            #expect(gap?.message.contains("segment \(lost) is missing") == true, "\(gap?.message ?? "")")
            // Before the gap is still restorable; before the base backup is not.
            _ = try await connector.planPhysicalRestore(to: .time(t3), in: shared.repository)
            let early = await #expect(throws: PostgresError.self) {
                try await connector.planPhysicalRestore(to: .time(base.started.addingTimeInterval(-3600)), in: shared.repository)
            }
            #expect(early?.code == .notRestorable)
        } catch {
            await restored?.stop()
            await source.stop()
            throw error
        }
        await source.stop()
    }
}
