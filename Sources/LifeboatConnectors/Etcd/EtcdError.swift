import LifeboatErrors

/// An etcd backup, restore or check failed: what, where, and what the user can do.
/// The description never holds a password or an auth token.
public struct EtcdError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable, CaseIterable {
        /// No endpoint answered (refused, timed out, not an etcd gateway).
        case unreachable
        /// The username/password was refused, or auth is on and none was given.
        case authentication
        /// etcd answered with an error (its own message is kept).
        case server
        /// The snapshot stream or file fails its SHA-256 trailer, is truncated, or is not an etcd snapshot.
        case damagedSnapshot = "damaged_snapshot"
        /// A restore target's data directory already holds data (and `--force` was not given).
        case dataDirectoryNotEmpty = "data_directory_not_empty"
        /// The restore target is not coherent (names, peer URLs, initial cluster).
        case invalidTarget = "invalid_target"
        /// The snapshot is not an etcd snapshot, or its manifest lacks what a restore needs.
        case wrongSnapshot = "wrong_snapshot"
        /// etcdutl or etcd failed.
        case tool
        /// The restored members came up but do not match the snapshot.
        case verification
    }

    public var code: Code
    /// The endpoint, directory, member or snapshot concerned.
    public var object: String?
    public var message: String

    public init(_ code: Code, object: String? = nil, _ message: String) {
        self.code = code
        self.object = object
        self.message = message
    }

    public var description: String { object.map { "\($0): \(message)" } ?? message }
}

extension EtcdError: LifeboatError {
    public var errorCode: String { "etcd.\(code.rawValue)" }
    public var errorObject: String? { object }
    public var errorMessage: String { message }
    /// 2 when the command was not run as asked (an incoherent target, a snapshot of another kind),
    /// 3 for a snapshot that fails its own checksum, 1 otherwise — a guard that refused a non-empty
    /// data directory included, as for PostgreSQL.
    public var exitStatus: ExitStatus {
        switch code {
        case .invalidTarget, .wrongSnapshot: .usage
        case .damagedSnapshot: .damaged
        case .dataDirectoryNotEmpty, .unreachable, .authentication, .server, .tool, .verification: .failure
        }
    }
}
