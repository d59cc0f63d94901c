import CoreMetrics
import Foundation
import LifeboatRepository
import Synchronization

/// A job set the scheduler refuses, with the reason.
public struct SchedulerError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Bounds and retention of one scheduler.
public struct SchedulerConfiguration: Sendable {
    /// The lease that lets one instance of several on a repository run the jobs; nil runs the jobs
    /// without one (a single instance that owns the repository, and tests of the job semantics).
    public var lease: LeaseTiming?
    /// Runs kept in the history per job.
    public var historyPerJob: Int
    /// After cancellation (SIGTERM, or the lease lost), how long a body may take to stop, in real
    /// seconds. A body that has not stopped by then is reported cancelled and left to the process's
    /// exit; the repository's commit order means it cannot leave a partial snapshot.
    public var cancellationGrace: TimeInterval
    /// How long writing one history record may take, in real seconds (also after cancellation).
    public var recordTimeout: TimeInterval
    /// How long to wait before reading the history again when the storage does not answer.
    public var historyRetryInterval: TimeInterval

    public init(lease: LeaseTiming? = .standard, historyPerJob: Int = 50, cancellationGrace: TimeInterval = 30,
                recordTimeout: TimeInterval = 30, historyRetryInterval: TimeInterval = 30) {
        self.lease = lease
        self.historyPerJob = historyPerJob
        self.cancellationGrace = cancellationGrace
        self.recordTimeout = recordTimeout
        self.historyRetryInterval = historyRetryInterval
    }

    /// The longest time from cancellation to `run()` returning: the bodies' grace, one history
    /// record, and the lease's release record.
    public var stopBound: TimeInterval { cancellationGrace + 2 * recordTimeout }
}

/// One job as `lifeboat jobs` and the API show it.
public struct JobDescription: Sendable, Hashable, Codable {
    public var job: JobID
    public var kind: JobKind
    public var store: String?
    /// `every 4h`, `daily at 02:00`, `after backup.pg-main`.
    public var trigger: String
    /// The newest run (a `running` one included); nil when it never ran.
    public var lastRun: JobRun?
    /// End of the newest successful run.
    public var lastSuccess: Date?
    /// When it is due next: in the past when overdue; nil for jobs started by another job.
    public var nextRun: Date?
    /// Whether a run is in progress (on this instance or on the lease holder).
    public var running: Bool
}

/// Runs the catalog's jobs: each on its slots, never two runs of one job at once, overdue jobs
/// once at start, failed runs retried with backoff, history and a lease kept in the repository,
/// metrics through swift-metrics. See docs/scheduler.md for the guarantees and their bounds.
public final class Scheduler: Sendable {
    public let jobs: [JobSpec]
    public let repository: Repository
    public let clock: any SchedulerClock
    public let configuration: SchedulerConfiguration
    public let holder: LeaseHolder
    let history: JobHistory
    let gate = LeaseGate()
    let metrics: SchedulerMetrics
    let triggers: [JobID: TriggerSignal]
    let dependents: [JobID: [JobID]]
    let state = Mutex(State())

    /// Where a job's loop is; tests wait for every loop to be idle before moving the clock.
    enum Phase: Sendable, Equatable {
        case stopped, loading, sleeping(until: Date), waitingForTrigger, unscheduled, running
        var isIdle: Bool {
            switch self {
            case .sleeping, .waitingForTrigger, .unscheduled, .stopped: true
            case .loading, .running: false
            }
        }
    }

    struct JobState: Sendable {
        var phase: Phase = .stopped
        var nextRun: Date?
        var current: JobRun?
    }

    struct State: Sendable {
        var jobs: [JobID: JobState] = [:]
        var newestLease: LeaseRecord?
    }

    /// What a job's loop remembers from its history between runs.
    struct Memory: Sendable {
        var reference: Date?
        var previousSuccess: JobRun?
        var lastSnapshotRun: String?
    }

