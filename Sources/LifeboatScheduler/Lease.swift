import Foundation
import LifeboatRepository
import Synchronization

/// Who holds the lease: host, process id and a random nonce (a restarted process on the same
/// host, even with the same pid in a container, is a new holder).
public struct LeaseHolder: Sendable, Hashable, Codable, CustomStringConvertible {
    public var host: String
    public var pid: Int32
    public var nonce: String

    public init(host: String, pid: Int32, nonce: String) {
        self.host = host
        self.pid = pid
        self.nonce = nonce
    }

    /// This process, with a fresh nonce.
    public static func current() -> LeaseHolder {
        LeaseHolder(host: ProcessInfo.processInfo.hostName, pid: getpid(), nonce: String(Repository.newDocumentID().prefix(12)))
    }

    /// `host/pid/nonce`.
    public var description: String { "\(host)/\(pid)/\(nonce)" }
}

/// `lease/<epoch>` (sealed, create-once): one record per acquisition or renewal. The newest epoch
/// says who holds the lease; a record is never replaced, so two instances can never both believe
/// a write of theirs made them holder of the same epoch.
public struct LeaseRecord: Sendable, Hashable, Codable {
    public var version: Int
    public var epoch: UInt64
    public var holder: LeaseHolder
    /// When the holder wrote it (holder's wall clock).
    public var written: Date
    /// `written` + ttl: the holder stops running jobs before this unless it renews. Shown to people;
    /// takers do not trust another machine's wall clock (see `LeaseTiming`).
    public var expires: Date
    public var ttl: TimeInterval
    /// Written by a holder that stopped cleanly: the next instance may take over at once.
    public var released: Bool

    public static func objectID(_ epoch: UInt64) -> String { String(format: "%020llu", epoch) }
}

/// How long a lease lasts and how often it is renewed and watched.
///
/// Safety does not depend on clocks agreeing: the holder counts its validity from the moment it
/// *started* the write that renewed (`ttl - margin` of its own monotonic time), while a standby
/// takes over only after seeing the same newest epoch unchanged for `ttl` of *its* monotonic time,
/// counted from when it first saw it (which is after the write began). The holder has therefore
/// stopped, with `margin` to spare for its jobs to wind down, before anyone else starts.
public struct LeaseTiming: Sendable, Hashable {
    public var ttl: TimeInterval
    public var renewInterval: TimeInterval
    /// How often a standby lists the lease (and so the delay in noticing a release).
    public var pollInterval: TimeInterval
    /// The holder stops this long before the ttl runs out; at least the scheduler's cancellation
    /// grace, so jobs have stopped when a taker may start.
    public var margin: TimeInterval

    public init(ttl: TimeInterval, renewInterval: TimeInterval, pollInterval: TimeInterval, margin: TimeInterval) {
        precondition(renewInterval > 0 && pollInterval > 0 && margin > 0, "lease intervals must be positive")
        precondition(renewInterval * 2 + margin <= ttl, "a lease must survive one failed renewal: 2 × renewInterval + margin ≤ ttl")
        self.ttl = ttl
        self.renewInterval = renewInterval
        self.pollInterval = pollInterval
        self.margin = margin
    }

    /// 120 s lease renewed every 30 s; a standby looks every 15 s. After the holder dies a standby
    /// takes over within ttl + pollInterval = 135 s (plus storage latency).
    public static let standard = LeaseTiming(ttl: 120, renewInterval: 30, pollInterval: 15, margin: 40)

    /// The longest time from the holder's death to a standby's takeover.
    public var takeoverBound: TimeInterval { ttl + pollInterval }
}

/// What an instance knows about the lease right now.
public struct LeaseStatus: Sendable, Hashable {
    public var holdsLease: Bool
    /// The newest record seen (this instance's or another's).
    public var newest: LeaseRecord?
}

/// Whether this instance may run jobs, and until when; wakes waiters when that changes.
final class LeaseGate: Sendable {
    private struct State {
        /// Uptime until which jobs may run; nil when not held.
        var validUntil: TimeInterval?
        var epoch: UInt64?
        var newest: LeaseRecord?
        var version: UInt64 = 0
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        var nextWaiter: UInt64 = 0
    }
    private let state = Mutex(State())

