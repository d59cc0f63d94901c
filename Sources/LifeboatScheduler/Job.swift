import Foundation
import LifeboatCore

/// What a job does; the body that does it is injected (the scheduler knows no connector).
public enum JobKind: String, Sendable, Hashable, Codable, CaseIterable {
    /// One store's backup (its cadence; a PostgreSQL store's base backup on its cron entry).
    case backup
    /// One store's `prune`, after each successful backup of that store.
    case prune
    /// `mirror`, after each backup or on its own cadence.
    case mirror
    /// `verify --read-data-subset`, on its cadence.
    case verify
    /// One `drills:` entry of the catalog.
    case drill
    /// An OpenBao store: a cheap change poll, a snapshot tagged `reason:rotation` when the keyring
    /// or seal changed, and at each scheduled slot a snapshot or a currency record (OpenBaoWatch).
    case openbaoWatch = "openbao-watch"
    /// A `continuous` store (WAL archiving): a health check of the stream, never a backup.
    case archiveCheck = "archive-check"
}

/// A job's stable name: `backup.pg-main`, `prune.pg-main`, `mirror`, `drill.quarterly`. Used in
/// object names (`runs/<job>/…`) and metric labels, so it keeps to the catalog's name alphabet.
public struct JobID: Sendable, Hashable, Comparable, Codable, CustomStringConvertible, ExpressibleByStringLiteral {
    public var rawValue: String
    public init(_ rawValue: String) { self.rawValue = rawValue }
    public init(stringLiteral value: String) { rawValue = value }
    public init(_ kind: JobKind, _ subject: String?) {
        rawValue = subject.map { "\(kind.rawValue).\($0)" } ?? kind.rawValue
    }
    public var description: String { rawValue }
    public static func < (lhs: JobID, rhs: JobID) -> Bool { lhs.rawValue < rhs.rawValue }

    public init(from decoder: any Decoder) throws { rawValue = try decoder.singleValueContainer().decode(String.self) }
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    /// Letters, digits, `-`, `_`, `.`: safe in object names and metric labels.
    public var isValid: Bool {
        !rawValue.isEmpty && rawValue.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == 0x2D || byte == 0x5F || byte == 0x2E
        }
    }
}

/// What starts a job.
public enum JobTrigger: Sendable, Hashable {
    /// Its slots: the next due time after its last start (`Schedule.nextDue`).
    case schedule(Schedule)
    /// Each success of another job (prune after backup, mirror after backup). Successes that come
    /// while it runs are folded into one more run after it.
    case afterSuccess(of: [JobID])
}

/// How a failed run is tried again: `attempts` in all, waiting `initialDelay`, then twice as long
/// each time up to `maximumDelay`; never past the job's next slot (the slot's run replaces it).
public struct RetryPolicy: Sendable, Hashable {
    public var attempts: Int
    public var initialDelay: TimeInterval
    public var maximumDelay: TimeInterval

    public init(attempts: Int, initialDelay: TimeInterval, maximumDelay: TimeInterval) {
        precondition(attempts >= 1, "a job runs at least once")
        self.attempts = attempts
        self.initialDelay = initialDelay
        self.maximumDelay = maximumDelay
    }

    /// 3 attempts, 1 min then 2 min apart.
    public static let standard = RetryPolicy(attempts: 3, initialDelay: 60, maximumDelay: 900)
    public static let never = RetryPolicy(attempts: 1, initialDelay: 0, maximumDelay: 0)

    /// The wait after failed attempt `attempt` (1-based); nil when no attempt is left.
    public func delay(afterAttempt attempt: Int) -> TimeInterval? {
        guard attempt < attempts else { return nil }
        let doubled = initialDelay * pow(2, Double(attempt - 1))
        return min(maximumDelay, doubled)
    }
}

/// What a run produced. Bodies return it; it is stored in the run's history record.
public struct JobOutcome: Sendable, Hashable, Codable {
    /// Snapshots the run committed (ids), in order.
    public var snapshotIDs: [String]
    /// One line for people: `pg-main: 1.2 GiB in 3m`, `unchanged since 9c1f…`.
    public var summary: String?
    /// Facts a later run compares against (the OpenBao poll's raft index, keyring term, seal).
    public var observations: [String: String]
    /// False for a poll that found nothing to do: it updates metrics but writes no history record,
    /// so a poll every minute does not bury the runs that did something.
    public var recorded: Bool

