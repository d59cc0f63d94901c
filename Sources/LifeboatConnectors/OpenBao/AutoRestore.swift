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
        /// Present but another key generation than the newest snapshot's.
        case mismatch
        /// The newest snapshot records no custody fingerprint, so the keys cannot be proven.
        case unrecorded
        /// Not looked at (an earlier fact already decides).
        case unchecked
    }

    /// A node reporting an initialised barrier, if any.
    public var initializedNode: String?
    /// Nodes that did not answer `sys/seal-status`.
    public var unreachableNodes: [String]
    /// The newest snapshot of the store, if the repository has one.
    public var newestSnapshot: String?
    public var keys: Keys
    /// Why the keys are in that state, in words (never key material).
    public var keysDetail: String

    public init(initializedNode: String? = nil, unreachableNodes: [String] = [], newestSnapshot: String? = nil,
                keys: Keys = .unchecked, keysDetail: String = "") {
        self.initializedNode = initializedNode
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
    /// | # | barrier initialised on a node | a node silent | snapshot | keys        | action  |
    /// |---|-------------------------------|---------------|----------|-------------|---------|
    /// | 1 | yes                           | any           | any      | any         | skip    |
    /// | 2 | no                            | yes           | any      | any         | refuse  |
    /// | 3 | no                            | no            | none     | any         | abort   |
    /// | 4 | no                            | no            | yes      | missing     | refuse  |
    /// | 5 | no                            | no            | yes      | mismatch    | refuse  |
    /// | 6 | no                            | no            | yes      | unrecorded  | refuse  |
    /// | 7 | no                            | no            | yes      | match       | restore |
    public static func decide(_ facts: AutoRestoreFacts) -> AutoRestoreDecision {
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
            return .init(action: .refuse, reason: "the stored unseal keys are not snapshot \(snapshot.prefix(8))'s key generation\(detail)")
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
    /// stand in for keys when the newest snapshot is transit-sealed.
    public static func gather(
        nodes: [String], repository: () async throws -> Repository, store: String,
        keys: UnsealKeyMaterial?, keysGoneReason: String, transit: TransitSealKey? = nil, transitToken: String? = nil
    ) async throws -> (facts: AutoRestoreFacts, snapshot: SnapshotManifest?) {
        var facts = AutoRestoreFacts()
        for node in nodes {
            do {
                let status = try await OpenBaoClient(address: node).sealStatus()
                if status.initialized {
                    facts.initializedNode = node
                    return (facts, nil)
                }
            } catch {
                facts.unreachableNodes.append(node)
            }
        }
        guard facts.unreachableNodes.isEmpty else { return (facts, nil) }
        let listing = try await repository().snapshotsToChooseFrom()
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
