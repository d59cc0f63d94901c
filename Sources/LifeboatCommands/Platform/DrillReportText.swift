import Foundation
import LifeboatCore
import LifeboatEngine
import LifeboatRepository

/// A drill report (or a restore run's steps) as a terminal table.
enum DrillReportText {
    static func render(_ report: DrillReport) -> String {
        var lines = ["drill \(report.id.prefix(8)) of \(describeSelection(report.point)) on \(report.hostname), \(RepositoryTimeText.format(report.started)) UTC"]
        lines.append(steps(report.steps))
        for step in report.steps where step.consistency != nil { lines.append("note: \(step.store) \(step.consistency!)") }
        for step in report.steps where step.outcome == .failed { lines.append("FAILED at step \(step.order) (\(step.store)): \(step.reason ?? "")") }
        for missed in report.missedTargets { lines.append("MISSED: \(missed)") }
        lines.append("total \(TimeSpan.describe(seconds: report.duration)); "
            + (report.passed ? "PASSED: every gate passed and every target was met" : report.gatesPassed ? "FAILED: targets missed" : "FAILED: \(failureKind(report))"))
        return lines.joined(separator: "\n")
    }

    /// A drill's `point`: a recovery point's id, or the instant selection (`latest`, `time …`).
    static func describeSelection(_ point: String) -> String {
        point.allSatisfy(\.isHexDigit) && point.count >= 8 ? "recovery point \(point.prefix(8))" : point.isEmpty ? "the selected data" : point
    }

    /// "a gate failed" only when a gate ran and a check failed; a step that failed before its
    /// gate could run is a failed restore.
    static func failureKind(_ report: DrillReport) -> String {
        let failed = report.steps.filter { $0.outcome == .failed }
        return failed.contains { $0.checks.contains { !$0.passed } } ? "a gate failed" : "the restore failed"
    }

    static func steps(_ steps: [DrillReport.Step]) -> String {
        var table = Table("#", "STORE", "OUTCOME", "SNAPSHOT", "DATA AGE (RPO)", "TIME", "BACK AFTER (RTO)", "GATE")
        for step in steps {
            let rpo = step.measuredRPO.map { TimeSpan.describe(seconds: $0) + target(step.rpoTarget, met: step.rpoMet) } ?? "-"
            let rto = step.measuredRTO.map { TimeSpan.describe(seconds: $0) + target(step.rtoTarget, met: step.rtoMet) } ?? "-"
            let gate = step.checks.isEmpty ? (step.outcome == .manual ? "manual" : "-")
                : "\(step.checks.filter(\.passed).count)/\(step.checks.count) passed"
            table.add("\(step.order)", step.store, step.outcome.rawValue.uppercased(), step.snapshot.map { String($0.prefix(8)) } ?? "-",
                      rpo, step.outcome == .skipped ? "-" : TimeSpan.describe(seconds: step.duration), rto, gate)
        }
        return table.render()
    }

    private static func target(_ target: Double?, met: Bool?) -> String {
        guard let target else { return "" }
        return " / \(TimeSpan.describe(seconds: target))" + (met == false ? " MISSED" : "")
    }
}
