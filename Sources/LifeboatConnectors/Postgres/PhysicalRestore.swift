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

/// A validated physical restore: which base backup, along which timeline, and where recovery stops.
public struct PhysicalRestorePlan: Sendable, Hashable {
    public var base: BaseBackupWindow
    public var target: RecoveryTarget
    public var stop: RecoveryStop
    /// The time the restored data reflects (nil for an LSN target).
    public var dataTime: Date?
    /// What the archive holds that this restore will not bring back, in words (nil: nothing).
    public var leftBehind: String?
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
    /// The timeline recovery followed (`recovery_target_timeline`).
    public var recoveredAlong: UInt32
    /// Where recovery was told to stop.
    public var stop: RecoveryStop
    /// The time the restored data reflects (nil for an LSN target).
    public var dataTime: Date?
    /// Archived data the restore did not bring back, in words.
    public var leftBehind: String?
}

extension PostgresConnector {
    /// Checks that `target` is reached by a base backup plus an unbroken WAL chain (along `timeline`
    /// when given, else along the timeline that was current at the target time), and picks the newest
    /// base backup that finished at or before it. Names the missing segment when a gap is the reason.
    public func planPhysicalRestore(to target: RecoveryTarget, timeline: UInt32? = nil, in repository: Repository) async throws -> PhysicalRestorePlan {
        let window = try await recoveryWindow(in: repository)
        guard !window.bases.isEmpty else {
            throw PostgresError(.notRestorable, "store \(store)", "there is no physical (base) backup of this store; run `lifeboat postgres backup --method physical` first")
        }
        let onTimeline = timeline.map { " on timeline \($0)" } ?? ""
        if let timeline, !window.bases.contains(where: { $0.recoveryTimeline == timeline }) {
            let known = window.timelines.map { String($0.timeline) }.joined(separator: ", ")
            throw PostgresError(.notRestorable, "store \(store)", "no base backup reaches timeline \(timeline) (timelines in the archive: \(known))")
        }
        func gap(_ base: BaseBackupWindow) -> String {
            base.missingSegment.map { " The WAL archive has a gap: segment \($0) is missing (the chain from the base backup ends at \(base.lastSegment ?? "its start"))." } ?? ""
        }
        func plan(_ base: BaseBackupWindow, _ stop: RecoveryStop, _ dataTime: Date?) -> PhysicalRestorePlan {
            // What newer archived data exists that this plan does not restore.
            var behind: [String] = []
            if let newest = window.newest(), newest.to > (dataTime ?? .distantFuture) {
                behind.append("archived transactions up to \(SourceTime.format(newest.to)) on timeline \(newest.recoveryTimeline)")
            }
            if let missing = base.missingSegment { behind.append("WAL after the gap at segment \(missing)") }
            return PhysicalRestorePlan(base: base, target: target, stop: stop, dataTime: dataTime,
                                       leftBehind: behind.isEmpty ? nil : behind.joined(separator: "; "))
        }
        switch target {
        case .latest:
            let base = window.newest(timeline: timeline)!
            return plan(base, .endOfChain, base.to)
        case .time(let time):
            if let base = window.window(for: time, timeline: timeline) {
                return plan(base, base.stop(for: time), time)
            }
            let candidates = window.bases.filter { (timeline == nil || $0.recoveryTimeline == timeline) }
            guard let earliest = candidates.map(\.from).min(), earliest <= time else {
                throw PostgresError(.notRestorable, "store \(store)",
                                    "\(SourceTime.format(time)) is before the earliest restorable point\(onTimeline) \(SourceTime.format(candidates.map(\.from).min()!)) (the first base backup's end)")
            }
            // The window that ends last before the target: a gap, or the end of the archive.
            let before = candidates.filter { $0.from <= time }.max { $0.to < $1.to }!
            if before.missingSegment != nil {
                throw PostgresError(.missingWAL, "store \(store)",
                                    "cannot restore to \(SourceTime.format(time))\(onTimeline): restorable only up to \(SourceTime.format(before.to)).\(gap(before))")
            }
            if let later = candidates.filter({ $0.from > time }).min(by: { $0.from < $1.from }) {
                throw PostgresError(.notRestorable, "store \(store)",
                                    "\(SourceTime.format(time)) is not reached by the archive: timeline \(before.recoveryTimeline) has no archived transaction after \(SourceTime.format(before.to)), and timeline \(later.recoveryTimeline) begins at \(SourceTime.format(later.from)). Restore to \(SourceTime.format(before.to)) or to \(SourceTime.format(later.from)) or later")
            }
            throw PostgresError(.notRestorable, "store \(store)",
                                "\(SourceTime.format(time)) is after the last archived transaction\(onTimeline) (\(SourceTime.format(before.to))): the archive holds nothing newer. Restore to the end of the archived WAL with --time latest (it reflects \(SourceTime.format(before.to))), or wait until PostgreSQL archives the WAL that covers \(SourceTime.format(time)) (a segment is archived when it fills, or after archive_timeout)")
        case .lsn(let lsn):
            let candidates = window.bases.filter { LSN($0.endLSN).map { $0 <= lsn } ?? false }
                .filter { timeline == nil || $0.recoveryTimeline == timeline }
                .sorted { ($0.baseFinished, $0.recoveryTimeline) > ($1.baseFinished, $1.recoveryTimeline) }
            guard let base = candidates.first else {
                throw PostgresError(.notRestorable, "store \(store)", "LSN \(lsn) is before the end of every base backup\(onTimeline)")
            }
            let segmentSize = base.walSegmentSize
            if let last = base.lastSegment.flatMap({ WALSegment(name: $0, segmentSize: segmentSize) }),
               lsn.value >= (last.number + 1) * segmentSize {
                throw PostgresError(base.missingSegment == nil ? .notRestorable : .missingWAL, "store \(store)",
                                    "LSN \(lsn) is past the end of the archived WAL (segment \(last.name)).\(gap(base))")
            }
            return plan(base, .lsn(lsn.description), nil)
        }
    }

