import Foundation
import LifeboatConnectors
import LifeboatStorage

/// What the suites add to the moto launcher: unique buckets and one server per test process.
extension MotoServer {
    /// Creates a bucket, optionally with Object Lock (which turns versioning on) or with versioning alone.
    public func createBucket(_ name: String, objectLock: Bool = false, versioning: Bool = false) async throws {
        try await createTestBucket(client(), name, objectLock: objectLock, versioning: versioning, server: "moto")
    }

    /// A fresh bucket name, unique within this server.
    public static func uniqueBucketName(_ purpose: String) -> String {
        let suffix = UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(12)
        return "\(purpose.lowercased().prefix(40))-\(suffix)"
    }


    // MARK: one server per test process

    private static let shared = SharedServer<MotoServer>(start: { try await MotoServer.start() }, stop: { $0.stop() })

    /// Runs `body` with the process-wide server, starting it for the first user and stopping it
    /// (by PID) when the last concurrent user is done. Suites that overlap share one moto.
    public static func withShared<T: Sendable>(_ body: (MotoServer) async throws -> T) async throws -> T {
        try await shared.with(body)
    }
}
