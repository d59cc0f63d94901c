import Foundation

/// One psql connection held open across several statements: an exported snapshot lives only as long
/// as the transaction that exported it, so the dump's snapshot session stays open while pg_dump runs.
/// Statements are sent on stdin; each answer ends at a marker line Lifeboat echoes after it.
final class PostgresSession: @unchecked Sendable {
    private let process = Process()
    private let input = ChildProcess.pipe()
    private let output = ChildProcess.pipe()
    private let errors = ChildProcess.pipe()
    private let queue = DispatchQueue(label: "lifeboat.psql-session")
    private var buffer = Data()
    private let marker = "__lifeboat_\(UUID().uuidString.prefix(8))__"
    let endpoint: PostgresEndpoint
    let database: String

    init(_ endpoint: PostgresEndpoint, database: String) throws {
        self.endpoint = endpoint
        self.database = database
        signal(SIGPIPE, SIG_IGN)
        process.executableURL = URL(fileURLWithPath: try ExternalTool.locate("psql").path)
        process.arguments = ["-X", "-At", "-q", "-F", "\u{1F}", "-v", "ON_ERROR_STOP=1"]
        process.environment = ProcessInfo.processInfo.environment.merging(endpoint.environment(database: database)) { $1 }
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        try ChildProcess.launch(process)
        try? input.fileHandleForReading.close()
        try? output.fileHandleForWriting.close()
        try? errors.fileHandleForWriting.close()
    }

    /// Runs `sql` (one or more statements) and returns the rows it printed.
    func query(_ sql: String) async throws -> [[String]] {
        let text = sql + (sql.hasSuffix(";") ? "" : ";") + "\n\\echo \(marker)\n"
        let handle = input.fileHandleForWriting
        let reader = output.fileHandleForReading
        let marker = Data((marker + "\n").utf8)
        let pending = buffer
        let result: Result<(Data, Data), any Error> = await withCheckedContinuation { continuation in
            queue.async {
                do {
                    try handle.write(contentsOf: Data(text.utf8))
                    var collected = pending
                    while collected.range(of: marker) == nil {
                        let more = reader.availableData
                        if more.isEmpty { throw CocoaError(.fileReadUnknown) }
                        collected.append(more)
                    }
                    let range = collected.range(of: marker)!
                    continuation.resume(returning: .success((collected[..<range.lowerBound], collected[range.upperBound...])))
                } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
        }
        switch result {
        case .success(let (answer, rest)):
            buffer = Data(rest)
            return String(decoding: answer, as: UTF8.self).split(separator: "\n")
                .map { $0.split(separator: "\u{1F}", omittingEmptySubsequences: false).map(String.init) }
        case .failure:
            close()
            let message = String(decoding: (try? errors.fileHandleForReading.readToEnd()) ?? Data(), as: UTF8.self)
            throw PostgresError(.toolFailed, "\(endpoint)/\(database)", message.split(separator: "\n").suffix(3).joined(separator: " "))
        }
    }

    /// Ends the session (and its transaction, which rolls back: the session only ever reads).
    func close() {
        try? input.fileHandleForWriting.close()
        if process.isRunning { kill(process.processIdentifier, SIGTERM) }
    }

    deinit { close() }
}
