import Foundation
import LifeboatCore
import LifeboatRepository

/// Backs up one catalog etcd store into the repository, restores etcd snapshots into new data
/// directories, and runs the catalog's `prefix` checks against a (restored) cluster.
public struct EtcdConnector: Sendable {
    /// The catalog store's name: snapshots are grouped under it.
    public let store: String
    public let gateway: EtcdGateway

    public init(store: String, gateway: EtcdGateway) {
        self.store = store
        self.gateway = gateway
    }

    /// From a catalog store of kind etcd; `password` is the resolved value of its `password` reference.
    public init(store: Store, password: String? = nil) throws(EtcdError) {
        guard store.kind == .etcd, case .etcd(let connection) = store.connection else {
            throw EtcdError(.invalidTarget, object: store.name, "the store is not an etcd store with a connection (kind \(store.kind.rawValue))")
        }
        self.init(store: store.name, gateway: try EtcdGateway(endpoints: connection.endpoints, username: connection.username, password: password))
    }

    /// The manifest `kind` of etcd snapshots.
    public static let kind = StoreKind.etcd.rawValue

    /// Streams a snapshot from the first endpoint that answers into the repository: each gateway line
    /// is decoded and stored as it arrives, the SHA-256 trailer is checked at the end, and a snapshot
    /// that fails it (or stops early) leaves no manifest. Records revision, ids and key count.
    public func backup(
        into repository: Repository, point: String? = nil, tags: [String] = [], progress: (@Sendable (Int64) -> Void)? = nil
    ) async throws -> SnapshotManifest {
        let session = try await gateway.connect()
        let version = try await session.serverVersion()
        let members = try await session.members()
        // Counted just before the snapshot; compared with a read just after, so the manifest says
        // whether the count and revision are exactly the snapshot's (no write in between).
        let (count, before) = try await session.count(prefix: nil)
        let sourceTime = SourceTime.format(Date())
        let failure = FailureRecord()
        var source: [String: String] = [
            "endpoint": session.endpoint,
            "etcd_version": version,
            "cluster_id": before.clusterIDHex,
            "member_id": before.memberIDHex,
            "member_count": String(members.count),
            "members": members.compactMap(\.name).sorted().joined(separator: ","),
            "revision": String(before.revision),
            "key_count": String(count),
            "source_time": sourceTime,
        ]
        if let username = gateway.username { source["username"] = username }
        func store<Blobs: AsyncSequence & Sendable>(_ stream: Blobs, transport: String) async throws -> SnapshotManifest where Blobs.Element == Data {
            var description = SnapshotDescription(store: self.store, kind: Self.kind, tags: tags, source: source, point: point)
            description.source["transport"] = transport
            do {
                // Up to 2 MiB read ahead: etcd keeps streaming while the repository chunks and seals.
                return try await withReadAhead(RecordingFailures(base: stream, record: failure), limit: 64) { blocks in
                    try await repository.put(description, progress: progress, blocks: blocks) {
                        let after: EtcdSession.Header
                        do { after = try await session.count(prefix: nil).header } catch let error as EtcdError {
                            failure.error = error
                            throw error
                        }
                        if after.revision == before.revision { return ["revision_exact": "true"] }
                        return ["revision_exact": "false", "revision_after": String(after.revision)]
                    }
                }
            } catch {
                // The repository wraps what its input threw; give the caller etcd's own error back.
                if let cause = failure.error { throw cause }
                throw error
            }
        }
        // etcd's own RPC where the endpoint speaks plaintext HTTP/2 (etcd serves gRPC and the gateway
        // on one port); the gateway for TLS endpoints, and when the RPC cannot even be opened.
        if session.endpoint.hasPrefix("http://") {
            do {
                return try await EtcdGRPCSnapshot.withSnapshot(endpoint: session.endpoint, token: session.token) { blobs in
                    try await store(blobs, transport: "grpc")
                }
            } catch let error as EtcdError where error.code != .authentication && failure.bytes == 0 && !Task.isCancelled {
                // Not one byte came (an endpoint behind an HTTP/1 proxy, say): the gateway may still
                // serve it. A refused token is refused there too, and a cancelled backup stays cancelled.
                _ = error
                failure.error = nil
            }
        }
        return try await store(try await session.snapshot(), transport: "gateway")
    }

    /// Runs the catalog's etcd checks (`prefix` with `min_keys`) against a cluster. A failed check is a
    /// result, not an error; this throws only when no endpoint of `target` answers. `manual` checks
    /// are a person's to do and are left out.
    public static func runChecks(_ checks: [VerifyCheck], against target: EtcdGateway) async throws(EtcdError) -> [CheckResult] {
        let session = try await target.connect()
        var results: [CheckResult] = []
        for check in checks {
            switch check {
            case .etcdPrefix(let prefix, let minKeys):
                do {
                    let (count, _) = try await session.count(prefix: Data(prefix.utf8))
                    results.append(CheckResult(check: check.summary, passed: count >= Int64(minKeys),
                                               detail: "\(count) key\(count == 1 ? "" : "s") under \(prefix)"))
                } catch {
                    results.append(CheckResult(check: check.summary, passed: false, detail: "the count failed: \(error.message)"))
                }
            case .manual:
                continue
            default:
                results.append(CheckResult(check: check.summary, passed: false, detail: "not an etcd check (\(check.keyword)); it cannot run against etcd"))
            }
        }
        return results
    }

    /// `runChecks` against this connector's own cluster.
    public func runChecks(_ checks: [VerifyCheck]) async throws(EtcdError) -> [CheckResult] {
        try await Self.runChecks(checks, against: gateway)
    }

}

/// The first etcd error a backup's input raised (the repository reports it only as text).
final class FailureRecord: @unchecked Sendable {
    var error: EtcdError?
    /// Bytes that went through: a transport that failed before the first can be swapped for another.
    var bytes = 0
}

/// Passes blocks through and remembers the etcd error that ended the sequence.
struct RecordingFailures<Base: AsyncSequence & Sendable>: AsyncSequence, Sendable where Base.Element == Data {
    typealias Element = Data
    let base: Base
    let record: FailureRecord

    func makeAsyncIterator() -> Iterator { Iterator(base: base.makeAsyncIterator(), record: record) }

    struct Iterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        let record: FailureRecord
        mutating func next() async throws -> Data? {
            do {
                let block = try await base.next()
                record.bytes += block?.count ?? 0
                return block
            } catch {
                if let error = error as? EtcdError { record.error = error }
                throw error
            }
        }
    }
}
