import Foundation
import LifeboatCore
import LifeboatRepository
import LifeboatStorage

/// The first line of a bucket snapshot's index: where the objects came from.
struct S3BucketIndexHeader: Codable, Sendable {
    static let formatName = "lifeboat/s3-bucket-index"
    var format = Self.formatName
    var version = 1
    var endpoint: String
    var buckets: [String]
    var prefixes: [String]
}

/// One object of a bucket snapshot: what S3 said of it, its SHA-256, and the chunks holding its bytes.
public struct S3ObjectRecord: Codable, Sendable, Hashable {
    public var bucket: String
    public var key: String
    public var size: Int64
    /// As the source listed it (quotes included); with size and last-modified, what decides reuse.
    public var etag: String
    public var lastModified: Date
    public var contentType: String?
    /// `x-amz-meta-*` without the prefix.
    public var metadata: [String: String]
    /// Content-Encoding, Content-Disposition, Content-Language, Cache-Control, Expires.
    public var headers: [String: String]
    public var storageClass: String?
    public var versionID: String?
    /// The source version's Object Lock retention and legal hold, as of its last change.
    public var lock: S3ObjectLockState?
    public var sha256: String
    public var chunks: [SnapshotManifest.ChunkReference]
    /// With `versions: all`: false for a noncurrent version (absent: the current one).
    public var isLatest: Bool?
    /// With `versions: all`: a delete marker (no bytes).
    public var deleteMarker: Bool?

    enum CodingKeys: String, CodingKey {
        case bucket, key, size, etag, lastModified = "last_modified", contentType = "content_type", metadata, headers
        case storageClass = "storage_class", versionID = "version_id", lock, sha256, chunks, isLatest = "is_latest", deleteMarker = "delete_marker"
    }

    /// The object a reader of the bucket sees now: a current version that is not a delete marker.
    public var isCurrentObject: Bool { isLatest != false && deleteMarker != true }

    /// The object's bytes in the repository.
    public var item: StoredItem { StoredItem(chunks: chunks, size: size, sha256: sha256) }

    /// Whether a listed object is this one unchanged: same key, size, ETag and last-modified (a
    /// copy onto itself that replaces the metadata keeps the ETag but not the time).
    func matches(_ summary: S3ObjectSummary) -> Bool {
        // Times to the millisecond, as listings give them (the index keeps milliseconds).
        func milliseconds(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded()) }
        return key == summary.key && size == summary.size && etag == summary.etag
            && milliseconds(lastModified) == milliseconds(summary.lastModified)
    }

    /// The attributes a restore writes back.
    var attributes: S3ObjectAttributes {
        var attributes = S3ObjectAttributes(size: size, etag: etag)
        attributes.contentType = contentType
        attributes.userMetadata = metadata
        attributes.standardHeaders = headers
        return attributes
    }
}

typealias S3BucketIndex = ItemIndex<S3BucketIndexHeader, S3ObjectRecord>

/// What a bucket snapshot records in its manifest's `source`; owned by this connector.
public struct S3BucketFacts: Sendable, Hashable {
    public var endpoint: String
    public var buckets: [String]
    public var prefixes: [String]
    public var objects: Int
    public var bytes: Int64
    /// Objects whose bytes were read from the bucket in this backup.
    public var downloadedObjects: Int
    /// Objects unchanged since `previousSnapshot`, carried over by their chunks without a read.
    public var reusedObjects: Int
    /// Objects under Object Lock retention or legal hold at their last change.
    public var lockedObjects: Int
    /// Objects listed but deleted before they could be read (not in the snapshot).
    public var vanishedObjects: Int
    public var previousSnapshot: String?
    /// When the listing started: the snapshot reflects the bucket from then until it finished.
    public var sourceTime: Date

    var source: [String: String] {
        var source = [
            "endpoint": endpoint, "buckets": buckets.joined(separator: ","), "objects": String(objects), "bytes": String(bytes),
            "downloaded_objects": String(downloadedObjects), "reused_objects": String(reusedObjects),
            "locked_objects": String(lockedObjects), "vanished_objects": String(vanishedObjects), "source_time": SourceTime.format(sourceTime),
        ]
        if !prefixes.isEmpty { source["prefixes"] = prefixes.joined(separator: ",") }
        if let previousSnapshot { source["previous_snapshot"] = previousSnapshot }
        return source
    }

    /// The facts of a bucket snapshot's manifest; nil for any other.
    public init?(_ manifest: SnapshotManifest) {
        let source = manifest.source
        guard manifest.kind == StoreKind.s3.rawValue, let endpoint = source["endpoint"], let buckets = source["buckets"],
              let objects = source["objects"].flatMap(Int.init), let bytes = source["bytes"].flatMap(Int64.init) else { return nil }
        self.endpoint = endpoint
        self.buckets = buckets.split(separator: ",").map(String.init)
        self.prefixes = source["prefixes"]?.split(separator: ",").map(String.init) ?? []
        self.objects = objects
        self.bytes = bytes
        self.downloadedObjects = source["downloaded_objects"].flatMap(Int.init) ?? objects
        self.reusedObjects = source["reused_objects"].flatMap(Int.init) ?? 0
        self.lockedObjects = source["locked_objects"].flatMap(Int.init) ?? 0
        self.vanishedObjects = source["vanished_objects"].flatMap(Int.init) ?? 0
        self.previousSnapshot = source["previous_snapshot"]
        self.sourceTime = source["source_time"].flatMap(SourceTime.parse) ?? manifest.started
    }

    init(endpoint: String, buckets: [String], prefixes: [String], sourceTime: Date) {
        self.endpoint = endpoint
        self.buckets = buckets
        self.prefixes = prefixes
        self.objects = 0
        self.bytes = 0
        self.downloadedObjects = 0
        self.reusedObjects = 0
        self.lockedObjects = 0
        self.vanishedObjects = 0
        self.sourceTime = sourceTime
    }
}