    /// Lays the base backup down into `dataDirectory` (absent or empty), checks it with
    /// pg_verifybackup, recovers it (restore_command through `wal`, along the plan's timeline, to the
    /// plan's stop, then promote), and returns the server running. Archiving is off on the restored
    /// server, also for later starts of the directory, unless `keepArchiving` (only the production
    /// restore of the store's own data directory keeps the server's archiving). A restore that fails
    /// leaves the directory as it found it: removed if it was absent, emptied if it was empty.
    public func restorePhysical(
        to target: RecoveryTarget, timeline: UInt32? = nil, from repository: Repository, dataDirectory: URL, wal: WALCommandLine,
        keepArchiving: Bool = false, recoveryTimeout: TimeInterval = 900
    ) async throws -> (report: PhysicalRestoreReport, server: LocalPostgres) {
        let clock = Date()
        return try await restorePhysical(following: try await planPhysicalRestore(to: target, timeline: timeline, in: repository), from: repository,
                                         dataDirectory: dataDirectory, wal: wal, keepArchiving: keepArchiving,
                                         recoveryTimeout: recoveryTimeout, started: clock)
    }

    /// `restorePhysical(to:…)` with the plan already made: a caller that checked restorability
    /// before touching anything (the WAL chain is read and pg_waldump run to make it) need not pay twice.
    public func restorePhysical(
        following plan: PhysicalRestorePlan, from repository: Repository, dataDirectory: URL, wal: WALCommandLine,
        keepArchiving: Bool = false, recoveryTimeout: TimeInterval = 900, started clock: Date = Date()
    ) async throws -> (report: PhysicalRestoreReport, server: LocalPostgres) {
        let manifest = try await repository.loadManifest(id: plan.base.snapshot)
        let fileManager = FileManager.default
        let existed = fileManager.fileExists(atPath: dataDirectory.path)
        try LocalPostgres.createEmptyDirectory(dataDirectory, refusal: "the data directory is not empty; nothing was changed. Restore into a new or empty directory")
        var server: LocalPostgres?
        do {
            let verifyText = try await layDown(manifest, from: repository, into: dataDirectory)
            // Recovery settings go on the command line of this one recovery run, never into a file: a
            // target left in postgresql.auto.conf would outlive the promotion and travel into every
            // later base backup of the server. Settings a base backup carries from an earlier restore go.
            try Self.removeInheritedRecoverySettings(in: dataDirectory, keepArchiving: keepArchiving)
            guard fileManager.createFile(atPath: dataDirectory.appendingPathComponent("recovery.signal").path, contents: Data()) else {
                throw PostgresError(.toolFailed, dataDirectory.path, "cannot create recovery.signal")
            }
            var settings = Self.recoverySettings(plan, restoreCommand: wal.restoreCommand(through: plan.base.lastSegment))
            if !keepArchiving { settings["archive_mode"] = "off" }
            let started = try await LocalPostgres.start(existing: dataDirectory, settings: settings, readyTimeout: recoveryTimeout)
            server = started
            try await started.waitForPromotion(timeout: recoveryTimeout)
            let psql = try Psql(started.socketEndpoint)
            let timeline = UInt32(try await psql.value("SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)"), radix: 16) ?? 0
            try checkReachedPlannedEnd(plan, dataDirectory: dataDirectory, newTimeline: timeline)
            let log = (try? String(contentsOf: started.logFile, encoding: .utf8)) ?? ""
            let replayed = log.split(separator: "\n").last { $0.contains("last completed transaction was at log time") || $0.contains("recovery stopping") }
                .map { String($0.split(separator: "LOG:  ").last ?? "") }
            return (PhysicalRestoreReport(snapshot: manifest.id, dataDirectory: dataDirectory.path, target: plan.target.description,
                                          verifyBackup: verifyText, timeline: timeline, lastReplayedTransaction: replayed,
                                          seconds: Date().timeIntervalSince(clock), recoveredAlong: plan.base.recoveryTimeline,
                                          stop: plan.stop, dataTime: plan.dataTime, leftBehind: plan.leftBehind), started)
        } catch {
            await server?.stop()
            Self.putBackAsFound(dataDirectory, existed: existed)
            throw error
        }
    }

