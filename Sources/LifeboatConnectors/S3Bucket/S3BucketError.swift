import Foundation
import LifeboatErrors
import LifeboatStorage

/// A bucket backup or restore failed for a reason on the bucket's side (not the repository's).
public struct S3BucketError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable, CaseIterable {
        /// The catalog store or the command's arguments cannot describe a bucket backup (usage).
        case invalidArgument = "invalid_argument"
        /// The restore refused its target before changing anything (a non-empty bucket without --force).
        case refused
        /// The source or target bucket failed: unreachable, refused credentials, missing bucket.
        case bucket
    }

    public var code: Code
    /// The bucket or `bucket/key` concerned.
    public var object: String
    public var message: String

    public init(_ code: Code, object: String, _ message: String) {
        self.code = code
        self.object = object
        self.message = message
    }

    /// A storage failure on a bucket (never the repository's): `BackendError` alone would read as
    /// the repository's storage.
    init(_ error: BackendError, bucket: String) {
        self.init(.bucket, object: error.object.hasPrefix("s3://") || error.object.hasPrefix(bucket) ? error.object : "\(bucket)/\(error.object)", error.detail)
    }

    public var description: String { "\(object): \(message)" }
}

/// Runs a bucket call, turning its storage failure into an `S3BucketError` naming the bucket.
func onBucket<T>(_ bucket: String, _ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as BackendError {
        throw S3BucketError(error, bucket: bucket)
    }
}

extension S3BucketError: LifeboatError {
    public var errorCode: String { "s3bucket.\(code.rawValue)" }
    public var errorObject: String? { object }
    public var errorMessage: String { message }
    public var exitStatus: ExitStatus {
        switch code {
        case .invalidArgument: .usage
        case .refused, .bucket: .failure
        }
    }
}
