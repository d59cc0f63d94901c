import Foundation
import LifeboatConnectors
import LifeboatCore
import LifeboatEngine
import LifeboatRepository

/// The PostgreSQL connector as the engine sees it: logical snapshots restored into a fresh server
/// (drills) or the catalog's server (production); physical ones by point-in-time recovery into a new
/// data directory, fetching WAL through `lifeboat postgres wal-fetch`.
struct PostgresStoreConnector: StoreConnector {
    let catalogDirectory: URL
    /// How PostgreSQL's `restore_command` child finds the repository (`--catalog …` / `--repo …`).
    let repositoryArguments: [String]

    func connector(_ store: Store) throws -> PostgresConnector {
        guard case .postgres(let connection)? = store.connection else { return try PostgresConnector(store: store, password: nil) }
        return try PostgresConnector(store: store, password: try connection.password.map { try resolve($0, relativeTo: catalogDirectory) })
    }

    func backup(_ store: Store, into repository: Repository, point: String, tags: [String]) async throws -> SnapshotManifest {
        try await connector(store).backup(into: repository, point: point, tags: tags)
    }

    func canRestore(_ store: Store, to instant: Date, in repository: Repository) async throws -> Bool {
        try await connector(store).recoveryWindow(in: repository).covers(instant)
    }

    static func isPhysical(_ request: StoreRestoreRequest) -> Bool {
        request.targetTime != nil || request.snapshot.source["method"] == PostgresBackupMethod.physical.rawValue
    }

    func describe(_ request: StoreRestoreRequest) -> String {
        let snapshot = request.snapshot.id.prefix(8)
        let physical = Self.isPhysical(request)
        let what = physical
            ? "point-in-time recovery to \(SourceTime.format(request.targetTime ?? request.snapshot.sourceTime)) from a base backup plus archived WAL, checked by pg_verifybackup"
            : "pg_restore of logical backup \(snapshot) (databases \(request.snapshot.source["databases"] ?? "?"), roles first)"
        switch request.destination {
        case .scratch(let directory):
            return "\(what), into a fresh PostgreSQL 15 under \(directory.path)"
        case .production(let force):
            if physical {
                return "refused: a physical restore needs a new data directory; run `lifeboat restore postgres --store \(request.store.name) --data-dir …`, start the server, then resume after this step"
            }
            let target = if case .postgres(let connection)? = request.store.connection { "\(connection.host):\(connection.port)" } else { "?" }
            return "\(what), into \(target)" + (force ? " (dropping and replacing its databases: --force)" : " (refused if it already holds them: --force)")
        }
    }

    func restore(_ request: StoreRestoreRequest) async throws -> any RestoredStore {
        let connector = try connector(request.store)
        switch request.destination {
        case .scratch(let directory):
            let data = directory.appendingPathComponent("data", isDirectory: true)
            if Self.isPhysical(request) {
                let wal = WALCommandLine(executable: lifeboatExecutablePath(), repositoryArguments: repositoryArguments, store: request.store.name)
                let (_, server) = try await connector.restorePhysical(
                    to: .time(request.targetTime ?? request.snapshot.sourceTime), from: request.repository, dataDirectory: data, wal: wal)
                return RestoredPostgres(endpoint: server.socketEndpoint, server: server)
            }
            let server = try await LocalPostgres.initialize(in: data, durable: false)
            do {
                _ = try await connector.restoreLogical(request.snapshot, from: request.repository, into: server.socketEndpoint)
            } catch {
                await server.stop()
                throw error
            }
            return RestoredPostgres(endpoint: server.socketEndpoint, server: server)
        case .production(let force):
            guard !Self.isPhysical(request) else { throw EngineError(.invalidArgument, describe(request)) }
            _ = try await connector.restoreLogical(request.snapshot, from: request.repository, into: connector.endpoint, force: force)
            return RestoredPostgres(endpoint: connector.endpoint, server: nil)
        }
    }
}

/// A PostgreSQL after its restore; a drill's scratch server is stopped on release.
struct RestoredPostgres: RestoredStore {
    let endpoint: PostgresEndpoint
    let server: LocalPostgres?

    var target: String { server.map { "PostgreSQL on 127.0.0.1:\($0.port) (\($0.dataDirectory.path))" } ?? endpoint.description }

    func check(_ checks: [VerifyCheck]) async throws -> [CheckResult] {
        try await PostgresConnector.runChecks(checks, against: endpoint)
    }

    func release() async { await server?.stop() }
}
