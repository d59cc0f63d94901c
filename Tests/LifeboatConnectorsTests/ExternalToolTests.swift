import Foundation
import LifeboatConnectors
import Testing

@Suite struct ExternalToolTests {
    @Test func runsAToolAndCapturesItsOutputAndStatus() async throws {
        let shell = try ExternalTool.locate("sh")
        let run = try await shell.run(["-c", "cat; echo err >&2; exit 3"], input: Data("piped in".utf8))
        #expect(run.status == 3)
        #expect(run.output == "piped in")
        #expect(run.stderr == "err\n")
        #expect(throws: ToolError.self) { try run.check("sh") }
    }

    @Test func anOverrideThatIsNotExecutableIsNamed() async throws {
        setenv("LIFEBOAT_NO_SUCH_TOOL", "/nonexistent/tool", 1)
        defer { unsetenv("LIFEBOAT_NO_SUCH_TOOL") }
        let error = #expect(throws: ToolError.self) { try ExternalTool.locate("no-such-tool") }
        #expect(error?.description.contains("LIFEBOAT_NO_SUCH_TOOL=/nonexistent/tool") == true)
    }

    /// Found in CI: a server started at the same moment as another child inherited that child's exit
    /// socket, so Foundation never learned that the child had exited and whoever waited for it hung
    /// until the server stopped. Many short tools and long-lived servers start at once here; every
    /// tool run must return while every server still runs, and a stopped server must be seen to stop.
    @Test func childrenStartedAtOnceDoNotHideEachOthersExit() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("spawn-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let shell = try ExternalTool.locate("sh")
        // A test process holds hundreds of descriptors (servers' sockets, logs); Foundation's spawn
        // walks every one of them, which is what widens the window the race needs. Within the
        // soft limit's room: other tests run beside this one.
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        let room = Int(min(UInt64(limit.rlim_cur), 1 << 20))
        let held = (0..<min(700, room / 4)).compactMap { _ in FileHandle(forReadingAtPath: "/dev/null") }
        defer { for handle in held { try? handle.close() } }
        let servers = ServerList()
        defer { servers.stopAll() }
        let finished = await withTaskGroup(of: Bool.self) { group -> Bool in
            group.addTask {
                await withTaskGroup(of: Void.self) { starts in
                    for index in 0..<24 {
                        starts.addTask {
                            if let server = try? ServerProcess(name: "server-\(index)", executable: "/bin/sleep", arguments: ["300"],
                                                               logFile: directory.appendingPathComponent("server-\(index).log")) {
                                servers.append(server)
                            }
                        }
                        starts.addTask { _ = try? await shell.run(["-c", "exit 0"]) }
                        starts.addTask {
                            let pipe = ChildProcess.pipe()
                            let process = Process()
                            process.executableURL = URL(fileURLWithPath: "/bin/echo")
                            process.arguments = ["through a pipe"]
                            process.standardOutput = pipe
                            guard (try? ChildProcess.launch(process)) != nil else { return }
                            // EOF comes only when every copy of the write end is closed. Read
                            // off the cooperative pool, so a leak fails the test instead of starving it.
                            let reader = pipe.fileHandleForReading
                            await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                                DispatchQueue.global().async {
                                    _ = try? reader.readToEnd()
                                    done.resume()
                                }
                            }
                        }
                    }
                }
                return true
            }
            group.addTask {
                try? await Task.sleep(for: .seconds(60))
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            if !first { servers.stopAll() }  // releases whatever waited, so the test ends either way
            return first
        }
        #expect(finished, "a tool run or a pipe read waited on a server started beside it")
        let all = servers.all
        #expect(all.count == 24)
        for server in all { #expect(server.isRunning, "\(server.name) still runs") }
        let stopped = all[0]
        stopped.stop(grace: 5)
        let deadline = Date().addingTimeInterval(10)
        while stopped.process.isRunning, Date() < deadline { try await Task.sleep(for: .milliseconds(50)) }
        #expect(!stopped.process.isRunning, "Foundation saw the stopped server exit while its siblings run")
    }

    final class ServerList: @unchecked Sendable {
        private let lock = NSLock()
        private var servers: [ServerProcess] = []
        func append(_ server: ServerProcess) { lock.withLock { servers.append(server) } }
        var all: [ServerProcess] { lock.withLock { servers } }
        func stopAll() { for server in all { server.stop(grace: 1) } }
    }

    @Test func theServerToolsScriptsSetupInstallsAreFound() throws {
        for name in ["bao", "etcd", "etcdutl", "pg_ctl", "pg_dumpall", "pg_basebackup"] {
            let tool = try ExternalTool.locate(name)
            #expect(FileManager.default.isExecutableFile(atPath: tool.path))
        }
    }
}

@Suite struct ProcessSweepTests {
    @Test func stopsEveryProcessNamingTheDirectoryAndNoOther() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sweep-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let log = directory.appendingPathComponent("log")
        // A process that ignores SIGTERM must still go (SIGKILL after the grace period).
        let stubborn = try ServerProcess(name: "stubborn", executable: "/bin/sh",
                                         arguments: ["-c", "trap '' TERM; while true; do sleep 0.1; done", directory.appendingPathComponent("data").path], logFile: log)
        let polite = try ServerProcess(name: "polite", executable: "/usr/bin/tail", arguments: ["-f", log.path], logFile: directory.appendingPathComponent("tail.log"))
        // Names the directory itself but nothing inside it, like a sibling `<dir>-other/…` would.
        // (GNU tail keeps following /dev/null when the other file is missing.)
        let bystander = try ServerProcess(name: "bystander", executable: "/usr/bin/tail", arguments: ["-q", "-f", "/dev/null", directory.path + "-other"],
                                          logFile: directory.appendingPathComponent("bystander.log"))
        defer { bystander.stop(grace: 1) }
        try await Task.sleep(for: .milliseconds(200))
        #expect(Set(ProcessSweep.processes(mentioning: directory.path)) == [stubborn.pid, polite.pid])
        #expect(ProcessSweep.stopProcesses(mentioning: directory.path, grace: 1) == 2)
        try await Task.sleep(for: .milliseconds(200))
        #expect(!stubborn.process.isRunning && !polite.process.isRunning)
        #expect(bystander.process.isRunning)
    }
}
