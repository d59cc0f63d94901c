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
    /// The Transit key the target's own seal stanza names, when the caller knows it (a node it
    /// configured itself). `sys/seal-status` does not tell, so without it a target sealed by another
    /// key is found only after the temporary initialisation.
    public var transitSeal: TransitSealKey?
    /// Record in the repository that Lifeboat is initialising the target (see `BootstrapRecord`);
    /// off only for a scratch node that is thrown away after a drill.
    public var recordBootstrap: Bool

    public init(address: String, token: String? = nil, force: Bool = false, restart: (@Sendable () async throws -> Void)? = nil,
                transitSeal: TransitSealKey? = nil, recordBootstrap: Bool = true) {
        self.address = address
        self.token = token
        self.force = force
        self.restart = restart
        self.transitSeal = transitSeal
        self.recordBootstrap = recordBootstrap
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
    /// The target as a restore finds it, read only: its seal type must be the snapshot's, and an
    /// initialised one needs `--force`, an unsealed state and one of its tokens. Returns that token.
    func checkTarget(_ custody: SealCustody, _ target: OpenBaoRestoreTarget) async throws -> (token: String?, before: SealStatus) {
        let client = OpenBaoClient(address: target.address)
        let before = try await client.sealStatus()
        guard before.type == custody.sealType.rawValue else {
            throw OpenBaoError(.requestFailed, object: target.address,
                               "the target is \(before.type)-sealed but the snapshot is \(custody.sealType.rawValue)-sealed; configure the target's seal like the source's")
        }
        guard before.initialized else { return (nil, before) }
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
        return (token, before)
    }

    /// Shamir custody: the offered keys must combine and be the snapshot's key generation.
    func checkShamirCustody(_ custody: SealCustody, object: String) throws -> String {
        guard custody.sealType == .shamir else { return "unverified" }
        guard let unsealKeys else {
            throw OpenBaoError(.missingSetting, object: object, "is Shamir-sealed: give the source's unseal keys (--unseal-keys-file or --share)")
        }
        let key = try unsealKeys.combined(threshold: custody.threshold, source: "the unseal keys offered")
        guard let recorded = custody.fingerprint else { return "unverified" }
        guard UnsealKeyMaterial.fingerprint(ofCombinedKey: key) == recorded else {
            throw OpenBaoError(.custodyMismatch, object: object,
                               "the unseal keys offered are not the key generation this snapshot was taken under (fingerprint differs); the target was not touched")
        }
        return "verified: the unseal keys match the snapshot's fingerprint"
    }

    /// Every reason `restore` would refuse before touching the target, checked now without changing
    /// anything: the target's state, the unseal keys' generation, the Transit key and a target seal
    /// stanza naming another one. The archive itself is checked by the restore (it means reading it).
    public func preflight(_ manifest: SnapshotManifest, into target: OpenBaoRestoreTarget) async -> [String] {
        let object = "snapshot \(manifest.id.prefix(8))"
        guard manifest.kind == Self.kind, let custody = SealCustody(sourceFacts: manifest.source) else {
            return ["\(object) is not an OpenBao snapshot (kind \(manifest.kind))"]
        }
        var problems: [String] = []
        do { _ = try await checkTarget(custody, target) } catch { problems.append("\(error)") }
        do { _ = try checkShamirCustody(custody, object: object) } catch { problems.append("\(error)") }
        if custody.sealType == .transit {
            if let transitKey = custody.transit ?? transit {
                if let transitToken {
                    do { try await TransitProbe.check(transitKey, token: transitToken, sealedSums: nil) } catch { problems.append("\(error)") }
                } else {
                    problems.append("a Transit token is needed to check the key \(transitKey.description) before restoring (connection.transit.token)")
                }
                if let targetSeal = target.transitSeal, targetSeal != transitKey {
                    problems.append("the target's seal stanza names the Transit key \(targetSeal.description), but \(object) is sealed by \(transitKey.description)")
                }
            } else {
                problems.append("\(object) is transit-sealed but records no Transit key; name it in the catalog (connection.transit)")
            }
        }
        return problems
    }

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
        let (targetToken, before) = try await checkTarget(custody, target)
        let client = OpenBaoClient(address: target.address)

        // 1. Custody (Shamir): the offered keys must be the snapshot's key generation.
        progress?("checking custody: \(custody.summary)")
        var custodyNote = try checkShamirCustody(custody, object: object)

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

        // A target whose seal stanza is known to name another Transit key is refused untouched.
        if custody.sealType == .transit, let transitKey, let targetSeal = target.transitSeal, targetSeal != transitKey {
            throw OpenBaoError(.sealMismatch, object: target.address,
                               "the target's seal stanza names the Transit key \(targetSeal.description), but snapshot \(manifest.id.prefix(8)) is sealed by \(transitKey.description); the target was not touched. \(Self.sealStanzaAdvice(transitKey)) and restart it, then restore again")
        }

        // 4. The target: refuse an initialised one unless forced; bootstrap an empty one. From the
        // bootstrap until OpenBao accepts the snapshot, the repository records that Lifeboat holds
        // the only credentials of an empty barrier, so a crash there is never taken for a restored cluster.
        let token: String
        var bootstrapped = false
        if let targetToken {
            token = targetToken
        } else {
            if target.recordBootstrap {
                try await BootstrapRecord(snapshot: manifest.id).write(in: repository, store: store, node: target.address)
            }
            progress?("initialising the empty target temporarily (1 of 1)")
            let bootstrap = try await client.initialize(shares: 1, threshold: 1, transitSeal: custody.sealType == .transit)
            token = bootstrap.rootToken
            if custody.sealType == .shamir, let key = bootstrap.keys.first {
                _ = try await client.unseal(key: key)
            }
            bootstrapped = true
        }
        try await client.waitUntilActive()
        // Only a node's own snapshot tells which Transit key seals it. An initialised target (its
        // data) is refused before anything changes; a bootstrapped one holds nothing yet, so the
        // restore goes ahead: the node then seals itself and opens the restored data as soon as its
        // seal stanza names the snapshot's key (PROTOCOLS.md §1), instead of an empty barrier
        // nobody can unseal or re-initialise.
        var sealedByAnotherKey: OpenBaoError?
        if custody.sealType == .transit, let transitKey, let transitToken {
            sealedByAnotherKey = try await transitSealMismatch(client: client, token: token, key: transitKey, transitToken: transitToken)
            if let mismatch = sealedByAnotherKey, !bootstrapped {
                throw OpenBaoError(.sealMismatch, object: target.address,
                                   "\(mismatch.message); the target was not changed. \(Self.sealStanzaAdvice(transitKey)) and restart it, then restore again")
            }
        }

        // 5. Restore.
        progress?("restoring raft index \(facts.index) into \(target.address)")
        let body: HTTPClientRequest.Body = keep
            ? .bytes(ByteBuffer(bytes: held))
            : .stream(SnapshotChunks(repository: repository, manifest: manifest), length: .known(manifest.size))
        try await client.restoreSnapshot(body, token: token)
        if bootstrapped, target.recordBootstrap {
            try await BootstrapRecord.clear(in: repository, store: store, node: target.address)
        }
        if let mismatch = sealedByAnotherKey, let transitKey {
            let sealed = (try? await client.waitFor("sealed after the restore", timeout: .seconds(30)) { $0.sealed }) != nil
            throw OpenBaoError(.sealMismatch, object: target.address,
                               "\(mismatch.message). Snapshot \(manifest.id.prefix(8)) was restored into it anyway, and it \(sealed ? "sealed itself" : "should seal itself"): it cannot open the restored data with that key. "
                               + "\(Self.sealStanzaAdvice(transitKey)) and restart it: it then unseals itself with the source's data (cluster id \(manifest.source["cluster_id"] ?? "of the source"), recovery \(custody.threshold) of \(custody.shares)) and the source's tokens work; nothing else is needed")
        }

        // 6. Unseal with the source's key.
        let sameCluster = !bootstrapped && before.clusterID != nil && before.clusterID == manifest.source["cluster_id"]
        var stale = false
        var restarted = false
        switch custody.sealType {
        case .shamir:
            // Another cluster's keyring makes the node seal itself ~6.5 s after the restore. A rollback
            // of the same cluster (same cluster id) may stay unsealed: wait a bounded while for a seal.
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
        var checks = try await runChecks(verify, against: target.address)
        checks += await cutoverChecks(client, previousToken: token, sameCluster: sameCluster)
        let elapsed = ContinuousClock.now - started
        return OpenBaoRestoreReport(
            snapshot: manifest.id, target: target.address, sealType: custody.sealType.rawValue, custody: custodyNote,
            bootstrappedTarget: bootstrapped, staleSealConfig: stale, restarted: restarted, raftIndex: facts.index, raftTerm: facts.term,
            clusterID: final.clusterID, checks: checks,
            seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }

    /// The credential cutover, as gate checks: the source's token is accepted on the target, and the
    /// token the target had before (its own, or the bootstrap's) is not. A token still accepted means
    /// the target kept its own token store: the restore did not take.
    func cutoverChecks(_ client: OpenBaoClient, previousToken: String, sameCluster: Bool) async -> [CheckResult] {
        func lookup(_ token: String) async -> Int? {
            try? await client.send(.GET, "auth/token/lookup-self", token: token).status
        }
        let sourceCheck = "credential cutover: the source's token is accepted"
        var results: [CheckResult]
        if let token {
            let status = await lookup(token)
            results = [CheckResult(check: sourceCheck, passed: status == 200,
                                   detail: status == 200 ? "auth/token/lookup-self answered 200" : "auth/token/lookup-self answered \(status.map(String.init) ?? "nothing")")]
        } else {
            results = [CheckResult(check: sourceCheck, passed: false, detail: "no source token to check with")]
        }
        let previousCheck = "credential cutover: the target's previous token is refused"
        if sameCluster {
            results.append(CheckResult(check: previousCheck, passed: true, detail: "not applicable: the target was the snapshot's own cluster (a rollback), so its tokens are the snapshot's"))
        } else if previousToken == token {
            results.append(CheckResult(check: previousCheck, passed: true, detail: "not applicable: the target's token was the source's"))
        } else {
            let status = await lookup(previousToken)
            let detail = switch status {
            case 403: "auth/token/lookup-self answered 403"
            case 200: "still accepted: the target kept its own token store"
            default: "auth/token/lookup-self answered \(status.map(String.init) ?? "nothing")"
            }
            results.append(CheckResult(check: previousCheck, passed: status == 403, detail: detail))
        }
        return results
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
    /// the restore and cannot unseal. Its own snapshot's sealed checksums tell which key seals it:
    /// the error describing another key, or nil when it is the snapshot's.
    func transitSealMismatch(client: OpenBaoClient, token: String, key: TransitSealKey, transitToken: String) async throws -> OpenBaoError? {
        let response = try await client.snapshot(token: token)
        let check = RaftSnapshotCheck(object: "the target's own snapshot")
        for try await buffer in response.body where buffer.readableBytes > 0 {
            try check.consume(Data(buffer.readableBytesView))
        }
        let facts = try check.finish()
        guard let ciphertext = facts.transitCiphertext else { return nil }
        do {
            try await TransitProbe.check(key, token: transitToken, sealedSums: (ciphertext, facts.sums))
            return nil
        } catch {
            return OpenBaoError(.sealMismatch, object: client.address,
                                "the target is sealed by another Transit key than the snapshot's (\(key.description)): \(error.message)")
        }
    }

    /// What the operator sets so a node opens a snapshot sealed by `key`.
    static func sealStanzaAdvice(_ key: TransitSealKey) -> String {
        "Set the target's seal \"transit\" stanza to address = \"\(key.address)\", mount_path = \"\(key.mount)/\", key_name = \"\(key.keyName)\""
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
