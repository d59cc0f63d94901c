import Crypto
import Foundation
import LifeboatCore
import LifeboatRepository
import LifeboatStorage

/// Backs up the buckets of one catalog `s3` store (optionally only some prefixes) into the
/// repository, restores them into the same or other buckets, and runs the gate: every object's
/// key, size and SHA-256 read back from the target against the snapshot, plus the catalog's
/// `object` checks.
///
/// Each object is stored as its own chunks and listed in the snapshot's index (docs/connectors.md);
/// an object whose key, size, ETag and last-modified match the previous snapshot of the store is
/// carried over by its chunk list without being read again.
public struct S3BucketConnector: Sendable {
    public let store: String
    public let endpoint: URL
    public let region: String
    public let addressing: S3AddressingStyle
    public let credentials: S3Credentials
    public let buckets: [String]
    /// Only keys starting with one of these are backed up (all keys when empty).
    public let prefixes: [String]
    /// Every version and delete marker of a versioned bucket, not only the current objects.
    public var allVersions = false
    public var compatibility = S3Compatibility()
    /// Objects read or written at once.
    public var concurrency = 8
    /// Bytes per ranged GET, and the part size of multipart uploads on restore (bounds memory per object).
    public var transferSize = 8 << 20

    /// The manifest `kind` of bucket snapshots.
    public static let kind = StoreKind.s3.rawValue

    public init(store: String, endpoint: URL, region: String, credentials: S3Credentials, buckets: [String], prefixes: [String] = [],
                addressing: S3AddressingStyle = .path) {
        self.store = store
        self.endpoint = endpoint
        self.region = region
        self.credentials = credentials
        self.buckets = buckets
        self.prefixes = prefixes
        self.addressing = addressing
    }

    /// From a catalog store of kind s3; `credentials` are its resolved secret references (or the
    /// environment's `AWS_*` when the store names none).
    public init(store: Store, credentials: S3Credentials) throws(S3BucketError) {
        guard store.kind == .s3, case .s3(let connection) = store.connection else {
            throw S3BucketError(.invalidArgument, object: store.name, "the store is not an s3 store with a connection (kind \(store.kind.rawValue))")
        }
        let region = connection.region ?? "us-east-1"
        let text = connection.endpoint ?? "https://s3.\(region).amazonaws.com"
        guard let endpoint = URL(string: text) else {
            throw S3BucketError(.invalidArgument, object: store.name, "endpoint \(text) is not a URL")
        }
        self.init(store: store.name, endpoint: endpoint, region: region, credentials: credentials, buckets: connection.buckets,
                  prefixes: connection.prefixes, addressing: connection.pathStyle ? .path : .virtualHost)
        allVersions = connection.allVersions
    }

    /// A backend on one bucket of this endpoint (its keys used as they are).
    public func bucket(_ name: String) throws(S3BucketError) -> S3Backend {
        let configuration = S3Configuration(endpoint: endpoint, region: region, bucket: name, addressing: addressing,
                                            credentials: credentials, compatibility: compatibility)
        do throws(BackendError) {
            return try S3Backend(configuration: configuration)
        } catch {
            throw S3BucketError(.invalidArgument, object: name, error.detail)
        }
    }

    var endpointDescription: String { S3Client(endpoint: endpoint, region: region, credentials: credentials).endpointDescription }

    // MARK: backup

    /// The newest bucket snapshot of this store from the same endpoint, whose unchanged objects the
    /// next backup reuses; nil when there is none (or its index is unreadable: then everything is read).
    func previousIndex(in repository: Repository) async -> (id: String, records: [String: S3ObjectRecord])? {
        guard let listing = try? await repository.snapshots(),
              let previous = listing.manifests.last(where: { $0.store == store && $0.kind == Self.kind && $0.contentChunks != nil }),
              let data = try? await repository.loadStream(previous),
              let index = try? S3BucketIndex.decode(data, snapshot: previous.id),
              index.header.endpoint == endpointDescription else { return nil }
        var records: [String: S3ObjectRecord] = [:]
        for record in index.records where record.deleteMarker != true {
            records[reuseKey(bucket: record.bucket, key: record.key, versionID: record.versionID)] = record
        }
        return (previous.id, records)
    }

    /// What identifies an object across snapshots: bucket and key, plus the version id when every
    /// version is backed up (a version never changes, so its id alone would do).
    func reuseKey(bucket: String, key: String, versionID: String?) -> String {
        bucket + "\u{0}" + key + (allVersions ? "\u{0}" + (versionID ?? "") : "")
    }