    func set(validUntil: TimeInterval?, epoch: UInt64?, newest: LeaseRecord?) {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.validUntil = validUntil
            state.epoch = epoch
            state.newest = newest
            state.version += 1
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    func observe(_ newest: LeaseRecord?) { state.withLock { $0.newest = newest } }

    var snapshot: (validUntil: TimeInterval?, epoch: UInt64?, newest: LeaseRecord?, version: UInt64) {
        state.withLock { ($0.validUntil, $0.epoch, $0.newest, $0.version) }
    }

    /// Returns once the state changed after `version` (or the task is cancelled).
    func changed(after version: UInt64) async {
        let id = state.withLock { state -> UInt64 in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLock { state -> Bool in
                    if state.version != version || Task.isCancelled { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
        }
    }

    /// Whether jobs may run at `uptime`.
    func isHeld(at uptime: TimeInterval) -> Bool {
        guard let validUntil = snapshot.validUntil else { return false }
        return uptime < validUntil
    }

    /// Returns when the lease is held (throws when cancelled first).
    func waitUntilHeld(clock: any SchedulerClock) async throws {
        while true {
            try Task.checkCancellation()
            let current = snapshot
            if let validUntil = current.validUntil, clock.uptime() < validUntil { return }
            await changed(after: current.version)
        }
    }

    /// Returns when the lease is no longer held: taken, released, or its validity ran out without a
    /// renewal (even while a renewal hangs on slow storage). Also returns when cancelled.
    func waitUntilLost(clock: any SchedulerClock) async {
        while !Task.isCancelled {
            let current = snapshot
            guard let validUntil = current.validUntil else { return }
            let left = validUntil - clock.uptime()
            if left <= 0 { return }
            if left.isInfinite {
                await changed(after: current.version)
                continue
            }
            await withTaskGroup(of: Void.self) { group in
                group.addTask { try? await clock.sleep(for: left) }
                group.addTask { await self.changed(after: current.version) }
                _ = await group.next()
                group.cancelAll()
            }
        }
    }
}

/// Acquires, renews, watches and releases the lease in `lease/`, using only create-once writes,
/// listing and reading: the repository's storage is the only coordination point.
struct LeaseKeeper: Sendable {
    let repository: Repository
    let holder: LeaseHolder
    let timing: LeaseTiming
    let clock: any SchedulerClock
    let gate: LeaseGate
    /// Told the newest record and whether this instance holds the lease, after every look.
    let onChange: @Sendable (LeaseRecord?, Bool) -> Void

    /// The newest epoch's record, and every epoch number present.
    func newest() async throws(RepositoryError) -> (record: LeaseRecord?, epochs: [UInt64]) {
        let epochs = try await repository.documentIDs(in: .lease).compactMap(UInt64.init).sorted()
        // Newest first; a record deleted between the listing and the read is skipped.
        for epoch in epochs.reversed() {
            do {
                return (try await repository.loadDocument(LeaseRecord.self, in: .lease, id: LeaseRecord.objectID(epoch)), epochs)
            } catch where error.code == .missingObject {
                continue
            }
        }
        return (nil, epochs)
    }

    /// Creates `epoch`; the record when this instance wrote it and no newer epoch exists, so it
    /// holds the lease. A number can be free again after cleanup deleted it, so a successful create
    /// alone does not prove the write is the newest: the listing afterwards does.
    func claim(epoch: UInt64, released: Bool = false) async throws(RepositoryError) -> LeaseRecord? {
        let now = clock.now()
        let record = LeaseRecord(version: 1, epoch: epoch, holder: holder, written: now, expires: now.addingTimeInterval(timing.ttl),
                                 ttl: timing.ttl, released: released)
        let stored: LeaseRecord
        do {
            stored = try await repository.writeDocument(record, in: .lease, id: LeaseRecord.objectID(epoch))
        } catch where error.code == .conflict {
            return nil  // another instance wrote this epoch first
        }
        let (_, epochs) = try await newest()
        guard epochs.last == epoch else {
            try? await repository.deleteDocument(in: .lease, id: LeaseRecord.objectID(epoch))
            return nil
        }
        // Older epochs are history; two are kept for people looking at the lease.
        for old in epochs where old + 2 < epoch {
            try? await repository.deleteDocument(in: .lease, id: LeaseRecord.objectID(old))
        }
        return stored
    }

    private func lose() {
        let newest = gate.snapshot.newest
        gate.set(validUntil: nil, epoch: nil, newest: newest)
        onChange(newest, false)
    }

    private func hold(_ record: LeaseRecord, since started: TimeInterval) {
        gate.set(validUntil: started + timing.ttl - timing.margin, epoch: record.epoch, newest: record)
        onChange(record, true)
    }

    /// Runs until cancelled: as standby, watches and takes over; as holder, renews.
    func run() async {
        var held: UInt64?
        var observed: (epoch: UInt64, since: TimeInterval)?
        while !Task.isCancelled {
            let started = clock.uptime()
            if let epoch = held {
                // Renew; the validity counts from the start of the write.
                do {
                    if let record = try await claim(epoch: epoch + 1) {
                        held = record.epoch
                        hold(record, since: started)
                        try? await clock.sleep(for: max(0, started + timing.renewInterval - clock.uptime()))
                    } else {
                        held = nil
                        lose()
                    }
                } catch {
                    // Storage trouble: jobs go on until the validity ends (the gate's watcher stops
                    // them then, even while this write hangs), and renewing is tried again sooner.
                    if let validUntil = gate.snapshot.validUntil, clock.uptime() >= validUntil {
                        held = nil
                        lose()
                    }
                    try? await clock.sleep(for: min(timing.renewInterval, timing.pollInterval) / 2)
                }
                continue
            }
            do {
                let (record, _) = try await newest()
                // After the listing answered: the record was visible, so its write had begun.
                let seenAt = clock.uptime()
                gate.observe(record)
                onChange(record, false)
                var mayTake = record == nil
                if let record {
                    if record.released || record.holder == holder {
                        mayTake = true
                    } else if let seen = observed, seen.epoch == record.epoch {
                        mayTake = seenAt - seen.since >= timing.ttl
                    } else {
                        observed = (record.epoch, seenAt)
                    }
                }
                if mayTake, let claimed = try await claim(epoch: (record?.epoch ?? 0) + 1) {
                    held = claimed.epoch
                    observed = nil
                    hold(claimed, since: started)
                    try? await clock.sleep(for: max(0, started + timing.renewInterval - clock.uptime()))
                    continue
                }
            } catch {
                // Cannot see the lease: stay standby and look again.
            }
            try? await clock.sleep(for: timing.pollInterval)
        }
    }

    /// Hands the lease over at once (a clean stop): a `released` record after the held epoch.
    func release() async {
        guard let epoch = gate.snapshot.epoch else { return }
        lose()
        _ = try? await claim(epoch: epoch + 1, released: true)
    }
}
