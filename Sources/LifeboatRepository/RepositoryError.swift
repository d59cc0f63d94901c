import Foundation
import LifeboatStorage
import LifeboatErrors

/// A repository operation failed, with the object concerned and what the user can do.
public struct RepositoryError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable, CaseIterable {
        /// No `config` at the location.
        case noRepository = "no_repository"
        case alreadyInitialized = "already_initialized"
        /// No key file opens with the passphrase given.
        case wrongPassphrase = "wrong_passphrase"
        /// An object failed authentication, decryption, decompression or its content hash.
        case corruptObject = "corrupt_object"
        /// A referenced object does not exist.
        case missingObject = "missing_object"
        case unknownSnapshot = "unknown_snapshot"
        case ambiguousSnapshot = "ambiguous_snapshot"
        case unsupportedVersion = "unsupported_version"
        /// Shamir shares that do not recombine to this repository's key.
        case invalidShares = "invalid_shares"
        case invalidArgument = "invalid_argument"
        /// Another process holds a conflicting lock.
        case locked
        /// A write-once name is taken by different content (an archived WAL file pushed again with other bytes).
        case conflict
        /// The storage failed in a way that is not damage: refused credentials, a missing bucket, a full disk, a bad configuration.
        case storage
        /// The storage did not answer, or kept failing, through every retry (unreachable, S3 5xx or throttling):
        /// transient, and nothing is known to be damaged. Try again.
        case unavailable
    }

    public var code: Code
    /// The object or thing concerned (`data/3f/3fa1…`, `snapshot 9c2e…`), when there is one.
    public var object: String?
    public var message: String
    /// The storage failure this one classifies, kept (its own code survives the boundary).
    public var underlying: BackendError?

    public init(_ code: Code, object: String? = nil, _ message: String) {
        self.code = code
        self.object = object
        self.message = message
    }

    /// The one mapping from storage failures to repository failures.
    public init(_ error: BackendError) {
        switch error.code {
        case .notFound:
            self.init(.missingObject, object: error.object, error.detail)
        case .unreachable, .unavailable:
            self.init(.unavailable, object: error.object,
                      "\(error.detail) — the repository's storage is unavailable; this is transient and says nothing about damage: try again")
        case .permissionDenied, .alreadyExists, .invalidName, .encryptionNotApplied, .io:
            self.init(.storage, object: error.object, error.detail)
        }
        underlying = error
    }

    /// What a decoding failure says, naming the field by its JSON path (`chunker.min_size`), so a
    /// config or key file with valid JSON but a bad field says which field.
    static func describeDecoding(_ error: any Error) -> String {
        func path(_ codingPath: [any CodingKey]) -> String {
            codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
        }
        guard let error = error as? DecodingError else { return "\(error)" }
        switch error {
        case .keyNotFound(let key, let context):
            return "field `\(path(context.codingPath + [key]))` is missing"
        case .typeMismatch(let type, let context), .valueNotFound(let type, let context):
            return "field `\(path(context.codingPath))` is not \(describe(type))"
        case .dataCorrupted(let context) where context.codingPath.isEmpty:
            return "not valid JSON (truncated or altered)"
        case .dataCorrupted(let context):
            return "field `\(path(context.codingPath))` is not valid: \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Int.Type, is Int32.Type, is Int64.Type, is UInt32.Type, is UInt64.Type: "an integer"
        case is Double.Type: "a number"
        case is Bool.Type: "true or false"
        default: "a \(type)"
        }
    }

    /// A corrupt or missing object: damage at rest, as opposed to storage that failed to answer.
    public var isDamage: Bool { code == .corruptObject || code == .missingObject }

    public var description: String {
        object.map { "\($0): \(message)" } ?? message
    }
}

extension RepositoryError: LifeboatError {
    public var errorCode: String { "repository.\(code.rawValue)" }
    public var errorObject: String? { object }
    public var errorMessage: String { message }
    public var underlyingError: (any Error)? { underlying }
    public var exitStatus: ExitStatus { ExitStatus(code) }
}

extension ExitStatus {
    /// The status of a repository failure.
    public init(_ code: RepositoryError.Code) {
        switch code {
        case .noRepository: self = .noRepository
        case .locked: self = .locked
        case .wrongPassphrase, .invalidShares: self = .wrongKey
        case .corruptObject, .missingObject: self = .damaged
        case .unknownSnapshot, .ambiguousSnapshot, .invalidArgument: self = .usage
        case .unavailable: self = .unavailable
        case .alreadyInitialized, .unsupportedVersion, .storage, .conflict: self = .failure
        }
    }

    /// The status for problems found while reading many objects (verify, snapshots): damage wins,
    /// since an object the storage failed to hand over is not known to be damaged; then unavailable
    /// (try again); then any other storage failure. Nil when there are none.
    public init?(problems: [RepositoryError]) {
        guard let worst = problems.first(where: \.isDamage) ?? problems.first(where: { $0.code == .unavailable }) ?? problems.first else { return nil }
        self.init(worst.code)
    }
}
