import Foundation
import LifeboatConnectors
import Testing

/// `lifeboat demo` as a user runs it: Ctrl-C in the middle leaves no server behind.
@Suite struct DemoCommandTests {
    @Test(.timeLimit(.minutes(2)))
    func anInterruptedDemoStopsEveryServerItStarted() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("lifeboat-demo-test-\(UUID().uuidString.prefix(8))")
        defer {
            ProcessSweep.stopProcesses(mentioning: directory.path)
            try? FileManager.default.removeItem(at: directory)
        }
        let demo = try CommandLineTests.spawn(["demo", "--work-directory", directory.path], environment: [:])
        // An empty signal mask, so that the demo can receive the SIGINT below.
        try ChildProcess.launch(demo)
        // Wait until the servers are up and the demo has written its catalog (it is then seeding or backing up).
        let catalog = directory.appendingPathComponent("lifeboat.yaml")
        let deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: catalog.path), demo.isRunning, Date() < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(FileManager.default.fileExists(atPath: catalog.path))
        #expect(!ProcessSweep.processes(mentioning: directory.path).isEmpty, "the demo's servers run")
        kill(demo.processIdentifier, SIGINT)
        await CommandLineTests.waitForExit(demo)
        #expect(demo.terminationStatus == 130)
        #expect(ProcessSweep.processes(mentioning: directory.path).isEmpty, "no server outlives the demo")
        #expect(!FileManager.default.fileExists(atPath: directory.path), "the work directory is removed")
    }
}
