import Foundation
import Synchronization

/// The scheduler's sense of time, injected so tests run days of schedule in milliseconds.
///
/// `now` is wall time (cron slots, records); `uptime` never jumps (lease validity, which must not
/// depend on two machines agreeing on the wall time).
public protocol SchedulerClock: Sendable {
    func now() -> Date
    /// Seconds on a clock that only moves forward.
    func uptime() -> TimeInterval
    /// Returns at `deadline` (wall time) or throws `CancellationError` when the task is cancelled.
    func sleep(until deadline: Date) async throws
    /// Returns after `seconds` of uptime, or throws `CancellationError`.
    func sleep(for seconds: TimeInterval) async throws
}

/// The machine's clocks.
public struct SystemClock: SchedulerClock {
    public init() {}
    public func now() -> Date { Date() }
    public func uptime() -> TimeInterval {
        let elapsed = ContinuousClock.now - Self.origin
        return TimeInterval(elapsed.components.seconds) + TimeInterval(elapsed.components.attoseconds) / 1e18
    }
    private static let origin = ContinuousClock.now

    public func sleep(until deadline: Date) async throws {
        // In steps of at most a minute, so a wall clock set forward or back is noticed.
        while true {
            let left = deadline.timeIntervalSince(Date())
            if left <= 0 { return }
            try await Task.sleep(for: .seconds(min(left, 60)))
        }
    }

    public func sleep(for seconds: TimeInterval) async throws {
        try await Task.sleep(for: .seconds(max(0, seconds)))
    }
}

/// A clock that moves only when a test says so. Sleepers wake when `advance` passes their deadline.
public final class ManualClock: SchedulerClock {
    private struct Sleeper {
        var deadline: TimeInterval
        var continuation: CheckedContinuation<Void, any Error>
    }
    private struct State {
        var offset: TimeInterval = 0
        var sleepers: [UInt64: Sleeper] = [:]
        var nextID: UInt64 = 0
    }
    private let start: Date
    private let state = Mutex(State())

    public init(start: Date) { self.start = start }

    public func now() -> Date { start.addingTimeInterval(state.withLock { $0.offset }) }
    public func uptime() -> TimeInterval { state.withLock { $0.offset } }

    public func sleep(until deadline: Date) async throws {
        try await sleep(untilOffset: deadline.timeIntervalSince(start))
    }

    public func sleep(for seconds: TimeInterval) async throws {
        try await sleep(untilOffset: uptime() + max(0, seconds))
    }

    private func sleep(untilOffset deadline: TimeInterval) async throws {
        try Task.checkCancellation()
        let id = state.withLock { state -> UInt64 in
            state.nextID += 1
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                // Checked under the lock the cancellation handler also takes, so a cancellation
                // that came before this registration is not missed.
                let resumeNow = state.withLock { state -> Bool? in
                    if Task.isCancelled { return false }
                    if deadline <= state.offset { return true }
                    state.sleepers[id] = Sleeper(deadline: deadline, continuation: continuation)
                    return nil
                }
                switch resumeNow {
                case true?: continuation.resume()
                case false?: continuation.resume(throwing: CancellationError())
                case nil: break
                }
            }
        } onCancel: {
            let sleeper = state.withLock { $0.sleepers.removeValue(forKey: id) }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Moves time forward and wakes every sleeper whose deadline has come.
    public func advance(by seconds: TimeInterval) {
        let woken = state.withLock { state -> [Sleeper] in
            state.offset += seconds
            let due = state.sleepers.filter { $0.value.deadline <= state.offset }
            for id in due.keys { state.sleepers.removeValue(forKey: id) }
            return Array(due.values)
        }
        for sleeper in woken { sleeper.continuation.resume() }
    }

    public func advance(to date: Date) { advance(by: max(0, date.timeIntervalSince(now()))) }

    /// How many tasks are sleeping on this clock now.
    public var sleeperCount: Int { state.withLock { $0.sleepers.count } }

    /// The earliest wake-up among the sleepers, as wall time.
    public var nextWakeUp: Date? {
        state.withLock { $0.sleepers.values.map(\.deadline).min() }.map { start.addingTimeInterval($0) }
    }
}