    public init(
        jobs: [JobSpec], repository: Repository, clock: any SchedulerClock = SystemClock(),
        configuration: SchedulerConfiguration = SchedulerConfiguration(), metrics: (any MetricsFactory)? = nil,
        holder: LeaseHolder = .current()
    ) throws(SchedulerError) {
        var seen: Set<JobID> = []
        for job in jobs {
            guard job.id.isValid else {
                throw SchedulerError("job name '\(job.id)' may hold only letters, digits, '-', '_' and '.'")
            }
            guard seen.insert(job.id).inserted else { throw SchedulerError("two jobs are named '\(job.id)'") }
        }
        var dependents: [JobID: [JobID]] = [:]
        var triggers: [JobID: TriggerSignal] = [:]
        for job in jobs {
            guard case .afterSuccess(let predecessors) = job.trigger else { continue }
            guard !predecessors.isEmpty else { throw SchedulerError("job '\(job.id)' runs after no job; give it a schedule or a predecessor") }
            for predecessor in predecessors {
                guard seen.contains(predecessor), predecessor != job.id else {
                    throw SchedulerError("job '\(job.id)' runs after '\(predecessor)', which is not another job of this scheduler")
                }
                dependents[predecessor, default: []].append(job.id)
            }
            triggers[job.id] = TriggerSignal()
        }
        if let lease = configuration.lease, lease.margin < configuration.cancellationGrace {
            throw SchedulerError("the lease margin (\(lease.margin) s) must cover the cancellation grace (\(configuration.cancellationGrace) s), so a holder's jobs stop before another instance may start")
        }
        self.jobs = jobs
        self.repository = repository
        self.clock = clock
        self.configuration = configuration
        self.holder = holder
        self.history = JobHistory(repository: repository, keepPerJob: configuration.historyPerJob)
        self.metrics = SchedulerMetrics(factory: metrics)
        self.triggers = triggers
        self.dependents = dependents
    }

    // MARK: running

    /// Runs the jobs until the task is cancelled (SIGTERM), then stops them within
    /// `configuration.stopBound` and, holding the lease, hands it over.
    public func run() async {
        metrics.up(true)
        defer { metrics.up(false) }
        for job in jobs { metrics.register(job) }
        let keeper = configuration.lease.map { timing in
            LeaseKeeper(repository: repository, holder: holder, timing: timing, clock: clock, gate: gate) { [self] newest, held in
                state.withLock { $0.newestLease = newest }
                metrics.lease(held: held, holder: newest.flatMap { $0.released ? nil : $0.holder.description })
            }
        }
        if keeper == nil {
            gate.set(validUntil: .infinity, epoch: nil, newest: nil)
            metrics.lease(held: true, holder: holder.description)
        }
        await withTaskGroup(of: Void.self) { group in
            if let keeper { group.addTask { await keeper.run() } }
            group.addTask { await self.termsLoop() }
            await group.waitForAll()
        }
        if let keeper {
            _ = await boundedWait(timeout: configuration.recordTimeout, propagateCancellation: false, grace: configuration.recordTimeout) {
                await keeper.release()
            }
        }
    }

    /// While the lease is held, every job's loop runs; when it is lost, they are cancelled.
    private func termsLoop() async {
        while !Task.isCancelled {
            do { try await gate.waitUntilHeld(clock: clock) } catch { return }
            await withTaskGroup(of: Void.self) { group in
                for job in jobs { group.addTask { await self.jobLoop(job) } }
                group.addTask { await self.gate.waitUntilLost(clock: self.clock) }
                // Job loops end only when cancelled, so the first to finish is the lease watcher.
                _ = await group.next()
                group.cancelAll()
                await group.waitForAll()
            }
        }
    }

    private func setPhase(_ job: JobSpec, _ phase: Phase, next: Date?? = nil) {
        state.withLock { state in
            state.jobs[job.id, default: JobState()].phase = phase
            if let next { state.jobs[job.id, default: JobState()].nextRun = next }
        }
        if let next { metrics.nextRun(job, next) }
    }

    private func jobLoop(_ job: JobSpec) async {
        // A stopped loop has no next run here (0) and no outcome to report: the lease's next holder has them.
        defer {
            setPhase(job, .stopped, next: .some(nil))
            metrics.stopped(job)
        }
        guard var memory = await loadMemory(job) else { return }
        switch job.trigger {
        case .schedule(let schedule):
            while !Task.isCancelled {
                let now = clock.now()
                guard let due = schedule.nextDue(after: memory.reference, now: now) else {
                    setPhase(job, .unscheduled, next: .some(nil))
                    try? await clock.sleep(until: .distantFuture)
                    return
                }
                var slot = due
                if due > now {
                    setPhase(job, .sleeping(until: due), next: due)
                    do { try await clock.sleep(until: due) } catch { return }
                } else {
                    // Overdue (after downtime, or never run): once, now; the next slot counts from now.
                    slot = now
                }
                let nextSlot = schedule.nextDue(after: slot, now: slot)
                guard await runSlot(job, slot: slot, nextSlot: nextSlot, memory: &memory) else { return }
                memory.reference = slot
            }
        case .afterSuccess:
            guard let signal = triggers[job.id] else { return }
            while !Task.isCancelled {
                setPhase(job, .waitingForTrigger, next: .some(nil))
                guard await signal.wait() else { return }
                setPhase(job, .loading)
                signal.taken()
                guard await runSlot(job, slot: nil, nextSlot: nil, memory: &memory) else { return }
            }
        }
    }

