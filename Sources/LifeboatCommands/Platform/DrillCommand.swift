import ArgumentParser
import Foundation
import LifeboatConnectors
import LifeboatCore
import LifeboatEngine
import LifeboatPlatform
import LifeboatRepository

/// `lifeboat drill`
struct DrillCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drill",
        abstract: "Prove a recovery point restorable: restore it into scratch instances, run every gate, measure RTO and RPO.",
        discussion: """
        Every store is restored in plan order into a fresh instance the drill starts itself (a new
        PostgreSQL data directory and port, a new OpenBao, a new etcd) — never a production target —
        and every verify check of the catalog runs as a gate. The report (each step's time, the age of
        the restored data, every check) is stored in the repository as evidence: `lifeboat catalog`,
        `lifeboat status` and the API show the last proven restore from it.

        Exit codes: 0 passed; 5 a restore or gate failed; 6 every gate passed but a store missed
        its RPO or RTO target.

        Example:
          lifeboat drill --catalog lifeboat.yaml --html drill.html
        """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var selection: SelectionOptions
    @OptionGroup var output: OutputOptions

    @Option(help: ArgumentHelp("Also write the report as a self-contained HTML page with a timeline of the steps.", valueName: "path"))
    var html: String?

    @Option(help: ArgumentHelp("Keep the scratch instances' data in a new directory under this one (default: a temporary directory, removed afterwards).", valueName: "directory"))
    var workDirectory: String?

    func run() async throws {
        let context = try await repository.platformContext(damaged: selection.damaged)
        let report = try await Self.drill(context, selection: try selection.selection(), overrides: try selection.overrides(),
                                          workDirectory: workDirectory.map { URL(fileURLWithPath: $0) }, quiet: output.json)
        if let html { try Data(DrillReportHTML.render(report).utf8).write(to: URL(fileURLWithPath: html)) }
        if output.json { try printJSON(report) } else { print(DrillReportText.render(report)) }
        try Self.exit(for: report)
    }

    /// Runs the drill use case, its progress on stderr unless `quiet`.
    static func drill(_ context: PlatformContext, selection: RestoreSelection, overrides: [String: String], workDirectory: URL?, quiet: Bool) async throws -> DrillReport {
        try await PlatformOperations(context).drill(selection, overrides: overrides, workDirectory: workDirectory) { event in
            guard !quiet else { return }
            switch event {
            case .stepStarted(let prepared):
                printError("step \(prepared.step.order): restoring \(prepared.step.store)" + (prepared.snapshot.map { " from \($0.id.prefix(8))" } ?? "")
                    + (prepared.consistency.map { " — \($0)" } ?? ""))
            case .stepFinished(let step):
                printError("step \(step.order): \(step.store) \(step.outcome.rawValue) in \(TimeSpan.describe(seconds: step.duration))" + (step.reason.map { ": \($0)" } ?? ""))
            }
        }
    }

    static func exit(for report: DrillReport) throws {
        if !report.gatesPassed {
            let step = report.steps.first { $0.outcome == .failed }
            throw CommandFailure(.gateFailed, "the drill stopped at step \(step?.order ?? 0) (\(step?.store ?? "?")): \(step?.reason ?? "failed")")
        }
        if !report.missedTargets.isEmpty {
            throw CommandFailure(.targetMissed, "every gate passed, but: " + report.missedTargets.joined(separator: "; "))
        }
    }
}
