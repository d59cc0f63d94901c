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
    /// The `lifeboat` binary that child runs.
    var executable = lifeboatExecutablePath()

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

    func latestInstant(_ store: Store, in repository: Repository) async throws -> Date? {
        try await connector(store).recoveryWindow(in: repository).newest()?.to
    }

    func archiverHealth(_ store: Store) async -> PlatformStatus.ArchiverHealth? {
        do {
            return try await connector(store).archiverHealth()
        } catch {
            return PlatformStatus.ArchiverHealth(error: "\(error)")
        }
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

    func restore(_ request: StoreRestoreRequest) async throws -> any RestoredStore {
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
    /// can run. Stopped means: no live postmaster owns the directory, and the catalog's address
    /// refuses connections; anything less certain (a name that does not resolve, a timeout) refuses.
    func physicalGuards(_ request: StoreRestoreRequest, connector: PostgresConnector, force: Bool) async -> (problems: [String], plan: PhysicalRestorePlan?) {
        guard case .postgres(let connection)? = request.store.connection, let path = connection.dataDirectory else {
            return ([Self.noDataDirectory(request.store.name)], nil)
        }
        var problems: [String] = []
        if pidFileNamesALiveProcess(path + "/postmaster.pid") {
            problems.append("a PostgreSQL server still runs on \(path) (its postmaster.pid names a live process): stop it before its data directory is replaced; nothing was changed")
        }
        let probe = connection.host.hasPrefix("/")
            ? probeUnixSocket("\(connection.host)/.s.PGSQL.\(connection.port)")
            : probeTCPEndpoint(host: connection.host, port: connection.port)
        switch probe {
        case .refused: break
        case .accepts:
            problems.append("PostgreSQL still answers at \(connection.host):\(connection.port): stop it before its data directory \(path) is replaced; nothing was changed")
        case .unknown(let why):
            problems.append("cannot tell whether PostgreSQL at \(connection.host):\(connection.port) is stopped (\(why)), so its data directory \(path) is left alone; nothing was changed")
        }
        if !force, let entries = try? FileManager.default.contentsOfDirectory(atPath: path), !entries.isEmpty {
            problems.append("the data directory \(path) is not empty; nothing was changed. With --force it is moved aside (to \(URL(fileURLWithPath: setAsidePath(for: path)).lastPathComponent)), never deleted")
        }
        // The point in time must be covered by a base backup and WAL, checked before anything moves.
        var plan: PhysicalRestorePlan?
        do {
            plan = try await connector.planPhysicalRestore(to: .time(request.targetTime ?? request.snapshot.sourceTime), in: request.repository)
        } catch {
            problems.append("\(error)")
        }
        return (problems, plan)
    }

    func preflight(_ request: StoreRestoreRequest) async -> [String] {
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

    static func noDataDirectory(_ store: String) -> String {
        "a physical restore lays the base backup into a data directory, and store '\(store)' names none: set its connection.data_directory, or run `lifeboat restore postgres --store \(store) --data-dir …` by hand and resume after this step"
    }

    /// A physical production restore: the catalog's data directory is rebuilt from the base backup
    /// and archived WAL while the production server is down. Lifeboat runs the recovery itself (so
    /// the gate runs before anyone connects) and shuts the server down cleanly afterwards: the
    /// directory is handed over to the service manager that owns PostgreSQL.
    func restoreInPlace(_ request: StoreRestoreRequest, connector: PostgresConnector, force: Bool) async throws -> any RestoredStore {
        guard case .postgres(let connection)? = request.store.connection, let path = connection.dataDirectory else {
            throw EngineError(.invalidArgument, Self.noDataDirectory(request.store.name))
        }
        let (problems, plan) = await physicalGuards(request, connector: connector, force: force)
        guard problems.isEmpty, let plan else { throw EngineError(.invalidArgument, problems.joined(separator: "; ")) }
        let data = URL(fileURLWithPath: path, isDirectory: true)
        let fileManager = FileManager.default
        var setAside: URL?
        if let entries = try? fileManager.contentsOfDirectory(atPath: path), !entries.isEmpty {
            let aside = URL(fileURLWithPath: setAsidePath(for: path), isDirectory: true)
            try fileManager.moveItem(at: data, to: aside)
            setAside = aside
        }
        let server: LocalPostgres
        do {
            let wal = WALCommandLine(executable: executable, repositoryArguments: repositoryArguments, store: request.store.name)
            (_, server) = try await connector.restorePhysical(following: plan, from: request.repository, dataDirectory: data, wal: wal)
        } catch {
            // Put the old directory back: a failed restore leaves the target as it found it.
            if let setAside {
                do {
                    if fileManager.fileExists(atPath: data.path) { try fileManager.removeItem(at: data) }
                    try fileManager.moveItem(at: setAside, to: data)
                } catch let putBack {
                    throw EngineError(.invalidArgument, "\(error); and the previous data directory could not be put back (\(putBack)): it is intact at \(setAside.path)")
                }
            }
            throw error
        }
        do {
            // The promotion started a new timeline; its history goes into the archive now.
            try await connector.archiveTimelineHistories(of: data, into: request.repository)
        } catch {
            await server.stop(grace: 600)
            throw EngineError(.invalidArgument, "restored into \(path), but its new timeline's history could not be archived: \(error)")
        }
        return RestoredPostgres(endpoint: server.socketEndpoint, server: server, handedOver: true)
    }
}

/// A PostgreSQL after its restore; a server Lifeboat started (a drill's scratch server, or the
/// recovery of a production data directory) is stopped on release.
struct RestoredPostgres: RestoredStore {
    let endpoint: PostgresEndpoint
    let server: LocalPostgres?
    /// A production data directory recovered by Lifeboat: after the gate it is shut down for the service manager.
    var handedOver = false

    var target: String {
        guard let server else { return endpoint.description }
        return handedOver
            ? "data directory \(server.dataDirectory.path), recovered and checked, then shut down cleanly: start PostgreSQL on it"
            : "PostgreSQL on 127.0.0.1:\(server.port) (\(server.dataDirectory.path))"
    }

    func check(_ checks: [VerifyCheck]) async throws -> [CheckResult] {
        try await PostgresConnector.runChecks(checks, against: endpoint)
    }

    /// A handed-over directory waits up to an hour for its shutdown checkpoint: a killed
    /// server would hand over a directory that needs crash recovery.
    func release() async { await server?.stop(grace: handedOver ? 3600 : 30) }
}
