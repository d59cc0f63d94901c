import Foundation
import LifeboatCore
import LifeboatRepository

// Typed views of a manifest's `source` facts, one per connector. On disk `source` stays a map of
// strings (docs/repository-format.md); these name its keys once and parse its values once, so
// the engine, the adapters and the commands read `facts.revision`, not `source["revision"]`.

/// What a PostgreSQL backup records.
public struct PostgresFacts: Codable, Sendable, Hashable {
    public var method: PostgresBackupMethod?
    /// Logical: the databases dumped, in order.
    public var databases: [String]
    /// When the data was as it is in the backup (the end of the dump, or of the base backup).
    public var sourceTime: Date?
    /// Physical: the WAL range and timeline the base backup needs.
    public var startLSN: LSN?
    public var endLSN: LSN?
    public var timeline: UInt32?
    /// The cluster's WAL segment size in bytes (16 MiB unless initdb was told otherwise).
    public var walSegmentSize: UInt64?

    enum CodingKeys: String, CodingKey {
        case method, databases, sourceTime = "source_time", startLSN = "start_lsn", endLSN = "end_lsn", timeline
        case walSegmentSize = "wal_segment_size"
    }

    public init(_ manifest: SnapshotManifest) { self.init(source: manifest.source) }

    public init(source: [String: String]) {
        method = source[CodingKeys.method.rawValue].flatMap(PostgresBackupMethod.init(rawValue:))
        databases = (source[CodingKeys.databases.rawValue] ?? "").split(separator: ",").map(String.init)
        sourceTime = source[CodingKeys.sourceTime.rawValue].flatMap(SourceTime.parse)
        startLSN = source[CodingKeys.startLSN.rawValue].flatMap(LSN.init)
        endLSN = source[CodingKeys.endLSN.rawValue].flatMap(LSN.init)
        timeline = source[CodingKeys.timeline.rawValue].flatMap { UInt32($0) }
        walSegmentSize = source[CodingKeys.walSegmentSize.rawValue].flatMap { UInt64($0) }
    }
}

/// What an etcd snapshot records.
public struct EtcdFacts: Codable, Sendable, Hashable {
    /// The revision when the snapshot started.
    public var revision: Int64?
    /// Whether nothing was written while the snapshot ran (then `keyCount` is exact).
    public var revisionExact: Bool?
    /// The revision after the snapshot, when it moved.
    public var revisionAfter: Int64?
    public var keyCount: Int64?
    public var clusterID: String?
    /// The endpoint the snapshot was taken through.
    public var endpoint: String?

    enum CodingKeys: String, CodingKey {
        case revision, revisionExact = "revision_exact", revisionAfter = "revision_after", keyCount = "key_count"
        case clusterID = "cluster_id", endpoint
    }

    public init(_ manifest: SnapshotManifest) { self.init(source: manifest.source) }

    public init(source: [String: String]) {
        revision = source[CodingKeys.revision.rawValue].flatMap { Int64($0) }
        revisionExact = source[CodingKeys.revisionExact.rawValue].flatMap { Bool($0) }
        revisionAfter = source[CodingKeys.revisionAfter.rawValue].flatMap { Int64($0) }
        keyCount = source[CodingKeys.keyCount.rawValue].flatMap { Int64($0) }
        clusterID = source[CodingKeys.clusterID.rawValue]
        endpoint = source[CodingKeys.endpoint.rawValue]
    }
}

/// What an OpenBao raft snapshot records (its seal custody has its own type, `SealCustody`).
public struct OpenBaoFacts: Codable, Sendable, Hashable {
    public var sealType: SealCustody.SealType?
    public var raftIndex: UInt64?
    public var raftTerm: UInt64?
    /// How the key generation was recorded: `fingerprint`, `transit` or `unverified`.
    public var custody: String?
    /// The source node's address.
    public var address: String?

    enum CodingKeys: String, CodingKey {
        case sealType = "seal_type", raftIndex = "raft_index", raftTerm = "raft_term", custody, address
    }

    public init(_ manifest: SnapshotManifest) { self.init(source: manifest.source) }

    public init(source: [String: String]) {
        sealType = source[CodingKeys.sealType.rawValue].flatMap(SealCustody.SealType.init(rawValue:))
        raftIndex = source[CodingKeys.raftIndex.rawValue].flatMap { UInt64($0) }
        raftTerm = source[CodingKeys.raftTerm.rawValue].flatMap { UInt64($0) }
        custody = source[CodingKeys.custody.rawValue]
        address = source[CodingKeys.address.rawValue]
    }
}
