import LifeboatErrors

/// Why an OpenBao backup, restore or check failed: a code scripts can act on, the object it
/// concerns (an address, a snapshot, a path) and what the user can do. Never holds a token or a key.
public struct OpenBaoError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable, CaseIterable, Hashable {
        /// Nothing answered at the address (refused, timed out, DNS).
        case unreachable
        /// The server answered with an error the operation cannot continue past.
        case requestFailed
        /// The snapshot archive fails its own SHA256SUMS, or is not a raft snapshot at all.
        case tamperedSnapshot
        /// The unseal key material could not be read or parsed.
        case invalidKeyMaterial
        /// The key material offered is not the key generation the snapshot was taken under.
        case custodyMismatch
        /// The target is initialised (holds data) and `--force` was not given.
        case targetNotEmpty
        /// The Transit key a transit-sealed snapshot needs is unreachable or cannot decrypt it.
        case transitUnavailable
        /// The target is sealed by another Transit key than the snapshot's.
        case sealMismatch
        /// The server did not reach the expected state (sealed, unsealed, initialised) in time.
        case timedOut
        /// The node is sealed or not initialised, so it cannot serve the request.
        case notReady
        /// A required token or setting is missing.
        case missingSetting
    }

    public var code: Code
    /// What failed: `http://127.0.0.1:8200`, `snapshot 3fa2…`, `secret/data/app`.
    public var object: String
    public var message: String

    public init(_ code: Code, object: String, _ message: String) {
        self.code = code
        self.object = object
        self.message = message
    }

    public var description: String { "\(object): \(message)" }
}

extension OpenBaoError: LifeboatError {
    public var errorCode: String { "openbao.\(code.rawValue)" }
    public var errorObject: String? { object }
    public var errorMessage: String { message }
    /// A damaged snapshot 3, keys that are not the snapshot's 12, a missing setting 2, else 1.
    public var exitStatus: ExitStatus {
        switch code {
        case .tamperedSnapshot: .damaged
        case .custodyMismatch, .invalidKeyMaterial: .wrongKey
        case .missingSetting: .usage
        case .unreachable, .requestFailed, .targetNotEmpty, .transitUnavailable, .sealMismatch, .timedOut, .notReady: .failure
        }
    }
}
