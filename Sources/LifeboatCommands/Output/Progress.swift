import Foundation
import LifeboatCore

/// Bytes, rate and (when the total is known) ETA on a terminal's stderr; silent in a pipe or a log.
final class TransferProgress: @unchecked Sendable {
    private let label: String
    private let total: Int64?
    private let enabled: Bool
    private let started = Date()
    private let lock = NSLock()
    private var lastDraw = Date.distantPast
    private var drawn = false

    init(_ label: String, total: Int64?) {
        self.label = label
        self.total = total
        enabled = isatty(STDERR_FILENO) == 1
    }

    func update(_ bytes: Int64) {
        guard enabled else { return }
        lock.lock()
        defer { lock.unlock() }
        let now = Date()
        guard now.timeIntervalSince(lastDraw) >= 0.25 else { return }
        lastDraw = now
        drawn = true
        let elapsed = max(now.timeIntervalSince(started), 0.001)
        let rate = Double(bytes) / elapsed
        var line = "\(label) \(formatBytes(bytes))"
        if let total, total > 0 {
            line += " of \(formatBytes(total)) (\(Int(Double(bytes) * 100 / Double(total)))%)"
        }
        line += ", \(formatBytes(Int64(rate)))/s"
        if let total, rate > 0, total > bytes {
            line += ", ETA \(Int(Double(total - bytes) / rate))s"
        }
        try? FileHandle.standardError.write(contentsOf: Data("\r\u{1B}[K\(line)".utf8))
    }

    func finish() {
        guard enabled else { return }
        lock.lock()
        defer { lock.unlock() }
        if drawn { try? FileHandle.standardError.write(contentsOf: Data("\r\u{1B}[K".utf8)) }
    }
}
