import Foundation
@testable import LifeboatCommands
import LifeboatPlatform
import LifeboatCore
import LifeboatEngine
@testable import LifeboatRepository
import LifeboatTesting
import Testing

/// `lifeboat postgres …` and `lifeboat restore postgres` end to end, driven by a catalog, against a real PostgreSQL 15.
@Suite struct PostgresCLITests {
    static func catalog(port: Int) -> String {
        """
        version: 1
        platform: test
        repository:
          url: repo
          password: file:passphrase
        stores:
          - name: app-db
            kind: postgres
            method: pg_basebackup + WAL archiving
            cadence: 1h
            priority: P0
            retention:
              keep_last: 3
            verify:
              - sql: SELECT count(*) FROM events
                expect: "50"
            connection:
              host: 127.0.0.1
              port: \(port)
              user: postgres
              password: file:pgpassword
        """
    }

    @Test func backupRecoveryWindowAndRestoreFromTheCatalog() async throws {
        let shared = try await SharedRepository(label: "pg-cli")
        defer { shared.remove() }
        let catalog = shared.directory.appendingPathComponent("lifeboat.yaml")
        let wal = WALCommandLine(executable: CommandLineTests.binary.path, repositoryArguments: ["--catalog", catalog.path], store: "app-db")
        let source = try await LocalPostgres.initialize(in: shared.directory.appendingPathComponent("source"), archiveCommand: wal.archiveCommand, durable: false)
        do {
            try Self.catalog(port: source.port).write(to: catalog, atomically: true, encoding: .utf8)
            try Data(source.password!.utf8).write(to: shared.directory.appendingPathComponent("pgpassword"))
            let psql = try Psql(source.endpoint)
            _ = try await psql.output("CREATE TABLE events (id int); INSERT INTO events SELECT generate_series(1, 50)")

            let backup = try await CommandLineTests.run(["postgres", "backup", "--store", "app-db", "--catalog", catalog.path, "--json"])
            #expect(backup.status == 0, "\(backup.stderr)")
            let stored = try #require(JSONSerialization.jsonObject(with: backup.stdoutData) as? [String: String])
            #expect(stored["method"] == "physical", "the catalog's method names pg_basebackup")
            _ = try await psql.output("INSERT INTO events SELECT generate_series(51, 60); DELETE FROM events WHERE id > 50")
            try await PostgresPITRTests.switchAndAwaitArchive(psql)

            let window = try await CommandLineTests.run(["postgres", "recovery-window", "--store", "app-db", "--catalog", catalog.path])
            #expect(window.status == 0, "\(window.stderr)")
            #expect(window.stdout.contains("earliest 20") && window.stdout.contains("latest   20"), "\(window.stdout)")
            #expect(window.stdout.contains(String(stored["id"]!.prefix(8))))

            let dataDir = shared.directory.appendingPathComponent("restored").path
            let restore = try await CommandLineTests.run(["restore", "postgres", "--store", "app-db", "--catalog", catalog.path,
                                                          "--data-dir", dataDir, "--target", "latest", "--json"])
            #expect(restore.status == 0, "\(restore.stderr)")
            let outcome = try #require(JSONSerialization.jsonObject(with: restore.stdoutData) as? [String: Any])
            let checks = try #require(outcome["checks"] as? [[String: Any]])
            #expect(checks.count == 1 && checks[0]["passed"] as? Bool == true, "\(checks)")
            let physical = try #require(outcome["physical"] as? [String: Any])
            #expect(physical["timeline"] as? Int == 2)
            // Shut down cleanly and promoted: pg_controldata says so.
            let control = try await ExternalTool.locate("pg_controldata").run([dataDir])
            #expect(control.output.contains("Database cluster state:               shut down"), "\(control.output)")
            #expect(!FileManager.default.fileExists(atPath: dataDir + "/recovery.signal"))

            let again = try await CommandLineTests.run(["restore", "postgres", "--store", "app-db", "--catalog", catalog.path,
                                                        "--data-dir", dataDir, "--target", "latest"])
            #expect(again.status == 1)
            #expect(again.stderr.contains("not empty; nothing was changed"))
            let early = try await CommandLineTests.run(["restore", "postgres", "--store", "app-db", "--catalog", catalog.path,
                                                        "--data-dir", dataDir + "-2", "--time", "2001-01-01T00:00:00Z"])
            #expect(early.status == 1)
            #expect(early.stderr.contains("before the earliest restorable point"), "\(early.stderr)")

            // A logical backup restored over the very server it came from is refused by the guard.
            let logical = try await CommandLineTests.run(["postgres", "backup", "--store", "app-db", "--catalog", catalog.path, "--method", "logical"])
            #expect(logical.status == 0, "\(logical.stderr)")
            let refused = try await CommandLineTests.run(["restore", "postgres", "--store", "app-db", "--catalog", catalog.path,
                                                          "--to-host", "127.0.0.1", "--to-port", String(source.port),
                                                          "--to-password-file", shared.directory.appendingPathComponent("pgpassword").path])
            #expect(refused.status == 1)
            #expect(refused.stderr.contains("already holds database postgres"), "\(refused.stderr)")
            let usage = try await CommandLineTests.run(["restore", "postgres", "--store", "app-db", "--catalog", catalog.path, "--data-dir", dataDir])
            #expect(usage.status == 2)
            for command in [["postgres", "backup"], ["postgres", "wal-push"], ["postgres", "wal-fetch"], ["postgres", "recovery-window"], ["restore", "postgres"]] {
                let help = try await CommandLineTests.run(command + ["--help"])
                #expect(help.status == 0 && help.stdout.contains("Example"), "\(command) --help has an example")
            }
        } catch {
            await source.stop()
            throw error
        }
        await source.stop()
    }

