import Foundation

/// The snapshots one `lifeboat backup` took together, one per store: what a whole-platform restore
/// starts from. A store that failed is listed with its error, and the point is then partial.
public struct RecoveryPoint: Codable, Sendable, Hashable {
    public var version: Int
    public var id: String
    /// The catalog's `platform`, so points of different platforms sharing a repository stay apart.
    public var platform: String
    public var started: Date
    public var finished: Date
    public var members: [Member]

    /// One store's part of the point.
    public struct Member: Codable, Sendable, Hashable {
        public var store: String
        public var kind: String
        /// The snapshot taken; nil when the backup of this store failed.
        public var snapshot: String?
        /// The wall-clock time the snapshot's data reflects (the source's own time when it reports one).
        public var sourceTime: Date?
        public var size: Int64?
        /// Why the backup failed, when it did (never a secret).
        public var error: String?

        public init(store: String, kind: String, snapshot: String? = nil, sourceTime: Date? = nil, size: Int64? = nil, error: String? = nil) {
            self.store = store
            self.kind = kind
            self.snapshot = snapshot
            self.sourceTime = sourceTime
            self.size = size
            self.error = error
        }
    }

    public init(id: String, platform: String, started: Date, finished: Date, members: [Member]) {
        version = 1
        self.id = id
        self.platform = platform
        self.started = started
        self.finished = finished
        self.members = members
    }

    /// Every store of the point was backed up.
    public var isComplete: Bool { members.allSatisfy { $0.snapshot != nil } }
    public var failedStores: [String] { members.filter { $0.snapshot == nil }.map(\.store) }
    public func member(_ store: String) -> Member? { members.first { $0.store == store } }
}
