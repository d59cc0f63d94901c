import Foundation
import LifeboatConnectors
import LifeboatCore
import LifeboatEngine
import LifeboatRepository

/// The PostgreSQL connector as the engine sees it: logical snapshots restored into a fresh server
/// (drills) or the catalog's server (production); physical ones by point-in-time recovery into a new
/// data directory, fetching WAL through `lifeboat postgres wal-fetch`.
public struct PostgresStoreConnector: StoreConnector {
    let resolver: StoreResolver
    /// How PostgreSQL's `restore_command` child finds the repository (`--catalog …` / `--repo …`).
    let repositoryArguments: [String]
    /// The `lifeboat` binary that child runs.
    var executable = lifeboatExecutablePath()

    public init(resolver: StoreResolver, repositoryArguments: [String], executable: String = lifeboatExecutablePath()) {
        self.resolver = resolver
        self.repositoryArguments = repositoryArguments
        self.executable = executable
    }

    func connector(_ store: Store) throws -> PostgresConnector { try resolver.postgres(store) }

    public func backup(_ store: Store, into repository: Repository, point: String, tags: [String]) async throws -> SnapshotManifest {
        try await connector(store).backup(into: repository, point: point, tags: tags)
    }

    public func canRestore(_ store: Store, to instant: Date, in repository: Repository) async throws -> Bool {
        try await connector(store).recoveryWindow(in: repository).covers(instant)
    }

    public func latestInstant(_ store: Store, in repository: Repository) async throws -> Date? {
        try await connector(store).recoveryWindow(in: repository).newest()?.to
    }

    public func archiverHealth(_ store: Store) async -> PlatformStatus.ArchiverHealth? {
        do {
            return try await connector(store).archiverHealth()
        } catch {
            return PlatformStatus.ArchiverHealth(error: "\(error)")
        }
    }

    /// A `continuous` store promises WAL archiving into this store: the server's settings must say so.
    public func coverage(_ store: Store) async -> [String]? {
        guard store.cadences.contains(.continuous), let connector = try? connector(store),
              let settings = try? await connector.archivingSettings() else { return nil }
        return PostgresConnector.archivingProblems(store: store.name, settings)
    }

    public static func isPhysical(_ request: StoreRestoreRequest) -> Bool {
        request.targetTime != nil || PostgresFacts(request.snapshot).method == .physical
    }

    public func describe(_ request: StoreRestoreRequest) -> String {
        let snapshot = request.snapshot.id.prefix(8)
        let physical = Self.isPhysical(request)
        let what = physical
            ? "point-in-time recovery to \(SourceTime.format(request.targetTime ?? request.snapshot.sourceTime)) from a base backup plus archived WAL, checked by pg_verifybackup"
            : "pg_restore of logical backup \(snapshot) (databases \(PostgresFacts(request.snapshot).databases.joined(separator: ",")), roles first)"
        switch request.destination {
        case .scratch(let directory):
            return "\(what), into a fresh PostgreSQL 15 under \(directory.path)"
        case .production(let force):
            let connection: PostgresConnection? = if case .postgres(let connection)? = request.store.connection { connection } else { nil }
            if physical {
                guard let directory = connection?.dataDirectory else { return "refused: \(Self.noDataDirectory(request.store.name))" }
                return "\(what), into \(directory) (PostgreSQL at \(connection.map { "\($0.host):\($0.port)" } ?? "?") must be stopped"
                    + (force ? "; a non-empty directory is moved aside: --force" : "; refused if the directory is not empty: --force")
                    + "), then shut down cleanly for your service manager to start"
            }
            let target = connection.map { "\($0.host):\($0.port)" } ?? "?"
            return "\(what), into \(target)" + (force ? " (dropping and replacing its databases: --force)" : " (refused if it already holds them: --force)")
        }
    }

