import Foundation
import LifeboatCore
import LifeboatErrors

/// How to reach one PostgreSQL server, as libpq tools take it. The password travels only in the
/// child's environment (`PGPASSWORD`), never in arguments, logs or manifests.
public struct PostgresEndpoint: Sendable, Hashable, CustomStringConvertible {
    /// A host name or address, or a Unix socket directory (starts with `/`).
    public var host: String
    public var port: Int
    public var user: String
    public var password: String?
    /// The database to connect to when none is named (checks without `database`, probes).
    public var database: String
    public var sslmode: String?

    public init(host: String, port: Int = 5432, user: String = "postgres", password: String? = nil,
                database: String = "postgres", sslmode: String? = nil) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
        self.sslmode = sslmode
    }

    /// The catalog's connection with its password reference already resolved by the caller.
    public init(_ connection: PostgresConnection, password: String?) {
        self.init(host: connection.host, port: connection.port, user: connection.user ?? "postgres", password: password,
                  database: connection.database ?? "postgres", sslmode: connection.sslmode)
    }

    /// libpq's environment for a child process; `database` overrides the default one.
    public func environment(database: String? = nil) -> [String: String] {
        var environment = [
            "PGHOST": host, "PGPORT": String(port), "PGUSER": user, "PGDATABASE": database ?? self.database,
            "PGCONNECT_TIMEOUT": "10", "PGAPPNAME": "lifeboat", "PGPASSWORD": password ?? "",
        ]
        if let sslmode { environment["PGSSLMODE"] = sslmode }
        return environment
    }

    /// `user@host:port` — for messages; never the password.
    public var description: String { "\(user)@\(host):\(port)" }
}

/// A PostgreSQL operation failed; `code` says what kind of failure, `context` names the store,
/// database, file or segment concerned. Never carries a password.
public struct PostgresError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable, CaseIterable {
        /// The server cannot be reached or refuses the login.
        case unreachable
        /// A SQL statement or a PostgreSQL tool failed.
        case toolFailed = "tool_failed"
        /// A restore guard refused before anything was changed.
        case refused
        /// The requested recovery target is not covered by a base backup plus an unbroken WAL chain.
        case notRestorable = "not_restorable"
        /// A gap in the archived WAL.
        case missingWAL = "missing_wal"
        /// Recovery did not reach the target, or the restored server did not come up.
        case recoveryFailed = "recovery_failed"
        /// A snapshot that is not what this operation needs (not postgres, wrong method, damaged format).
        case wrongSnapshot = "wrong_snapshot"
        case invalidArgument = "invalid_argument"
    }

    public var code: Code
    public var context: String
    public var message: String

    public init(_ code: Code, _ context: String, _ message: String) {
        self.code = code
        self.context = context
        self.message = message
    }

    public var description: String { "\(context): \(message)" }
}

/// Runs SQL with `psql -X -At -v ON_ERROR_STOP=1`: no user psqlrc, unaligned tuples only.
public struct Psql: Sendable {
    public var endpoint: PostgresEndpoint
    let tool: ExternalTool

    public init(_ endpoint: PostgresEndpoint) throws {
        self.endpoint = endpoint
        tool = try ExternalTool.locate("psql")
    }

    /// The query's output: rows separated by newlines, fields by `|`, trailing newline removed.
    public func output(_ sql: String, database: String? = nil) async throws -> String {
        var text = try await run(["-c", sql], database: database).output
        while text.hasSuffix("\n") { text.removeLast() }
        return text
    }

    /// One value (the first field of the first row).
    public func value(_ sql: String, database: String? = nil) async throws -> String {
        String(try await output(sql, database: database).split(separator: "\n", omittingEmptySubsequences: false).first ?? "")
            .split(separator: "|", omittingEmptySubsequences: false).first.map(String.init) ?? ""
    }

