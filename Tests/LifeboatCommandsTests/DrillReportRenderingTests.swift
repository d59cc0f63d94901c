import Foundation
import LifeboatCore
import Testing
@testable import LifeboatCommands

@Suite struct DrillReportRenderingTests {
    static func report() -> DrillReport {
        let start = Date(timeIntervalSince1970: 1_795_000_000)
        func step(_ order: Int, _ store: String, _ outcome: DrillReport.Outcome, from: Double, to: Double, check: CheckResult?) -> DrillReport.Step {
            DrillReport.Step(order: order, store: store, kind: "postgres", action: "restore", snapshot: "abcdef0123456789", dataTime: start.addingTimeInterval(-30),
                             consistency: order == 2 ? "rewound to <older> time" : nil, target: "127.0.0.1:5432",
                             started: start.addingTimeInterval(from), finished: start.addingTimeInterval(to), outcome: outcome,
                             checks: check.map { [$0] } ?? [], reason: outcome == .failed ? "gate failed: <script>alert(1)</script>" : nil,
                             rpoTarget: 60, rtoTarget: 5, measuredRPO: outcome == .passed ? 30 : nil, measuredRTO: outcome == .passed ? to : nil)
        }
        return DrillReport(id: "d1", platform: "acme & co", point: "p1", hostname: "h", started: start, finished: start.addingTimeInterval(12), steps: [
            step(1, "openbao", .passed, from: 0, to: 4, check: CheckResult(check: "read secret/data/a", passed: true, detail: "read back")),
            step(2, "postgres", .failed, from: 4, to: 10, check: CheckResult(check: "sql SELECT 1 = 2", passed: false, detail: "returned 1")),
            step(3, "etcd", .skipped, from: 10, to: 10, check: nil),
        ])
    }

    @Test func theHTMLReportIsSelfContainedEscapedAndDrawsEveryStepThatRan() {
        let html = DrillReportHTML.render(Self.report())
        #expect(html.hasPrefix("<!DOCTYPE html>"))
        #expect(!html.contains("<script"), "the report runs no scripts, and escapes what it prints")
        #expect(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
        #expect(html.contains("acme &amp; co"))
        #expect(!html.contains("src=\"http") && !html.contains("href=\"http"), "no external resources")
        // One bar per step that ran (skipped steps have no bar), with its duration.
        #expect(html.components(separatedBy: "<rect ").count - 1 == 2)
        #expect(html.contains("<title>postgres: failed, 6.0s</title>"))
        #expect(html.contains("FAILED — a gate failed"))
        #expect(html.contains("rewound to &lt;older&gt; time"))
    }

    @Test func theTextReportNamesTheFailedStepAndItsReason() {
        let text = DrillReportText.render(Self.report())
        #expect(text.contains("FAILED at step 2 (postgres): gate failed"))
        #expect(text.contains("note: postgres rewound to <older> time"))
        #expect(text.contains("openbao   PASSED"))
        #expect(text.hasSuffix("FAILED: a gate failed"))
        // A restore that failed before its gate ran is not "a gate failed".
        var report = Self.report()
        report.steps = report.steps.map { step in
            var step = step
            if step.outcome == .failed { step.checks = [] }
            return step
        }
        #expect(DrillReportText.render(report).hasSuffix("FAILED: the restore failed"))
    }

    @Test func aDrillWhoseGatesPassedButMissedATargetFailsAndNamesIt() {
        var report = Self.report()
        // Every gate passed, but etcd came back after 10 s against a 5 s RTO.
        report.steps = report.steps.map { step in
            var step = step
            step.outcome = .passed
            step.reason = nil
            step.checks = [CheckResult(check: "check of \(step.store)", passed: true, detail: "ok")]
            step.measuredRPO = 30
            step.measuredRTO = step.finished.timeIntervalSince(report.started)
            return step
        }
        report.steps[2].finished = report.started.addingTimeInterval(10)
        report.steps[2].measuredRTO = 10
        #expect(report.gatesPassed && !report.passed)
        let text = DrillReportText.render(report)
        #expect(text.contains("10.0s / 5.0s MISSED") || text.contains("10s / 5s MISSED"), "\(text)")
        #expect(text.contains("MISSED: "), "\(text)")
        #expect(text.hasSuffix("FAILED: targets missed"))
        let rows = text.split(separator: "\n")
        #expect(rows.first { $0.hasPrefix("3  etcd") }?.contains("MISSED") == true, "\(text)")
        #expect(rows.first { $0.hasPrefix("1  openbao") }?.contains("MISSED") == false, "\(text)")
        let html = DrillReportHTML.render(report)
        #expect(html.contains("missed</span>"))
    }
}
