import Foundation
import LifeboatCore
import LifeboatRepository

/// Where point-in-time recovery stops.
public enum RecoveryTarget: Sendable, Hashable, CustomStringConvertible {
    /// The last transaction committed at or before this time.
    case time(Date)
    /// The end of the archived WAL.
    case latest
    case lsn(LSN)

    public var description: String {
        switch self {
        case .time(let date): "time \(SourceTime.format(date))"
        case .latest: "latest"
        case .lsn(let lsn): "LSN \(lsn)"
        }
    }
}

/// A validated physical restore: which base backup, and how far the WAL must go.
public struct PhysicalRestorePlan: Sendable, Hashable {
    public var base: BaseBackupWindow
    public var target: RecoveryTarget
}

/// What a physical restore did. The server it started is returned beside it, still running.
public struct PhysicalRestoreReport: Sendable, Codable, Hashable {
    public var snapshot: String
    public var dataDirectory: String
    public var target: String
    /// "backup successfully verified" or pg_verifybackup's complaint (the restore stops on one).
    public var verifyBackup: String
    /// The timeline the promoted server writes on (a new one after recovery).
    public var timeline: UInt32
    /// From the server log: the time of the last transaction replayed, when PostgreSQL reported it.
    public var lastReplayedTransaction: String?
    public var seconds: Double
}

extension PostgresConnector {
    /// Checks that `target` is covered by a base backup plus an unbroken WAL chain, and picks the
    /// newest base backup that finished at or before it. Names the missing segment when a gap is the reason.
    public func planPhysicalRestore(to target: RecoveryTarget, in repository: Repository) async throws -> PhysicalRestorePlan {
        let window = try await recoveryWindow(in: repository)
        guard !window.bases.isEmpty else {
            throw PostgresError(.notRestorable, "store \(store)", "there is no physical (base) backup of this store; run `lifeboat postgres backup --method physical` first")
        }
        func gap(_ base: BaseBackupWindow) -> String {
            base.missingSegment.map { " The WAL archive has a gap: segment \($0) is missing (the chain from the base backup ends at \(base.lastSegment ?? "its start"))." } ?? ""
        }
        switch target {
        case .latest:
            let base = window.bases.max { ($0.to, $0.from) < ($1.to, $1.from) }!
            return PhysicalRestorePlan(base: base, target: target)
        case .time(let time):
            let candidates = window.bases.filter { $0.from <= time }.sorted { $0.from > $1.from }
            guard let newest = candidates.first else {
                throw PostgresError(.notRestorable, "store \(store)",
                                    "\(SourceTime.format(time)) is before the earliest restorable point \(SourceTime.format(window.earliest!)) (the first base backup's end)")
            }
            if let base = candidates.first(where: { $0.to >= time }) {
                return PhysicalRestorePlan(base: base, target: target)
            }
            if newest.missingSegment != nil {
                throw PostgresError(.missingWAL, "store \(store)",
                                    "cannot restore to \(SourceTime.format(time)): restorable only up to \(SourceTime.format(newest.to)).\(gap(newest))")
            }
            throw PostgresError(.notRestorable, "store \(store)",
                                "\(SourceTime.format(time)) is after the last archived transaction (\(SourceTime.format(newest.to))); restore with --target latest, or wait until the WAL after it is archived")
        case .lsn(let lsn):
            let candidates = window.bases.filter { LSN($0.endLSN).map { $0 <= lsn } ?? false }.sorted { $0.from > $1.from }
            guard let base = candidates.first else {
                throw PostgresError(.notRestorable, "store \(store)", "LSN \(lsn) is before the end of every base backup")
            }
            let segmentSize = base.walSegmentSize
            if let last = base.lastSegment.flatMap({ WALSegment(name: $0, segmentSize: segmentSize) }),
               lsn.value >= (last.number + 1) * segmentSize {
                throw PostgresError(base.missingSegment == nil ? .notRestorable : .missingWAL, "store \(store)",
                                    "LSN \(lsn) is past the end of the archived WAL (segment \(last.name)).\(gap(base))")
            }
            return PhysicalRestorePlan(base: base, target: target)
        }
    }