    /// Reads the job's history (again at each lease term: another instance may have run it).
    /// Runs another instance left without an end are closed as interrupted. Nil when cancelled.
    private func loadMemory(_ job: JobSpec) async -> Memory? {
        setPhase(job, .loading)
        while !Task.isCancelled {
            do {
                var memory = Memory()
                var newestSeen = false
                for (run, ended) in try await history.runIDs(of: job.id) {
                    guard var record = try? await history.load(job.id, run: run, ended: ended) else { continue }
                    if !ended, record.holder != holder.description {
                        record.status = .interrupted
                        record.ended = clock.now()
                        record.error = "the instance running it (\(record.holder)) stopped or lost the lease before it ended"
                        try? await history.end(record)
                    }
                    if !newestSeen, record.status != .running {
                        newestSeen = true
                        metrics.ended(job, record, countFailure: false)
                    }
                    if memory.reference == nil, record.lastAttempt { memory.reference = record.slot ?? record.started }
                    if memory.previousSuccess == nil, record.status == .succeeded {
                        memory.previousSuccess = record
                        if let ended = record.ended { metrics.lastSuccess(job, ended) }
                    }
                    if memory.lastSnapshotRun == nil, record.outcome?.snapshotIDs.isEmpty == false { memory.lastSnapshotRun = record.run }
                    if memory.reference != nil, memory.previousSuccess != nil, memory.lastSnapshotRun != nil { break }
                }
                return memory
            } catch {
                try? await clock.sleep(for: configuration.historyRetryInterval)
            }
        }
        return nil
    }

    /// Runs one slot: the first attempt and its retries. False when cancelled.
    private func runSlot(_ job: JobSpec, slot: Date?, nextSlot: Date?, memory: inout Memory) async -> Bool {
        var attempt = 1
        while true {
            switch await runOnce(job, attempt: attempt, slot: slot, nextSlot: nextSlot, memory: &memory) {
            case .cancelled:
                return false
            case .succeeded(let recorded):
                // A poll that found nothing to do does not start prune or mirror.
                if recorded { for dependent in dependents[job.id] ?? [] { triggers[dependent]?.fire() } }
                return true
            case .failed(retryAt: nil):
                return true
            case .failed(retryAt: let retryAt?):
                setPhase(job, .sleeping(until: retryAt), next: retryAt)
                do { try await clock.sleep(until: retryAt) } catch { return false }
                attempt += 1
            }
        }
    }

    private enum AttemptResult { case succeeded(recorded: Bool), failed(retryAt: Date?), cancelled }

