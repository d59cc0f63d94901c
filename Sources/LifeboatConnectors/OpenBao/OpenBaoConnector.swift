import AsyncHTTPClient
import Foundation
import LifeboatCore
import LifeboatRepository
import NIOCore

/// Backs up an OpenBao (raft storage) into a repository, restores a snapshot into a target, and runs
/// the catalog's `read` checks. Built from a catalog store plus the secrets the command layer resolved.
public struct OpenBaoConnector: Sendable {
    /// The catalog store's name; snapshots are filed under it.
    public var store: String
    public var address: String
    /// A token allowed to read `sys/storage/raft/snapshot` (backup) and the verify paths (after a restore,
    /// the SOURCE's tokens are the ones that work on the target).
    public var token: String?
    /// The source's unseal key material (Shamir): fingerprinted at backup, used to unseal after a restore.
    public var unsealKeys: UnsealKeyMaterial?
    /// The Transit key that seals the source (transit seal), and a token allowed to encrypt and decrypt with it.
    public var transit: TransitSealKey?
    public var transitToken: String?
    public var verify: [VerifyCheck]

    public init(
        store: String, address: String, token: String? = nil, unsealKeys: UnsealKeyMaterial? = nil,
        transit: TransitSealKey? = nil, transitToken: String? = nil, verify: [VerifyCheck] = []
    ) {
        self.store = store
        self.address = address
        self.token = token
        self.unsealKeys = unsealKeys
        self.transit = transit
        self.transitToken = transitToken
        self.verify = verify
    }

    /// From a catalog store of kind `openbao`; `token`, `unsealKeys` and `transitToken` are the
    /// resolved values of the connection's references.
    public init(store: Store, token: String?, unsealKeys: UnsealKeyMaterial?, transitToken: String? = nil) throws(OpenBaoError) {
        guard case .openbao(let connection)? = store.connection else {
            throw OpenBaoError(.missingSetting, object: "store \(store.name)", "has no OpenBao connection in the catalog")
        }
        self.init(store: store.name, address: connection.address, token: token, unsealKeys: unsealKeys,
                  transit: connection.transit.map { TransitSealKey(address: $0.address, mount: $0.mount, keyName: $0.keyName) },
                  transitToken: transitToken, verify: store.verify)
    }

    static let kind = "openbao"

    // MARK: backup

    /// Streams `GET sys/storage/raft/snapshot` into the repository, checking the archive's own
    /// SHA256SUMS as the bytes pass; a snapshot that fails them gets no manifest (its chunks are
    /// left for `prune`). Records raft index/term, cluster, version and seal custody in `source`.
    public func backup(into repository: Repository, point: String? = nil, tags: [String] = [],
                       progress: (@Sendable (Int64) -> Void)? = nil) async throws -> SnapshotManifest {
        guard let token else { throw OpenBaoError(.missingSetting, object: "store \(store)", "no token to read the snapshot with (the catalog's `token`)") }
        let client = OpenBaoClient(address: address)
        let status = try await client.sealStatus()
        guard status.initialized, !status.sealed else {
            throw OpenBaoError(.notReady, object: address, status.initialized ? "the node is sealed; unseal it to back it up" : "the node is not initialised: nothing to back up")
        }
        let custody = try custodyAtBackup(status)
        let sourceTime = SourceTime.format(Date())
        let response = try await client.snapshot(token: token)
        return try await ingest(response.body.map { Data($0.readableBytesView) }, status: status, custody: custody, sourceTime: sourceTime,
                                into: repository, point: point, tags: tags, progress: progress)
    }

