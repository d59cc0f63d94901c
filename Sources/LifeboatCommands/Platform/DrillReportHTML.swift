import Foundation
import LifeboatCore
import LifeboatRepository

/// A drill report as one self-contained HTML page (no scripts, no external resources): a summary,
/// a timeline of the steps drawn in SVG, and every gate's checks.
enum DrillReportHTML {
    static func render(_ report: DrillReport) -> String {
        let verdict = report.passed ? "PASSED" : report.gatesPassed ? "FAILED — targets missed" : "FAILED — \(DrillReportText.failureKind(report))"
        var html = """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8">
        <title>Lifeboat drill \(escape(String(report.id.prefix(8)))) — \(escape(report.platform))</title>
        <style>
        body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:1100px;color:#1d2430;padding:0 1rem}
        h1{font-size:1.5rem;margin:0 0 .25rem} h2{font-size:1.1rem;margin:2rem 0 .5rem}
        .verdict{display:inline-block;white-space:nowrap;padding:.2rem .7rem;border-radius:4px;color:#fff;font-weight:600}
        .passed{background:#1f8a4c} .failed{background:#c0392b} .skipped{background:#8a94a6} .manual{background:#b7791f}
        table{border-collapse:collapse;width:100%} th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #e3e7ee;vertical-align:top;overflow-wrap:anywhere}
        th{background:#f4f6fa;font-weight:600;white-space:nowrap} td.nowrap{white-space:nowrap} td.num{text-align:right;font-variant-numeric:tabular-nums}
        .meta{color:#5a6475} .miss{color:#c0392b;font-weight:600} code{font-size:12px}
        svg text{font:12px system-ui,sans-serif;fill:#1d2430}
        </style></head><body>
        <h1>Restore drill — \(escape(report.platform.isEmpty ? "platform" : report.platform))</h1>
        <p class="meta">Drill \(escape(report.id)) of \(escape(DrillReportText.describeSelection(report.point))) on \(escape(report.hostname)),
        \(escape(RepositoryTimeText.format(report.started))) UTC, \(escape(TimeSpan.describe(seconds: report.duration))) in all.</p>
        <p><span class="verdict \(report.passed ? "passed" : "failed")">\(escape(verdict))</span></p>
        """
        if !report.missedTargets.isEmpty {
            html += "<ul>" + report.missedTargets.map { "<li class=\"miss\">\(escape($0))</li>" }.joined() + "</ul>\n"
        }
        html += "<h2>Timeline</h2>\n" + timeline(report) + "\n<h2>Steps</h2>\n" + stepsTable(report) + "\n<h2>Verify gates</h2>\n" + gates(report)
        html += "\n<p class=\"meta\">Measured RPO: drill start − the time the restored data reflects. Measured RTO: drill start → the step's end.</p>\n</body></html>\n"
        return html
    }