    /// One object (or, with `allVersions`, one version or delete marker) to back up.
    struct Listed: Sendable {
        var backend: S3Backend
        var summary: S3ObjectSummary
        var versionID: String?
        var isLatest = true
        var deleteMarker = false
    }

    /// Lists every bucket (under the prefixes), then stores each new or changed object and carries
    /// the unchanged ones over; writes the index and the manifest last. A bucket that cannot be
    /// listed or an object that cannot be read fails the backup: no snapshot is written.
    public func backup(into repository: Repository, point: String? = nil, tags: [String] = []) async throws -> SnapshotManifest {
        var facts = S3BucketFacts(endpoint: endpointDescription, buckets: buckets, prefixes: prefixes, sourceTime: Date())
        var listed: [Listed] = []
        for name in buckets {
            let backend = try bucket(name)
            var seen = Set<String>()
            for prefix in prefixes.isEmpty ? [""] : prefixes {
                if allVersions {
                    for version in try await onBucket(name, { try await backend.listObjectVersions(prefix: prefix) })
                    where seen.insert(version.key + "\u{0}" + version.versionID).inserted {
                        let summary = S3ObjectSummary(key: version.key, size: version.size, etag: version.etag, lastModified: version.lastModified,
                                                      storageClass: version.storageClass)
                        listed.append(Listed(backend: backend, summary: summary, versionID: version.versionID, isLatest: version.isLatest,
                                             deleteMarker: version.isDeleteMarker))
                    }
                } else {
                    for summary in try await onBucket(name, { try await backend.listObjects(prefix: prefix) }) where seen.insert(summary.key).inserted {
                        listed.append(Listed(backend: backend, summary: summary))
                    }
                }
            }
        }
        let previous = await previousIndex(in: repository)
        facts.previousSnapshot = previous?.id
        let description = SnapshotDescription(store: store, kind: Self.kind, tags: tags, source: [:], point: point)
        let transferSize = transferSize
        return try await repository.putContents(description) { writer in
            let outcomes = try await forEachConcurrently(listed, limit: concurrency) { [self] entry -> (record: S3ObjectRecord?, reused: Bool) in
                let bucketName = entry.backend.configuration.bucket
                var record: S3ObjectRecord?
                var reused = false
                if entry.deleteMarker {
                    record = S3ObjectRecord(bucket: bucketName, key: entry.summary.key, size: 0, etag: "", lastModified: entry.summary.lastModified,
                                            metadata: [:], headers: [:], versionID: entry.versionID, sha256: Self.emptySHA256, chunks: [])
                    record?.deleteMarker = true
                } else if let before = previous?.records[reuseKey(bucket: bucketName, key: entry.summary.key, versionID: entry.versionID)],
                          before.matches(entry.summary), writer.canReuse(before.item) {
                    record = before
                    reused = true
                } else {
                    record = try await Self.download(entry.summary, versionID: entry.versionID, from: entry.backend, into: writer, rangeSize: transferSize)
                }
                if allVersions { record?.isLatest = entry.isLatest }
                return (record, reused)
            }
            var records: [S3ObjectRecord] = []
            for outcome in outcomes {
                guard let record = outcome.record else {
                    facts.vanishedObjects += 1
                    continue
                }
                records.append(record)
                facts.bytes += record.size
                if record.deleteMarker == true { continue }
                if outcome.reused { facts.reusedObjects += 1 } else { facts.downloadedObjects += 1 }
                if record.lock != nil { facts.lockedObjects += 1 }
            }
            facts.objects = records.count
            let index = S3BucketIndex(header: S3BucketIndexHeader(endpoint: facts.endpoint, buckets: buckets, prefixes: prefixes), records: records)
            var source = facts.source
            if allVersions { source["versions"] = "all" }
            return (try index.encoded(), records.filter { $0.deleteMarker != true }.map(\.item), source)
        }
    }

