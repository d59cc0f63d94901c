import CoreMetrics
import Foundation
import LifeboatCore
@testable import LifeboatRepository
import LifeboatStorage
import Synchronization
import Testing
@testable import LifeboatScheduler

let testScrypt = KeyFile.ScryptParameters(n: 1 << 10, r: 8, p: 1)

func makeRepository(_ backend: any Backend = MemoryBackend()) async throws -> Repository {
    try await Repository.initialize(backend: backend, passphrase: "correct horse", scrypt: testScrypt)
}

func hourly() -> Schedule { Schedule([.interval(TimeSpan(seconds: 3600))]) }

struct TestFailure: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// Polls `condition` in real time (the scheduler works in other tasks) until it holds.
func eventually(_ what: String, within seconds: Double = 20, _ condition: () async throws -> Bool) async throws {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(2))
    }
    throw TestFailure(message: "timed out waiting for: \(what)")
}

/// Records each body's start and end (in the scheduler clock's time) and how many ran at once.
final class RunLog: Sendable {
    struct Entry: Sendable {
        var job: String
        var started: Date
        var ended: Date?
        var instance: String
    }
    private struct State {
        var entries: [Entry] = []
        var concurrent = 0
        var maximumConcurrent = 0
        var naps: [Int: Date] = [:]
        var nextNap = 0
    }
    private let state = Mutex(State())

    func begin(_ job: String, at date: Date, instance: String = "") -> Int {
        state.withLock { state in
            state.concurrent += 1
            state.maximumConcurrent = max(state.maximumConcurrent, state.concurrent)
            state.entries.append(Entry(job: job, started: date, instance: instance))
            return state.entries.count - 1
        }
    }

    func end(_ index: Int, at date: Date) {
        state.withLock { state in
            state.concurrent -= 1
            state.entries[index].ended = date
        }
    }

    var entries: [Entry] { state.withLock { $0.entries } }
    var asleep: Int { state.withLock { $0.naps.count } }
    /// When each napping body wakes.
    var naps: [Date] { state.withLock { Array($0.naps.values) } }

    /// A body's nap on the manual clock; the deadline is fixed before the nap is announced, so a
    /// test moving the clock in between cannot push it later.
    func nap(_ clock: ManualClock, _ seconds: TimeInterval) async throws {
        let until = clock.now().addingTimeInterval(seconds)
        let token = state.withLock { state -> Int in
            state.nextNap += 1
            state.naps[state.nextNap] = until
            return state.nextNap
        }
        defer { state.withLock { _ = $0.naps.removeValue(forKey: token) } }
        try await clock.sleep(until: until)
    }

    /// A body that logs its run, naps `duration` on the clock, and fails when `fails` says so.
    func body(_ name: String, clock: ManualClock, duration: TimeInterval = 0, snapshots: [String] = [],
              fails: @escaping @Sendable (Int) -> Bool = { _ in false }) -> JobBody {
        { context in
            let index = self.begin(name, at: clock.now())
            defer { self.end(index, at: clock.now()) }
            if duration > 0 { try await self.nap(clock, duration) }
            if fails(self.count(name)) { throw TestFailure(message: "\(name) failed on purpose (run \(self.count(name)))") }
            return JobOutcome(snapshotIDs: snapshots, summary: "\(name) attempt \(context.attempt)")
        }
    }
    var maximumConcurrent: Int { state.withLock { $0.maximumConcurrent } }
    func count(_ job: String) -> Int { entries.filter { $0.job == job }.count }
}

/// A scheduler on a manual clock, running in a task of its own.
final class Harness: Sendable {
    let clock: ManualClock
    let scheduler: Scheduler
    let task: Task<Void, Never>

    init(jobs: [JobSpec], repository: Repository, clock: ManualClock, configuration: SchedulerConfiguration = SchedulerConfiguration(lease: nil, cancellationGrace: 1, recordTimeout: 10),
         metrics: (any MetricsFactory)? = nil) throws {
        self.clock = clock
        scheduler = try Scheduler(jobs: jobs, repository: repository, clock: clock, configuration: configuration, metrics: metrics)
        let scheduler = self.scheduler
        task = Task { await scheduler.run() }
    }

    /// Waits until every job's loop waits (on the clock for a time still to come, or on a
    /// trigger), or runs a body napping on the clock until a time still to come (`log`), and no
    /// trigger is pending. A sleeper whose time has come is about to run: not settled yet.
    func settle(_ log: RunLog? = nil) async throws {
        try await eventually("the scheduler to be idle") {
            let now = clock.now()
            let phases = scheduler.phases
            var running = 0
            for phase in phases.values {
                switch phase {
                case .sleeping(let until): if until <= now { return false }
                case .waitingForTrigger, .unscheduled, .stopped: continue
                case .running: running += 1
                case .loading: return false
                }
            }
            let naps = log?.naps ?? []
            return phases.count == scheduler.jobs.count && running == naps.count && naps.allSatisfy { $0 > now }
                // A run pending for a job that is running now waits for that run: settled.
                && scheduler.triggers.allSatisfy { !$0.value.isPending || phases[$0.key] == .running }
        }
    }

    /// Moves the clock in steps, settling before each, so every slot on the way is seen.
    func advance(by seconds: TimeInterval, step: TimeInterval = 60, _ log: RunLog? = nil) async throws {
        var left = seconds
        while left > 0 {
            try await settle(log)
            let move = min(step, left)
            clock.advance(by: move)
            left -= move
        }
        try await settle(log)
    }

    func stop() async {
        task.cancel()
        await task.value
    }
}