    private func runOnce(_ job: JobSpec, attempt: Int, slot: Date?, nextSlot: Date?, memory: inout Memory) async -> AttemptResult {
        // A run starts only while the lease is held, and counts its validity from now.
        guard !Task.isCancelled, gate.isHeld(at: clock.uptime()) else { return .cancelled }
        let started = clock.now()
        var record = JobRun(job: job.id, kind: job.kind, store: job.store, run: JobHistory.runID(started: started),
                            holder: holder.description, attempt: attempt, slot: slot, started: started, status: .running)
        state.withLock { state in
            state.jobs[job.id, default: JobState()].phase = .running
            state.jobs[job.id, default: JobState()].current = record
        }
        metrics.running(job, true)
        if job.writesStartRecord {
            let start = record
            _ = await persist { [history] in try await history.start(start) }
        }
        let context = JobContext(job: job.id, kind: job.kind, store: job.store, run: record.run, attempt: attempt, slot: slot,
                                 started: started, previousSuccess: memory.previousSuccess)
        let result = await boundedWait(timeout: nil, propagateCancellation: true, grace: configuration.cancellationGrace) {
            try await job.body(context)
        }
        record.ended = clock.now()
        let outcome: AttemptResult
        switch result {
        case .value(let value):
            record.status = .succeeded
            record.outcome = value
            record.lastAttempt = true
            outcome = .succeeded(recorded: value.recorded)
        case .error(let error) where Task.isCancelled:
            record.status = .cancelled
            record.error = "stopped by cancellation (shutdown or lease lost): \(Self.describe(error))"
            outcome = .cancelled
        case .error(let error):
            record.status = .failed
            record.error = Self.describe(error)
            var retryAt = job.retry.delay(afterAttempt: attempt).map { record.ended!.addingTimeInterval($0) }
            if let planned = retryAt, let nextSlot, planned >= nextSlot { retryAt = nil }
            record.lastAttempt = retryAt == nil
            outcome = .failed(retryAt: retryAt)
        case .gaveUp:
            record.status = .cancelled
            record.error = "did not stop within the cancellation grace (\(Int(configuration.cancellationGrace)) s); left to finish or end with the process"
            outcome = .cancelled
        }
        if record.status == .succeeded, record.outcome?.recorded != false {
            memory.previousSuccess = record
            if record.outcome?.snapshotIDs.isEmpty == false { memory.lastSnapshotRun = record.run }
        }
        if record.status != .succeeded || record.outcome?.recorded != false {
            let ended = record
            let pinned: Set<String> = Set([memory.previousSuccess?.run, memory.lastSnapshotRun, record.run].compactMap { $0 })
            _ = await persist { [history] in
                try await history.end(ended)
                try await history.applyRetention(ended.job, pinned: pinned)
            }
        }
        metrics.ended(job, record, countFailure: true)
        metrics.running(job, false)
        state.withLock { $0.jobs[job.id, default: JobState()].current = nil }
        return outcome
    }

    /// Writes to the repository in a task of its own, so a record is written even after
    /// cancellation, bounded by `recordTimeout`. A record that cannot be written is skipped: the
    /// job's own result stands, and the next run's records go on.
    private func persist(_ operation: @escaping @Sendable () async throws -> Void) async -> Bool {
        if case .value = await boundedWait(timeout: configuration.recordTimeout, propagateCancellation: false,
                                           grace: configuration.recordTimeout, operation) { return true }
        return false
    }

    static func describe(_ error: any Error) -> String {
        let text = error is CancellationError ? "cancelled" : String(describing: error)
        return text.count > 2000 ? String(text.prefix(2000)) + "…" : text
    }

    // MARK: what the API and `lifeboat jobs` show

    /// Brings time-dependent metrics (the mirror's lag) up to now; call before rendering them.
    public func refreshMetrics() { metrics.refresh(now: clock.now()) }

    /// Whether this instance holds the lease, and the newest lease record it has seen.
    public var leaseStatus: LeaseStatus {
        let current = gate.snapshot
        let held = gate.isHeld(at: clock.uptime())
        return LeaseStatus(holdsLease: held, newest: current.newest ?? state.withLock { $0.newestLease })
    }

    /// The live lease, read from the repository: how an instance that runs no job (`lifeboat jobs`)
    /// learns which instance holds it. Nil when none holds it (released, or expired by its clock).
    public func currentLease() async throws(RepositoryError) -> LeaseRecord? {
        let keeper = LeaseKeeper(repository: repository, holder: holder, timing: configuration.lease ?? .standard, clock: clock, gate: gate) { _, _ in }
        let newest = try await keeper.newest().record
        state.withLock { $0.newestLease = newest }
        guard let newest, !newest.released, newest.expires > clock.now() else { return nil }
        return newest
    }

    /// Every job with its newest run, last success and next due time, read from the repository's
    /// history (so a standby shows what the holder does) and this instance's own state.
    public func describeJobs() async throws(RepositoryError) -> [JobDescription] {
        let local = state.withLock { $0 }
        let lease = leaseStatus
        var descriptions: [JobDescription] = []
        for job in jobs {
            let runs = try await history.runs(of: job.id, limit: 1)
            var lastRun = runs.first
            var running = local.jobs[job.id]?.current != nil
            if let current = local.jobs[job.id]?.current { lastRun = current }
            if let run = lastRun, run.status == .running, !running {
                // Another instance's run: in progress while that instance holds the lease.
                let holderAlive = lease.newest.map { !$0.released && $0.holder.description == run.holder && $0.expires > clock.now() } ?? false
                if holderAlive { running = true } else { lastRun?.status = .interrupted }
            }
            let lastSuccess = try await history.newest(of: job.id) { $0.status == .succeeded }
            var nextRun: Date?
            var trigger: String
            switch job.trigger {
            case .schedule(let schedule):
                trigger = schedule.summary
                if let known = local.jobs[job.id]?.nextRun, lease.holdsLease {
                    nextRun = known
                } else {
                    let settled = try await history.newest(of: job.id) { $0.lastAttempt }
                    nextRun = schedule.nextDue(after: settled.map { $0.slot ?? $0.started }, now: clock.now())
                }
            case .afterSuccess(let predecessors):
                trigger = "after " + predecessors.map(\.rawValue).joined(separator: ", ")
            }
            descriptions.append(JobDescription(job: job.id, kind: job.kind, store: job.store, trigger: trigger, lastRun: lastRun,
                                               lastSuccess: lastSuccess?.ended, nextRun: nextRun, running: running))
        }
        return descriptions
    }

