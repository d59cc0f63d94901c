import LifeboatStorage

/// A repository operation failed, with the object concerned and what the user can do.
public struct RepositoryError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
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
        case storage
    }

    public var code: Code
    /// The object or thing concerned (`data/3f/3fa1…`, `snapshot 9c2e…`), when there is one.
    public var object: String?
    public var message: String

    public init(_ code: Code, object: String? = nil, _ message: String) {
        self.code = code
        self.object = object
        self.message = message
    }

    init(_ error: BackendError) {
        let code: Code = error.code == .notFound ? .missingObject : .storage
        self.init(code, object: error.object, error.detail)
    }

    public var description: String {
        object.map { "\($0): \(message)" } ?? message
    }
}
