import Foundation
import LifeboatTesting
import Testing
@testable import LifeboatStorage

/// The launcher itself: a private cluster (not the shared one) that serves S3, reports its
/// daemons, and leaves nothing behind when stopped.
@Suite struct RGWServerTests {
    @Test func aPrivateClusterServesS3AndStopsEveryDaemonByPID() async throws {
        let server = try await RGWServer.start()
        var stopped = false
        defer { if !stopped { server.stop() } }
        #expect(server.daemons.map(\.name) == ["ceph-mon", "ceph-osd", "radosgw"])
        let memory = server.residentMemory()
        #expect(memory.count == 3 && memory.values.allSatisfy { $0 > 1_000_000 }, "\(memory)")
        print("RGW cluster started in \(String(format: "%.1f", server.startSeconds)) s; resident memory: "
              + memory.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value >> 20) MiB" }.joined(separator: ", "))
        let configuration = try await server.freshBucket("launcher", prefix: "p")
        let backend = try S3Backend(configuration: configuration)
        try await backend.create("config", data: Data("hello".utf8))
        #expect(try await backend.load("config") == Data("hello".utf8))

        let pids = server.daemons.map(\.pid)
        server.stop()
        stopped = true
        for pid in pids { #expect(kill(pid, 0) != 0, "daemon \(pid) still runs") }
        #expect(!FileManager.default.fileExists(atPath: server.directory.path), "the temporary directory is removed")
        #expect(!loopbackPortAccepts(server.port))
    }
}
