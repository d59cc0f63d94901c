import Foundation
import LifeboatConnectors
import LifeboatCore
import LifeboatEngine
import LifeboatRepository

/// How a PostgreSQL that Lifeboat started for a restore is stopped: one policy for every path.
public enum PostgresStopPolicy {
    /// A data directory handed over (production, or `restore postgres --data-dir`) waits up to an
    /// hour for its shutdown checkpoint: a killed server would hand over a directory that needs crash
    /// recovery, the one thing the operator asked not to get.
    public static let handedOver: TimeInterval = 3600
    /// A drill's scratch server is thrown away: 30 s, then SIGKILL.
    public static let scratch: TimeInterval = 30
}

/// The physical restore of a PostgreSQL data directory: written once, run by the ordered restore
/// (production) and by `lifeboat restore postgres --data-dir` alike.
///
/// 1. Guards, all reported at once, before anything moves: no live postmaster owns the directory;
///    when it is the catalog's own data directory, the catalog's address refuses connections (anything
///    less certain refuses); a non-empty directory needs `force`.
/// 2. With `force`, a non-empty directory is moved aside (never deleted), and put back if the
///    restore fails.
/// 3. Base backup laid down, pg_verifybackup, recovery along the plan, promotion.
/// 4. The store's own directory: the new timeline's history goes into the archive (its recovery ran
///    with archiving off), so the next recovery follows it and never reuses its id.
/// 5. The server stays up for the checks; `RestoredPostgres.release()` shuts it down by
///    `PostgresStopPolicy.handedOver`.
public struct PostgresPhysicalRestore: Sendable {
    public var connector: PostgresConnector
    /// The catalog's connection of the store, when known: its data directory and address.
    public var connection: PostgresConnection?
    public var dataDirectory: URL
    public var plan: PhysicalRestorePlan
    public var repository: Repository
    public var wal: WALCommandLine
    public var force: Bool
    public var keepArchiving: Bool

    public init(connector: PostgresConnector, connection: PostgresConnection?, dataDirectory: URL, plan: PhysicalRestorePlan,
                repository: Repository, wal: WALCommandLine, force: Bool, keepArchiving: Bool = false) {
        self.connector = connector
        self.connection = connection
        self.dataDirectory = dataDirectory.standardizedFileURL
        self.plan = plan
        self.repository = repository
        self.wal = wal
        self.force = force
        self.keepArchiving = keepArchiving
    }

    /// Whether the target is the store's own data directory (the catalog's `data_directory`).
    public var isStoreDirectory: Bool {
        guard let configured = connection?.dataDirectory else { return false }
        return URL(fileURLWithPath: configured).standardizedFileURL.path == dataDirectory.path
    }

    /// Every reason the restore refuses, all at once; empty when it can run. Changes nothing.
    public func guards() -> [String] {
        Self.guards(dataDirectory: dataDirectory.path, connection: isStoreDirectory ? connection : nil, force: force)
    }

    /// The guards on `path`; `connection`: the production server whose address must refuse connections.
    public static func guards(dataDirectory path: String, connection: PostgresConnection?, force: Bool) -> [String] {
        var problems: [String] = []
        if pidFileNamesALiveProcess(path + "/postmaster.pid") {
            problems.append("a PostgreSQL server still runs on \(path) (its postmaster.pid names a live process): stop it before its data directory is replaced; nothing was changed")
        }
        if let connection {
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
        }
        if !force, let entries = try? FileManager.default.contentsOfDirectory(atPath: path), !entries.isEmpty {
            problems.append("the data directory \(path) is not empty; nothing was changed. With --force it is moved aside (to \(URL(fileURLWithPath: setAsidePath(for: path)).lastPathComponent)), never deleted")
        }
        return problems
    }

    /// Runs the restore (guards first) and returns the recovered server, still running for the checks.
    public func run() async throws -> RestoredPostgres {
        let problems = guards()
        guard problems.isEmpty else { throw PlatformError(.refused, object: dataDirectory.path, problems.joined(separator: "; ")) }
        let fileManager = FileManager.default
        var setAside: URL?
        if let entries = try? fileManager.contentsOfDirectory(atPath: dataDirectory.path), !entries.isEmpty {
            let aside = URL(fileURLWithPath: setAsidePath(for: dataDirectory.path), isDirectory: true)
            try fileManager.moveItem(at: dataDirectory, to: aside)
            setAside = aside
        }
        let report: PhysicalRestoreReport, server: LocalPostgres
        do {
            (report, server) = try await connector.restorePhysical(following: plan, from: repository, dataDirectory: dataDirectory, wal: wal,
                                                                   keepArchiving: keepArchiving)
        } catch {
            // Put the old directory back: a failed restore leaves the target as it found it.
            if let setAside {
                do {
                    if fileManager.fileExists(atPath: dataDirectory.path) { try fileManager.removeItem(at: dataDirectory) }
                    try fileManager.moveItem(at: setAside, to: dataDirectory)
                } catch let putBack {
                    throw PlatformError(.notPutBack, object: setAside.path,
                                        "\(error); and the previous data directory could not be put back (\(putBack)): it is intact at \(setAside.path)",
                                        underlying: error)
                }
            }
            throw error
        }
        if isStoreDirectory {
            do {
                // The promotion started a new timeline; its history goes into the archive now.
                try await connector.archiveTimelineHistories(of: dataDirectory, into: repository)
            } catch {
                await server.stop(grace: PostgresStopPolicy.handedOver)
                throw PlatformError(.incomplete, object: dataDirectory.path,
                                    "restored into \(dataDirectory.path), but its new timeline's history could not be archived: \(error)", underlying: error)
            }
        }
        return RestoredPostgres(endpoint: server.socketEndpoint, server: server, handedOver: true, report: report)
    }
}

/// A PostgreSQL after its restore; a server Lifeboat started (a drill's scratch server, or the
/// recovery of a data directory) is stopped on release, by `PostgresStopPolicy`.
public struct RestoredPostgres: RestoredStore {
    public let endpoint: PostgresEndpoint
    public let server: LocalPostgres?
    /// A data directory recovered by Lifeboat: after the checks it is shut down for its owner to start.
    public var handedOver = false
    /// The physical restore's report, when it was one.
    public var report: PhysicalRestoreReport?

    public var target: String {
        guard let server else { return endpoint.description }
        return handedOver
            ? "data directory \(server.dataDirectory.path), recovered and checked, then shut down cleanly: start PostgreSQL on it"
            : "PostgreSQL on 127.0.0.1:\(server.port) (\(server.dataDirectory.path))"
    }

    public func check(_ checks: [VerifyCheck]) async throws -> [CheckResult] {
        try await PostgresConnector.runChecks(checks, against: endpoint)
    }

    public func release() async { await server?.stop(grace: handedOver ? PostgresStopPolicy.handedOver : PostgresStopPolicy.scratch) }
}