    /// Reads one object into the repository in ranged GETs pinned to its ETag. An object replaced
    /// while it is read is read again (its new version); one deleted meanwhile gives nil.
    static func download(_ listed: S3ObjectSummary, versionID: String? = nil, from backend: S3Backend, into writer: ContentWriter,
                         rangeSize: Int) async throws -> S3ObjectRecord? {
        let bucketName = backend.configuration.bucket
        var summary = listed
        for _ in 1...3 {
            var reader = S3ObjectReader(backend: backend, key: summary.key, versionID: versionID, size: summary.size, etag: summary.etag, rangeSize: rangeSize)
            let item = try await writer.store { try await reader.next() }
            guard !reader.changed, let attributes = reader.attributes else {
                // A version never changes: gone means deleted since the listing.
                if versionID != nil { return nil }
                // Replaced or deleted since the listing: look again.
                guard let head = try await onBucket(bucketName, { try await backend.headObject(summary.key) }) else { return nil }
                summary = S3ObjectSummary(key: summary.key, size: head.size, etag: head.etag,
                                          lastModified: head.lastModified ?? summary.lastModified, storageClass: head.storageClass)
                continue
            }
            guard item.size == summary.size else {
                throw S3BucketError(.bucket, object: "\(bucketName)/\(summary.key)", "read \(item.size) bytes of an object listed with \(summary.size)")
            }
            return S3ObjectRecord(
                bucket: bucketName, key: summary.key, size: item.size, etag: summary.etag, lastModified: summary.lastModified,
                contentType: attributes.contentType, metadata: attributes.userMetadata, headers: attributes.standardHeaders,
                storageClass: summary.storageClass ?? attributes.storageClass, versionID: versionID ?? attributes.versionID, lock: attributes.lock,
                sha256: item.sha256, chunks: item.chunks)
        }
        throw S3BucketError(.bucket, object: "\(bucketName)/\(summary.key)", "the object kept changing while it was read (3 attempts); back up again when writes to it settle")
    }

    /// SHA-256 of no bytes (a delete marker's).
    static let emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    // MARK: restore

    /// The snapshot's index, checked against the manifest.
    public static func index(of manifest: SnapshotManifest, in repository: Repository) async throws -> (endpoint: String, buckets: [String], records: [S3ObjectRecord]) {
        guard manifest.kind == kind, manifest.contentChunks != nil else {
            throw S3BucketError(.invalidArgument, object: "snapshot \(manifest.id.prefix(8))", "is a \(manifest.kind) snapshot, not a bucket snapshot")
        }
        let index = try S3BucketIndex.decode(try await repository.loadStream(manifest), snapshot: manifest.id)
        guard index.header.format == S3BucketIndexHeader.formatName else {
            throw RepositoryError(.corruptObject, object: "snapshot \(manifest.id)", "its index is not a bucket index (\(index.header.format))")
        }
        return (index.header.endpoint, index.header.buckets, index.records)
    }

    /// Where each backed-up bucket goes; every source bucket of the snapshot must have a target.
    public static func targets(for buckets: [String], toBucket: String?, only: String?) throws(S3BucketError) -> [String: String] {
        if let only, !buckets.contains(only) {
            throw S3BucketError(.invalidArgument, object: only, "the snapshot holds no bucket \(only) (it holds \(buckets.joined(separator: ", ")))")
        }
        let chosen = only.map { [$0] } ?? buckets
        guard let toBucket else { return Dictionary(uniqueKeysWithValues: chosen.map { ($0, $0) }) }
        guard chosen.count == 1 else {
            throw S3BucketError(.invalidArgument, object: chosen.joined(separator: ","), "the snapshot holds \(chosen.count) buckets; say which one goes to \(toBucket) (--bucket)")
        }
        return [chosen[0]: toBucket]
    }

    /// Every reason the restore into `targets` (source bucket → target bucket) would refuse, without
    /// changing anything: a target that does not exist, cannot be read, or is not empty without `force`.
    public func preflight(targets: [String: String], force: Bool) async -> [String] {
        var problems: [String] = []
        for target in Set(targets.values).sorted() {
            do {
                let backend = try bucket(target)
                if try await !backend.bucketIsEmpty(), !force {
                    problems.append("bucket \(target) at \(endpointDescription) is not empty; nothing was changed. With --force the snapshot's objects are written over it (objects not in the snapshot stay unless --delete-extra)")
                }
            } catch let error as BackendError {
                problems.append("bucket \(target): \(error.detail)")
            } catch {
                problems.append("bucket \(target): \(error)")
            }
        }
        return problems
    }

