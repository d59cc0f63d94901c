import Foundation
import LifeboatConnectors
import LifeboatCore
import LifeboatEngine
import LifeboatRepository
import LifeboatScheduler
import LifeboatStorage
import Synchronization

/// What `lifeboat serve` schedules beyond the catalog's cadences: the mirror, verify, polls and
/// retries. The catalog says what each store needs; these say how this instance keeps it.
public struct ScheduleSettings: Sendable {
    /// The off-site copy, mirrored after every backup (or on `mirrorCadences` when given); nil: no mirror job.
    public var mirrorTarget: (any Backend)?
    public var mirrorCadences: [Cadence]
    /// `verify --read-data-subset` on these cadences (none: no verify job).
    public var verifyCadences: [Cadence]
    /// The fraction of chunks each verify reads back (0 < subset ≤ 1).
    public var verifySubset: Double
    public var openbaoPoll: TimeSpan
    public var archiveCheck: TimeSpan
    public var retry: RetryPolicy
    /// Prune and mirror keep unreferenced chunks younger than this (a concurrent backup may still refer to them).
    public var pruneGrace: TimeInterval
    /// Whether drills run on the catalog's `drills:` cadences.
    public var drills: Bool

    public init(mirrorTarget: (any Backend)? = nil, mirrorCadences: [Cadence] = [], verifyCadences: [Cadence] = [],
                verifySubset: Double = 0.05, openbaoPoll: TimeSpan = TimeSpan(seconds: 60), archiveCheck: TimeSpan = TimeSpan(seconds: 60),
                retry: RetryPolicy = .standard, pruneGrace: TimeInterval = Repository.defaultPruneGrace, drills: Bool = true) {
        self.mirrorTarget = mirrorTarget
        self.mirrorCadences = mirrorCadences
        self.verifyCadences = verifyCadences
        self.verifySubset = verifySubset
        self.openbaoPoll = openbaoPoll
        self.archiveCheck = archiveCheck
        self.retry = retry
        self.pruneGrace = pruneGrace
        self.drills = drills
    }
}

extension PlatformOperations {
    /// The catalog's jobs with their bodies: each body is one of this type's use cases, so a
    /// scheduled backup, prune, mirror, verify or drill is exactly what the command of that name does.
    public func jobs(_ settings: ScheduleSettings) -> [JobSpec] {
        let turns = RepositoryTurns()
        let operations = self
        let backup: @Sendable (Store) -> JobBody = { store in
            { _ in try await operations.scheduledBackup(store, tags: ["scheduled"], turns: turns) }
        }
        let prune: @Sendable (Store) -> JobBody = { store in
            { _ in try await operations.scheduledPrune(store, grace: settings.pruneGrace, turns: turns) }
        }
        var mirror: JobBody?
        if let target = settings.mirrorTarget {
            mirror = { _ in try await operations.scheduledMirror(to: target, grace: settings.pruneGrace, turns: turns) }
        }
        var verify: JobBody?
        if !settings.verifyCadences.isEmpty {
            verify = { _ in try await operations.scheduledVerify(subset: settings.verifySubset, turns: turns) }
        }
        var drill: (@Sendable (DrillSchedule) -> JobBody)?
        if settings.drills {
            drill = { schedule in { _ in try await operations.scheduledDrill(schedule, turns: turns) } }
        }
        let archiveCheck: @Sendable (Store) -> JobBody = { store in { _ in try await operations.archiveCheck(store) } }
        let probe: @Sendable (Store) -> @Sendable () async throws -> OpenBaoState = { store in { try await operations.openbaoState(store) } }
        let snapshot: @Sendable (Store) -> @Sendable (String) async throws -> [String] = { store in
            { reason in try await operations.scheduledBackup(store, tags: ["scheduled", "reason:\(reason)"], turns: turns).snapshotIDs }
        }
        let bodies = JobBodies(backup: backup, prune: prune, mirror: mirror, verify: verify, drill: drill, archiveCheck: archiveCheck,
                               openbaoProbe: probe, openbaoSnapshot: snapshot)
        let options = JobPlanOptions(
            mirror: settings.mirrorCadences.isEmpty ? .afterBackups : .cadence(settings.mirrorCadences),
            verify: settings.verifyCadences, openbaoPoll: settings.openbaoPoll, archiveCheck: settings.archiveCheck, retry: settings.retry)
        return JobPlan.jobs(for: context.catalog, repository: context.repository, bodies: bodies, options: options)
    }

