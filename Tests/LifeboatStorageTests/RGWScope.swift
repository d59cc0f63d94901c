import LifeboatTesting
import Testing

/// Gives a suite the process-wide Ceph RGW cluster (started on first use, every daemon stopped by
/// PID when the last suite using it finishes), reachable from its tests through `RGWScope.server`.
struct RGWScope: SuiteTrait, TestScoping {
    @TaskLocal static var server: RGWServer?

    var isRecursive: Bool { false }

    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        try await RGWServer.withShared { server in
            try await RGWScope.$server.withValue(server) { try await function() }
        }
    }

    /// The running cluster, or a test failure naming the missing trait.
    static func require(sourceLocation: SourceLocation = #_sourceLocation) throws -> RGWServer {
        try #require(server, "this suite needs the .rgw trait", sourceLocation: sourceLocation)
    }
}

extension Trait where Self == RGWScope {
    /// Runs the suite against a shared single-node Ceph RGW with SigV4 checking on.
    static var rgw: Self { RGWScope() }
}