    static func timeline(_ report: DrillReport) -> String {
        let steps = report.steps.filter { $0.outcome != .skipped }
        let total = max(report.duration, steps.map { $0.finished.timeIntervalSince(report.started) }.max() ?? 0, 0.001)
        let labelWidth = 170.0, chartWidth = 860.0, rowHeight = 30.0
        let height = Double(steps.count) * rowHeight + 40
        func x(_ seconds: Double) -> Double { labelWidth + seconds / total * chartWidth }
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(labelWidth + chartWidth + 20))\" height=\"\(Int(height))\" role=\"img\" aria-label=\"timeline of the drill's steps\">\n"
        for tick in 0...4 {
            let seconds = total * Double(tick) / 4
            svg += "<line x1=\"\(x(seconds))\" y1=\"0\" x2=\"\(x(seconds))\" y2=\"\(height - 20)\" stroke=\"#e3e7ee\"/>"
            svg += "<text x=\"\(x(seconds))\" y=\"\(height - 5)\" text-anchor=\"middle\">\(escape(TimeSpan.describe(seconds: seconds)))</text>\n"
        }
        for (row, step) in steps.enumerated() {
            let y = Double(row) * rowHeight + 5
            let start = step.started.timeIntervalSince(report.started), end = step.finished.timeIntervalSince(report.started)
            let color = switch step.outcome { case .passed: "#1f8a4c"; case .failed: "#c0392b"; case .manual: "#b7791f"; case .skipped: "#8a94a6" }
            svg += "<text x=\"0\" y=\"\(y + 17)\">\(step.order). \(escape(step.store))</text>"
            svg += "<rect x=\"\(x(start))\" y=\"\(y)\" width=\"\(max(2, x(end) - x(start)))\" height=\"22\" rx=\"3\" fill=\"\(color)\"><title>\(escape(step.store)): \(escape(step.outcome.rawValue)), \(escape(TimeSpan.describe(seconds: step.duration)))</title></rect>"
            svg += "<text x=\"\(x(end) + 4)\" y=\"\(y + 16)\">\(escape(TimeSpan.describe(seconds: step.duration)))</text>\n"
        }
        return svg + "</svg>"
    }

    static func stepsTable(_ report: DrillReport) -> String {
        var html = "<table><tr><th>#</th><th>Store</th><th>Outcome</th><th>Snapshot</th><th>Data time (UTC)</th><th>Data age / RPO</th><th>Duration</th><th>Back after / RTO</th><th>Target</th></tr>\n"
        for step in report.steps {
            func measure(_ value: Double?, _ target: Double?, _ met: Bool?) -> String {
                guard let value else { return "–" }
                let text = TimeSpan.describe(seconds: value) + (target.map { " / " + TimeSpan.describe(seconds: $0) } ?? "")
                return met == false ? "<span class=\"miss\">\(escape(text)) missed</span>" : escape(text)
            }
            html += "<tr><td class=\"num\">\(step.order)</td><td class=\"nowrap\">\(escape(step.store))<br><span class=\"meta\">\(escape(step.kind))</span></td>"
            html += "<td><span class=\"verdict \(step.outcome.rawValue)\">\(step.outcome.rawValue)</span></td>"
            html += "<td class=\"nowrap\"><code>\(escape(step.snapshot.map { String($0.prefix(12)) } ?? "–"))</code></td>"
            html += "<td>\(escape(step.dataTime.map(RepositoryTimeText.format) ?? "–"))</td>"
            html += "<td class=\"nowrap\">\(measure(step.measuredRPO, step.rpoTarget, step.rpoMet))</td>"
            html += "<td class=\"num\">\(step.outcome == .skipped ? "–" : escape(TimeSpan.describe(seconds: step.duration)))</td>"
            html += "<td class=\"nowrap\">\(measure(step.measuredRTO, step.rtoTarget, step.rtoMet))</td>"
            html += "<td>\(escape(step.target ?? "–"))"
            if let consistency = step.consistency { html += "<br><span class=\"meta\">\(escape(consistency))</span>" }
            if let reason = step.reason { html += "<br><span class=\"\(step.outcome == .failed ? "miss" : "meta")\">\(escape(reason))</span>" }
            html += "</td></tr>\n"
        }
        return html + "</table>"
    }

    static func gates(_ report: DrillReport) -> String {
        let checked = report.steps.filter { !$0.checks.isEmpty }
        guard !checked.isEmpty else { return "<p class=\"meta\">No automated checks ran.</p>" }
        var html = "<table><tr><th>Store</th><th>Check</th><th>Result</th><th>Found</th></tr>\n"
        for step in checked {
            for check in step.checks {
                html += "<tr><td class=\"nowrap\">\(escape(step.store))</td><td><code>\(escape(check.check))</code></td>"
                html += "<td><span class=\"verdict \(check.passed ? "passed" : "failed")\">\(check.passed ? "pass" : "fail")</span></td><td>\(escape(check.detail))</td></tr>\n"
            }
        }
        return html + "</table>"
    }

    static func escape(_ text: String) -> String {
        var escaped = ""
        for character in text {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            default: escaped.append(character)
            }
        }
        return escaped
    }
}
