import Foundation
import LifeboatCore
import LifeboatEngine
import LifeboatPlatform
@testable import LifeboatRepository
import LifeboatStorage
import Testing

/// The application layer's use cases, called as a scheduler would: plain async functions, no
/// ArgumentParser, and cancellation honoured.
@Suite struct PlatformOperationsTests {
    /// A store whose backup takes a long time (as a large pg_basebackup does), until cancelled.
    struct SlowStore: StoreConnector {
        func backup(_ store: Store, into repository: Repository, point: String, tags: [String]) async throws -> SnapshotManifest {
            try await Task.sleep(for: .seconds(120))
            throw EngineError(.noSnapshot, "not reached")
        }
        func canRestore(_ store: Store, to instant: Date, in repository: Repository) async throws -> Bool { false }
        func describe(_ request: StoreRestoreRequest) -> String { "" }
        func restore(_ request: StoreRestoreRequest) async throws -> any RestoredStore { throw EngineError(.noSnapshot, "not reached") }
    }

    /// A catalog of PostgreSQL stores, one per (name, connection) given.
    static func writeCatalog(_ stores: [(name: String, connection: String)], in directory: URL) throws -> URL {
        let catalog = directory.appendingPathComponent("lifeboat.yaml")
        let entries = stores.map { store in
            """
              - name: \(store.name)
                kind: postgres
                method: logical
                priority: P1
                rpo: 1h
                rto: 1h
                cadence: 1h
                verify: [{sql: "SELECT 1", expect: "1"}]
                connection: \(store.connection)
            """
        }
        try (["version: 1", "platform: operations-test", "stores:"] + entries).joined(separator: "\n").write(to: catalog, atomically: true, encoding: .utf8)
        return catalog
    }

    func context(in directory: URL) async throws -> PlatformContext {
        let unreachable = "{host: 127.0.0.1, port: 1, user: postgres}"
        let catalog = try Self.writeCatalog([("app-db", unreachable), ("other-db", unreachable)], in: directory)
        let repository = try await Repository.initialize(backend: MemoryBackend(), passphrase: "cancel",
                                                         scrypt: KeyFile.ScryptParameters(n: 1 << 10, r: 8, p: 1))
        return PlatformContext(resolver: try StoreResolver.load(path: catalog.path).resolver, repository: repository,
                               connectors: [.postgres: SlowStore()])
    }

    @Test(.timeLimit(.minutes(1)))
    func aCancelledBackupStopsAndWritesNoRecoveryPoint() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("lifeboat-cancel-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let operations = PlatformOperations(try await context(in: directory))
        let started = Date()
        let backup = Task { try await operations.backup() }
        try await Task.sleep(for: .milliseconds(300))
        backup.cancel()
        await #expect(throws: CancellationError.self) { _ = try await backup.value }
        #expect(Date().timeIntervalSince(started) < 30, "the backup stopped when cancelled, not after its stores")
        let (points, _) = try await operations.context.repository.documents(RecoveryPoint.self, in: .points)
        #expect(points.isEmpty, "a cancelled backup leaves no recovery point, not even a partial one")
        // Already cancelled: nothing starts.
        let never = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await operations.backup(stores: ["app-db"])
        }
        await #expect(throws: CancellationError.self) { _ = try await never.value }
    }

    @Test func theResolverConfiguresEachStoreOnceAndNamesWhatIsWrong() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("lifeboat-resolver-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try "s3cret\n".write(to: directory.appendingPathComponent("pgpassword"), atomically: true, encoding: .utf8)
        let catalog = try Self.writeCatalog([("app-db", "{host: 127.0.0.1, port: 5432, user: postgres, password: file:pgpassword}")], in: directory)
        let resolver = try StoreResolver.load(path: catalog.path).resolver
        let store = try resolver.store(named: "app-db", kind: .postgres)
        // The password reference resolves against the catalog's directory, the editor's newline dropped.
        #expect(try resolver.postgres(store).endpoint.password == "s3cret")
        #expect(try resolver.store(named: nil, kind: .postgres).name == "app-db", "the only store of its kind")
        #expect(throws: PlatformError.self) { try resolver.store(named: "nope", kind: .postgres) }
        do {
            _ = try resolver.store(named: "app-db", kind: .etcd)
            Issue.record("a postgres store was taken for etcd")
        } catch {
            #expect(error.code == .catalog && error.exitStatus == .usage && error.message.contains("of kind postgres, not etcd"), "\(error)")
        }
    }
}
