import LifeboatTesting
import Testing

/// Gives a suite the process-wide moto_server (started on first use, stopped by PID when the last
/// suite using it finishes), reachable from its tests through `MotoScope.server`.
struct MotoScope: SuiteTrait, TestScoping {
    @TaskLocal static var server: MotoServer?

    var isRecursive: Bool { false }

    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        try await MotoServer.withShared { server in
            try await MotoScope.$server.withValue(server) { try await function() }
        }
    }

    /// The running server, or a test failure naming the missing trait.
    static func require(sourceLocation: SourceLocation = #_sourceLocation) throws -> MotoServer {
        try #require(server, "this suite needs the .moto trait", sourceLocation: sourceLocation)
    }
}

extension Trait where Self == MotoScope {
    /// Runs the suite against a shared moto_server with SigV4 checking on.
    static var moto: Self { MotoScope() }
}