    /// Lays the base backup down into `dataDirectory` (absent or empty), checks it with
    /// pg_verifybackup, configures recovery (restore_command through `wal`, the target, promote),
    /// starts the server, waits for recovery to finish and the server to promote, and returns it
    /// running. Archiving is off on the restored server unless `keepArchiving` (a drill must not
    /// push a new timeline into the production archive).
    public func restorePhysical(
        to target: RecoveryTarget, from repository: Repository, dataDirectory: URL, wal: WALCommandLine,
        keepArchiving: Bool = false, recoveryTimeout: TimeInterval = 900
    ) async throws -> (report: PhysicalRestoreReport, server: LocalPostgres) {
        let clock = Date()
        return try await restorePhysical(following: try await planPhysicalRestore(to: target, in: repository), from: repository,
                                         dataDirectory: dataDirectory, wal: wal, keepArchiving: keepArchiving,
                                         recoveryTimeout: recoveryTimeout, started: clock)
    }

    /// `restorePhysical(to:…)` with the plan already made: a caller that checked restorability
    /// before touching anything (the WAL chain is read and pg_waldump run to make it) need not pay twice.
    public func restorePhysical(
        following plan: PhysicalRestorePlan, from repository: Repository, dataDirectory: URL, wal: WALCommandLine,
        keepArchiving: Bool = false, recoveryTimeout: TimeInterval = 900, started clock: Date = Date()
    ) async throws -> (report: PhysicalRestoreReport, server: LocalPostgres) {
        let target = plan.target
        let manifest = try await repository.loadManifest(id: plan.base.snapshot)
        let fileManager = FileManager.default
        try LocalPostgres.createEmptyDirectory(dataDirectory, refusal: "the data directory is not empty; nothing was changed. Restore into a new or empty directory")
        // pg_basebackup's tar, extracted as it streams out of the repository.
        let tar = try StreamingTool(try ExternalTool.locate("tar"), ["-x", "-f", "-", "-C", dataDirectory.path], direction: .writeInput)
        do {
            try await repository.restore(manifest) { try await tar.write($0) }
            try await tar.finish()
        } catch {
            tar.terminate()
            throw error
        }
        // PG15's pg_verifybackup reads plain format only: the extracted tree (WAL included) is that.
        let verify = try await ExternalTool.locate("pg_verifybackup").run([dataDirectory.path])
        let verifyText = (verify.output + verify.stderr).trimmingCharacters(in: .whitespacesAndNewlines)
        guard verify.status == 0 else {
            throw PostgresError(.toolFailed, dataDirectory.path, "pg_verifybackup rejects the restored base backup: \(verifyText)")
        }
        var recovery = """

        # Added by `lifeboat restore postgres` (\(SourceTime.format(Date()))): recover store \(store) to \(target).
        restore_command = \(sqlLiteral(wal.restoreCommand))
        recovery_target_timeline = 'latest'

        """
        switch target {
        case .time(let time):
            recovery += "recovery_target_time = \(sqlLiteral(formatPostgresTime(time)))\nrecovery_target_action = 'promote'\n"
        case .lsn(let lsn):
            recovery += "recovery_target_lsn = \(sqlLiteral(lsn.description))\nrecovery_target_action = 'promote'\n"
        case .latest:
            break
        }
        let autoConf = dataDirectory.appendingPathComponent("postgresql.auto.conf")
        let handle = try FileHandle(forWritingTo: autoConf)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(recovery.utf8))
        try handle.close()
        guard fileManager.createFile(atPath: dataDirectory.appendingPathComponent("recovery.signal").path, contents: Data()) else {
            throw PostgresError(.toolFailed, dataDirectory.path, "cannot create recovery.signal")
        }
        var settings: [String: String] = [:]
        if !keepArchiving { settings["archive_mode"] = "off" }
        let server = try await LocalPostgres.start(existing: dataDirectory, settings: settings, readyTimeout: recoveryTimeout)
        do {
            try await server.waitForPromotion(timeout: recoveryTimeout)
            let psql = try Psql(server.socketEndpoint)
            let timeline = UInt32(try await psql.value("SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)"), radix: 16) ?? 0
            let log = (try? String(contentsOf: server.logFile, encoding: .utf8)) ?? ""
            let replayed = log.split(separator: "\n").last { $0.contains("last completed transaction was at log time") || $0.contains("recovery stopping") }
                .map { String($0.split(separator: "LOG:  ").last ?? "") }
            return (PhysicalRestoreReport(snapshot: manifest.id, dataDirectory: dataDirectory.path, target: target.description,
                                          verifyBackup: verifyText, timeline: timeline, lastReplayedTransaction: replayed,
                                          seconds: Date().timeIntervalSince(clock)), server)
        } catch {
            await server.stop()
            throw error
        }
    }
}
