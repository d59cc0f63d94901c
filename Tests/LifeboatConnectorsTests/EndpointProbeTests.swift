import Foundation
import Testing
@testable import LifeboatConnectors

/// The probes a production restore asks before it replaces a server's files.
@Suite struct EndpointProbeTests {
    @Test func aListeningPortAcceptsAFreeOneRefusesAndAnUnknownNameCannotTell() throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) == 0 && getsockname(listener, $0, &length) == 0 }
        }
        #expect(bound && listen(listener, 4) == 0)
        #expect(probeTCPEndpoint(host: "127.0.0.1", port: Int(UInt16(bigEndian: address.sin_port))) == .accepts)
        #expect(probeTCPEndpoint(host: "127.0.0.1", port: try freeLoopbackPort()) == .refused)
        guard case .unknown(let why) = probeTCPEndpoint(host: "no-such-host.invalid", port: 5432) else {
            Issue.record("a name that does not resolve must not read as stopped")
            return
        }
        #expect(why.contains("does not resolve"))
    }

    @Test func aStaleSocketFileRefusesAndOnlyALivePIDCounts() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("lifeboat-probe-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        #expect(probeUnixSocket(directory.appendingPathComponent(".s.PGSQL.5432").path) == .refused)
        // A socket file whose server is gone (bound, then closed: the file stays).
        let path = directory.appendingPathComponent(".s.PGSQL.5433").path
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: path.utf8) }
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        #expect(bound == 0 && listen(descriptor, 1) == 0)
        #expect(probeUnixSocket(path) == .accepts)
        close(descriptor)
        #expect(FileManager.default.fileExists(atPath: path))
        #expect(probeUnixSocket(path) == .refused)

        let pidFile = directory.appendingPathComponent("postmaster.pid").path
        try "\(getpid())\n/var/lib/postgresql/15/main\n".write(toFile: pidFile, atomically: true, encoding: .utf8)
        #expect(pidFileNamesALiveProcess(pidFile))
        try "999999999\n".write(toFile: pidFile, atomically: true, encoding: .utf8)
        #expect(!pidFileNamesALiveProcess(pidFile))
        #expect(!pidFileNamesALiveProcess(directory.appendingPathComponent("absent.pid").path))
    }
}