    /// Archives the `.history` files of a promoted data directory, as the server's own archiver
    /// would: the next recovery (or promotion) must see the new timeline to follow it and not to
    /// reuse its id. Run after a production restore, whose recovery ran with archiving off.
    public func archiveTimelineHistories(of dataDirectory: URL, into repository: Repository) async throws {
        let walDirectory = dataDirectory.appendingPathComponent("pg_wal")
        for name in try FileManager.default.contentsOfDirectory(atPath: walDirectory.path).sorted() where name.hasSuffix(".history") {
            _ = try await repository.pushWAL(store: store, name: name, contents: try Data(contentsOf: walDirectory.appendingPathComponent(name)))
        }
    }

    /// After promotion: recovery must have replayed the WAL the plan counted on. Recovery to the end
    /// of the chain would otherwise promote quietly at a segment that vanished after planning and hand
    /// back older data; the new timeline's history file says where recovery switched.
    func checkReachedPlannedEnd(_ plan: PhysicalRestorePlan, dataDirectory: URL, newTimeline: UInt32) throws {
        guard case .endOfChain = plan.stop, let last = plan.base.lastSegment.flatMap({ WALSegment(name: $0, segmentSize: plan.base.walSegmentSize) }),
              let end = LSN(plan.base.endLSN), last.startLSN > end else { return }
        let file = dataDirectory.appendingPathComponent("pg_wal/\(hex8(UInt64(newTimeline))).history")
        guard let text = try? String(contentsOf: file, encoding: .utf8),
              let history = TimelineHistory(timeline: newTimeline, text: text), let switched = history.entries.last?.switchPoint else {
            throw PostgresError(.recoveryFailed, dataDirectory.path, "cannot tell where recovery ended: no history file for timeline \(newTimeline)")
        }
        guard switched >= last.startLSN else {
            throw PostgresError(.missingWAL, dataDirectory.path,
                                "recovery ended at \(switched), before the planned end of the archived WAL (segment \(last.name)): a segment went missing from the archive during the restore; the directory is left as it was found")
        }
    }

