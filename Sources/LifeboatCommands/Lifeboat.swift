@_exported import LifeboatErrors
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
            ValidateCommand.self, CatalogCommand.self, PlanCommand.self, ServeCommand.self, JobsCommand.self,
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
        do {
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            return ExitStatus.ok.rawValue
        } catch {
            return exit(for: error, command: commandType(for: arguments))
        }
    }

    /// The subcommand `arguments` name (the deepest one their leading words reach), also when they
    /// do not parse: its declared exit policy applies to its usage errors too.
    static func commandType(for arguments: [String]) -> any ParsableCommand.Type {
        var current: any ParsableCommand.Type = Lifeboat.self
        for argument in arguments {
            guard let next = current.configuration.subcommands.first(where: { $0.configuration.commandName == argument }) else { break }
            current = next
        }
        return current
    }

    /// The ONE place an error becomes an exit status and a line on stderr: `lifeboat: error: …`
    /// with the error's documented status (docs/exit-codes.md); ArgumentParser's usage errors exit
    /// 2, help and --version 0, a cancelled task 130. A command with its own policy (wal-fetch)
    /// declares it through `ExitPolicy`.
    static func exit(for error: any Error, command: any ParsableCommand.Type = Lifeboat.self) -> Int32 {
        let (status, line) = classify(error)
        if let line, !line.isEmpty {
            if status == .ok { print(line) } else { printError(line) }
        }
        if let policy = command as? any ExitPolicy.Type { return policy.exitStatus(for: status) }
        return status.rawValue
    }

    /// An error's status and what to print (nil: nothing, the command printed it already).
    static func classify(_ error: any Error) -> (status: ExitStatus, line: String?) {
        switch error {
        case let exit as ExitCode:
            // A command that printed its own outcome and chose the status (ExitStatus raw values only).
            return (ExitStatus(rawValue: exit.rawValue) ?? .failure, nil)
        case let error as any LifeboatError:
            return (error.exitStatus, "lifeboat: error: \(error)")
        case is CancellationError:
            return (.interrupted, "lifeboat: error: interrupted")
        default:
            // ArgumentParser's own errors: help and --version (0), usage (64 there, 2 here), the rest 1.
            let code = exitCode(for: error)
            let message = fullMessage(for: error)
            if code == .success { return (.ok, message) }
            let line = message.hasPrefix("Error: ") ? "lifeboat: error: " + message.dropFirst("Error: ".count) : message
            if code == .validationFailure { return (.usage, line) }
            return (.failure, line.isEmpty ? "lifeboat: error: \(error)" : line)
        }
    }
}

/// A command whose exit statuses differ from the documented map (PostgreSQL's restore_command).
protocol ExitPolicy {
    /// The status the process ends with when the command fails with `status`.
    static func exitStatus(for status: ExitStatus) -> Int32
}

/// One problem on stderr, labelled by what it is: `damaged`, `unavailable` (transient) or `unreadable`.
func printProblem(_ problem: RepositoryError) {
    let label = problem.isDamage ? "damaged" : problem.code == .unavailable ? "unavailable" : "unreadable"
    printError("lifeboat: \(label): \(problem)")
}

/// A command failed for a reason the user can act on.
struct CommandFailure: LifeboatError {
    var status: ExitStatus
    var message: String
    init(_ status: ExitStatus = .failure, _ message: String) {
        self.status = status
        self.message = message
    }
    var description: String { message }
    var errorCode: String { "command.\(status)" }
    var errorObject: String? { nil }
    var errorMessage: String { message }
    var exitStatus: ExitStatus { status }
}

func printError(_ text: String) {
    // The throwing write: the old one traps when the reader has gone (`lifeboat demo | head`).
    try? FileHandle.standardError.write(contentsOf: Data((text + "\n").utf8))
}