    func scheduledBackup(_ store: Store, tags: [String], turns: RepositoryTurns) async throws -> JobOutcome {
        let point = try await turns.shared { try await backup(stores: [store.name], tags: tags) }
        guard let member = point.members.first(where: { $0.store == store.name }), let snapshot = member.snapshot else {
            let why = point.members.first { $0.store == store.name }?.error ?? "no snapshot was taken"
            throw PlatformError(.jobFailed, object: store.name, "the backup of \(store.name) failed: \(why)")
        }
        let size = member.size.map { " (\(formatBytes($0)))" } ?? ""
        return JobOutcome(snapshotIDs: [snapshot], summary: "\(store.name): snapshot \(snapshot.prefix(8))\(size) in recovery point \(point.id.prefix(8))")
    }

    /// Only this store's snapshots are thinned (the others keep theirs until their own prune);
    /// chunks no snapshot refers to any more are collected across the repository.
    func scheduledPrune(_ store: Store, grace: TimeInterval, turns: RepositoryTurns) async throws -> JobOutcome {
        let policy = store.retention.map(RetentionPolicy.init) ?? RetentionPolicy()
        let report = try await turns.exclusive {
            try await context.repository.prune(policy: { $0 == store.name ? policy : RetentionPolicy() }, grace: grace)
        }
        return JobOutcome(summary: "\(store.name): removed \(report.removedSnapshots.count) snapshots, \(report.removedChunks) chunks (\(formatBytes(report.removedBytes)))")
    }

    func scheduledMirror(to target: any Backend, grace: TimeInterval, turns: RepositoryTurns) async throws -> JobOutcome {
        let report = try await turns.shared { try await mirror(to: target, grace: grace) }
        return JobOutcome(summary: "copied \(report.copiedSnapshots.count) snapshots, \(report.copiedChunks) chunks (\(formatBytes(report.copiedBytes))) to \(target.location)",
                          observations: ["target": target.location])
    }

    func scheduledVerify(subset: Double, turns: RepositoryTurns) async throws -> JobOutcome {
        let report = try await turns.shared { try await verify(readData: true, subset: subset) }
        guard report.problems.isEmpty else {
            let first = report.problems.prefix(3).map { "\($0)" }.joined(separator: "; ")
            throw PlatformError(.jobFailed, "verify found \(report.problems.count) problems: \(first)")
        }
        return JobOutcome(summary: "verify read \(Int((subset * 100).rounded()))% of the chunks back: no problem")
    }

    /// A drill of the schedule's stores (all when it names none), recorded as evidence like `lifeboat drill`.
    func scheduledDrill(_ schedule: DrillSchedule, turns: RepositoryTurns) async throws -> JobOutcome {
        let operations = schedule.stores.isEmpty ? self : PlatformOperations(PlatformContext(
            resolver: StoreResolver(catalog: context.catalog.restricted(to: schedule.stores), directory: context.directory, path: context.resolver.path),
            repository: context.repository, connectors: context.connectors))
        // A drill with nothing to restore would record a failed proof (and page); on a new
        // repository the drill's first slot comes before the first backups, so wait for them.
        let backedUp = Set(try await context.repository.snapshots().manifests.map(\.store))
        let missing = schedule.stores(in: context.catalog).filter { !backedUp.contains($0) }
        guard missing.isEmpty else {
            throw PlatformError(.jobFailed, "drill \(schedule.name) waits for a first backup of \(missing.joined(separator: ", ")); no drill was run")
        }
        let report = try await turns.shared { try await operations.drill(.latest) }
        guard report.passed else {
            let failed = report.steps.filter { $0.outcome == .failed }.map { "\($0.store): \($0.reason ?? "gate failed")" }
            let why = failed.isEmpty ? report.missedTargets.joined(separator: "; ") : failed.joined(separator: "; ")
            throw PlatformError(.jobFailed, "drill \(schedule.name) (report \(report.id.prefix(8))) did not pass: \(why)")
        }
        return JobOutcome(summary: "drill \(schedule.name) passed (report \(report.id.prefix(8)), \(report.steps.count) steps)",
                          observations: ["report": report.id])
    }

