import Foundation
import LifeboatCore
import LifeboatRepository

/// How PostgreSQL runs Lifeboat to archive and fetch WAL: the binary and the repository flags.
/// PostgreSQL runs these through `sh` as its own OS user, which must be able to execute the
/// binary and read the repository and passphrase file (and write the repository, for wal-push).
public struct WALCommandLine: Sendable, Hashable {
    public var executable: String
    /// `--repo … --password-file …` or `--catalog …`: how the child finds and opens the repository.
    public var repositoryArguments: [String]
    public var store: String

    public init(executable: String, repositoryArguments: [String], store: String) {
        self.executable = executable
        self.repositoryArguments = repositoryArguments
        self.store = store
    }

    /// The `archive_command` value.
    public var archiveCommand: String { command("wal-push") + " %p" }
    /// The `restore_command` value.
    public var restoreCommand: String { restoreCommand(through: nil) }

    /// The `restore_command` of a restore whose end of WAL was planned: segments after `last` are
    /// answered "not archived", so WAL archived while the restore runs cannot carry it past its plan.
    public func restoreCommand(through last: String?) -> String {
        command("wal-fetch", last.map { ["--through", $0] } ?? []) + " %f %p"
    }

    private func command(_ verb: String, _ options: [String] = []) -> String {
        // `%` is PostgreSQL's escape in these settings: a literal one is `%%`.
        ([executable, "postgres", verb, "--store", store] + options + repositoryArguments)
            .map { shellQuote($0).replacingOccurrences(of: "%", with: "%%") }.joined(separator: " ")
    }
}

/// One base backup followed along one timeline, and how far its archived WAL reaches.
///
/// A base backup has one window per timeline its WAL can follow: its own, and every later timeline
/// a restore branched off it (those windows begin when that timeline began). Every instant in
/// `from…to` is one a restore reaches: the base backup's own point (`recovery_target = 'immediate'`),
/// a time before a later archived commit (`recovery_target_time`), or, from the last archived
/// commit on, the end of the archived chain.
public struct BaseBackupWindow: Sendable, Codable, Hashable {
    public var snapshot: String
    /// The timeline the base backup was taken on.
    public var timeline: UInt32
    public var startLSN: String
    public var endLSN: String
    /// The earliest restorable instant on this path: when the base backup finished, or when
    /// `recoveryTimeline` began if that is later.
    public var from: Date
    /// The latest: the last transaction in the unbroken chain (`from` when none is later).
    public var to: Date
    /// When the base backup finished: its own, always reachable, consistency point.
    public var baseFinished: Date
    /// The last COMMIT/ABORT time in the chain, when there is one after the base backup.
    public var lastTransaction: Date?
    /// The last segment of the unbroken chain.
    public var lastSegment: String?
    /// The segment whose absence ends the chain while newer WAL exists: a gap.
    public var missingSegment: String?
    /// The timeline this window follows (`recovery_target_timeline`).
    public var recoveryTimeline: UInt32
    /// When `recoveryTimeline` began (its history file was archived); nil for the base's own timeline.
    public var timelineBegan: Date?
    public var walSegmentSize: UInt64

    /// Whether a restore along this window reaches `time`.
    public func covers(_ time: Date) -> Bool { from <= time && time <= to }

    /// How recovery stops to reflect `time` (which this window covers).
    public func stop(for time: Date) -> RecoveryStop {
        if timelineBegan == nil, time <= baseFinished { return .immediate }
        if let lastTransaction, lastTransaction > time { return .time(time) }
        return .endOfChain
    }
}

/// How a planned recovery ends.
public enum RecoveryStop: Sendable, Hashable, Codable {
    /// At the base backup's consistency point.
    case immediate
    /// Before the first transaction committed after this time (one exists in the chain).
    case time(Date)
    case lsn(String)
    /// At the end of the planned chain of archived WAL.
    case endOfChain
}

/// The times a store's PostgreSQL can be restored to: from its base backups plus archived WAL.
public struct RecoveryWindow: Sendable, Codable, Hashable {
    public var store: String
    public var earliest: Date?
    public var latest: Date?
    /// Per base backup and timeline, oldest first; windows may overlap or leave gaps.
    public var bases: [BaseBackupWindow]
    public var archivedFiles: Int

