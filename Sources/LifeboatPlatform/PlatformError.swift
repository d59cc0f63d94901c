import Foundation
import LifeboatErrors

/// A failure of the application layer: a catalog store that cannot be used as asked, a secret that
/// cannot be read, a restore guard that refused, or a restore that could not put things back.
/// The underlying error, when there is one, is kept (never stringified on the way up).
public struct PlatformError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable, CaseIterable {
        /// No catalog where the command needs one, or no store of that name or kind in it.
        case catalog
        /// A secret the catalog or a flag refers to cannot be read (missing variable, unreadable file).
        case secret
        /// A restore guard refused: the target still runs, holds data, or cannot be checked. Nothing was changed.
        case refused
        /// The restore failed after it changed the target, and the previous data could not all be put back.
        case notPutBack
        /// The restored data could not be checked (started, compared) and was taken back out.
        case unverified
        /// The restore ran, but a step that must follow it failed (the new timeline's history not archived).
        case incomplete
        /// A scheduled job's work did not succeed (a store's backup failed, a drill's gate, verify found damage, WAL archiving fails).
        case jobFailed
    }

    public var code: Code
    /// What the error concerns: a store, a data directory, a file.
    public var object: String?
    public var message: String
    public var underlying: (any Error & Sendable)?

    public init(_ code: Code, object: String? = nil, _ message: String, underlying: (any Error & Sendable)? = nil) {
        self.code = code
        self.object = object
        self.message = message
        self.underlying = underlying
    }

    public var description: String { message }
}

extension PlatformError: LifeboatError {
    public var errorCode: String { "platform.\(code.rawValue)" }
    public var errorObject: String? { object }
    public var errorMessage: String { message }
    public var underlyingError: (any Error)? { underlying }
    public var exitStatus: ExitStatus {
        switch code {
        case .catalog, .secret: .usage
        case .refused, .notPutBack, .unverified, .incomplete, .jobFailed: .failure
        }
    }
}