    /// WAL archiving's health: a healthy stream is not recorded; a failing or unreadable one fails the run.
    func archiveCheck(_ store: Store) async throws -> JobOutcome {
        guard let health = await context.connectors[store.kind]?.archiverHealth(store) else {
            throw PlatformError(.jobFailed, object: store.name, "\(store.name): archiving health cannot be read by this connector")
        }
        if let error = health.error {
            throw PlatformError(.jobFailed, object: store.name, "\(store.name): cannot read the archiver's state: \(error)")
        }
        if health.failing {
            throw PlatformError(.jobFailed, object: store.name,
                                "\(store.name): WAL archiving is failing (\(health.lastFailedWAL ?? "a segment") failed at \(health.lastFailedTime.map(SourceTime.format) ?? "?"))")
        }
        return JobOutcome(summary: "\(store.name): archiving healthy", recorded: false)
    }

    /// The OpenBao poll: three cheap reads with the catalog's token, no snapshot.
    func openbaoState(_ store: Store) async throws -> OpenBaoState {
        let connector = try context.resolver.openbao(store).connector
        let facts = try await OpenBaoClient(address: connector.address).changeFacts(token: connector.token)
        return OpenBaoState(raftIndex: facts.raftIndex, keyringTerm: facts.keyringTerm, seal: facts.seal)
    }
}

extension Catalog {
    /// The catalog with only `names` (a scheduled drill of some stores): dependencies on stores left
    /// out are dropped, so the restore plan orders what remains.
    public func restricted(to names: [String]) -> Catalog {
        var copy = self
        let kept = Set(names)
        copy.stores = stores.filter { kept.contains($0.name) }.map { store in
            var store = store
            store.dependsOn = store.dependsOn.filter(kept.contains)
            return store
        }
        copy.planes = planes.map { plane in
            var plane = plane
            plane.stores = plane.stores.filter(kept.contains)
            return plane
        }
        return copy
    }
}

/// Jobs of one instance take turns on the repository: backups, mirrors, verifies and drills share
/// it; a prune (which holds the repository's exclusive lock) runs when none of them does, and they
/// wait only while a prune actually runs — never behind a prune that is still waiting, so a long
/// drill cannot hold every backup back. A job waiting for its turn stops waiting when cancelled.
final class RepositoryTurns: Sendable {
    private struct Waiter {
        var id: UInt64
        var exclusive: Bool
        var resume: CheckedContinuation<Bool, Never>
    }

    private struct State {
        var readers = 0
        var writer = false
        var waiting: [Waiter] = []
        var nextID: UInt64 = 0
    }

    private let state = Mutex(State())

    func shared<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        try await acquire(exclusive: false)
        defer { release(exclusive: false) }
        return try await body()
    }

    func exclusive<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        try await acquire(exclusive: true)
        defer { release(exclusive: true) }
        return try await body()
    }

    private func acquire(exclusive: Bool) async throws {
        let id = state.withLock { state -> UInt64 in
            state.nextID += 1
            return state.nextID
        }
        let granted = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let now = state.withLock { state -> Bool? in
                    // Checked under the lock: a cancellation either sees this waiter queued, or is seen here.
                    if Task.isCancelled { return false }
                    if exclusive ? (!state.writer && state.readers == 0) : !state.writer {
                        if exclusive { state.writer = true } else { state.readers += 1 }
                        return true
                    }
                    state.waiting.append(Waiter(id: id, exclusive: exclusive, resume: continuation))
                    return nil
                }
                if let now { continuation.resume(returning: now) }
            }
        } onCancel: {
            let waiter = state.withLock { state -> Waiter? in
                guard let index = state.waiting.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiting.remove(at: index)
            }
            waiter?.resume.resume(returning: false)
        }
        guard granted else { throw CancellationError() }
    }

    private func release(exclusive: Bool) {
        let ready = state.withLock { state -> [CheckedContinuation<Bool, Never>] in
            if exclusive { state.writer = false } else { state.readers -= 1 }
            guard !state.writer else { return [] }
            // Shared waiters first (they waited only for a prune that ran), then one prune when idle.
            var ready = state.waiting.filter { !$0.exclusive }.map(\.resume)
            state.waiting.removeAll { !$0.exclusive }
            state.readers += ready.count
            if state.readers == 0, let index = state.waiting.firstIndex(where: \.exclusive) {
                state.writer = true
                ready.append(state.waiting.remove(at: index).resume)
            }
            return ready
        }
        for continuation in ready { continuation.resume(returning: true) }
    }
}
