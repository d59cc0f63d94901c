import Foundation
import LifeboatErrors

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
        try ChildProcess.launch(process)
    }

    public var pid: Int32 { process.processIdentifier }

    /// Whether the server still runs (Foundation's `isRunning` can lag an exit: `ChildProcess`).
    public var isRunning: Bool { process.isRunning && !ChildProcess.hasExited(pid) }

    /// "with status N", or less when Foundation has not yet seen the exit the kernel reports.
    public var exitDescription: String {
        process.isRunning ? "(status not yet known)" : "with status \(process.terminationStatus)"
    }

    /// SIGTERM, then SIGKILL if it has not exited within `grace` seconds. Never waits without bound:
    /// after SIGKILL the kernel's word that the process is gone is enough.
    public func stop(grace: TimeInterval = 10) {
        if isRunning {
            kill(pid, SIGTERM)
            let deadline = Date().addingTimeInterval(grace)
            while isRunning, Date() < deadline { usleep(20_000) }
            if isRunning {
                kill(pid, SIGKILL)
                let killed = Date().addingTimeInterval(10)
                while isRunning, Date() < killed { usleep(20_000) }
            }
        }
        // Foundation reaps the exited child a moment later; waiting for that (briefly: its notice
        // can be held up, see ChildProcess) means the PID is gone when stop() returns.
        let reaped = Date().addingTimeInterval(2)
        while process.isRunning, Date() < reaped { usleep(10_000) }
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
        if let process, !process.isRunning {
            throw ServerStartError(message: "\(process.name) exited \(process.exitDescription) before listening on port \(port)")
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
        if let process, !process.isRunning {
            throw ServerStartError(message: "\(process.name) exited \(process.exitDescription) before listening on port \(port)")
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

/// What a connection attempt to a server's address says about it.
public enum EndpointProbe: Sendable, Equatable {
    /// Something accepted the connection: a server runs there.
    case accepts
    /// Every address refused the connection: nothing listens there now.
    case refused
    /// Neither could be established (the name does not resolve, packets vanish, …).
    case unknown(String)
}

/// Tries a TCP connection to `host`:`port` (each address it resolves to, `timeout` each). A restore
/// that replaces a server's files asks this first, and must treat only `.refused` as "stopped":
/// in a disaster DNS may be down, and "cannot tell" must never read as "not running".
public func probeTCPEndpoint(host: String, port: Int, timeout: TimeInterval = 2) -> EndpointProbe {
    var hints = addrinfo()
    hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
    var results: UnsafeMutablePointer<addrinfo>?
    let name = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
    let lookup = getaddrinfo(name, String(port), &hints, &results)
    guard lookup == 0, let first = results else {
        return .unknown("\(host) does not resolve (\(String(cString: gai_strerror(lookup))))")
    }
    defer { freeaddrinfo(first) }
    var outcome = EndpointProbe.refused
    var candidate: UnsafeMutablePointer<addrinfo>? = first
    while let info = candidate {
        candidate = info.pointee.ai_next
        let descriptor = socket(info.pointee.ai_family, info.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), info.pointee.ai_protocol)
        guard descriptor >= 0 else { continue }
        defer { close(descriptor) }
        // On Linux SO_SNDTIMEO bounds connect(2) too, so an address that drops packets cannot hang us.
        var limit = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1_000_000))
        setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        if connect(descriptor, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 { return .accepts }
        if errno != ECONNREFUSED { outcome = .unknown("connecting to \(host):\(port) failed: \(String(cString: strerror(errno)))") }
    }
    return outcome
}

/// `probeTCPEndpoint` for a Unix-domain socket (PostgreSQL's `.s.PGSQL.PORT`): a socket file left
/// behind by a crash refuses, a live server accepts.
public func probeUnixSocket(_ path: String) -> EndpointProbe {
    guard FileManager.default.fileExists(atPath: path) else { return .refused }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let capacity = MemoryLayout.size(ofValue: address.sun_path)
    guard path.utf8.count < capacity else { return .unknown("the socket path \(path) is too long") }
    withUnsafeMutableBytes(of: &address.sun_path) { buffer in
        buffer.copyBytes(from: path.utf8)
        buffer[path.utf8.count] = 0
    }
    let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard descriptor >= 0 else { return .unknown("no socket available") }
    defer { close(descriptor) }
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    if connected == 0 { return .accepts }
    return errno == ECONNREFUSED || errno == ENOENT ? .refused : .unknown("connecting to \(path) failed: \(String(cString: strerror(errno)))")
}

/// Whether the process whose PID a lock file (`postmaster.pid`, …) names on its first line is alive.
public func pidFileNamesALiveProcess(_ path: String) -> Bool {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8),
          let pid = text.split(separator: "\n").first.flatMap({ pid_t($0.trimmingCharacters(in: .whitespaces)) }), pid > 0 else { return false }
    return kill(pid, 0) == 0 || errno == EPERM
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
public struct ServerStartError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}

extension ServerStartError: LifeboatError {
    public var errorCode: String { "server.start_failed" }
    public var errorObject: String? { nil }
    public var errorMessage: String { message }
    public var exitStatus: ExitStatus { .failure }
}