    /// Streams the base backup out of the repository into `directory` and checks it with
    /// pg_verifybackup; returns what pg_verifybackup said.
    func layDown(_ manifest: SnapshotManifest, from repository: Repository, into directory: URL) async throws -> String {
        // pg_basebackup's tar, extracted as it streams out of the repository.
        let tar = try StreamingTool(try ExternalTool.locate("tar"), ["-x", "-f", "-", "-C", directory.path], direction: .writeInput)
        do {
            try await repository.restore(manifest) { try await tar.write($0) }
            try await tar.finish()
        } catch {
            tar.terminate()
            throw error
        }
        // PG15's pg_verifybackup reads plain format only: the extracted tree (WAL included) is that.
        let verify = try await ExternalTool.locate("pg_verifybackup").run([directory.path])
        let verifyText = (verify.output + verify.stderr).trimmingCharacters(in: .whitespacesAndNewlines)
        guard verify.status == 0 else {
            throw PostgresError(.toolFailed, directory.path, "pg_verifybackup rejects the restored base backup: \(verifyText)")
        }
        return verifyText
    }

    /// The server parameters of the recovery run. Only the one target is set: PostgreSQL refuses a
    /// second target parameter even when it is empty, once another has been assigned.
    static func recoverySettings(_ plan: PhysicalRestorePlan, restoreCommand: String) -> [String: String] {
        var settings = [
            "restore_command": restoreCommand,
            "recovery_target_timeline": String(plan.base.recoveryTimeline),
            "recovery_target_action": "promote",
        ]
        switch plan.stop {
        case .immediate: settings["recovery_target"] = "immediate"
        case .time(let time): settings["recovery_target_time"] = formatPostgresTime(time)
        case .lsn(let lsn): settings["recovery_target_lsn"] = lsn
        case .endOfChain: break
        }
        return settings
    }

    /// The parameters a restore must not inherit from the base backup's postgresql.auto.conf.
    static let recoveryParameters: Set<String> = [
        "restore_command", "recovery_target", "recovery_target_time", "recovery_target_lsn", "recovery_target_xid",
        "recovery_target_name", "recovery_target_inclusive", "recovery_target_timeline", "recovery_target_action",
        "recovery_end_command",
    ]

    /// Rewrites postgresql.auto.conf without recovery parameters (an earlier restore, or an older
    /// Lifeboat, may have left them there, and the base backup carried them). Unless the directory
    /// keeps archiving, turns archiving off there for good: a copy restored for a drill or by hand
    /// must never push WAL into the production store's archive, however it is started later.
    static func removeInheritedRecoverySettings(in directory: URL, keepArchiving: Bool) throws {
        let file = directory.appendingPathComponent("postgresql.auto.conf")
        let text = (try? String(contentsOf: file, encoding: .utf8)) ?? ""
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init).filter { line in
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("# Added by `lifeboat restore postgres`") { return false }
            let name = trimmed.prefix { $0 != "=" && $0 != " " && $0 != "\t" }.lowercased()
            return !recoveryParameters.contains(name) && (keepArchiving || name != "archive_mode")
        }
        while lines.last == "" { lines.removeLast() }
        if !keepArchiving {
            lines += ["# Lifeboat restored this directory as a copy: it must not archive into the production store's archive.",
                      "archive_mode = 'off'"]
        }
        do {
            try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: file)
        } catch {
            throw PostgresError(.toolFailed, file.path, "cannot rewrite postgresql.auto.conf: \(error)")
        }
    }

    /// After a failed restore: the directory as the restore found it (absent, or empty).
    static func putBackAsFound(_ directory: URL, existed: Bool) {
        let fileManager = FileManager.default
        if !existed {
            try? fileManager.removeItem(at: directory)
            return
        }
        for entry in (try? fileManager.contentsOfDirectory(atPath: directory.path)) ?? [] {
            try? fileManager.removeItem(at: directory.appendingPathComponent(entry))
        }
    }
}

