import Foundation
import LifeboatCore
import LifeboatRepository

/// `lifeboat drill`: restores a recovery point into scratch instances, runs every gate, measures
/// each step (RTO) and the age of the restored data (RPO), and stores the report as evidence.
/// Never touches a production target: every destination is a fresh instance under `workDirectory`.
public struct Drill: Sendable {
    public let preparation: RestorePreparation

    public init(preparation: RestorePreparation) {
        self.preparation = preparation
    }

    /// Runs the drill and records its report in the repository (even when it failed: a failed drill
    /// is evidence too). Scratch instances are stopped before this returns.
    public func run(
        _ selection: RestoreSelection, overrides: [String: String] = [:], workDirectory: URL,
        onEvent: (PlatformRestore.Event) -> Void = { _ in }
    ) async throws -> DrillReport {
        let started = Date()
        let (point, steps) = try await preparation.prepare(selection, overrides: overrides)
        let outcome = await PlatformRestore(preparation: preparation).run(steps, mode: .scratch(workDirectory), startedAt: started, onEvent: onEvent)
        await outcome.releaseAll()
        let report = DrillReport(
            id: Repository.newDocumentID(), platform: preparation.catalog.platform ?? "", point: point?.id ?? selection.label,
            hostname: ProcessInfo.processInfo.hostName, started: started, finished: Date(), steps: outcome.steps)
        return try await preparation.repository.writeDocument(report, in: .evidence, id: report.id)
    }
}
