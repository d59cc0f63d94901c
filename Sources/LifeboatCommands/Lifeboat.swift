import ArgumentParser
import Foundation
import LifeboatConnectors
import LifeboatCore
import LifeboatEngine
import LifeboatRepository
import LifeboatStorage

/// The `lifeboat` command line: every subcommand, and how errors become exit codes.
public struct Lifeboat: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "lifeboat",
        abstract: "Disaster recovery for platform control planes: what is covered, is it restorable, and what happens when we restore.",
        discussion: """
        The catalog (lifeboat.yaml) declares the platform's stores. Lifeboat reads it from --catalog, $LIFEBOAT_CATALOG, or ./lifeboat.yaml.

        Exit codes: 0 ok · 1 the operation failed · 2 usage or catalog error · 3 the repository is damaged · 4 partial recovery point · 5 a restore or drill stopped · 6 RPO/RTO targets missed · 7 the repository's storage is unavailable: try again · 10 no repository at the location · 11 locked by another process · 12 wrong passphrase or key shares · 126 postgres wal-fetch: stop recovery · 130 interrupted (see docs/exit-codes.md).
        """,
        version: Lifeboat.version,
        subcommands: [
            ValidateCommand.self, CatalogCommand.self, PlanCommand.self, ServeCommand.self,
            RepoCommand.self, PutCommand.self, GetCommand.self, SnapshotsCommand.self, VerifyCommand.self,
            PruneCommand.self, MirrorCommand.self, KeyCommand.self,
            BackupCommand.self, PointsCommand.self, RestoreCommand.self, DrillCommand.self, StatusCommand.self, DemoCommand.self,
            PostgresCommand.self, OpenBaoCommand.self, EtcdCommand.self,
        ])

    public init() {}

    /// The release this binary was built from.
    public static let version = "0.1.0-dev"

    /// Parses `arguments`, runs the command and returns the process exit code.
    public static func run(arguments: [String]) async -> Int32 {
        let status = await runCommand(arguments: arguments)
        // restore_command must never exit 1-125 for a real error (PostgreSQL would take it for
        // "not archived" and promote early): bad usage of wal-fetch is a real error too.
        if arguments.starts(with: ["postgres", "wal-fetch"]), status > 1, status < 126 { return WALFetchCommand.errorStatus }
        return status
    }

    static func runCommand(arguments: [String]) async -> Int32 {
        do {
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            return ExitStatus.ok.rawValue
        } catch {
            return report(error)
        }
    }

    static func report(_ error: any Error) -> Int32 {
        switch error {
        case let error as CatalogError:
            printError(error.description)
            return ExitStatus.usage.rawValue
        case let error as RepositoryError:
            printError("lifeboat: error: \(error)")
            return ExitStatus(error.code).rawValue
        case let error as BackendError:
            // Storage failures outside a repository operation (a mirror target, a backend that cannot be built) map the same way.
            return report(RepositoryError(error))
        case let error as EngineError:
            printError("lifeboat: error: \(error)")
            switch error.code {
            case .unknownStore, .unsupportedStore, .unknownPoint, .invalidArgument, .confirmation: return ExitStatus.usage.rawValue
            case .noSnapshot, .journal: return ExitStatus.failure.rawValue
            }
        case let failure as CommandFailure:
            printError("lifeboat: error: \(failure.message)")
            return failure.status.rawValue
        case let exit as ExitCode:
            return exit.rawValue
        case let error as PostgresError:
            printError("lifeboat: error: \(error)")
            return (error.code == .invalidArgument || error.code == .wrongSnapshot ? ExitStatus.usage : ExitStatus.failure).rawValue
        case let error as ToolError:
            printError("lifeboat: error: \(error)")
            return ExitStatus.failure.rawValue
        default:
            let code = exitCode(for: error)
            let message = fullMessage(for: error)
            if code == .success {
                if !message.isEmpty { print(message) }
                return ExitStatus.ok.rawValue
            }
            if !message.isEmpty { printError(message) }
            // ArgumentParser's own usage errors exit 64; Lifeboat documents 2 for every usage error.
            return code == .validationFailure ? ExitStatus.usage.rawValue : code.rawValue
        }
    }
}

/// The documented exit codes (docs/exit-codes.md); scripts rely on them, so they never change meaning.
public enum ExitStatus: Int32, Sendable {
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
}

extension ExitStatus {
    init(_ code: RepositoryError.Code) {
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
}

extension ExitStatus {
    /// The status for problems found while reading many objects (verify, snapshots): damage wins,
    /// since an object the storage failed to hand over is not known to be damaged; then unavailable
    /// (try again); then any other storage failure. Nil when there are none.
    init?(problems: [RepositoryError]) {
        guard let worst = problems.first(where: \.isDamage) ?? problems.first(where: { $0.code == .unavailable }) ?? problems.first else { return nil }
        self.init(worst.code)
    }
}

/// One problem on stderr, labelled by what it is: `damaged`, `unavailable` (transient) or `unreadable`.
func printProblem(_ problem: RepositoryError) {
    let label = problem.isDamage ? "damaged" : problem.code == .unavailable ? "unavailable" : "unreadable"
    printError("lifeboat: \(label): \(problem)")
}

/// A command failed for a reason the user can act on.
struct CommandFailure: Error, CustomStringConvertible {
    var status: ExitStatus
    var message: String
    init(_ status: ExitStatus = .failure, _ message: String) {
        self.status = status
        self.message = message
    }
    var description: String { message }
}

func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}