    /// Stores a snapshot archive arriving as `blocks`, checking it on the way; no manifest if the check fails.
    func ingest<Blocks: AsyncSequence>(
        _ blocks: Blocks, status: SealStatus, custody: SealCustody, sourceTime: String, into repository: Repository,
        point: String?, tags: [String], progress: (@Sendable (Int64) -> Void)?
    ) async throws -> SnapshotManifest where Blocks.Element == Data {
        let check = RaftSnapshotCheck(object: "snapshot of \(store) from \(address)")
        var body = blocks.makeAsyncIterator()
        var source = custody.sourceFacts
        source["source_time"] = sourceTime
        source["address"] = address
        source["openbao_version"] = status.version ?? "unknown"
        source["storage_type"] = status.storageType ?? "raft"
        if let clusterID = status.clusterID { source["cluster_id"] = clusterID }
        if let clusterName = status.clusterName { source["cluster_name"] = clusterName }
        let description = SnapshotDescription(store: store, kind: Self.kind, tags: tags, source: source, point: point)
        var custodyFailure: OpenBaoError?
        do {
            return try await repository.put(description, progress: progress, finish: {
                let facts = try check.finish()
                var late = ["raft_index": String(facts.index), "raft_term": String(facts.term), "state_size": String(facts.stateSize)]
                if let version = facts.transitKeyVersion { late["transit_key_version"] = String(version) }
                return late
            }) {
                // An empty block would end the input early: skip them.
                while let data = try await body.next() {
                    guard !data.isEmpty else { continue }
                    try check.consume(data)
                    return data
                }
                // Transit: prove the key the catalog names is the one that sealed this snapshot, so the
                // custody record is true (it is what a restore will check the target's key against).
                let facts = try check.finish()
                if custody.sealType == .transit, let transit, let transitToken, let ciphertext = facts.transitCiphertext {
                    do {
                        try await TransitProbe.check(transit, token: transitToken, sealedSums: (ciphertext, facts.sums))
                    } catch let error as OpenBaoError {
                        custodyFailure = error
                        throw error
                    }
                }
                return nil
            }
        } catch {
            if let failure = check.failure ?? custodyFailure { throw failure }
            throw error
        }
    }

    /// The seal custody to record: Shamir t/n plus the fingerprint of the operator's key material when
    /// given (custody unverified otherwise); Transit t/n (recovery) plus the key the catalog names.
    func custodyAtBackup(_ status: SealStatus) throws(OpenBaoError) -> SealCustody {
        switch status.type {
        case "shamir":
            var fingerprint: String?
            if let unsealKeys {
                let key = try unsealKeys.combined(threshold: status.t, source: "the unseal keys of \(store)")
                fingerprint = UnsealKeyMaterial.fingerprint(ofCombinedKey: key)
            }
            return SealCustody(sealType: .shamir, threshold: status.t, shares: status.n, fingerprint: fingerprint)
        case "transit":
            return SealCustody(sealType: .transit, threshold: status.t, shares: status.n, transit: transit)
        default:
            throw OpenBaoError(.requestFailed, object: address, "seal type \(status.type) is not supported (Lifeboat handles shamir and transit)")
        }
    }


    // MARK: checks

    /// Runs `read` checks against `target` with `token` (by default the connector's, i.e. the source's);
    /// a failed check is a result, not an error. Throws only when the target does not answer at all.
    public func runChecks(_ checks: [VerifyCheck], against target: String, token: String? = nil) async throws -> [CheckResult] {
        let client = OpenBaoClient(address: target)
        _ = try await client.sealStatus()
        var results: [CheckResult] = []
        for check in checks {
            switch check {
            case .openbaoRead(let path, let field):
                results.append(await read(path: path, field: field, client: client, token: token ?? self.token, summary: check.summary))
            case .manual(let text):
                results.append(CheckResult(check: check.summary, passed: false, detail: "a person performs this check: \(text)"))
            default:
                results.append(CheckResult(check: check.summary, passed: false, detail: "not an OpenBao check"))
            }
        }
        return results
    }

    func read(path: String, field: String?, client: OpenBaoClient, token: String?, summary: String) async -> CheckResult {
        guard let token else { return CheckResult(check: summary, passed: false, detail: "no token to read with") }
        let trimmed = path.hasPrefix("/") ? String(path.dropFirst()) : path
        let reply: OpenBaoClient.Reply
        do {
            reply = try await client.send(.GET, trimmed, token: token)
        } catch {
            return CheckResult(check: summary, passed: false, detail: error.message)
        }
        guard reply.ok, let data = reply.json?["data"] as? [String: Any] else {
            return CheckResult(check: summary, passed: false, detail: reply.status == 404 ? "not found" : reply.errors)
        }
        // kv-v2 nests the fields under data.data; kv-v1 and most engines put them in data.
        let fields = (data["data"] as? [String: Any]) ?? data
        if let field {
            guard let value = fields[field], !(value is NSNull) else {
                return CheckResult(check: summary, passed: false, detail: "read back, but field \(field) is missing")
            }
            return CheckResult(check: summary, passed: true, detail: "read back; field \(field) present (\("\(value)".count) characters)")
        }
        return CheckResult(check: summary, passed: true, detail: "read back (\(fields.count) field\(fields.count == 1 ? "" : "s"))")
    }
}
