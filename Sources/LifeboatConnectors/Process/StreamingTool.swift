import Foundation
import LifeboatStorage

/// A tool run whose standard output is read, or whose standard input is written, as a stream
/// (`pg_dump` into the repository, the repository into `pg_restore`), with nothing whole on disk.
///
/// Every blocking pipe read and write happens on a GCD thread, never on Swift's small cooperative
/// pool; stderr is collected (bounded) for the error message. The stream reports the tool's failure
/// at its end: `read()` throws instead of returning the final nil when the tool exited non-zero, so a
/// truncated dump can never be stored as a finished one.
public final class StreamingTool: @unchecked Sendable {
    public let tool: ExternalTool
    private let process = Process()
    private let stdoutPipe: Pipe?
    private let stdinPipe: Pipe?
    private let stderrPipe = ChildProcess.pipe()
    private let lock = NSLock()
    private var stderrTail = Data()
    private let stderrDone = DispatchSemaphore(value: 0)
    private let queue = DispatchQueue(label: "lifeboat.streaming-tool")
    private var inputClosed = false

    public enum Direction: Sendable {
        /// Lifeboat reads the tool's stdout (stdin is /dev/null).
        case readOutput
        /// Lifeboat writes the tool's stdin (stdout is collected with stderr).
        case writeInput
    }

    /// Starts `tool` at once.
    public init(_ tool: ExternalTool, _ arguments: [String], environment: [String: String] = [:],
                direction: Direction, currentDirectory: URL? = nil) throws(ToolError) {
        self.tool = tool
        // A write to a tool that died must fail with EPIPE, not kill Lifeboat with SIGPIPE.
        signal(SIGPIPE, SIG_IGN)
        process.executableURL = URL(fileURLWithPath: tool.path)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        if let currentDirectory { process.currentDirectoryURL = currentDirectory }
        switch direction {
        case .readOutput:
            stdoutPipe = ChildProcess.pipe()
            stdinPipe = nil
            process.standardOutput = stdoutPipe
            process.standardInput = FileHandle.nullDevice
        case .writeInput:
            stdoutPipe = nil
            stdinPipe = ChildProcess.pipe()
            process.standardInput = stdinPipe
            process.standardOutput = stderrPipe
        }
        process.standardError = stderrPipe
        // A 1 MiB pipe (Linux F_SETPIPE_SZ) instead of 64 KiB: fewer wake-ups per MiB streamed.
        #if os(Linux)
        for pipe in [stdoutPipe, stdinPipe].compactMap({ $0 }) { _ = fcntl(pipe.fileHandleForReading.fileDescriptor, 1031, Int32(1 << 20)) }
        #endif
        do {
            try ChildProcess.launch(process)
        } catch {
            throw ToolError(tool: tool.name, reason: "could not start \(tool.path): \(error)")
        }
        // Our copies of the child's ends must close, or EOF never comes.
        try? stderrPipe.fileHandleForWriting.close()
        try? stdoutPipe?.fileHandleForWriting.close()
        try? stdinPipe?.fileHandleForReading.close()
        let errors = stderrPipe.fileHandleForReading
        DispatchQueue.global().async { [self] in
            while true {
                let data = errors.availableData
                if data.isEmpty { break }
                lock.lock()
                stderrTail.append(data)
                if stderrTail.count > 64 << 10 { stderrTail = stderrTail.suffix(32 << 10) }
                lock.unlock()
            }
            stderrDone.signal()
        }
    }

    public var pid: Int32 { process.processIdentifier }

    /// The next block of output (up to `limit` bytes), or nil at the end once the tool exited 0.
    public func read(limit: Int = 1 << 20) async throws -> Data? {
        guard let handle = stdoutPipe?.fileHandleForReading else { return nil }
        let data: Data = try await withCheckedThrowingContinuation { continuation in
            queue.async {
                do { continuation.resume(returning: try handle.readBlock(upToCount: limit) ?? Data()) } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
        if !data.isEmpty { return data }
        _ = try await finish()
        return nil
    }

    /// Reads exactly up to `count` bytes (fewer only at the end of the stream).
    public func read(exactly count: Int) async throws -> Data {
        var collected = Data()
        while collected.count < count, let more = try await read(limit: count - collected.count) {
            collected.append(more)
        }
        return collected
    }

    /// Writes `data` to the tool's stdin; throws if the tool stopped reading (it exited).
    public func write(_ data: Data) async throws {
        guard let handle = stdinPipe?.fileHandleForWriting else { return }
        do {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                queue.async {
                    do {
                        try handle.write(contentsOf: data)
                        continuation.resume()
                    } catch {
                        continuation.resume(throwing: error)
                    }
                }
            }
        } catch {
            // A broken pipe means the tool died: its own message is the useful one.
            let status = try? await finish()
            throw ToolError(tool: tool.name, reason: "stopped reading its input (exit status \(status.map(String.init) ?? "?")): \(lastWords)")
        }
    }

    /// Closes stdin (when writing), waits for the tool to exit, and throws unless it exited 0.
    @discardableResult
    public func finish() async throws(ToolError) -> Int32 {
        closeInput()
        let status = await waitForExit()
        guard status == 0 else {
            throw ToolError(tool: tool.name, reason: "exited with status \(status): \(lastWords)")
        }
        return status
    }

    /// Waits for the exit without judging the status.
    public func waitForExit() async -> Int32 {
        closeInput()
        while process.isRunning { try? await Task.sleep(for: .milliseconds(10)) }
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async { [self] in
                stderrDone.wait()
                stderrDone.signal()
                continuation.resume()
            }
        }
        return process.terminationStatus
    }

    /// Stops the tool (used when the other side of the stream failed).
    public func terminate() {
        closeInput()
        if process.isRunning { kill(process.processIdentifier, SIGTERM) }
    }

    /// The last lines the tool printed on stderr.
    public var lastWords: String {
        lock.lock()
        defer { lock.unlock() }
        let text = String(decoding: stderrTail, as: UTF8.self)
        return text.split(separator: "\n").suffix(5).joined(separator: "\n")
    }

    private func closeInput() {
        lock.lock()
        defer { lock.unlock() }
        guard !inputClosed else { return }
        inputClosed = true
        // On the serial queue, after any write still in flight.
        if let handle = stdinPipe?.fileHandleForWriting {
            queue.async { try? handle.close() }
        }
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}