    /// Rows of fields, split on `\u{1F}` (a separator no identifier we query contains).
    public func rows(_ sql: String, database: String? = nil) async throws -> [[String]] {
        return try await run(["-F", "\u{1F}", "-c", sql], database: database).output.split(separator: "\n").map { $0.split(separator: "\u{1F}", omittingEmptySubsequences: false).map(String.init) }
    }

    /// psql with `arguments`; a connection failure (status 2) is `.unreachable`, any other failure `.toolFailed`.
    private func run(_ arguments: [String], database: String?) async throws -> ToolRun {
        let run = try await tool.run(["-X", "-At", "-v", "ON_ERROR_STOP=1"] + arguments, environment: endpoint.environment(database: database))
        guard run.status == 0 else {
            let reason = run.stderr.split(separator: "\n").suffix(3).joined(separator: " ")
            throw PostgresError(run.status == 2 ? .unreachable : .toolFailed, "\(endpoint)/\(database ?? endpoint.database)",
                                reason.isEmpty ? "psql exited with status \(run.status)" : reason)
        }
        return run
    }

    /// Waits until the server accepts this login and answers, or `deadline` passes.
    public func waitUntilReady(timeout: TimeInterval, stillRunning: () -> Bool = { true }) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        var last = ""
        while Date() < deadline {
            do {
                _ = try await output("SELECT 1")
                return
            } catch let error as PostgresError {
                last = error.message
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                // psql itself could not be started (a loaded machine): not a verdict on the server; retry.
                last = "\(error)"
            }
            guard stillRunning() else {
                throw PostgresError(.unreachable, endpoint.description, "the server exited before it answered: \(last)")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw PostgresError(.unreachable, endpoint.description, "not ready within \(Int(timeout)) s: \(last)")
    }
}

/// `'quoted'` for a POSIX shell.
func shellQuote(_ text: String) -> String {
    "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
}

/// A string literal for a PostgreSQL configuration file or SQL.
func sqlLiteral(_ text: String) -> String {
    "'" + text.replacingOccurrences(of: "'", with: "''") + "'"
}

/// A PostgreSQL `timestamptz` text in UTC (`2026-11-23 00:16:01.123456+00`) as a Date, to the microsecond.
func parsePostgresTime(_ text: String) -> Date? {
    // "YYYY-MM-DD HH:MM:SS[.ffffff]+00" or "... UTC"
    var body = text.trimmingCharacters(in: .whitespaces)
    for suffix in ["+00", " UTC", " GMT", "Z"] where body.hasSuffix(suffix) {
        body = String(body.dropLast(suffix.count))
        break
    }
    var fraction = 0.0
    if let dot = body.firstIndex(of: ".") {
        fraction = Double("0" + body[dot...]) ?? 0
        body = String(body[..<dot])
    }
    let formatter = DateFormatter()
    formatter.locale = Locale(identifier: "en_US_POSIX")
    formatter.timeZone = TimeZone(identifier: "UTC")
    formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
    guard let whole = formatter.date(from: body) else { return nil }
    return whole.addingTimeInterval(fraction)
}

/// A Date as a `recovery_target_time` value, in UTC to the microsecond.
func formatPostgresTime(_ date: Date) -> String {
    let formatter = DateFormatter()
    formatter.locale = Locale(identifier: "en_US_POSIX")
    formatter.timeZone = TimeZone(identifier: "UTC")
    formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
    let seconds = date.timeIntervalSince1970.rounded(.down)
    let micros = min(999_999, Int(((date.timeIntervalSince1970 - seconds) * 1_000_000).rounded()))
    return formatter.string(from: Date(timeIntervalSince1970: seconds)) + String(format: ".%06d+00", micros)
}

extension PostgresError: LifeboatError {
    public var errorCode: String { "postgres.\(code.rawValue)" }
    public var errorObject: String? { context }
    public var errorMessage: String { message }
    public var exitStatus: ExitStatus {
        switch code {
        case .invalidArgument, .wrongSnapshot: .usage
        case .unreachable, .toolFailed, .refused, .notRestorable, .missingWAL, .recoveryFailed: .failure
        }
    }
}
