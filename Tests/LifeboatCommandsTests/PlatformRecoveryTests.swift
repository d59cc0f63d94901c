import Foundation
import LifeboatConnectors
import LifeboatCore
import LifeboatEngine
import LifeboatRepository
import LifeboatTesting
import Testing
@testable import LifeboatCommands
import LifeboatPlatform

/// The demo's story against real servers: PostgreSQL 15, OpenBao (raft, Shamir 5/3) and etcd on
/// loopback, backed up as one recovery point, destroyed, and restored in plan order with gates.
@Suite struct PlatformRecoveryTests {
    /// Runs `body` with a started, seeded demo platform and its context; stops every process started
    /// under the work directory afterwards, whatever happened.
    func withPlatform(_ body: (DemoPlatform, PlatformContext) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("lifeboat-e2e-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        let platform = DemoPlatform(directory: directory)
        defer {
            ProcessSweep.stopProcesses(mentioning: directory.path)
            try? FileManager.default.removeItem(at: directory)
        }
        do {
            try await platform.start()
            try await platform.seed()
            try platform.writeCatalog()
            try await body(platform, try await DemoCommand.openContext(platform))
            await platform.stopServers()
        } catch {
            await platform.stopServers()
            throw error
        }
    }

    func backup(_ context: PlatformContext) async throws -> RecoveryPoint {
        let point = try await PlatformBackup(catalog: context.catalog, repository: context.repository, connectors: context.connectors).run()
        #expect(point.isComplete, "\(point.members.compactMap(\.error))")
        return point
    }

    func tenants(_ endpoint: PostgresEndpoint) async throws -> [[String]] {
        try await Psql(endpoint).rows("SELECT name, secret_path FROM tenants ORDER BY name", database: "app")
    }

    @Test(.timeLimit(.minutes(4)))
    func theDemoStoryBringsEveryStoreBackWithItsData() async throws {
        try await withPlatform { platform, context in
            // What the platform holds before the disaster, read from the servers themselves.
            var secrets: [String: [String: String]] = [:]
            for tenant in DemoPlatform.tenants {
                secrets[tenant] = try await platform.openbao!.client.readSecret("demo/tenants/\(tenant)", token: platform.rootToken)
            }
            let rows = try await tenants(platform.postgres!.socketEndpoint)
            let keys = try await platform.etcd!.gateway().connect().keyValues(prefix: Data("/demo/".utf8))
            #expect(rows.count == 3 && keys.count == 4)

            let point = try await backup(context)
            try await platform.destroy()
            #expect(!FileManager.default.fileExists(atPath: platform.postgresDirectory.path))

            let preparation = try context.preparation()
            let (_, steps) = try await preparation.prepare(.point(point.id))
            #expect(steps.map(\.step.store) == ["openbao", "postgres", "etcd"])
            let outcome = await PlatformRestore(preparation: preparation)
                .run(steps, mode: .scratch(platform.directory.appendingPathComponent("restored")))
            #expect(outcome.steps.map(\.outcome) == [.passed, .passed, .passed], "\(outcome.steps.compactMap(\.reason))")
            #expect(outcome.steps.allSatisfy { $0.checks.allSatisfy(\.passed) && !$0.checks.isEmpty })
            // OpenBao's gate holds the credential cutover, ahead of the catalog's reads.
            #expect(outcome.steps.first?.checks.prefix(2).map(\.check) == ["credential cutover: the source's token is accepted",
                                                                          "credential cutover: the target's previous token is refused"],
                    "\(outcome.steps.first?.checks ?? [])")

            // The data read back from the restored servers equals what was there.
            let openbao = try #require(outcome.restored.compactMap { $0 as? RestoredOpenBao }.first)
            for tenant in DemoPlatform.tenants {
                let restored = try await OpenBaoClient(address: openbao.address).readSecret("demo/tenants/\(tenant)", token: platform.rootToken)
                #expect(restored == secrets[tenant], "secret of \(tenant)")
            }
            let postgres = try #require(outcome.restored.compactMap { $0 as? RestoredPostgres }.first)
            #expect(try await tenants(postgres.endpoint) == rows)
            #expect(try await Psql(postgres.endpoint).value("SELECT count(*) FROM pg_roles WHERE rolname = 'app_owner'") == "1")
            // Every row names a secret the restored OpenBao holds: no dangling pointer.
            for row in rows {
                let path = row[1].replacingOccurrences(of: "secret/data/", with: "")
                #expect(try await OpenBaoClient(address: openbao.address).readSecret(path, token: platform.rootToken) != nil, "\(row[1])")
            }
            let etcd = try #require(outcome.restored.compactMap { $0 as? RestoredEtcd }.first)
            let restoredKeys = try await etcd.cluster.gateway().connect().keyValues(prefix: Data("/demo/".utf8))
            #expect(restoredKeys.map(\.key) == keys.map(\.key) && restoredKeys.map(\.value) == keys.map(\.value))
            await outcome.releaseAll()
        }
    }

    @Test(.timeLimit(.minutes(4)))
    func aCorruptOpenBaoSnapshotStopsTheRunAtItsStepWithPostgresUntouched() async throws {
        try await withPlatform { platform, context in
            let point = try await backup(context)
            // After the backup the platform moves on: a new tenant row in the live PostgreSQL.
            let live = platform.postgres!.socketEndpoint
            _ = try await Psql(live).output("INSERT INTO tenants (name, secret_path) VALUES ('afterwards', 'secret/data/demo/tenants/afterwards')", database: "app")
            let before = try await tenants(live)
            // One chunk of the OpenBao snapshot is damaged in the repository.
            let manifest = try await context.repository.loadManifest(id: try #require(point.member("openbao")?.snapshot))
            let chunk = try #require(manifest.chunks.first)
            let file = platform.repositoryURL.appendingPathComponent("data/\(chunk.id.prefix(2))/\(chunk.id)")
            var bytes = try Data(contentsOf: file)
            bytes[bytes.count / 2] ^= 0xFF
            try FileManager.default.removeItem(at: file)
            try bytes.write(to: file)

            // A production restore: the catalog's own targets, forced.
            let preparation = try context.preparation()
            let (_, steps) = try await preparation.prepare(.point(point.id))
            let outcome = await PlatformRestore(preparation: preparation).run(steps, mode: .production(force: true))
            await outcome.releaseAll()
            #expect(outcome.steps.map(\.outcome) == [.failed, .skipped, .skipped])
            let failed = try #require(outcome.failedStep)
            #expect(failed.store == "openbao")
            #expect(failed.reason?.contains(chunk.id) == true, "\(failed.reason ?? "")")
            // PostgreSQL was not touched: the row written after the backup is still there.
            #expect(try await tenants(live) == before)
            // Nor was OpenBao: the refusal came before the target.
            #expect(try await platform.openbao!.client.readSecret("demo/tenants/acme", token: platform.rootToken) != nil)
        }
    }

    @Test(.timeLimit(.minutes(4)))
    func anOlderOpenBaoRewindsPostgresToMatch() async throws {
        try await withPlatform { platform, context in
            let first = try await backup(context)
            try await platform.seed(generation: 2)   // adds tenant2 everywhere
            let second = try await backup(context)
            #expect(try await tenants(platform.postgres!.socketEndpoint).count == 4)
            try await platform.destroy()

            // The newest point, but OpenBao pinned to the first point's snapshot (a bad rotation, say).
            let preparation = try context.preparation()
            let olderOpenBao = try #require(first.member("openbao")?.snapshot)
            let (_, steps) = try await preparation.prepare(.point(second.id), overrides: ["openbao": olderOpenBao])
            let postgresStep = try #require(steps.first { $0.step.store == "postgres" })
            #expect(postgresStep.snapshot?.id == first.member("postgres")?.snapshot)
            #expect(postgresStep.consistency?.contains("openbao's restored data is from") == true)

            let outcome = await PlatformRestore(preparation: preparation).run(steps, mode: .scratch(platform.directory.appendingPathComponent("restored")))
            #expect(outcome.steps.map(\.outcome) == [.passed, .passed, .passed], "\(outcome.steps.compactMap(\.reason))")
            let postgres = try #require(outcome.restored.compactMap { $0 as? RestoredPostgres }.first)
            let rows = try await tenants(postgres.endpoint)
            #expect(rows.map { $0[0] } == DemoPlatform.tenants, "PostgreSQL rewound to the first point: no tenant2 row")
            let openbao = try #require(outcome.restored.compactMap { $0 as? RestoredOpenBao }.first)
            #expect(try await OpenBaoClient(address: openbao.address).readSecret("demo/tenants/tenant2", token: platform.rootToken) == nil)
            await outcome.releaseAll()
        }
    }

    /// The consistency rule with a real WAL archive: OpenBao pinned to an older snapshot, PostgreSQL
    /// (physical, archiving through this build's `postgres wal-push`) is recovered to that snapshot's
    /// wall-clock time, not to a whole backup: the row written after it is gone, the one before stays.
    @Test(.timeLimit(.minutes(4)))
    func anOlderOpenBaoRewindsAPhysicalPostgresToItsTimeThroughTheWALArchive() async throws {
        let shared = try await SharedRepository(label: "pitr-rewind")
        defer {
            ProcessSweep.stopProcesses(mentioning: shared.directory.path)
            shared.remove()
        }
        let catalog = shared.directory.appendingPathComponent("lifeboat.yaml")
        let wal = WALCommandLine(executable: CommandLineTests.binary.path, repositoryArguments: ["--catalog", catalog.path], store: "postgres")
        async let startedBao = LocalOpenBao.start(in: shared.directory.appendingPathComponent("openbao"), nodeID: "source")
        async let startedPostgres = LocalPostgres.initialize(in: shared.directory.appendingPathComponent("pg"), archiveCommand: wal.archiveCommand, durable: false)
        let (openbao, postgres) = try await (startedBao, startedPostgres)
        let initialized = try await openbao.initialize(shares: 5, threshold: 3)
        try await openbao.enableKV(token: initialized.rootToken)
        try Data(initialized.rootToken.utf8).write(to: shared.directory.appendingPathComponent("token"))
        try Data(initialized.keys.joined(separator: "\n").utf8).write(to: shared.directory.appendingPathComponent("unseal-keys"))
        try Data(postgres.password!.utf8).write(to: shared.directory.appendingPathComponent("pgpassword"))
        try """
        version: 1
        platform: rewind
        repository: {url: repo, password: file:passphrase}
        stores:
          - name: openbao
            kind: openbao
            method: raft snapshot
            cadence: 1h
            priority: P0
            verify: [{read: secret/data/tenants/acme, field: key}]
            connection: {address: "\(openbao.address)", token: file:token, unseal_keys: file:unseal-keys}
          - name: postgres
            kind: postgres
            method: pg_basebackup + WAL archiving
            cadence: 1h
            priority: P0
            depends_on: [openbao]
            verify: [{sql: "SELECT count(*) FROM tenants WHERE name = 'acme'", expect: "1"}]
            connection: {host: 127.0.0.1, port: \(postgres.port), user: postgres, password: file:pgpassword}
        """.write(to: catalog, atomically: true, encoding: .utf8)
        let context = PlatformContext(resolver: try StoreResolver.load(path: catalog.path).resolver, repository: shared.repository,
                                      repositoryArguments: ["--catalog", catalog.path], executable: CommandLineTests.binary.path)
        let psql = try Psql(postgres.endpoint)
        _ = try await psql.output("CREATE TABLE tenants (name text PRIMARY KEY, secret_path text NOT NULL)")
        func add(_ tenant: String) async throws {
            try await openbao.client.writeSecret("tenants/\(tenant)", ["key": "\(tenant)-key"], token: initialized.rootToken)
            _ = try await psql.output("INSERT INTO tenants VALUES ('\(tenant)', 'secret/data/tenants/\(tenant)')")
        }

        try await add("acme")
        let first = try await PlatformBackup(catalog: context.catalog, repository: shared.repository, connectors: context.connectors).run()
        #expect(first.isComplete, "\(first.members.compactMap(\.error))")
        try await Task.sleep(for: .milliseconds(500))
        try await add("globex")   // after the first OpenBao snapshot: must not survive the rewind
        let second = try await PlatformBackup(catalog: context.catalog, repository: shared.repository, connectors: context.connectors).run()
        #expect(second.isComplete, "\(second.members.compactMap(\.error))")
        _ = try await psql.output("INSERT INTO tenants VALUES ('later', 'none')")
        try await PostgresPITRTests.switchAndAwaitArchive(psql)

        let preparation = try context.preparation()
        let olderOpenBao = try #require(first.member("openbao")?.snapshot)
        let (_, steps) = try await preparation.prepare(.point(second.id), overrides: ["openbao": olderOpenBao])
        let postgresStep = try #require(steps.first { $0.step.store == "postgres" })
        let openbaoTime = try #require(first.member("openbao")?.sourceTime)
        #expect(postgresStep.targetTime == openbaoTime, "recovered to the OpenBao snapshot's time")
        #expect(postgresStep.consistency?.contains("(point-in-time)") == true, "\(postgresStep.consistency ?? "")")

        let outcome = await PlatformRestore(preparation: preparation).run(steps, mode: .scratch(shared.directory.appendingPathComponent("restored")))
        #expect(outcome.steps.map(\.outcome) == [.passed, .passed], "\(outcome.steps.compactMap(\.reason))")
        let restored = try #require(outcome.restored.compactMap { $0 as? RestoredPostgres }.first)
        #expect(try await Psql(restored.endpoint).rows("SELECT name FROM tenants ORDER BY name").map { $0[0] } == ["acme"])
        let restoredBao = try #require(outcome.restored.compactMap { $0 as? RestoredOpenBao }.first)
        #expect(try await OpenBaoClient(address: restoredBao.address).readSecret("tenants/globex", token: initialized.rootToken) == nil)
        await outcome.releaseAll()
        openbao.stop()
        await postgres.stop()
    }
}
