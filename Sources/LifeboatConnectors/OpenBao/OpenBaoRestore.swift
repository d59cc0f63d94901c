import AsyncHTTPClient
import Foundation
import LifeboatCore
import LifeboatRepository
import NIOCore

/// Where a snapshot is restored to.
public struct OpenBaoRestoreTarget: Sendable {
    /// The target node, `http://10.0.0.7:8200`.
    public var address: String
    /// A token of the target; needed only to overwrite an initialised target (with `force`).
    public var token: String?
    /// Overwrite an initialised target. Without it an initialised target is refused untouched.
    public var force: Bool
    /// Restarts the target's process, when the caller started it (a `LocalOpenBao`): used when the node
    /// keeps reporting its old seal configuration after the restore. Without it Lifeboat sends the
    /// combined key instead, which works on a remote node too.
    public var restart: (@Sendable () async throws -> Void)?

    public init(address: String, token: String? = nil, force: Bool = false, restart: (@Sendable () async throws -> Void)? = nil) {
        self.address = address
        self.token = token
        self.force = force
        self.restart = restart
    }
}

/// What a restore did and found.
public struct OpenBaoRestoreReport: Sendable, Codable, Hashable {
    public var snapshot: String
    public var target: String
    public var sealType: String
    /// How the key material was proven to match the snapshot before the target was touched.
    public var custody: String
    /// The target was uninitialised and Lifeboat initialised it temporarily (1-of-1, credentials in memory only).
    public var bootstrappedTarget: Bool
    /// The node reported its old t/n after the restore (the stale seal-config case).
    public var staleSealConfig: Bool
    public var restarted: Bool
    public var raftIndex: UInt64
    public var raftTerm: UInt64
    /// The target's cluster id afterwards: the source's, once the restore took.
    public var clusterID: String?
    public var checks: [CheckResult]
    public var seconds: Double

    /// Every verify check passed.
    public var passed: Bool { checks.allSatisfy(\.passed) }
}

extension OpenBaoConnector {
    /// Snapshots up to this size are read from the repository once and kept in memory for the upload;
    /// larger ones are read twice (once to check, once to send) rather than written to a temporary file.
    static let inMemoryLimit: Int64 = 64 << 20