    public func restore(_ request: StoreRestoreRequest) async throws -> any RestoredStore {
        let connector = try connector(request.store)
        switch request.destination {
        case .scratch(let directory):
            let data = directory.appendingPathComponent("data", isDirectory: true)
            if Self.isPhysical(request) {
                let wal = WALCommandLine(executable: executable, repositoryArguments: repositoryArguments, store: request.store.name)
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
            if Self.isPhysical(request) { return try await restoreInPlace(request, connector: connector, force: force) }
            _ = try await connector.restoreLogical(request.snapshot, from: request.repository, into: connector.endpoint, force: force)
            return RestoredPostgres(endpoint: connector.endpoint, server: nil)
        }
    }
}

extension PostgresStoreConnector {
    /// Every reason a physical production restore would refuse, all at once, and the plan when it
    /// can run: the procedure's guards, and whether the point in time is covered by a base backup and WAL.
    func physicalGuards(_ request: StoreRestoreRequest, connector: PostgresConnector, force: Bool) async -> (problems: [String], plan: PhysicalRestorePlan?) {
        guard case .postgres(let connection)? = request.store.connection, let path = connection.dataDirectory else {
            return ([Self.noDataDirectory(request.store.name)], nil)
        }
        var problems = PostgresPhysicalRestore.guards(dataDirectory: URL(fileURLWithPath: path).standardizedFileURL.path, connection: connection, force: force)
        var plan: PhysicalRestorePlan?
        do {
            plan = try await connector.planPhysicalRestore(to: .time(request.targetTime ?? request.snapshot.sourceTime), in: request.repository)
        } catch {
            problems.append("\(error)")
        }
        return (problems, plan)
    }

    public func preflight(_ request: StoreRestoreRequest) async -> [String] {
        guard case .production(let force) = request.destination else { return [] }
        do {
            let connector = try connector(request.store)
            if Self.isPhysical(request) { return await physicalGuards(request, connector: connector, force: force).problems }
            let conflicts = try await connector.logicalConflicts(request.snapshot, in: connector.endpoint)
            return conflicts.isEmpty || force ? [] : ["PostgreSQL at \(connector.endpoint) already holds \(conflicts.joined(separator: ", ")): the restore refuses without --force"]
        } catch {
            return ["cannot check the target: \(error)"]
        }
    }

    public static func noDataDirectory(_ store: String) -> String {
        "a physical restore lays the base backup into a data directory, and store '\(store)' names none: set its connection.data_directory, or run `lifeboat restore postgres --store \(store) --data-dir …` by hand and resume after this step"
    }

    /// A physical production restore: the catalog's data directory is rebuilt from the base backup
    /// and archived WAL while the production server is down, by the same procedure `lifeboat restore
    /// postgres --data-dir` runs. Lifeboat runs the recovery itself (so the gate runs before anyone
    /// connects) and shuts the server down cleanly afterwards (`PostgresStopPolicy.handedOver`).
    func restoreInPlace(_ request: StoreRestoreRequest, connector: PostgresConnector, force: Bool) async throws -> any RestoredStore {
        guard case .postgres(let connection)? = request.store.connection, let path = connection.dataDirectory else {
            throw PlatformError(.refused, object: request.store.name, Self.noDataDirectory(request.store.name))
        }
        let (problems, plan) = await physicalGuards(request, connector: connector, force: force)
        guard problems.isEmpty, let plan else { throw PlatformError(.refused, object: path, problems.joined(separator: "; ")) }
        let wal = WALCommandLine(executable: executable, repositoryArguments: repositoryArguments, store: request.store.name)
        return try await PostgresPhysicalRestore(connector: connector, connection: connection, dataDirectory: URL(fileURLWithPath: path, isDirectory: true),
                                                 plan: plan, repository: request.repository, wal: wal, force: force,
                                                 // The catalog's own data directory is production again: it keeps its
                                                 // archiving, on its new timeline; only copies have it turned off.
                                                 keepArchiving: true).run()
    }
}
