/// The documented exit codes (docs/exit-codes.md); scripts rely on them, so they never change meaning.
public enum ExitStatus: Int32, Sendable, CaseIterable {
    case ok = 0
    case failure = 1
    case usage = 2
    /// The repository holds damaged or missing objects (verify found them, or a restore hit one).
    case damaged = 3
    /// A backup made a partial recovery point: some stores failed (they are listed).
    case partial = 4
    /// A restore or drill stopped: a step's restore or its verify gate failed (named on stderr).
    case gateFailed = 5
    /// A drill restored everything and every gate passed, but a store missed its RPO or RTO target.
    case targetMissed = 6
    /// The repository's storage did not answer or kept failing through every retry: transient, nothing
    /// known to be damaged; try again.
    case unavailable = 7
    /// No repository at the location given.
    case noRepository = 10
    /// Another process holds a conflicting repository lock (a prune while backing up, or the reverse).
    case locked = 11
    /// The passphrase (or set of key shares) does not open the repository.
    case wrongKey = 12
    /// `postgres wal-fetch` only: any real error, so PostgreSQL stops recovery instead of promoting early.
    case stopRecovery = 126
    /// Interrupted (SIGINT, Ctrl-C), or the operation was cancelled.
    case interrupted = 130
}

/// The one shape of every Lifeboat error, whatever module throws it: a stable code, the object it
/// concerns, a message a user can act on, the underlying error kept (never stringified on the way
/// up), and the exit status it maps to. `description` never holds a secret.
public protocol LifeboatError: Error, Sendable, CustomStringConvertible {
    /// Stable across releases: `<module>.<code>`, e.g. `repository.locked`, `etcd.damaged_snapshot`.
    var errorCode: String { get }
    /// What the error concerns (an object, a store, a file, an address); nil when nothing in particular.
    var errorObject: String? { get }
    /// What went wrong and what the user can do, without the object.
    var errorMessage: String { get }
    /// The error this one wraps, when it wraps one.
    var underlyingError: (any Error)? { get }
    /// The documented exit status this error ends a command with.
    var exitStatus: ExitStatus { get }
}

extension LifeboatError {
    public var underlyingError: (any Error)? { nil }
}

/// The exit status of any error: a Lifeboat error's own, a cancelled task 130, else 1 (failure).
/// Wrappers that are not Lifeboat errors are looked through via `underlyingError`.
public func exitStatus(of error: any Error) -> ExitStatus {
    switch error {
    case let error as any LifeboatError: error.exitStatus
    case is CancellationError: .interrupted
    default: .failure
    }
}
