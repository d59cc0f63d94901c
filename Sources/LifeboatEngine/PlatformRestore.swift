import Foundation
import LifeboatCore
import LifeboatRepository

/// Executes prepared steps in plan order, each gated by its verify checks: a failed restore or a
/// failed check stops the run there and leaves every later store untouched.
public struct PlatformRestore: Sendable {
    public let preparation: RestorePreparation

    public init(preparation: RestorePreparation) {
        self.preparation = preparation
    }

    /// Where restores go: the one destination type. `.scratch(directory)` here is the parent of one
    /// fresh instance per store (drills, the demo); `.production(force:)` the catalog's own targets.
    public typealias Mode = StoreRestoreRequest.Destination

    /// Progress of a run, for a terminal.
    public enum Event: Sendable {
        case stepStarted(PreparedStep)
        case stepFinished(DrillReport.Step)
    }

    /// The result: every step's record, and the restored stores still alive (the caller releases
    /// them: a drill stops its scratch instances, a production restore leaves its targets running).
    public struct Outcome: Sendable {
        public var steps: [DrillReport.Step]
        public var restored: [any RestoredStore]
        public var failedStep: DrillReport.Step? { steps.first { $0.outcome == .failed } }

        public func releaseAll() async {
            for store in restored.reversed() { await store.release() }
        }
    }

    /// A production run's record, stored as evidence like a drill's (also when it failed): a
    /// production restore whose gates passed proves those stores restorable.
    public func recordEvidence(_ outcome: Outcome, selection: RestoreSelection, point: RecoveryPoint?, started: Date) async throws -> DrillReport {
        let report = DrillReport(id: Repository.newDocumentID(), platform: preparation.catalog.platform ?? "", point: point?.id ?? selection.label,
                                 hostname: ProcessInfo.processInfo.hostName, started: started, finished: Date(), steps: outcome.steps,
                                 kind: .production)
        return try await preparation.repository.writeDocument(report, in: .evidence, id: report.id)
    }

    /// Runs `steps` from plan order `fromStep`; earlier steps are recorded as skipped (already done).
    /// `journal`, when given, records each step's stage durably before and after its destructive part.
    public func run(
        _ steps: [PreparedStep], mode: Mode, fromStep: Int = 1, startedAt: Date = Date(), journal: RestoreJournal? = nil,
        onEvent: (Event) -> Void = { _ in }
    ) async -> Outcome {
        var records: [DrillReport.Step] = []
        var restored: [any RestoredStore] = []
        var stopped: String?
        for prepared in steps {
            let step = prepared.step
            let began = Date()
            func record(_ outcome: DrillReport.Outcome, target: String? = nil, checks: [CheckResult] = [], reason: String? = nil) -> DrillReport.Step {
                let finished = Date()
                return DrillReport.Step(
                    order: step.order, store: step.store, kind: step.kind.rawValue, action: step.action, snapshot: prepared.snapshot?.id,
                    dataTime: prepared.dataTime, consistency: prepared.consistency, target: target, started: began, finished: finished,
                    outcome: outcome, checks: checks, reason: reason,
                    rpoTarget: prepared.store?.rpo.map { Double($0.seconds) }, rtoTarget: prepared.store?.rto.map { Double($0.seconds) },
                    measuredRPO: outcome == .passed ? prepared.dataTime.map { startedAt.timeIntervalSince($0) } : nil,
                    measuredRTO: outcome == .passed ? finished.timeIntervalSince(startedAt) : nil)
            }
            if step.order < fromStep {
                records.append(record(.skipped, reason: "before --from-step \(fromStep)"))
                continue
            }
            // Cancelled (Ctrl-C, a scheduler shutting down): no further store is touched.
            if stopped == nil, Task.isCancelled { stopped = "the run was cancelled" }
            if let stopped {
                records.append(record(.skipped, reason: "not run: \(stopped)"))
                continue
            }
            if step.isManual {
                records.append(record(.manual, reason: "a person performs this step: \(step.action)"))
                onEvent(.stepFinished(records.last!))
                continue
            }
            onEvent(.stepStarted(prepared))
            guard prepared.problem == nil, let store = prepared.store, let snapshot = prepared.snapshot,
                  let connector = preparation.connectors[store.kind] else {
                let reason = prepared.problem ?? "nothing to restore"
                records.append(record(.failed, reason: reason))
                stopped = "step \(step.order) (\(step.store)) failed"
                onEvent(.stepFinished(records.last!))
                continue
            }
            let destination: StoreRestoreRequest.Destination = switch mode {
            case .scratch(let directory): .scratch(directory.appendingPathComponent(store.name, isDirectory: true))
            case .production(let force): .production(force: force)
            }
            let request = StoreRestoreRequest(store: store, snapshot: snapshot, targetTime: prepared.targetTime,
                                              repository: preparation.repository, destination: destination)
            do {
                try journal?.mark(step: step.order, store: store.name, snapshot: snapshot.id, stage: .prepared)
                let restoredStore = try await connector.restore(request)
                restored.append(restoredStore)
                try journal?.mark(step: step.order, store: store.name, snapshot: snapshot.id, stage: .committed)
                let automated = store.verify.filter { if case .manual = $0 { false } else { true } }
                let checks = try await restoredStore.check(automated)
                if let failed = checks.first(where: { !$0.passed }) {
                    records.append(record(.failed, target: restoredStore.target, checks: checks,
                                          reason: "gate failed: \(failed.check): \(failed.detail)"))
                    stopped = "the gate of step \(step.order) (\(step.store)) failed"
                } else if checks.isEmpty {
                    // Restored, but nothing proved it: the step is not a proof of restorability
                    // (status does not count it) and a person has to look.
                    try journal?.mark(step: step.order, store: store.name, snapshot: snapshot.id, stage: .verified)
                    records.append(record(.manual, target: restoredStore.target, checks: checks,
                                          reason: "restored, but its gate holds no automated check: verify it by hand, and add verify checks to the catalog"))
                } else {
                    try journal?.mark(step: step.order, store: store.name, snapshot: snapshot.id, stage: .verified)
                    records.append(record(.passed, target: restoredStore.target, checks: checks))
                }
            } catch {
                records.append(record(.failed, reason: "restore failed: \(error)"))
                stopped = "step \(step.order) (\(step.store)) failed"
            }
            onEvent(.stepFinished(records.last!))
        }
        return Outcome(steps: records, restored: restored)
    }
}

