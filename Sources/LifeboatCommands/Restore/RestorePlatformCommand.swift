import ArgumentParser
import Foundation
import LifeboatCore
import LifeboatEngine
import LifeboatPlatform
import LifeboatRepository

/// `lifeboat restore [platform]`: executes the restore plan against the catalog's own targets.
struct RestorePlatformCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "platform",
        abstract: "Restore every store of a recovery point in plan order, each step gated by its verify checks.",
        discussion: """
        Step by step in plan order: the step's guard is checked, its store restored into the target
        the catalog names, and its verify checks run as a gate. A failed restore or gate stops the
        run there, names the step and the check, and leaves every later store untouched (exit 5).

        Consistency: no store is restored to a later time than the stores it depends on. When the
        OpenBao snapshot chosen is older than the PostgreSQL data, PostgreSQL is rewound to the
        OpenBao snapshot's time (point-in-time when WAL allows, else its newest older snapshot);
        --dry-run shows it.

        The run is destructive, so it needs --confirm with the phrase --dry-run prints. A journal
        (next to the catalog, .lifeboat/restore-journal.json) records each step's stages; a step
        that committed but was never verified (a crash) stops the next run until --from-step says
        where to resume.

        Example:
          lifeboat restore --latest --catalog lifeboat.yaml --dry-run
          lifeboat restore --point 3fa9c2d1 --catalog lifeboat.yaml --confirm "restore lifeboat-demo 3fa9c2d1"
          lifeboat restore --point 3fa9c2d1 --catalog lifeboat.yaml --from-step 3 --confirm "…"
        """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var selection: SelectionOptions
    @OptionGroup var output: OutputOptions

    @Flag(help: "Print the exact actions and targets, and the confirmation phrase; touch nothing.")
    var dryRun = false

    @Option(help: ArgumentHelp("Start at this plan step (after fixing what stopped an earlier run).", valueName: "n"))
    var fromStep: Int?

    @Option(help: ArgumentHelp("The confirmation phrase --dry-run prints.", valueName: "phrase"))
    var confirm: String?

    @Flag(help: "Let connectors overwrite targets that already hold data.")
    var force = false

    @Option(help: ArgumentHelp("The restore journal (default: .lifeboat/restore-journal.json next to the catalog).", valueName: "path"))
    var journal: String?

    struct PlannedStep: Encodable {
        var order: Int
        var store: String
        var action: String
        var snapshot: String?
        var dataTime: Date?
        var targetTime: Date?
        /// Now − dataTime, and the store's RPO (seconds).
        var dataAge: Double?
        var rpo: Double?
        var reason: String?
        var consistency: String?
        var restore: String?
        var gate: [String]
        var problem: String?
        /// What the real run's guards would refuse, checked against the real target now.
        var preflight: [String] = []
    }

    struct DryRun: Encodable {
        var point: String?
        var confirmation: String
        var steps: [PlannedStep]
    }

    func run() async throws {
        let operations = PlatformOperations(try await repository.platformContext(damaged: selection.damaged))
        let chosen = try selection.selection()
        if dryRun {
            let preview = try await operations.previewRestore(chosen, overrides: try selection.overrides(), instant: selection.time, force: force,
                                                              fromStep: fromStep ?? 1)
            let planned = preview.steps.enumerated().map { index, prepared in
                PlannedStep(
                    order: prepared.step.order, store: prepared.step.store, action: prepared.step.action, snapshot: prepared.snapshot?.id,
                    dataTime: prepared.dataTime, targetTime: prepared.targetTime,
                    dataAge: prepared.dataTime.map { Date().timeIntervalSince($0) }, rpo: prepared.store?.rpo.map { Double($0.seconds) },
                    reason: prepared.reason, consistency: prepared.consistency, restore: preview.actions[index],
                    gate: prepared.step.verify, problem: prepared.problem, preflight: preview.preflight[index])
            }
            render(DryRun(point: preview.point?.id, confirmation: preview.confirmation, steps: planned), point: preview.point)
            // The real run would stop: a dry run that says so must not look like a clean plan.
            if let stop = planned.first(where: { $0.problem != nil }) {
                throw CommandFailure(.gateFailed, "the restore would stop at step \(stop.order) (\(stop.store)): \(stop.problem!)")
            }
            let refused = planned.filter { !$0.preflight.isEmpty }
            if !refused.isEmpty {
                throw CommandFailure(.gateFailed, "preflight: the real run would refuse "
                    + refused.map { "step \($0.order) (\($0.store)): \($0.preflight.joined(separator: "; "))" }.joined(separator: " · "))
            }
            return
        }
        let quiet = output.json
        let run = try await operations.restore(chosen, overrides: try selection.overrides(), instant: selection.time, force: force, fromStep: fromStep,
                                               confirmation: confirm, journal: journal.map { URL(fileURLWithPath: $0) }) { event in
            guard !quiet else { return }
            switch event {
            case .stepStarted(let prepared): printError("step \(prepared.step.order): restoring \(prepared.step.store)…")
            case .stepFinished(let step): printError("step \(step.order): \(step.store) \(step.outcome.rawValue)" + (step.reason.map { ": \($0)" } ?? ""))
            }
        }
        if let evidence = run.evidence {
            if !quiet { printError("recorded as evidence \(evidence.id.prefix(8)) (lifeboat status counts its passed gates)") }
        } else if let why = run.evidenceError {
            printError("lifeboat: warning: the restore could not be recorded as evidence in the repository: \(why)")
        }
        if output.json {
            try printJSON(run.steps)
        } else {
            print(DrillReportText.steps(run.steps))
            // Where each store now is: an operator's next move (start a handed-over data directory) depends on it.
            for step in run.steps { if let target = step.target { print("\(step.store): \(target)") } }
        }
        if let failed = run.failedStep {
            throw CommandFailure(.gateFailed, "the restore stopped at step \(failed.order) (\(failed.store)): \(failed.reason ?? "failed"); later stores were not touched. Fix it and re-run with --from-step \(failed.order)")
        }
    }

    func render(_ dryRun: DryRun, point: RecoveryPoint?) {
        if output.json {
            try? printJSON(dryRun)
            return
        }
        print("restore of \(point.map { "recovery point \($0.id.prefix(8))" } ?? (selection.time.map { "every store as of \($0)" } ?? "every store at its newest restorable state")) — dry run, nothing is touched")
        for step in dryRun.steps {
            print("\n\(step.order). \(step.store): \(step.action)")
            if let snapshot = step.snapshot {
                let age = step.dataAge.map { " (\(TimeSpan.describe(seconds: $0)) old" + (step.rpo.map { ", rpo \(TimeSpan.describe(seconds: $0))" } ?? "") + ")" } ?? ""
                print("   snapshot: \(snapshot.prefix(8)), data from \(step.dataTime.map(SourceTime.format) ?? "?")\(age)")
            }
            if let targetTime = step.targetTime { print("   point-in-time: \(SourceTime.format(targetTime))") }
            if let reason = step.reason { print("   why: \(reason)") }
            if let consistency = step.consistency { print("   consistency: \(consistency)") }
            if let restore = step.restore { print("   does: \(restore)") }
            for check in step.gate { print("   gate: \(check)") }
            if let problem = step.problem { print("   WILL STOP HERE: \(problem)") }
            for refusal in step.preflight { print("   PREFLIGHT: \(refusal)") }
        }
        print("\nto run it: --confirm \"\(dryRun.confirmation)\"")
    }
}