    /// The ordered restore of a physical store into production: the catalog's data directory is
    /// rebuilt from the base backup and the WAL archive, but only once the server is down, and the
    /// old directory is kept aside, never deleted.
    @Test(.timeLimit(.minutes(4)))
    func thePlatformRestoreRebuildsAPhysicalStoresDataDirectoryOnlyWhenTheServerIsDown() async throws {
        let shared = try await SharedRepository(label: "pg-platform")
        defer { shared.remove() }
        let catalog = shared.directory.appendingPathComponent("lifeboat.yaml")
        let wal = WALCommandLine(executable: CommandLineTests.binary.path, repositoryArguments: ["--catalog", catalog.path], store: "app-db")
        let data = shared.directory.appendingPathComponent("source")
        let source = try await LocalPostgres.initialize(in: data, archiveCommand: wal.archiveCommand, durable: false)
        var server: LocalPostgres? = source
        defer { if let server { Task { await server.stop() } } }
        try (Self.catalog(port: source.port) + "\n      data_directory: \(data.path)\n").write(to: catalog, atomically: true, encoding: .utf8)
        try Data(source.password!.utf8).write(to: shared.directory.appendingPathComponent("pgpassword"))
        let psql = try Psql(source.endpoint)
        _ = try await psql.output("CREATE TABLE events (id int); INSERT INTO events SELECT generate_series(1, 50)")
        let c = ["--catalog", catalog.path]

        let backup = try await CommandLineTests.run(["backup", "--json"] + c)
        #expect(backup.status == 0, "\(backup.stderr)")
        let point = try #require(try JSONSerialization.jsonObject(with: backup.stdoutData) as? [String: Any])
        let pointID = String((point["id"] as? String ?? "").prefix(8))
        let phrase = "restore test \(pointID)"
        // Right after the backup, with no later commit: the newest point is restorable at once.
        let drill = try await CommandLineTests.run(["drill"] + c)
        #expect(drill.status == 0, "\(drill.stdout)\(drill.stderr)")
        // After the point: rows the restore to the point's time must not bring back.
        _ = try await psql.output("INSERT INTO events SELECT generate_series(51, 60)")
        try await PostgresPITRTests.switchAndAwaitArchive(psql)

        let dryRun = try await CommandLineTests.run(["restore", "--latest", "--dry-run"] + c)
        #expect(dryRun.stdout.contains("into \(data.path) (PostgreSQL at 127.0.0.1:\(source.port) must be stopped"), "\(dryRun.stdout)")
        // Preflight against the real target: the server runs and its directory is not empty.
        #expect(dryRun.status == 5 && dryRun.stdout.contains("PREFLIGHT: a PostgreSQL server still runs on \(data.path)")
                && dryRun.stdout.contains("PREFLIGHT: PostgreSQL still answers at") && dryRun.stdout.contains("is not empty"), "\(dryRun.stdout)")
        // --latest is the newest committed data: the end of the archive, past the point's base backup.
        let endOfArchive = try #require(try await PostgresConnector(store: "app-db", endpoint: source.endpoint).recoveryWindow(in: shared.repository).latest)
        #expect(dryRun.stdout.contains("point-in-time recovery to \(SourceTime.format(endOfArchive))"), "\(dryRun.stdout)")
        // The server still runs: refused before anything is touched.
        let running = try await CommandLineTests.run(["restore", "--point", pointID, "--force", "--confirm", phrase] + c)
        #expect(running.status == 5 && running.stderr.contains("still runs on \(data.path) (its postmaster.pid names a live process)"), "\(running.stderr)")
        // The single-store command runs the same procedure: the same guards refuse it (exit 1), untouched.
        let single = try await CommandLineTests.run(["restore", "postgres", "--store", "app-db", "--data-dir", data.path, "--target", "latest", "--force"] + c)
        #expect(single.status == 1 && single.stderr.contains("still runs on \(data.path) (its postmaster.pid names a live process)")
                && single.stderr.contains("PostgreSQL still answers at 127.0.0.1:\(source.port)"), "\(single.stderr)")
        #expect(try await psql.value("SELECT count(*) FROM events") == "60")

        await source.stop()
        server = nil
        let notEmpty = try await CommandLineTests.run(["restore", "--point", pointID, "--confirm", phrase] + c)
        #expect(notEmpty.status == 5 && notEmpty.stderr.contains("is not empty; nothing was changed"), "\(notEmpty.stderr)")
        #expect(FileManager.default.fileExists(atPath: data.appendingPathComponent("PG_VERSION").path))

        // A restore that fails part way (here its restore_command cannot even run) puts the old
        // directory back where it was, untouched.
        let marker = data.appendingPathComponent("lifeboat-test-marker")
        try Data("the original".utf8).write(to: marker)
        let loaded = try CatalogLoader.load(contentsOf: catalog.path).catalog
        let store = try #require(loaded.stores.first { $0.name == "app-db" })
        let base = try #require(try await shared.repository.snapshots().manifests.first { $0.store == "app-db" })
        let broken = PostgresStoreConnector(resolver: try StoreResolver.load(path: catalog.path).resolver, repositoryArguments: ["--catalog", catalog.path],
                                            executable: "/nonexistent/lifeboat")
        await #expect(throws: (any Error).self) {
            _ = try await broken.restore(StoreRestoreRequest(store: store, snapshot: base, targetTime: nil, repository: shared.repository,
                                                             destination: .production(force: true)))
        }
        #expect(FileManager.default.contents(atPath: marker.path) == Data("the original".utf8), "the previous directory is back")
        #expect(try FileManager.default.contentsOfDirectory(atPath: shared.directory.path).allSatisfy { !$0.contains("lifeboat-previous") })
        try FileManager.default.removeItem(at: marker)

        // The point, exactly (`--latest` would bring the archived rows 51-60 back: the newest data).
        let restored = try await CommandLineTests.run(["restore", "--point", pointID, "--force", "--confirm", phrase] + c)
        #expect(restored.status == 0, "\(restored.stdout)\(restored.stderr)")
        #expect(restored.stdout.contains("recovered and checked, then shut down cleanly"), "\(restored.stdout)")
        let siblings = try FileManager.default.contentsOfDirectory(atPath: shared.directory.path)
        #expect(siblings.contains { $0.hasPrefix("source.lifeboat-previous-") }, "the old data directory is kept: \(siblings)")
        let control = try await ExternalTool.locate("pg_controldata").run([data.path])
        #expect(control.output.contains("Database cluster state:               shut down"), "\(control.output)")

        // Handed over: the service manager's start finds the point's data, not what came later.
        let started = try await LocalPostgres.start(existing: data)
        server = started
        #expect(try await Psql(started.socketEndpoint).value("SELECT count(*) FROM events") == "50")
        await started.stop()
        server = nil
    }
}