extension PostgresConnector {
    /// The server's archiving settings as it runs now: `archive_mode`, `wal_level`, `archive_command`.
    public func archivingSettings() async throws -> (archiveMode: String, walLevel: String, archiveCommand: String) {
        let row = try await Psql(endpoint).rows("SELECT current_setting('archive_mode'), current_setting('wal_level'), current_setting('archive_command')").first ?? []
        guard row.count == 3 else { throw PostgresError(.toolFailed, "\(endpoint)", "the archiving settings could not be read") }
        return (row[0], row[1], row[2])
    }

    /// What is wrong with `settings` for a store whose WAL Lifeboat archives continuously. The
    /// command itself is never quoted back: an operator may have put a secret in it.
    public static func archivingProblems(store: String, _ settings: (archiveMode: String, walLevel: String, archiveCommand: String)) -> [String] {
        var problems: [String] = []
        if !["on", "always"].contains(settings.archiveMode) {
            problems.append("archive_mode is '\(settings.archiveMode)': the catalog's `continuous` cadence needs WAL archiving on (ALTER SYSTEM SET archive_mode = 'on', then restart)")
        }
        if !["replica", "logical"].contains(settings.walLevel) {
            problems.append("wal_level is '\(settings.walLevel)': archived WAL can restore nothing below 'replica'")
        }
        if !pushesInto(store: store, settings.archiveCommand) {
            problems.append("archive_command does not run `lifeboat postgres wal-push --store \(store)`: WAL goes elsewhere or nowhere, and point-in-time recovery stops at the last segment that arrived")
        }
        return problems
    }

    /// Whether `command` runs wal-push for `store` (`--store NAME`, `--store=NAME`, quoted or not).
    static func pushesInto(store: String, _ command: String) -> Bool {
        let words = command.split(whereSeparator: { $0 == " " || $0 == "\t" }).map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "'\"")) }
        guard words.contains("wal-push") else { return false }
        for (index, word) in words.enumerated() {
            if word.hasPrefix("--store="), word.dropFirst("--store=".count).trimmingCharacters(in: CharacterSet(charactersIn: "'\"")) == store { return true }
            if word == "--store", index + 1 < words.count, words[index + 1] == store { return true }
        }
        return false
    }

    /// The server's `pg_stat_archiver`: how many WAL files it archived and failed to, and the last of each.
    public func archiverHealth() async throws -> PlatformStatus.ArchiverHealth {
        let stamp = "to_char(%@ AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
        let row = try await Psql(endpoint).rows("""
            SELECT archived_count, coalesce(last_archived_wal, ''), coalesce(\(stamp.replacingOccurrences(of: "%@", with: "last_archived_time")), ''),
                   failed_count, coalesce(last_failed_wal, ''), coalesce(\(stamp.replacingOccurrences(of: "%@", with: "last_failed_time")), '')
            FROM pg_stat_archiver
            """).first ?? []
        guard row.count == 6 else { throw PostgresError(.toolFailed, "\(endpoint)", "pg_stat_archiver answered \(row)") }
        func text(_ value: String) -> String? { value.isEmpty ? nil : value }
        return PlatformStatus.ArchiverHealth(archivedCount: Int(row[0]), lastArchivedWAL: text(row[1]), lastArchivedTime: SourceTime.parse(row[2]),
                                             failedCount: Int(row[3]), lastFailedWAL: text(row[4]), lastFailedTime: SourceTime.parse(row[5]))
    }
}
