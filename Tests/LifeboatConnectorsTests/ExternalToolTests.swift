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