    /// Restores `manifest` into `target`. Everything that can be checked without the target is
    /// checked first — the archive's own checksums, and that the key material (Shamir) or Transit
    /// key (transit) is the snapshot's — so a refusal leaves the target untouched. Then: an
    /// uninitialised target is initialised 1-of-1 (credentials held in memory only), the snapshot is
    /// force-restored, the node is unsealed with the SOURCE's key, and the verify checks are run with
    /// the source's token.
    public func restore(
        _ manifest: SnapshotManifest, from repository: Repository, into target: OpenBaoRestoreTarget,
        progress: (@Sendable (String) -> Void)? = nil
    ) async throws -> OpenBaoRestoreReport {
        let started = ContinuousClock.now
        let object = "snapshot \(manifest.id.prefix(8))"
        guard manifest.kind == Self.kind, let custody = SealCustody(sourceFacts: manifest.source) else {
            throw OpenBaoError(.missingSetting, object: object, "is not an OpenBao snapshot (kind \(manifest.kind))")
        }

        // 0. The target, read only: its seal type must be the snapshot's; an initialised one needs --force.
        let client = OpenBaoClient(address: target.address)
        let before = try await client.sealStatus()
        guard before.type == custody.sealType.rawValue else {
            throw OpenBaoError(.requestFailed, object: target.address,
                               "the target is \(before.type)-sealed but the snapshot is \(custody.sealType.rawValue)-sealed; configure the target's seal like the source's")
        }
        var targetToken: String?
        if before.initialized {
            guard target.force else {
                throw OpenBaoError(.targetNotEmpty, object: target.address,
                                   "the target is initialised and may hold data; pass --force to overwrite it (nothing was changed)")
            }
            guard !before.sealed else {
                throw OpenBaoError(.notReady, object: target.address, "the target is sealed; unseal it with its own keys before overwriting it")
            }
            guard let token = target.token else {
                throw OpenBaoError(.missingSetting, object: target.address, "overwriting an initialised target needs one of its tokens (--target-token-file)")
            }
            targetToken = token
        }

        // 1. Custody (Shamir): the offered keys must be the snapshot's key generation.
        progress?("checking custody: \(custody.summary)")
        var custodyNote = "unverified"
        if custody.sealType == .shamir {
            guard let unsealKeys else {
                throw OpenBaoError(.missingSetting, object: object, "is Shamir-sealed: give the source's unseal keys (--unseal-keys-file or --share)")
            }
            let key = try unsealKeys.combined(threshold: custody.threshold, source: "the unseal keys offered")
            if let recorded = custody.fingerprint {
                guard UnsealKeyMaterial.fingerprint(ofCombinedKey: key) == recorded else {
                    throw OpenBaoError(.custodyMismatch, object: object,
                                       "the unseal keys offered are not the key generation this snapshot was taken under (fingerprint differs); the target was not touched")
                }
                custodyNote = "verified: the unseal keys match the snapshot's fingerprint"
            }
        }

        // 2. The archive: read it from the repository and check its own SHA256SUMS.
        progress?("checking the archive")
        let check = RaftSnapshotCheck(object: object)
        var held = Data()
        let keep = manifest.size <= Self.inMemoryLimit
        if keep { held.reserveCapacity(Int(manifest.size)) }
        do {
            try await repository.restore(manifest) { data in
                try check.consume(data)
                if keep { held.append(data) }
            }
        } catch {
            if let failure = check.failure { throw failure }
            throw error
        }
        let facts = try check.finish()

        // 3. Custody (Transit): the key must decrypt the snapshot's sealed checksums.
        let transitKey = custody.transit ?? transit
        if custody.sealType == .transit {
            guard let transitKey else {
                throw OpenBaoError(.missingSetting, object: object, "is transit-sealed but records no Transit key; name it in the catalog (connection.transit)")
            }
            guard let transitToken else {
                throw OpenBaoError(.missingSetting, object: transitKey.description, "a Transit token is needed to check the key before restoring (connection.transit.token)")
            }
            progress?("checking the Transit key \(transitKey.description)")
            try await TransitProbe.check(transitKey, token: transitToken, sealedSums: facts.transitCiphertext.map { ($0, facts.sums) })
            custodyNote = facts.transitCiphertext == nil
                ? "verified: the Transit key encrypts and decrypts"
                : "verified: the Transit key decrypts the snapshot's sealed checksums"
        }

        // 4. The target: refuse an initialised one unless forced; bootstrap an empty one.
        let token: String
        var bootstrapped = false
        if let targetToken {
            token = targetToken
        } else {
            progress?("initialising the empty target temporarily (1 of 1)")
            let bootstrap = try await client.initialize(shares: 1, threshold: 1, transitSeal: custody.sealType == .transit)
            token = bootstrap.rootToken
            if custody.sealType == .shamir, let key = bootstrap.keys.first {
                _ = try await client.unseal(key: key)
            }
            bootstrapped = true
        }
        try await client.waitUntilActive()
        if custody.sealType == .transit, let transitKey, let transitToken {
            try await requireSameTransitKey(client: client, token: token, key: transitKey, transitToken: transitToken)
        }

        // 5. Restore.
        progress?("restoring raft index \(facts.index) into \(target.address)")
        let body: HTTPClientRequest.Body = keep
            ? .bytes(ByteBuffer(bytes: held))
            : .stream(SnapshotChunks(repository: repository, manifest: manifest), length: .known(manifest.size))
        try await client.restoreSnapshot(body, token: token)

        // 6. Unseal with the source's key.
        var stale = false
        var restarted = false
        switch custody.sealType {
        case .shamir:
            // Another cluster's keyring makes the node seal itself ~6.5 s after the restore. A rollback
            // of the same cluster (same cluster id) may stay unsealed: wait a bounded while for a seal.
            let sameCluster = before.clusterID != nil && before.clusterID == manifest.source["cluster_id"]
            progress?("waiting for the target to seal itself")
            let sealed = try await waitForSeal(client, timeout: sameCluster ? .seconds(10) : .seconds(60), optional: sameCluster)
            if var after = sealed, let unsealKeys {
                if after.t != custody.threshold || after.n != custody.shares {
                    stale = true
                    if let restart = target.restart {
                        progress?("the target reports its old seal config \(after.t)/\(after.n); restarting it")
                        try await restart()
                        restarted = true
                        after = try await client.waitFor("answering after the restart") { _ in true }
                    }
                }
                progress?("unsealing with the source's key (\(after.t) of \(after.n))")
                for key in try unsealKeys.unsealKeys(threshold: after.t, shares: after.n, source: "the unseal keys offered") {
                    after = try await client.unseal(key: key)
                    if !after.sealed { break }
                }
                guard !after.sealed else {
                    throw OpenBaoError(.custodyMismatch, object: target.address, "the target stayed sealed after the source's unseal key was given")
                }
            }
        case .transit:
            // Same Transit key: the node stays unsealed (or unseals itself) with the source's keyring.
            _ = try await client.waitFor("unsealed after the restore", timeout: .seconds(60)) { status in
                !status.sealed && (manifest.source["cluster_id"].map { $0 == status.clusterID } ?? true)
            }
        }
        try await client.waitUntilActive(timeout: .seconds(60))
        let final = try await client.sealStatus()

        // 7. Verify with the source's token.
        progress?("running \(verify.count) verify check\(verify.count == 1 ? "" : "s")")
        let checks = try await runChecks(verify, against: target.address)
        let elapsed = ContinuousClock.now - started
        return OpenBaoRestoreReport(
            snapshot: manifest.id, target: target.address, sealType: custody.sealType.rawValue, custody: custodyNote,
            bootstrappedTarget: bootstrapped, staleSealConfig: stale, restarted: restarted, raftIndex: facts.index, raftTerm: facts.term,
            clusterID: final.clusterID, checks: checks,
            seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }

    /// The node's status once it has sealed itself; nil if `optional` and it stayed unsealed.
    func waitForSeal(_ client: OpenBaoClient, timeout: Duration, optional: Bool) async throws(OpenBaoError) -> SealStatus? {
        do {
            return try await client.waitFor("sealed after the restore", timeout: timeout) { $0.sealed }
        } catch {
            if optional, error.code == .timedOut { return nil }
            throw error
        }
    }

    /// A transit-sealed target must be sealed by the snapshot's Transit key, or it seals itself after
    /// the restore and cannot unseal. Its own snapshot's sealed checksums tell which key seals it.
    func requireSameTransitKey(client: OpenBaoClient, token: String, key: TransitSealKey, transitToken: String) async throws {
        let response = try await client.snapshot(token: token)
        let check = RaftSnapshotCheck(object: "the target's own snapshot")
        for try await buffer in response.body where buffer.readableBytes > 0 {
            try check.consume(Data(buffer.readableBytesView))
        }
        let facts = try check.finish()
        guard let ciphertext = facts.transitCiphertext else { return }
        do {
            try await TransitProbe.check(key, token: transitToken, sealedSums: (ciphertext, facts.sums))
        } catch {
            throw OpenBaoError(.transitUnavailable, object: client.address,
                               "the target is sealed by another Transit key than the snapshot's (\(key.description)); point its seal stanza at that key and restart it (\(error.message))")
        }
    }
}

/// A snapshot's bytes as an async sequence of buffers, read chunk by chunk from the repository
/// (each chunk authenticated and checked against its id), a few chunks ahead.
struct SnapshotChunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let repository: Repository
    let manifest: SnapshotManifest

    struct AsyncIterator: AsyncIteratorProtocol {
        let repository: Repository
        let chunks: [SnapshotManifest.ChunkReference]
        var position = 0
        var loading: [Task<Data, any Error>] = []
        static let ahead = 4

        mutating func next() async throws -> ByteBuffer? {
            while loading.count < Self.ahead, position + loading.count < chunks.count {
                let reference = chunks[position + loading.count]
                let repository = repository
                loading.append(Task { try await repository.loadChunk(reference) })
            }
            guard !loading.isEmpty else { return nil }
            let data = try await loading.removeFirst().value
            position += 1
            return ByteBuffer(bytes: data)
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(repository: repository, chunks: manifest.chunks)
    }
}
