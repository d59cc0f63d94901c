import Foundation
import LifeboatConnectors
import LifeboatCore
import LifeboatEngine
import LifeboatRepository
import LifeboatStorage

/// The S3 bucket connector as the engine sees it: production restores go back into the store's own
/// buckets; drills into scratch buckets on the same endpoint, removed after the gate.
public struct S3BucketStoreConnector: StoreConnector {
    let resolver: StoreResolver

    public init(resolver: StoreResolver) { self.resolver = resolver }

    func connector(_ store: Store) throws -> S3BucketConnector {
        try resolver.s3Bucket(store)
    }

    public func backup(_ store: Store, into repository: Repository, point: String, tags: [String]) async throws -> SnapshotManifest {
        try await connector(store).backup(into: repository, point: point, tags: tags)
    }

    /// Only snapshot times: a bucket has no continuous archive.
    public func canRestore(_ store: Store, to instant: Date, in repository: Repository) async throws -> Bool { false }

    public func describe(_ request: StoreRestoreRequest) -> String {
        let facts = S3BucketFacts(request.snapshot)
        let what = "copy of the \(facts.map { "\($0.objects) objects (\($0.bytes) bytes)" } ?? "objects") of bucket snapshot \(request.snapshot.id.prefix(8))"
        let buckets = facts?.buckets.joined(separator: ", ") ?? "?"
        switch request.destination {
        case .scratch:
            return "\(what) into new scratch buckets on \(facts?.endpoint ?? "the store's endpoint") (one per bucket: \(buckets)), read back against the snapshot, then removed"
        case .production(let force):
            return "\(what) back into \(buckets) at \(facts?.endpoint ?? "?")"
                + (force ? " (written over what they hold: --force; objects not in the snapshot stay)" : " (refused if a bucket is not empty: --force)")
                + ", then read back against the snapshot"
        }
    }

    public func preflight(_ request: StoreRestoreRequest) async -> [String] {
        guard case .production(let force) = request.destination else { return [] }
        do {
            let buckets = S3BucketFacts(request.snapshot)?.buckets ?? []
            let bucketConnector = try connector(request.store)
            return await bucketConnector.preflight(targets: Dictionary(uniqueKeysWithValues: buckets.map { ($0, $0) }), force: force)
        } catch {
            return ["cannot check the target buckets: \(error)"]
        }
    }

    public func restore(_ request: StoreRestoreRequest) async throws -> any RestoredStore {
        let connector = try connector(request.store)
        let buckets = S3BucketFacts(request.snapshot)?.buckets ?? connector.buckets
        switch request.destination {
        case .scratch:
            let targets = try await connector.createScratchBuckets(for: buckets)
            do {
                _ = try await connector.restore(request.snapshot, from: request.repository, targets: targets)
            } catch {
                await connector.removeScratchBuckets(Array(targets.values))
                throw error
            }
            return RestoredBuckets(connector: connector, manifest: request.snapshot, repository: request.repository, targets: targets, scratch: true)
        case .production(let force):
            let targets = Dictionary(uniqueKeysWithValues: buckets.map { ($0, $0) })
            _ = try await connector.restore(request.snapshot, from: request.repository, targets: targets, force: force)
            return RestoredBuckets(connector: connector, manifest: request.snapshot, repository: request.repository, targets: targets, scratch: false)
        }
    }
}

/// Buckets after a restore: the gate reads every object back; scratch buckets are removed on release.
struct RestoredBuckets: RestoredStore {
    let connector: S3BucketConnector
    let manifest: SnapshotManifest
    let repository: Repository
    /// Source bucket → the bucket restored into.
    let targets: [String: String]
    let scratch: Bool

    var target: String {
        targets.sorted { $0.key < $1.key }.map { $0.key == $0.value ? $0.key : "\($0.key) → \($0.value)" }.joined(separator: ", ")
            + " at \(connector.endpoint.absoluteString)" + (scratch ? " (scratch buckets, removed after the gate)" : "")
    }

    func check(_ checks: [VerifyCheck]) async throws -> [CheckResult] {
        try await connector.runGate(manifest, in: repository, targets: targets, checks: checks)
    }

    func release() async {
        if scratch { await connector.removeScratchBuckets(Array(targets.values)) }
    }
}

extension StoreResolver {
    /// The connector for a catalog s3 store, its credentials resolved: both references, or (when the
    /// store names none) the environment's AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
    public func s3Bucket(_ store: Store) throws -> S3BucketConnector {
        guard case .s3(let connection) = store.connection else {
            throw S3BucketError(.invalidArgument, object: store.name, "the store is not an s3 store with a connection (kind \(store.kind.rawValue))")
        }
        let credentials: S3Credentials
        if let keyID = try secret(connection.accessKeyID), let secret = try secret(connection.secretAccessKey) {
            credentials = S3Credentials(accessKeyID: keyID, secretAccessKey: secret)
        } else {
            credentials = try S3Credentials.fromEnvironment()
        }
        return try S3BucketConnector(store: store, credentials: credentials)
    }
}
