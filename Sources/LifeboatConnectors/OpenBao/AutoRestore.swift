import Foundation
import LifeboatRepository

/// What the auto-restore guard (an init step in front of OpenBao) found, before it decides anything.
public struct AutoRestoreFacts: Sendable, Hashable, Codable {
    /// The state of the stored unseal keys (Shamir) or Transit key (transit) against the newest snapshot.
    public enum Keys: String, Sendable, Hashable, Codable {
        /// Present and the newest snapshot's key generation (fingerprint equal; Transit key encrypts and decrypts).
        case match
        /// Gone: the key file or reference does not exist or is empty; the Transit key is unreachable.
        case missing
        /// Present but another key generation than the newest snapshot's (Transit: the node's own seal
        /// stanza names another key).
        case mismatch
        /// The newest snapshot records no custody fingerprint, so the keys cannot be proven.
        case unrecorded
        /// Not looked at (an earlier fact already decides).
        case unchecked
    }

    /// A node reporting an initialised barrier, if any.
    public var initializedNode: String?
    /// Lifeboat's own record that it initialised `initializedNode` for a restore that OpenBao never
    /// accepted: that barrier is empty and nobody holds its credentials.
    public var unfinishedRestore: BootstrapRecord?
    /// Nodes that did not answer `sys/seal-status`.
    public var unreachableNodes: [String]
    /// The newest snapshot of the store, if the repository has one.
    public var newestSnapshot: String?
    public var keys: Keys
    /// Why the keys are in that state, in words (never key material).
    public var keysDetail: String

    public init(initializedNode: String? = nil, unfinishedRestore: BootstrapRecord? = nil, unreachableNodes: [String] = [],
                newestSnapshot: String? = nil, keys: Keys = .unchecked, keysDetail: String = "") {
        self.initializedNode = initializedNode
        self.unfinishedRestore = unfinishedRestore
        self.unreachableNodes = unreachableNodes
        self.newestSnapshot = newestSnapshot
        self.keys = keys
        self.keysDetail = keysDetail
    }
}

/// What the guard does.
public enum AutoRestoreAction: String, Sendable, Hashable, Codable {
    /// Restore the newest snapshot into the (empty) node.
    case restore
    /// Do nothing: the cluster already has its barrier (exit 0).
    case skip
    /// Do nothing and fail: a restore is needed but cannot be proven safe (keys gone or wrong, a node silent).
    case refuse
    /// Do nothing and fail: there is nothing to restore. Never initialise a fresh, empty barrier instead.
    case abort
}

/// The guard's decision and the reason for it; `decide` is a pure function of the facts.
public struct AutoRestoreDecision: Sendable, Hashable, Codable {
    public var action: AutoRestoreAction
    public var reason: String

    /// Exit 0 for restore and skip, non-zero for refuse and abort.
    public var succeeded: Bool { action == .restore || action == .skip }

    /// The decision table, first matching row wins:
    ///
    /// | # | barrier initialised on a node             | a node silent | snapshot | keys        | action  |
    /// |---|-------------------------------------------|---------------|----------|-------------|---------|
    /// | 0 | yes, by Lifeboat, restore never accepted  | any           | any      | any         | refuse  |
    /// | 1 | yes                                       | any           | any      | any         | skip    |
    /// | 2 | no                                        | yes           | any      | any         | refuse  |
    /// | 3 | no                                        | no            | none     | any         | abort   |
    /// | 4 | no                                        | no            | yes      | missing     | refuse  |
    /// | 5 | no                                        | no            | yes      | mismatch    | refuse  |
    /// | 6 | no                                        | no            | yes      | unrecorded  | refuse  |
    /// | 7 | no                                        | no            | yes      | match       | restore |
    public static func decide(_ facts: AutoRestoreFacts) -> AutoRestoreDecision {
        if let node = facts.initializedNode, let unfinished = facts.unfinishedRestore {
            return .init(action: .refuse, reason: "\(node) reports an initialised barrier, but Lifeboat initialised it (\(unfinished.holder), \(ISO8601DateFormatter().string(from: unfinished.started))) to restore snapshot \(unfinished.snapshot.prefix(8)) and OpenBao never accepted the snapshot: the barrier is empty and nobody holds its credentials. Stop the node, empty its raft storage directory, start it and run auto-restore again")
        }
        if let node = facts.initializedNode {
            return .init(action: .skip, reason: "\(node) reports an initialised barrier: the cluster has its data, nothing to restore")
        }
        if !facts.unreachableNodes.isEmpty {
            return .init(action: .refuse, reason: "\(facts.unreachableNodes.joined(separator: ", ")) did not answer: cannot prove that no node holds an initialised barrier")
        }
        guard let snapshot = facts.newestSnapshot else {
            return .init(action: .abort, reason: "the repository holds no snapshot of this store: nothing to restore (and the guard never initialises an empty barrier)")
        }
        let detail = facts.keysDetail.isEmpty ? "" : " (\(facts.keysDetail))"
        switch facts.keys {
        case .match:
            return .init(action: .restore, reason: "no node is initialised, snapshot \(snapshot.prefix(8)) exists and the stored keys are its key generation\(detail)")
        case .missing:
            return .init(action: .refuse, reason: "the stored unseal keys are gone\(detail): a restore could not be unsealed")
        case .mismatch:
            return .init(action: .refuse, reason: "the stored keys are not snapshot \(snapshot.prefix(8))'s key generation\(detail)")
        case .unrecorded:
            return .init(action: .refuse, reason: "snapshot \(snapshot.prefix(8)) records no key fingerprint, so the stored keys cannot be proven; restore by hand with `lifeboat restore openbao`")
        case .unchecked:
            return .init(action: .refuse, reason: "the stored keys were not checked")
        }
    }
}

