import Foundation

/// A server process Lifeboat started (a drill's scratch instance, the demo's servers, a test's server);
/// stopped by PID when its owner is done, even if that owner failed.
public final class ServerProcess: @unchecked Sendable {
    public let process: Process
    public let name: String

    /// Starts `executable` with `arguments`; output goes to `logFile` so a failing test can show it.
    public init(name: String, executable: String, arguments: [String], environment: [String: String] = [:], logFile: URL) throws {
        self.name = name
        process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        FileManager.default.createFile(atPath: logFile.path, contents: nil)
        let log = try FileHandle(forWritingTo: logFile)
        process.standardOutput = log
        process.standardError = log
        try Self.withUnblockedSignals { try process.run() }
    }

    /// Runs `body` (which spawns a child) with an empty signal mask. A child inherits the spawning
    /// thread's mask, and the test runner's threads block nearly every signal (SIGTERM included):
    /// servers then ignore `stop()`'s SIGTERM and die only to SIGKILL after the grace period.
    public static func withUnblockedSignals<T>(_ body: () throws -> T) rethrows -> T {
        var empty = sigset_t()
        var saved = sigset_t()
        sigemptyset(&empty)
        pthread_sigmask(SIG_SETMASK, &empty, &saved)
        defer { pthread_sigmask(SIG_SETMASK, &saved, nil) }
        return try body()
    }

    public var pid: Int32 { process.processIdentifier }

    /// SIGTERM, then SIGKILL if it has not exited within `grace` seconds.
    public func stop(grace: TimeInterval = 10) {
        guard process.isRunning else { return }
        kill(pid, SIGTERM)
        let deadline = Date().addingTimeInterval(grace)
        while process.isRunning, Date() < deadline { usleep(20_000) }
        if process.isRunning {
            kill(pid, SIGKILL)
            process.waitUntilExit()
        }
    }

    deinit { stop(grace: 2) }
}

/// A free TCP port on 127.0.0.1 (bound, read, released; the caller starts its server on it).
public func freeLoopbackPort() throws -> Int {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { throw POSIXError(.EMFILE) }
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0 }
    }
    guard bound else { throw POSIXError(.EADDRINUSE) }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Waits until something accepts TCP connections on 127.0.0.1:`port`.
public func waitForLoopbackPort(_ port: Int, timeout: TimeInterval, process: ServerProcess? = nil) throws {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if let process, !process.process.isRunning {
            throw ServerStartError(message: "\(process.name) exited with status \(process.process.terminationStatus) before listening on port \(port)")
        }
        if loopbackPortAccepts(port) { return }
        usleep(50_000)
    }
    throw ServerStartError(message: "nothing listened on 127.0.0.1:\(port) within \(Int(timeout)) s")
}

/// `waitForLoopbackPort` for async code: polls with `Task.sleep`, so waiting for a slow server
/// does not hold one of the few cooperative threads that every other running test needs.
public func awaitLoopbackPort(_ port: Int, timeout: TimeInterval, process: ServerProcess? = nil) async throws {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if let process, !process.process.isRunning {
            throw ServerStartError(message: "\(process.name) exited with status \(process.process.terminationStatus) before listening on port \(port)")
        }
        if loopbackPortAccepts(port) { return }
        try await Task.sleep(for: .milliseconds(50))
    }
    throw ServerStartError(message: "nothing listened on 127.0.0.1:\(port) within \(Int(timeout)) s")
}

/// One connect(2) to 127.0.0.1:`port`; loopback answers at once, so this does not block.
public func loopbackPortAccepts(_ port: Int) -> Bool {
    withLoopbackSocket(port: port) { connect($0, $1, $2) == 0 } ?? false
}

/// Whether anything accepts TCP connections at `host`:`port` (any address it resolves to), giving
/// up after `timeout`. A restore that lays data directories down asks this first: a production
/// server still running there must be stopped before its files are replaced.
public func tcpEndpointAccepts(host: String, port: Int, timeout: TimeInterval = 2) -> Bool {
    var hints = addrinfo()
    hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
    var results: UnsafeMutablePointer<addrinfo>?
    let name = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
    guard getaddrinfo(name, String(port), &hints, &results) == 0, let first = results else { return false }
    defer { freeaddrinfo(first) }
    var candidate: UnsafeMutablePointer<addrinfo>? = first
    while let info = candidate {
        candidate = info.pointee.ai_next
        let descriptor = socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
        guard descriptor >= 0 else { continue }
        defer { close(descriptor) }
        // On Linux SO_SNDTIMEO bounds connect(2) too, so an address that drops packets cannot hang us.
        var limit = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1_000_000))
        setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        if connect(descriptor, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 { return true }
    }
    return false
}

/// Whether 127.0.0.1:`port` can be bound right now (a launcher that needs two ports checks the second).
public func loopbackPortIsFree(_ port: Int) -> Bool {
    withLoopbackSocket(port: port) { bind($0, $1, $2) == 0 } ?? false
}

/// A fresh TCP socket and the address 127.0.0.1:`port`, closed after `body`; nil if no socket is available.
private func withLoopbackSocket<T>(port: Int, _ body: (Int32, UnsafePointer<sockaddr>, socklen_t) -> T) -> T? {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { return nil }
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
}

/// A server did not come up: it exited, or nothing listened in time.
public struct ServerStartError: Error, CustomStringConvertible {
    public var message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}
