import Foundation
import LifeboatCore
import LifeboatRepository

/// What the OpenBao change poll reads: three cheap calls, no snapshot.
public struct OpenBaoState: Sendable, Hashable {
    /// The raft index (any write moves it).
    public var raftIndex: UInt64
    /// The keyring term from `sys/key-status` (a `bao operator rotate` moves it).
    public var keyringTerm: Int
    /// A fingerprint of the seal configuration (type, shares, threshold, recovery settings): a
    /// rekey or a seal migration changes it.
    public var seal: String

    public init(raftIndex: UInt64, keyringTerm: Int, seal: String) {
        self.raftIndex = raftIndex
        self.keyringTerm = keyringTerm
        self.seal = seal
    }
}

/// The OpenBao store's job: poll often, snapshot on rotation at once, and at each scheduled slot
/// either snapshot (something changed) or record that the newest snapshot is still current.
///
/// Every recorded run carries the watch's whole state in its observations — the state read just
/// before the newest snapshot (`raft_index`, `keyring_term`, `seal`), that snapshot's id
/// (`snapshot`) and the last slot served (`slot`) — so a restarted or standby instance continues
/// from the history alone. Polls that find nothing to do are not recorded.
public enum OpenBaoWatch {
    public enum Decision: Sendable, Hashable {
        /// Take a snapshot tagged `reason:<reason>`: `rotation` (keyring or seal changed), `schedule`
        /// (a slot, and the raft index moved), `initial` (no snapshot state known yet).
        case snapshot(reason: String)
        /// A slot, and nothing changed since `snapshot`: record that it is current now.
        case unchanged(snapshot: String)
        /// Between slots, no rotation: nothing to do.
        case nothing
    }

    /// The state the newest snapshot was taken at, and that snapshot's id.
    public struct Baseline: Sendable, Hashable {
        public var state: OpenBaoState
        public var snapshot: String
        public init(state: OpenBaoState, snapshot: String) {
            self.state = state
            self.snapshot = snapshot
        }
    }

    public static func decide(baseline: Baseline?, current: OpenBaoState, atSlot: Bool) -> Decision {
        guard let baseline else { return .snapshot(reason: "initial") }
        if current.keyringTerm != baseline.state.keyringTerm || current.seal != baseline.state.seal {
            return .snapshot(reason: "rotation")
        }
        guard atSlot else { return .nothing }
        // Equal raft index: not one write since the state the snapshot was taken after.
        return current.raftIndex == baseline.state.raftIndex ? .unchanged(snapshot: baseline.snapshot) : .snapshot(reason: "schedule")
    }

    static func observations(baseline: Baseline, slot: Date?) -> [String: String] {
        var values = ["raft_index": String(baseline.state.raftIndex), "keyring_term": String(baseline.state.keyringTerm),
                      "seal": baseline.state.seal, "snapshot": baseline.snapshot]
        if let slot { values["slot"] = String(format: "%.3f", slot.timeIntervalSince1970) }
        return values
    }

    static func read(_ observations: [String: String]) -> (baseline: Baseline?, slot: Date?) {
        let slot = observations["slot"].flatMap(Double.init).map { Date(timeIntervalSince1970: $0) }
        guard let index = observations["raft_index"].flatMap(UInt64.init), let term = observations["keyring_term"].flatMap(Int.init),
              let seal = observations["seal"], let snapshot = observations["snapshot"] else { return (nil, slot) }
        return (Baseline(state: OpenBaoState(raftIndex: index, keyringTerm: term, seal: seal), snapshot: snapshot), slot)
    }

    /// The job `openbao-watch.<store>`: runs every `poll`; `slots` are the store's cadence.
    /// `probe` reads the state; `snapshot` takes one tagged `reason:<reason>` and returns its ids
    /// (the newest is the one later slots may declare current).
    public static func job(
        store: String, poll: TimeSpan, slots: Schedule, repository: Repository, retry: RetryPolicy = .standard,
        probe: @escaping @Sendable () async throws -> OpenBaoState,
        snapshot: @escaping @Sendable (_ reason: String) async throws -> [String]
    ) -> JobSpec {
        JobSpec(id: JobID(.openbaoWatch, store), kind: .openbaoWatch, store: store,
                trigger: .schedule(Schedule([.interval(poll)], timeZone: slots.timeZone)), retry: retry, writesStartRecord: false) { context in
            let (baseline, lastSlot) = read(context.previousSuccess?.outcome?.observations ?? [:])
            // A slot is due when the slot schedule's next time after the last one served has come.
            let atSlot = slots.nextDue(after: lastSlot, now: context.started).map { $0 <= context.started } ?? false
            let current = try await probe()
            switch decide(baseline: baseline, current: current, atSlot: atSlot) {
            case .snapshot(let reason):
                let ids = try await snapshot(reason)
                guard let newest = ids.last else {
                    throw SchedulerError("the OpenBao snapshot of '\(store)' returned no snapshot id")
                }
                let served = atSlot ? context.started : lastSlot
                return JobOutcome(snapshotIDs: ids, summary: "snapshot \(newest.prefix(12)) (reason:\(reason))",
                                  observations: observations(baseline: Baseline(state: current, snapshot: newest), slot: served))
            case .unchanged(let snapshotID):
                try await repository.recordCurrency(SnapshotCurrency(
                    store: store, snapshot: snapshotID, checked: context.started,
                    basis: ["raft_index": String(current.raftIndex), "keyring_term": String(current.keyringTerm), "seal": current.seal],
                    run: "\(context.job)/\(context.run)"))
                return JobOutcome(summary: "unchanged since snapshot \(snapshotID.prefix(12)); current through this run",
                                  observations: observations(baseline: baseline!, slot: context.started))
            case .nothing:
                return JobOutcome(observations: context.previousSuccess?.outcome?.observations ?? [:], recorded: false)
            }
        }
    }
}
