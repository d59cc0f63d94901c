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
    public var restoreCommand: String { command("wal-fetch") + " %f %p" }

    private func command(_ verb: String) -> String {
        // `%` is PostgreSQL's escape in these settings: a literal one is `%%`.
        ([executable, "postgres", verb, "--store", store] + repositoryArguments)
            .map { shellQuote($0).replacingOccurrences(of: "%", with: "%%") }.joined(separator: " ")
    }
}

/// One base backup and how far its archived WAL reaches.
public struct BaseBackupWindow: Sendable, Codable, Hashable {
    public var snapshot: String
    public var timeline: UInt32
    public var startLSN: String
    public var endLSN: String
    /// The earliest restorable time with this base backup: when it finished.
    public var from: Date
    /// The latest: the last transaction time in the unbroken WAL chain after it (`from` when none).
    public var to: Date
    /// The last segment of the unbroken chain.
    public var lastSegment: String?
    /// The segment whose absence ends the chain while newer WAL exists: a gap.
    public var missingSegment: String?
    /// The timeline recovery would follow.
    public var recoveryTimeline: UInt32
    public var walSegmentSize: UInt64
}

/// The times a store's PostgreSQL can be restored to: from its base backups plus archived WAL.
public struct RecoveryWindow: Sendable, Codable, Hashable {
    public var store: String
    public var earliest: Date?
    public var latest: Date?
    /// Per base backup, oldest first; windows of different base backups may overlap or leave gaps.
    public var bases: [BaseBackupWindow]
    public var archivedFiles: Int

    /// Whether `time` lies within some base backup's window.
    public func covers(_ time: Date) -> Bool { bases.contains { $0.from <= time && time <= $0.to } }
}

extension PostgresConnector {
    /// The archive's `.history` files, parsed.
    func timelineHistories(_ repository: Repository, names: [String]) async throws -> [TimelineHistory] {
        var histories: [TimelineHistory] = []
        for name in names where name.hasSuffix(".history") {
            guard let timeline = UInt32(name.prefix(8), radix: 16),
                  let data = try await repository.fetchWAL(store: store, name: name),
                  let history = TimelineHistory(timeline: timeline, text: String(decoding: data, as: UTF8.self)) else { continue }
            histories.append(history)
        }
        return histories
    }

    /// Base backups with their WAL chains and restorable windows (reads the last segment of each
    /// chain with pg_waldump to find its last transaction time).
    public func recoveryWindow(in repository: Repository) async throws -> RecoveryWindow {
        let bases = try await backups(in: repository, method: .physical)
        let archived = try await repository.listWAL(store: store)
        let names = Set(archived.map(\.name))
        let histories = try await timelineHistories(repository, names: archived.map(\.name))
        var windows: [BaseBackupWindow] = []
        for base in bases {
            guard let window = try await window(of: base, archived: names, histories: histories, repository: repository) else { continue }
            windows.append(window)
        }
        return RecoveryWindow(store: store, earliest: windows.map(\.from).min(), latest: windows.map(\.to).max(), bases: windows,
                              archivedFiles: archived.count)
    }

    func window(of base: SnapshotManifest, archived: Set<String>, histories: [TimelineHistory], repository: Repository) async throws -> BaseBackupWindow? {
        guard let start = base.source["start_lsn"].flatMap(LSN.init), let end = base.source["end_lsn"].flatMap(LSN.init),
              let timeline = base.source["timeline"].flatMap({ UInt32($0) }),
              let from = base.source["source_time"].flatMap(SourceTime.parse) else { return nil }
        let segmentSize = base.source["wal_segment_size"].flatMap { UInt64($0) } ?? (16 << 20)
        let chain = WALChain.walk(archived: archived, histories: histories, baseTimeline: timeline, start: start,
                                  includedThrough: end, segmentSize: segmentSize)
        var to = from
        if let latest = try await lastTransactionTime(in: chain, archived: archived, repository: repository), latest > from {
            to = latest
        }
        return BaseBackupWindow(snapshot: base.id, timeline: timeline, startLSN: start.description, endLSN: end.description, from: from, to: to,
                                lastSegment: chain.last?.name, missingSegment: chain.missing?.name, recoveryTimeline: chain.history.timeline,
                                walSegmentSize: segmentSize)
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
            guard let start = base.source["start_lsn"].flatMap(LSN.init), let timeline = base.source["timeline"].flatMap({ UInt32($0) }) else { return nil }
            let size = base.source["wal_segment_size"].flatMap { UInt64($0) } ?? (16 << 20)
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