    public init(snapshotIDs: [String] = [], summary: String? = nil, observations: [String: String] = [:], recorded: Bool = true) {
        self.snapshotIDs = snapshotIDs
        self.summary = summary
        self.observations = observations
        self.recorded = recorded
    }

    enum CodingKeys: String, CodingKey { case snapshotIDs = "snapshot_ids", summary, observations }
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        snapshotIDs = try container.decodeIfPresent([String].self, forKey: .snapshotIDs) ?? []
        summary = try container.decodeIfPresent(String.self, forKey: .summary)
        observations = try container.decodeIfPresent([String: String].self, forKey: .observations) ?? [:]
        recorded = true
    }
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(snapshotIDs, forKey: .snapshotIDs)
        try container.encodeIfPresent(summary, forKey: .summary)
        if !observations.isEmpty { try container.encode(observations, forKey: .observations) }
    }
}

/// What a body is told about the run it performs.
public struct JobContext: Sendable {
    public var job: JobID
    public var kind: JobKind
    public var store: String?
    /// This run's id (`runs/<job>/<run>`).
    public var run: String
    /// 1 for the first attempt at a slot, 2… for retries.
    public var attempt: Int
    /// The slot this run serves (its due time), or nil for a run started by another job's success.
    public var slot: Date?
    public var started: Date
    /// The newest successful recorded run of this job before this one (its observations, snapshots).
    public var previousSuccess: JobRun?
}

/// A job's work: runs once, honours task cancellation (the scheduler cancels it on SIGTERM and
/// when the lease is lost), and returns what it produced. A thrown error fails the run.
public typealias JobBody = @Sendable (JobContext) async throws -> JobOutcome

/// One job the scheduler runs.
public struct JobSpec: Sendable {
    public var id: JobID
    public var kind: JobKind
    /// The store it concerns (backup, prune, watch, archive check); nil for repository-wide jobs.
    public var store: String?
    public var trigger: JobTrigger
    public var retry: RetryPolicy
    /// Whether a run writes its `.start` record before the body runs. Polls (every minute or so)
    /// skip it: their runs are recorded only when they did something or failed.
    public var writesStartRecord: Bool
    public var body: JobBody

    public init(id: JobID, kind: JobKind, store: String? = nil, trigger: JobTrigger, retry: RetryPolicy = .standard,
                writesStartRecord: Bool = true, body: @escaping JobBody) {
        self.writesStartRecord = writesStartRecord
        self.id = id
        self.kind = kind
        self.store = store
        self.trigger = trigger
        self.retry = retry
        self.body = body
    }
}

/// How a run ended.
public enum RunStatus: String, Sendable, Hashable, Codable, CaseIterable {
    /// Started and not ended (yet, or its instance died: see `JobRun.status(leaseHolder:)`).
    case running
    case succeeded
    case failed
    /// Stopped by SIGTERM or by losing the lease; the repository's commit order means it left no
    /// partial snapshot.
    case cancelled
    /// Started by an instance that died or lost the lease before it ended.
    case interrupted
}

/// One run in the job history (`runs/<job>/<run>.start`, then `.end`).
public struct JobRun: Sendable, Hashable, Codable {
    public var version: Int
    public var job: JobID
    public var kind: JobKind
    public var store: String?
    public var run: String
    /// The lease holder that ran it (`host/pid/nonce`).
    public var holder: String
    public var attempt: Int
    public var slot: Date?
    public var started: Date
    public var ended: Date?
    public var status: RunStatus
    /// Why it failed, in the body's words (errors never carry secrets), at most 2000 characters.
    public var error: String?
    public var outcome: JobOutcome?
    /// No further attempt follows for this slot (a success, or a failure with no retry left): the
    /// job's next slot counts from this run's. Cancelled and interrupted runs leave the slot open,
    /// so a restarted instance runs it again, once.
    public var lastAttempt: Bool

    public init(job: JobID, kind: JobKind, store: String?, run: String, holder: String, attempt: Int, slot: Date?, started: Date,
                ended: Date? = nil, status: RunStatus, error: String? = nil, outcome: JobOutcome? = nil, lastAttempt: Bool = false) {
        self.lastAttempt = lastAttempt
        self.version = 1
        self.job = job
        self.kind = kind
        self.store = store
        self.run = run
        self.holder = holder
        self.attempt = attempt
        self.slot = slot
        self.started = started
        self.ended = ended
        self.status = status
        self.error = error
        self.outcome = outcome
    }

    public var duration: TimeInterval? { ended.map { $0.timeIntervalSince(started) } }
}