    /// Writes the snapshot's objects into the target buckets (content type, metadata and standard
    /// headers restored; Object Lock retention restored where the target bucket has Object Lock and
    /// the retention has not expired; objects above the transfer size as multipart uploads). Refuses
    /// a non-empty target without `force` before writing anything; deletes objects that are not in
    /// the snapshot only with `deleteExtra` (within the snapshot's prefixes).
    public func restore(
        _ manifest: SnapshotManifest, from repository: Repository, targets: [String: String], force: Bool = false, deleteExtra: Bool = false
    ) async throws -> S3RestoreReport {
        let started = Date()
        let index = try await Self.index(of: manifest, in: repository)
        let problems = await preflight(targets: targets, force: force)
        guard problems.isEmpty else { throw S3BucketError(.refused, object: targets.values.sorted().joined(separator: ","), problems.joined(separator: "; ")) }
        var lockEnabled: [String: Bool] = [:]
        for target in Set(targets.values) where index.records.contains(where: { $0.lock != nil && targets[$0.bucket] == target }) {
            let backend = try bucket(target)
            lockEnabled[target] = try await onBucket(target) { try await backend.objectLockEnabled() }
        }
        let locking = lockEnabled
        let records = index.records.filter { targets[$0.bucket] != nil }
        let now = Date()
        let transferSize = transferSize
        // Each key's versions oldest first (the current one last), so the target's current version
        // is the snapshot's; a delete marker is a DELETE. Without versions: one record per key.
        let histories = Dictionary(grouping: records) { $0.bucket + "\u{0}" + $0.key }.values.map { versions in
            versions.sorted { ($0.lastModified, $0.isLatest == true ? 1 : 0) < ($1.lastModified, $1.isLatest == true ? 1 : 0) }
        }
        let outcomes = try await forEachConcurrently(histories, limit: concurrency) { [self] history -> [ObjectRestore] in
            var done: [ObjectRestore] = []
            for record in history {
                let target = targets[record.bucket]!
                let backend = try bucket(target)
                if record.deleteMarker == true {
                    try await onBucket(target) { try await backend.deleteObject(record.key) }
                    continue
                }
                var lock = record.lock
                if let retainUntil = lock?.retainUntil, retainUntil <= now { lock?.mode = nil; lock?.retainUntil = nil }
                if lock?.mode == nil, lock?.legalHold != true { lock = nil }
                let lockApplies = lock != nil && locking[target] == true
                try await Self.upload(record, from: repository, manifest: manifest, to: backend, lock: lockApplies ? lock : nil, partSize: transferSize)
                done.append(ObjectRestore(bytes: record.size, locked: lockApplies, lockSkipped: lock != nil && !lockApplies))
            }
            return done
        }.flatMap { $0 }
        var deleted = 0
        if deleteExtra {
            for (source, target) in targets {
                let backend = try bucket(target)
                let wanted = Set(records.filter { $0.bucket == source && $0.isCurrentObject }.map(\.key))
                for prefix in prefixes(of: manifest) {
                    for summary in try await onBucket(target, { try await backend.listObjects(prefix: prefix) }) where !wanted.contains(summary.key) {
                        try await onBucket(target) { try await backend.deleteObject(summary.key) }
                        deleted += 1
                    }
                }
            }
        }
        return S3RestoreReport(
            snapshot: manifest.id, endpoint: endpointDescription, targets: targets, objects: records.filter(\.isCurrentObject).count,
            versions: outcomes.count,
            bytes: outcomes.reduce(0) { $0 + $1.bytes }, lockedObjects: outcomes.filter(\.locked).count,
            retentionNotApplied: outcomes.filter(\.lockSkipped).count, deletedExtra: deleted, seconds: Date().timeIntervalSince(started))
    }

    func prefixes(of manifest: SnapshotManifest) -> [String] {
        let recorded = S3BucketFacts(manifest)?.prefixes ?? []
        return recorded.isEmpty ? [""] : recorded
    }

    struct ObjectRestore: Sendable {
        var bytes: Int64
        var locked: Bool
        var lockSkipped: Bool
    }