    /// Each job's loop phase (tests wait on these before moving a manual clock).
    var phases: [JobID: Phase] { state.withLock { $0.jobs.mapValues(\.phase) } }
}

/// A pending-run flag: successes of a predecessor while the dependent runs fold into one more run.
final class TriggerSignal: Sendable {
    private struct State {
        var pending = false
        /// Handed to the waiting job, which has not said it took it (`taken`) yet.
        var delivering = false
        var waiter: CheckedContinuation<Bool, Never>?
    }
    private let state = Mutex(State())

    /// A run is pending or on its way to the job's loop.
    var isPending: Bool { state.withLock { $0.pending || $0.delivering } }

    func fire() {
        let waiter = state.withLock { state -> CheckedContinuation<Bool, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                state.delivering = true
                return waiter
            }
            state.pending = true
            return nil
        }
        waiter?.resume(returning: true)
    }

    /// The job's loop has taken the run (and shows it in its phase).
    func taken() { state.withLock { $0.delivering = false } }

    /// True when a run is due; false when cancelled.
    func wait() async -> Bool {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let ready = state.withLock { state -> Bool? in
                    if Task.isCancelled { return false }
                    if state.pending {
                        state.pending = false
                        state.delivering = true
                        return true
                    }
                    state.waiter = continuation
                    return nil
                }
                if let ready { continuation.resume(returning: ready) }
            }
        } onCancel: {
            state.withLock { state -> CheckedContinuation<Bool, Never>? in
                defer { state.waiter = nil }
                return state.waiter
            }?.resume(returning: false)
        }
    }
}

enum BoundedResult<Value: Sendable>: Sendable {
    case value(Value)
    case error(any Error)
    /// Neither came within the bound.
    case gaveUp
}

/// The first of several results, delivered once.
private final class OneShot<Value: Sendable>: Sendable {
    private struct State {
        var result: BoundedResult<Value>?
        var waiter: CheckedContinuation<BoundedResult<Value>, Never>?
    }
    private let state = Mutex(State())

    func finish(_ result: BoundedResult<Value>) {
        let waiter = state.withLock { state -> CheckedContinuation<BoundedResult<Value>, Never>? in
            guard state.result == nil else { return nil }
            state.result = result
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: result)
    }

    func wait() async -> BoundedResult<Value> {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> BoundedResult<Value>? in
                if let result = state.result { return result }
                state.waiter = continuation
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }
}

/// Runs `operation` in a task of its own and waits for it: at most `timeout` real seconds when
/// given, and at most `grace` real seconds after the caller is cancelled (which cancels the
/// operation too when `propagateCancellation`). Structured concurrency would wait for an operation
/// that ignores cancellation for ever; this is how a stop stays bounded.
func boundedWait<Value: Sendable>(
    timeout: TimeInterval?, propagateCancellation: Bool, grace: TimeInterval,
    _ operation: @escaping @Sendable () async throws -> Value
) async -> BoundedResult<Value> {
    let shot = OneShot<Value>()
    let task = Task {
        do { shot.finish(.value(try await operation())) } catch { shot.finish(.error(error)) }
    }
    if let timeout {
        Task {
            try? await Task.sleep(for: .seconds(timeout))
            shot.finish(.gaveUp)
            task.cancel()
        }
    }
    return await withTaskCancellationHandler {
        await shot.wait()
    } onCancel: {
        if propagateCancellation { task.cancel() }
        Task {
            try? await Task.sleep(for: .seconds(grace))
            shot.finish(.gaveUp)
        }
    }
}