    /// Whether `time` lies within some window (on `timeline`, when given).
    public func covers(_ time: Date, timeline: UInt32? = nil) -> Bool {
        bases.contains { $0.covers(time) && (timeline == nil || $0.recoveryTimeline == timeline) }
    }

    /// Per timeline: the span of instants some base backup reaches along it.
    public var timelines: [(timeline: UInt32, from: Date, to: Date)] {
        Dictionary(grouping: bases, by: \.recoveryTimeline).map { timeline, windows in
            (timeline, windows.map(\.from).min()!, windows.map(\.to).max()!)
        }.sorted { $0.timeline < $1.timeline }
    }

    /// The window a restore to `time` follows: among those that reach it, the one on the timeline
    /// that was current then (the latest to begin), and on it the newest base backup (least WAL to replay).
    public func window(for time: Date, timeline: UInt32? = nil) -> BaseBackupWindow? {
        bases.filter { $0.covers(time) && (timeline == nil || $0.recoveryTimeline == timeline) }
            .max { ($0.timelineBegan ?? .distantPast, $0.baseFinished) < ($1.timelineBegan ?? .distantPast, $1.baseFinished) }
    }

    /// The window that reaches the newest data (on `timeline`, when given).
    public func newest(timeline: UInt32? = nil) -> BaseBackupWindow? {
        bases.filter { timeline == nil || $0.recoveryTimeline == timeline }
            .max { ($0.to, $0.timelineBegan ?? .distantPast, $0.baseFinished) < ($1.to, $1.timelineBegan ?? .distantPast, $1.baseFinished) }
    }
}

extension PostgresConnector {
    /// The archive's `.history` files, parsed, with when each was archived (when its timeline began).
    func timelineHistories(_ repository: Repository, archived: [WALObject]) async throws -> [(history: TimelineHistory, archived: Date)] {
        var histories: [(TimelineHistory, Date)] = []
        for object in archived where object.name.hasSuffix(".history") {
            guard let timeline = UInt32(object.name.prefix(8), radix: 16),
                  let data = try await repository.fetchWAL(store: store, name: object.name),
                  let history = TimelineHistory(timeline: timeline, text: String(decoding: data, as: UTF8.self)) else { continue }
            histories.append((history, object.archived))
        }
        return histories
    }

    /// Base backups with their WAL chains and restorable windows, one per timeline each can follow
    /// (reads the last segments of each chain with pg_waldump to find its last transaction time).
    public func recoveryWindow(in repository: Repository) async throws -> RecoveryWindow {
        let bases = try await backups(in: repository, method: .physical)
        let archived = try await repository.listWAL(store: store)
        let names = Set(archived.map(\.name))
        let histories = try await timelineHistories(repository, archived: archived)
        var windows: [BaseBackupWindow] = []
        for base in bases {
            windows += try await self.windows(of: base, archived: names, histories: histories, repository: repository)
        }
        return RecoveryWindow(store: store, earliest: windows.map(\.from).min(), latest: windows.map(\.to).max(), bases: windows,
                              archivedFiles: archived.count)
    }

    func windows(of base: SnapshotManifest, archived: Set<String>, histories: [(history: TimelineHistory, archived: Date)],
                 repository: Repository) async throws -> [BaseBackupWindow] {
        let facts = PostgresFacts(base)
        guard let start = facts.startLSN, let end = facts.endLSN, let timeline = facts.timeline, let finished = facts.sourceTime else { return [] }
        let segmentSize = facts.walSegmentSize ?? (16 << 20)
        // The base's own timeline, then every later timeline that branched off it after the backup started.
        let own = histories.first { $0.history.timeline == timeline }?.history ?? TimelineHistory(timeline: timeline)
        var paths: [(history: TimelineHistory, began: Date?)] = [(own, nil)]
        for entry in histories where entry.history.timeline > timeline && entry.history.contains(timeline: timeline, at: start) {
            paths.append((entry.history, entry.archived))
        }
        var windows: [BaseBackupWindow] = []
        for path in paths.sorted(by: { $0.history.timeline < $1.history.timeline }) {
            let chain = WALChain.walk(archived: archived, history: path.history, start: start, includedThrough: end, segmentSize: segmentSize)
            let last = try await lastTransactionTime(in: chain, archived: archived, repository: repository)
            let from = max(finished, path.began ?? finished)
            let lastTransaction = last.flatMap { $0 > finished ? $0 : nil }
            windows.append(BaseBackupWindow(
                snapshot: base.id, timeline: timeline, startLSN: start.description, endLSN: end.description,
                from: from, to: max(from, lastTransaction ?? from), baseFinished: finished, lastTransaction: lastTransaction,
                lastSegment: chain.last?.name, missingSegment: chain.missing?.name, recoveryTimeline: path.history.timeline,
                timelineBegan: path.began, walSegmentSize: segmentSize))
        }
        return windows
    }

