import Foundation
import LifeboatConnectors
import LifeboatCore
import LifeboatEngine
import LifeboatRepository
import LifeboatStorage

/// The platform's use cases as plain async functions: what `lifeboat backup`, `restore`, `drill`
/// and `status` run, and what a scheduler (`lifeboat serve`) calls without ArgumentParser. Each
/// honours task cancellation: a cancelled backup writes no recovery point, a cancelled restore or
/// drill touches no further store (and releases what it started).
public struct PlatformOperations: Sendable {
    public var context: PlatformContext

    public init(_ context: PlatformContext) { self.context = context }

    // MARK: backup

    /// Backs up the named stores (every store Lifeboat handles when empty) as one recovery point.
    /// A store that fails does not stop the others: the point is then partial (`isComplete` false).
    public func backup(stores: [String] = [], tags: [String] = [], onEvent: (PlatformBackup.Event) -> Void = { _ in }) async throws -> RecoveryPoint {
        try Task.checkCancellation()
        return try await PlatformBackup(catalog: context.catalog, repository: context.repository, connectors: context.connectors)
            .run(stores: stores, tags: tags, onEvent: onEvent)
    }

    /// The catalog's stores a whole-platform backup leaves out, and why.
    public func storesNotBackedUp() -> [(store: Store, why: String)] {
        context.catalog.stores.filter { context.connectors[$0.kind] == nil }.map { store in
            (store, store.kind.isManual ? "restored by hand" : "no connector yet; put its data with `lifeboat put`")
        }
    }

    // MARK: restore

    /// What a production restore would do, checked against the real targets; touches nothing.
    public struct RestorePreview: Sendable {
        public var point: RecoveryPoint?
        /// The phrase `restore(…, confirmation:)` must be given.
        public var confirmation: String
        public var steps: [PreparedStep]
        /// Per step (same order): the connector's words for the action, and what its guards refuse now.
        public var actions: [String?]
        public var preflight: [[String]]
        /// The first step the real run would stop at (a selection problem), if any.
        public var stop: PreparedStep? { steps.first { $0.problem != nil } }
    }

    /// The confirmation phrase of a restore: the platform and the point (or instant) chosen.
    public func confirmationPhrase(point: RecoveryPoint?, instant: String?) -> String {
        "restore \(context.catalog.platform ?? "platform") \(point.map { String($0.id.prefix(8)) } ?? instant ?? "latest")"
    }

    /// Prepares a production restore: the choice of each store's data, why, and every guard's answer.
    public func previewRestore(_ selection: RestoreSelection, overrides: [String: String] = [:], instant: String? = nil,
                               force: Bool, fromStep: Int = 1) async throws -> RestorePreview {
        let (point, steps) = try await context.preparation().prepare(selection, overrides: overrides)
        var actions: [String?] = [], preflight: [[String]] = []
        for prepared in steps {
            try Task.checkCancellation()
            guard let store = prepared.store, let snapshot = prepared.snapshot, let connector = context.connectors[store.kind] else {
                actions.append(nil)
                preflight.append([])
                continue
            }
            let request = StoreRestoreRequest(store: store, snapshot: snapshot, targetTime: prepared.targetTime,
                                              repository: context.repository, destination: .production(force: force))
            actions.append(connector.describe(request))
            // Steps before --from-step are done: their targets are not checked again.
            var refusals: [String] = []
            if fromStep <= prepared.step.order { refusals = await connector.preflight(request) }
            preflight.append(refusals)
        }
        return RestorePreview(point: point, confirmation: confirmationPhrase(point: point, instant: instant), steps: steps,
                              actions: actions, preflight: preflight)
    }

    /// A production restore's result: every step, and the evidence it was recorded as (nil when the
    /// repository could not take it; `evidenceError` says why).
    public struct RestoreRun: Sendable {
        public var point: RecoveryPoint?
        public var steps: [DrillReport.Step]
        public var evidence: DrillReport?
        public var evidenceError: String?
        public var failedStep: DrillReport.Step? { steps.first { $0.outcome == .failed } }
    }

