import Foundation
import LifeboatConnectors
import LifeboatStorage

/// What the S3 suites need from a server they run against: moto (an emulator) or Ceph RGW (a real
/// S3 implementation). Tests written against this run unchanged on both (docs/s3.md, "Testing").
public protocol S3TestServer: Sendable {
    var endpoint: URL { get }
    var region: String { get }
    var credentials: S3Credentials { get }
    /// The hidden/compatibility CLI flag this server needs (`--s3-moto-compatibility`, `--s3-rgw-compatibility`).
    var compatibilityFlag: String { get }
    func client(credentials: S3Credentials?, retry: S3RetryPolicy) -> S3Client
    /// A backend configuration for `bucket`, with this server's compatibility settings.
    func configuration(bucket: String, prefix: String) -> S3Configuration
    /// Creates a bucket, optionally with Object Lock (which turns versioning on) or with versioning alone.
    func createBucket(_ name: String, objectLock: Bool, versioning: Bool) async throws
}

extension S3TestServer {
    /// A client with the server's own key (the concrete types' `client()` under a name existentials can call).
    public func s3Client() -> S3Client { client(credentials: nil, retry: S3RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(50))) }

    /// The environment the CLI reads an S3 repository's endpoint, region and key from.
    public var cliEnvironment: [String: String] {
        ["AWS_ACCESS_KEY_ID": credentials.accessKeyID, "AWS_SECRET_ACCESS_KEY": credentials.secretAccessKey,
         "AWS_REGION": region, "LIFEBOAT_S3_ENDPOINT": endpoint.absoluteString]
    }

    /// Throws unless a request signed with a wrong secret is refused (403).
    func requireWrongSecretRefused(name: String) async throws {
        try await MotoServer.requireWrongSecretRefused(client: { client(credentials: $0, retry: $1) }, credentials: credentials, name: name)
    }

    /// A fresh bucket (unique name starting with `purpose`) and its backend configuration.
    public func freshBucket(_ purpose: String, objectLock: Bool = false, prefix: String = "") async throws -> S3Configuration {
        let bucket = MotoServer.uniqueBucketName(purpose)
        try await createBucket(bucket, objectLock: objectLock, versioning: false)
        return configuration(bucket: bucket, prefix: prefix)
    }
}

extension MotoServer: S3TestServer {
    public var compatibilityFlag: String { "--s3-moto-compatibility" }
}

extension RGWServer: S3TestServer {
    public var compatibilityFlag: String { "--s3-rgw-compatibility" }
}

/// The S3 servers the suites run against; a parameterised test takes `S3TestServerKind.allCases`.
public enum S3TestServerKind: String, CaseIterable, Sendable, CustomStringConvertible {
    case moto, rgw

    public var description: String { rawValue }

    /// Runs `body` with this kind's process-wide server (started on first use, stopped by PID when
    /// the last concurrent user is done).
    public func withShared<T: Sendable>(_ body: (any S3TestServer) async throws -> T) async throws -> T {
        switch self {
        case .moto: return try await MotoServer.withShared { try await body($0) }
        case .rgw: return try await RGWServer.withShared { try await body($0) }
        }
    }
}

/// CreateBucket, then PutBucketVersioning when versioning is wanted without Object Lock (a lock
/// bucket has it already).
func createTestBucket(_ s3: S3Client, _ name: String, objectLock: Bool, versioning: Bool, server: String) async throws {
    let response = try await s3.createBucket(name, objectLockEnabled: objectLock)
    guard response.isSuccess else {
        throw ServerStartError(message: "\(server) could not create bucket \(name): HTTP \(response.status) \(String(decoding: response.body, as: UTF8.self).prefix(300))")
    }
    guard versioning, !objectLock else { return }
    let body = #"<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>Enabled</Status></VersioningConfiguration>"#
    let enabled = try await s3.send(S3Request(method: "PUT", bucket: name, query: [("versioning", "")], body: Data(body.utf8)))
    guard enabled.isSuccess else {
        throw ServerStartError(message: "\(server) could not turn versioning on for bucket \(name): HTTP \(enabled.status)")
    }
}