    /// The last COMMIT or ABORT time in the chain's archived segments, walking back from its last (at most 32 segments).
    func lastTransactionTime(in chain: WALChain, archived: Set<String>, repository: Repository) async throws -> Date? {
        guard let last = chain.last else { return nil }
        let waldump = try ExternalTool.locate("pg_waldump")
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("lifeboat-waldump-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        var number = last.number
        while number >= chain.first.number, last.number - number < 32 {
            defer { number = number == 0 ? 0 : number - 1 }
            let segment = WALSegment(timeline: chain.history.timeline(forSegment: number, segmentSize: last.segmentSize),
                                     number: number, segmentSize: last.segmentSize)
            if archived.contains(segment.name), let data = try await repository.fetchWAL(store: store, name: segment.name) {
                let file = scratch.appendingPathComponent(segment.name)
                try data.write(to: file)
                defer { try? FileManager.default.removeItem(at: file) }
                // pg_waldump stops with an error at the end of valid WAL; what it printed before counts.
                let run = try await waldump.run(["--rmgr=Transaction", file.path], environment: ["TZ": "UTC"])
                if let time = Self.lastTransactionTime(inWaldump: run.output) { return time }
            }
            if number == 0 { break }
        }
        return nil
    }

    /// The time of the last `COMMIT`/`ABORT` record in pg_waldump output (`desc: COMMIT 2026-11-23 00:22:01.378669 UTC`).
    static func lastTransactionTime(inWaldump output: String) -> Date? {
        var latest: Date?
        for line in output.split(separator: "\n") {
            for keyword in ["desc: COMMIT ", "desc: ABORT "] {
                guard let range = line.range(of: keyword) else { continue }
                let rest = line[range.upperBound...]
                let stamp = rest.prefix { $0 != ";" }
                if let date = parsePostgresTime(String(stamp)), latest.map({ date > $0 }) ?? true { latest = date }
            }
        }
        return latest
    }
}

/// What WAL retention removed (or, in a dry run, would remove).
public struct WALPruneReport: Sendable, Codable, Hashable {
    public var store: String
    public var dryRun: Bool
    /// The oldest segment a base backup of the store still needs (nil: no base backup, nothing removed).
    public var oldestNeeded: String?
    public var removed: [String]
    public var kept: Int
}

extension PostgresConnector {
    /// Removes archived WAL that no remaining base backup of the store can use: segments (and
    /// `.partial`/`.backup` files) numbered before the oldest base backup's start segment, on any
    /// timeline. Timeline `.history` files are always kept. With no base backup, nothing is removed.
    /// Run it after `prune` has removed old base backups.
    public func pruneWAL(in repository: Repository, dryRun: Bool = false) async throws -> WALPruneReport {
        let bases = try await backups(in: repository, method: .physical)
        let archived = try await repository.listWAL(store: store)
        let oldest = bases.compactMap { base -> WALSegment? in
            let facts = PostgresFacts(base)
            guard let start = facts.startLSN, let timeline = facts.timeline else { return nil }
            let size = facts.walSegmentSize ?? (16 << 20)
            return WALSegment(timeline: timeline, containing: start, segmentSize: size)
        }.min { $0.number < $1.number }
        guard let oldest, bases.count > 0 else {
            return WALPruneReport(store: store, dryRun: dryRun, oldestNeeded: nil, removed: [], kept: archived.count)
        }
        var removed: [String] = []
        for file in archived where !file.name.hasSuffix(".history") {
            guard let segment = WALSegment(name: String(file.name.prefix(24)), segmentSize: oldest.segmentSize),
                  segment.number < oldest.number else { continue }
            if !dryRun { try await repository.deleteWAL(store: store, name: file.name) }
            removed.append(file.name)
        }
        return WALPruneReport(store: store, dryRun: dryRun, oldestNeeded: oldest.name, removed: removed, kept: archived.count - removed.count)
    }
}