    /// One object from the repository into a bucket: one PUT up to `partSize`, else a multipart
    /// upload of `partSize` parts; each chunk is checked on the way and the whole against the
    /// record's SHA-256 before the upload completes, and every request carries Content-MD5.
    static func upload(_ record: S3ObjectRecord, from repository: Repository, manifest: SnapshotManifest, to backend: S3Backend,
                       lock: S3ObjectLockState?, partSize: Int) async throws {
        let bucketName = backend.configuration.bucket
        let headers = S3Backend.writeHeaders(for: record.attributes, lock: lock)
        let object = "\(record.bucket)/\(record.key) in snapshot \(manifest.id.prefix(8))"
        if record.size <= Int64(partSize) {
            var data = Data()
            data.reserveCapacity(Int(record.size))
            try await repository.restore(record.item, object: object, what: object) { data.append($0) }
            try await onBucket(bucketName) { try await backend.putObject(record.key, data: data, headers: headers) }
            return
        }
        try await onBucket(bucketName) {
            try await backend.putObjectMultipart(record.key, headers: headers) { upload in
                var buffer = Data()
                try await repository.restore(record.item, object: object, what: object) { block in
                    buffer.append(block)
                    while buffer.count >= partSize {
                        try await upload(buffer.prefix(partSize))
                        buffer.removeFirst(partSize)
                    }
                }
                // The item's SHA-256 was checked by now: only a whole, correct object is completed.
                if !buffer.isEmpty { try await upload(buffer) }
            }
            // Servers that drop lock headers on a multipart initiation (moto) get the retention set after.
            if let lock, let mode = lock.mode, let until = lock.retainUntil,
               try await backend.headObject(record.key)?.lock?.mode == nil {
                try await backend.putObjectRetention(record.key, mode: mode, until: until)
            }
        }
    }

    // MARK: gate

    /// The gate after a restore: every object of the snapshot (in the restored buckets) is listed
    /// in its target with the recorded size, and read back to the recorded SHA-256; then the
    /// catalog's `object` checks (a check without a bucket means the store's only bucket). A failed
    /// check is a result; this throws only when a target cannot be listed at all.
    public func runGate(_ manifest: SnapshotManifest, in repository: Repository, targets: [String: String], checks: [VerifyCheck]) async throws -> [CheckResult] {
        let records = try await Self.index(of: manifest, in: repository).records.filter { targets[$0.bucket] != nil && $0.isCurrentObject }
        var sizes: [String: Int64] = [:]
        for target in Set(targets.values) {
            let backend = try bucket(target)
            for summary in try await onBucket(target, { try await backend.listObjects() }) { sizes[target + "\u{0}" + summary.key] = summary.size }
        }
        let listedSizes = sizes
        let transferSize = transferSize
        let problems = try await forEachConcurrently(records, limit: concurrency) { [self] record -> String? in
            let target = targets[record.bucket]!
            guard let size = listedSizes[target + "\u{0}" + record.key] else { return "\(target)/\(record.key) is missing" }
            guard size == record.size else { return "\(target)/\(record.key) has \(size) bytes, the snapshot \(record.size)" }
            var reader = S3ObjectReader(backend: try bucket(target), key: record.key, versionID: nil, size: record.size, etag: nil, rangeSize: transferSize)
            var digest = SHA256()
            do {
                while let block = try await reader.next() { digest.update(data: block) }
            } catch let error as BackendError {
                return "\(target)/\(record.key) cannot be read back: \(error.detail)"
            }
            let sha256 = Data(digest.finalize()).map { String(format: "%02x", $0) }.joined()
            return sha256 == record.sha256 ? nil : "\(target)/\(record.key) reads back with SHA-256 \(sha256.prefix(12))…, the snapshot has \(record.sha256.prefix(12))…"
        }.compactMap { $0 }
        let total = records.reduce(Int64(0)) { $0 + $1.size }
        var results = [CheckResult(
            check: "objects match the snapshot (keys, sizes, SHA-256)", passed: problems.isEmpty,
            detail: problems.isEmpty ? "\(records.count) object\(records.count == 1 ? "" : "s"), \(total) bytes, read back and matching"
                : "\(problems.count) of \(records.count) differ: " + problems.prefix(5).joined(separator: "; ") + (problems.count > 5 ? "; …" : ""))]
        results += try await runChecks(checks, targets: targets)
        return results
    }

    /// The catalog's `object` checks against the buckets the store's buckets were restored into
    /// (`targets`: source → target; the store's own buckets when empty). `manual` checks are skipped.
    public func runChecks(_ checks: [VerifyCheck], targets: [String: String] = [:]) async throws -> [CheckResult] {
        var results: [CheckResult] = []
        for check in checks {
            switch check {
            case .object(let key, let named):
                guard let source = named ?? (buckets.count == 1 ? buckets[0] : nil) else {
                    results.append(CheckResult(check: check.summary, passed: false, detail: "the store has \(buckets.count) buckets; the check names none"))
                    continue
                }
                guard let target = targets.isEmpty ? source : targets[source] else {
                    results.append(CheckResult(check: check.summary, passed: false, detail: "bucket \(source) was not restored"))
                    continue
                }
                do {
                    let head = try await bucket(target).headObject(key)
                    results.append(CheckResult(check: check.summary, passed: head != nil,
                                               detail: head.map { "\(target)/\(key): \($0.size) bytes" } ?? "\(target)/\(key) does not exist"))
                } catch {
                    results.append(CheckResult(check: check.summary, passed: false, detail: "\(target)/\(key) cannot be read: \(error)"))
                }
            case .manual:
                continue
            default:
                results.append(CheckResult(check: check.summary, passed: false, detail: "not an s3 check (\(check.keyword)); it cannot run against a bucket"))
            }
        }
        return results
    }

