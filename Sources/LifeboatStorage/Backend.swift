import Foundation
import LifeboatErrors

/// Where repository objects live: a local directory, an S3 bucket, memory (tests).
///
/// Object names are relative, `/`-separated paths such as `data/3f/3fa1…` or `snapshots/9c…`.
/// Every implementation passes the same conformance suite (`BackendConformanceTests`).
public protocol Backend: Sendable {
    /// Where this backend points, for messages (`/srv/backups`, `s3://bucket/prefix`). Never holds credentials.
    var location: String { get }

    /// Stores `data` under `name` only if no object exists there; throws `.alreadyExists` otherwise.
    /// The object is durable when this returns, and readers never see it half written.
    func create(_ name: String, data: Data) async throws(BackendError)

    /// Stores `data` under `name`, replacing any object there, with the same durability and
    /// all-or-nothing visibility as `create`. Used for lock files, and for a chunk proven damaged:
    /// chunk ids are keyed hashes of the plaintext, so a correct object under the same id is
    /// interchangeable with the damaged one, and create-once must not keep it damaged forever.
    /// Never used on any other create-once object (manifests, keys, config, documents).
    func replace(_ name: String, data: Data) async throws(BackendError)

    /// The object's bytes, or the bytes in `range` of it; throws `.notFound` when absent.
    func load(_ name: String, range: Range<Int>?) async throws(BackendError) -> Data

    /// Size and modification time, or nil when the object does not exist.
    func stat(_ name: String) async throws(BackendError) -> ObjectInfo?

    /// Every object whose name starts with `prefix`, in no particular order.
    func list(prefix: String) async throws(BackendError) -> [ObjectInfo]

    /// Removes the object; removing an absent object is not an error.
    func delete(_ name: String) async throws(BackendError)
}

extension Backend {
    public func load(_ name: String) async throws(BackendError) -> Data {
        try await load(name, range: nil)
    }
}

/// What a backend knows about one object.
public struct ObjectInfo: Sendable, Hashable {
    public var name: String
    public var size: Int
    public var modified: Date

    public init(name: String, size: Int, modified: Date) {
        self.name = name
        self.size = size
        self.modified = modified
    }
}

/// A backend operation failed; `object` names what it was working on.
public struct BackendError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable, CaseIterable {
        case notFound = "not_found"
        case alreadyExists = "already_exists"
        case permissionDenied = "permission_denied"
        /// No answer: connection refused or reset, timed out (after every retry).
        case unreachable
        /// The storage answered, but kept failing through every retry (S3 5xx, 429, SlowDown): transient.
        case unavailable
        case invalidName = "invalid_name"
        /// The storage accepted a write but did not apply the server-side encryption asked for
        /// (Ceph RGW 16 ignores SSE-S3); the write is not reported as done.
        case encryptionNotApplied = "encryption_not_applied"
        /// Any other failure: a bad configuration, a missing bucket, a full disk.
        case io
    }

    public var code: Code
    /// The object name (or the backend location for whole-backend failures).
    public var object: String
    public var detail: String

    public init(_ code: Code, object: String, _ detail: String) {
        self.code = code
        self.object = object
        self.detail = detail
    }

    public var description: String { "\(object): \(detail)" }
}

/// Object names are relative paths of safe characters; this keeps a crafted name from escaping
/// the repository directory or prefix.
public func validateObjectName(_ name: String) throws(BackendError) {
    let allowed = name.utf8.allSatisfy { byte in
        (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
            || byte == 0x2D || byte == 0x5F || byte == 0x2E || byte == 0x2F
    }
    let components = name.split(separator: "/", omittingEmptySubsequences: false)
    guard allowed, !name.isEmpty, !name.hasPrefix("/"),
          components.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." }) else {
        throw BackendError(.invalidName, object: name, "not a valid object name")
    }
}

extension BackendError: LifeboatError {
    public var errorCode: String { "storage.\(code.rawValue)" }
    public var errorObject: String? { object }
    public var errorMessage: String { detail }
    /// As a repository would classify it: a missing object is damage, no answer is transient.
    public var exitStatus: ExitStatus {
        switch code {
        case .notFound: .damaged
        case .unreachable, .unavailable: .unavailable
        case .permissionDenied, .alreadyExists, .invalidName, .encryptionNotApplied, .io: .failure
        }
    }
}