    /// Restores every store in plan order into the catalog's own targets, each step gated. Refuses
    /// (EngineError .confirmation) unless `confirmation` is the phrase `previewRestore` gives. The
    /// journal (`journal`, default .lifeboat/restore-journal.json next to the catalog) records each
    /// step's stages; it is removed once every step passed.
    public func restore(_ selection: RestoreSelection, overrides: [String: String] = [:], instant: String? = nil, force: Bool,
                        fromStep: Int? = nil, confirmation: String?, journal: URL? = nil,
                        onEvent: (PlatformRestore.Event) -> Void = { _ in }) async throws -> RestoreRun {
        let preparation = try context.preparation()
        let (point, steps) = try await preparation.prepare(selection, overrides: overrides)
        let phrase = confirmationPhrase(point: point, instant: instant)
        guard confirmation == phrase else {
            let said = confirmation.map { "--confirm \"\($0)\" does not match the phrase expected" } ?? "a restore overwrites the catalog's targets"
            throw EngineError(.confirmation, "\(said); run with --dry-run to see what it does, then pass --confirm \"\(phrase)\"")
        }
        try Task.checkCancellation()
        let journalURL = journal ?? context.directory.appendingPathComponent(".lifeboat/restore-journal.json")
        let record = try RestoreJournal(url: journalURL, point: point?.id ?? phrase)
        try record.checkResume(explicitFromStep: fromStep != nil)
        let started = Date()
        let restore = PlatformRestore(preparation: preparation)
        let outcome = await restore.run(steps, mode: .production(force: force), fromStep: fromStep ?? 1, startedAt: started, journal: record, onEvent: onEvent)
        await outcome.releaseAll()
        var run = RestoreRun(point: point, steps: outcome.steps)
        // The run is evidence: status counts its passed gates as proven restores, and shows a failure.
        do {
            run.evidence = try await restore.recordEvidence(outcome, selection: selection, point: point, started: started)
        } catch {
            run.evidenceError = "\(error)"
        }
        // Finished and verified: the journal has nothing left to protect.
        if outcome.failedStep == nil { try? FileManager.default.removeItem(at: journalURL) }
        return run
    }

    // MARK: drill

    /// Restores into scratch instances in a new directory of its own under `workDirectory` (a
    /// temporary one when nil, removed afterwards), runs every gate, records the report as evidence.
    /// Whatever is left running under that directory at the end is stopped.
    public func drill(_ selection: RestoreSelection, overrides: [String: String] = [:], workDirectory: URL? = nil,
                      onEvent: (PlatformRestore.Event) -> Void = { _ in }) async throws -> DrillReport {
        try Task.checkCancellation()
        let scratch = (workDirectory ?? FileManager.default.temporaryDirectory).appendingPathComponent("lifeboat-drill-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        defer {
            // Connectors stop what they start; this catches anything a failure left behind.
            ProcessSweep.stopProcesses(mentioning: scratch.path)
            if workDirectory == nil { ProcessSweep.removeDirectory(scratch) }
        }
        return try await Drill(preparation: try context.preparation()).run(selection, overrides: overrides, workDirectory: scratch, onEvent: onEvent)
    }

    // MARK: status

    /// Per store: the last good backup, RPO exposure, the last proven restore, WAL archiving health.
    public func status(maximumProofAge: Double) async throws -> PlatformStatus {
        try await PlatformStatus.read(catalog: context.catalog, repository: context.repository, connectors: context.connectors,
                                      maximumProofAge: maximumProofAge)
    }

    // MARK: repository

    /// Checks the repository's structure (and with `readData`, a `subset` of the chunks' contents).
    public func verify(readData: Bool = false, subset: Double? = nil) async throws -> VerifyReport {
        try await context.repository.verify(readData: readData, subset: subset)
    }

    // MARK: retention

    /// Each store's retention from the catalog (a store without one keeps everything).
    public func retention() -> (String) -> RetentionPolicy { Self.retention(context.catalog) }

    public static func retention(_ catalog: Catalog) -> (String) -> RetentionPolicy {
        let byStore = Dictionary(catalog.stores.compactMap { store in store.retention.map { (store.name, RetentionPolicy($0)) } }, uniquingKeysWith: { a, _ in a })
        return { byStore[$0] ?? RetentionPolicy() }
    }

    /// Prune by the catalog's retention (see `Repository.prune`).
    public func prune(grace: TimeInterval, dryRun: Bool) async throws -> PruneReport {
        try await context.repository.prune(policy: retention(), grace: grace, dryRun: dryRun)
    }

    /// Mirror into `target`, pruning it by the catalog's retention.
    public func mirror(to target: any Backend, grace: TimeInterval) async throws -> MirrorReport {
        try await context.repository.mirror(to: target, targetPolicy: retention(), grace: grace)
    }
}

extension RetentionPolicy {
    /// The catalog's structured retention (a note alone keeps everything).
    public init(_ retention: Retention) {
        self.init(keepLast: retention.keepLast, keepWithin: retention.keepWithin.map { TimeInterval($0.seconds) },
                  keepHourly: retention.keepHourly, keepDaily: retention.keepDaily, keepWeekly: retention.keepWeekly,
                  keepMonthly: retention.keepMonthly, keepYearly: retention.keepYearly)
    }
}