    // MARK: scratch buckets (drills)

    /// Creates one empty bucket per source bucket for a drill, named `lb-drill-<8 hex>-<n>`.
    public func createScratchBuckets(for sources: [String]) async throws -> [String: String] {
        let run = (0..<4).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        var targets: [String: String] = [:]
        for (index, source) in sources.enumerated() {
            let name = "lb-drill-\(run)-\(index)"
            let client = try bucket(name).client
            let response: S3Response
            do { response = try await client.createBucket(name) } catch {
                throw S3BucketError(.bucket, object: name, "cannot create the drill's scratch bucket: \(error)")
            }
            guard response.isSuccess else {
                throw S3BucketError(.bucket, object: name, "cannot create the drill's scratch bucket (HTTP \(response.status) \(response.error?.code ?? "")): a drill of an s3 store needs permission to create and delete buckets on \(endpointDescription)")
            }
            targets[source] = name
        }
        return targets
    }

    /// Empties and deletes scratch buckets; best effort (a drill's report is not changed by it).
    public func removeScratchBuckets(_ names: [String]) async {
        for name in names {
            guard let backend = try? bucket(name), let objects = try? await backend.listObjects() else { continue }
            for object in objects { try? await backend.deleteObject(object.key) }
            try? await backend.deleteBucket()
        }
    }
}

/// What a bucket restore did.
public struct S3RestoreReport: Sendable, Codable {
    public var snapshot: String
    public var endpoint: String
    /// Source bucket → the bucket it was restored into.
    public var targets: [String: String]
    /// Current objects of the snapshot in the restored buckets.
    public var objects: Int
    /// Object versions written (equal to `objects` unless every version was backed up).
    public var versions: Int
    public var bytes: Int64
    /// Objects written with their recorded Object Lock retention or legal hold.
    public var lockedObjects: Int
    /// Objects whose unexpired retention could not be applied: the target bucket has no Object Lock.
    public var retentionNotApplied: Int
    /// Objects not in the snapshot deleted from the targets (`--delete-extra`).
    public var deletedExtra: Int
    public var seconds: Double
}

/// Reads an object in ranged GETs (pinned to its ETag when given), one range per `next()`.
struct S3ObjectReader {
    let backend: S3Backend
    let key: String
    let versionID: String?
    let size: Int64
    let etag: String?
    let rangeSize: Int
    var offset: Int64 = 0
    var attributes: S3ObjectAttributes?
    /// The object no longer has the ETag it was listed with (replaced or deleted).
    var changed = false

    init(backend: S3Backend, key: String, versionID: String?, size: Int64, etag: String?, rangeSize: Int) {
        self.backend = backend
        self.key = key
        self.versionID = versionID
        self.size = size
        self.etag = etag
        self.rangeSize = rangeSize
    }

    mutating func next() async throws -> Data? {
        if changed { return nil }
        if offset >= size, attributes != nil { return nil }
        let range: Range<Int64>? = size == 0 ? nil : offset..<min(offset + Int64(rangeSize), size)
        guard let answer = try await fetch(range) else {
            changed = true
            return nil
        }
        if attributes == nil { attributes = answer.attributes }
        if let range, answer.data.count != range.count {
            throw S3BucketError(.bucket, object: "\(backend.configuration.bucket)/\(key)", "asked for \(range.count) bytes at \(range.lowerBound), got \(answer.data.count)")
        }
        offset += Int64(answer.data.count)
        return answer.data
    }

    /// One GET; nil when the object (or version) is gone or no longer has the expected ETag.
    func fetch(_ range: Range<Int64>?) async throws -> (data: Data, attributes: S3ObjectAttributes)? {
        do {
            return try await backend.getObject(key, versionID: versionID, range: range, ifMatch: etag)
        } catch let error as BackendError where error.code == .notFound {
            return nil
        }
    }
}