/// Gathers the facts for the guard: each node's barrier, the newest snapshot, and the keys against it.
public enum AutoRestoreGuard {
    /// `keys` is the stored key material (nil when gone; `keysGoneReason` says why); `transit`/`transitToken`
    /// stand in for keys when the newest snapshot is transit-sealed. `nodeSeal` is the Transit key the
    /// first node's own configuration names, when it was given: another key than the snapshot's is a
    /// mismatch found before anything is touched.
    public static func gather(
        nodes: [String], repository: () async throws -> Repository, store: String,
        keys: UnsealKeyMaterial?, keysGoneReason: String, transit: TransitSealKey? = nil, transitToken: String? = nil,
        nodeSeal: TransitSealKey? = nil
    ) async throws -> (facts: AutoRestoreFacts, snapshot: SnapshotManifest?) {
        var facts = AutoRestoreFacts()
        var opened: Repository?
        func open() async throws -> Repository {
            if let opened { return opened }
            let repository = try await repository()
            opened = repository
            return repository
        }
        for node in nodes {
            let status: SealStatus
            do {
                status = try await OpenBaoClient(address: node).sealStatus()
            } catch {
                facts.unreachableNodes.append(node)
                continue
            }
            guard status.initialized else { continue }
            facts.initializedNode = node
            // Lifeboat bootstraps 1 of 1; only such a node can be one it left unfinished, so a cluster
            // split any other way starts without asking the repository.
            if status.t == 1, status.n == 1 {
                facts.unfinishedRestore = try await BootstrapRecord.load(from: try await open(), store: store, node: node)
            }
            return (facts, nil)
        }
        guard facts.unreachableNodes.isEmpty else { return (facts, nil) }
        let listing = try await open().snapshotsToChooseFrom()
        guard let newest = listing.manifests.last(where: { $0.store == store && $0.kind == OpenBaoConnector.kind }) else { return (facts, nil) }
        facts.newestSnapshot = newest.id
        guard let custody = SealCustody(sourceFacts: newest.source) else {
            facts.keys = .unrecorded
            return (facts, newest)
        }
        switch custody.sealType {
        case .shamir:
            guard let keys else {
                facts.keys = .missing
                facts.keysDetail = keysGoneReason
                return (facts, newest)
            }
            guard let recorded = custody.fingerprint else {
                facts.keys = .unrecorded
                return (facts, newest)
            }
            do {
                let key = try keys.combined(threshold: custody.threshold, source: "the stored unseal keys")
                let matches = UnsealKeyMaterial.fingerprint(ofCombinedKey: key) == recorded
                facts.keys = matches ? .match : .mismatch
                facts.keysDetail = matches ? "fingerprint \(recorded)" : "fingerprint differs from \(recorded)"
            } catch {
                facts.keys = .mismatch
                facts.keysDetail = error.message
            }
        case .transit:
            guard let key = custody.transit ?? transit else {
                facts.keys = .unrecorded
                return (facts, newest)
            }
            if let nodeSeal, nodeSeal != key {
                facts.keys = .mismatch
                facts.keysDetail = "the node's seal stanza names the Transit key \(nodeSeal.description), the snapshot is sealed by \(key.description)"
                return (facts, newest)
            }
            guard let transitToken else {
                facts.keys = .missing
                facts.keysDetail = "no Transit token to check \(key.description) with"
                return (facts, newest)
            }
            do {
                try await TransitProbe.check(key, token: transitToken)
                facts.keys = .match
                facts.keysDetail = "Transit key \(key.description) encrypts and decrypts"
            } catch {
                facts.keys = .missing
                facts.keysDetail = error.message
            }
        }
        return (facts, newest)
    }
}