/// A durable record of a production restore's stages, so a step that committed a destructive change
/// is never re-run blindly after a crash: the next run resumes from it or stops and says what it found.
public final class RestoreJournal: @unchecked Sendable {
    public enum Stage: String, Codable, Sendable { case prepared, committed, verified }

    public struct Entry: Codable, Sendable, Hashable {
        public var step: Int
        public var store: String
        public var snapshot: String
        public var stage: Stage
        public var time: Date
    }

    public struct Document: Codable, Sendable {
        public var point: String
        public var entries: [Entry]
    }

    public let url: URL
    public private(set) var document: Document
    private let lock = NSLock()

    /// Opens the journal of a restore of `point` at `url`. An existing journal of the same point is
    /// continued; one of another point is refused (finish or remove it first).
    public init(url: URL, point: String) throws {
        self.url = url
        if let data = try? Data(contentsOf: url) {
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            let existing = try decoder.decode(Document.self, from: data)
            guard existing.point == point else {
                throw EngineError(.journal, "\(url.path) records an unfinished restore of recovery point \(existing.point.prefix(8)); finish it or remove the journal")
            }
            document = existing
        } else {
            document = Document(point: point, entries: [])
        }
    }

    /// The latest stage each step reached.
    public var stages: [Int: Entry] {
        lock.withLock { Dictionary(document.entries.map { ($0.step, $0) }, uniquingKeysWith: { $1 }) }
    }

    /// Refuses to run when an earlier run committed a step without verifying it, unless the caller
    /// chose where to resume (`--from-step`) knowing that.
    public func checkResume(explicitFromStep: Bool) throws {
        let unverified = stages.values.filter { $0.stage == .committed }.sorted { $0.step < $1.step }
        if let entry = unverified.first, !explicitFromStep {
            throw EngineError(.journal, "step \(entry.step) (\(entry.store)) committed a destructive restore at \(SourceTime.format(entry.time)) but was never verified; inspect \(entry.store), then re-run with --from-step \(entry.step) to redo it or --from-step \(entry.step + 1) to continue after it")
        }
    }

    func mark(step: Int, store: String, snapshot: String, stage: Stage) throws {
        try lock.withLock {
            document.entries.append(Entry(step: step, store: store, snapshot: snapshot, stage: stage, time: Date()))
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            encoder.dateEncodingStrategy = .iso8601
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            // Atomic write (temp file + rename): a crash leaves the old journal or the new one.
            try encoder.encode(document).write(to: url, options: .atomic)
        }
    }
}
