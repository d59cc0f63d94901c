import Foundation

/// A PostgreSQL 15 server Lifeboat runs itself: a drill's scratch instance, the demo's database, a
/// restore's recovery run, a test's server. Listens on 127.0.0.1 on a free port with its Unix socket
/// in a private directory (mode 0700, owned by the server's user), and stops by PID.
///
/// Lifeboat itself connects through that private socket with `trust` (only root and the server's
/// user can open the directory), so it works the same over a fresh cluster and over a restored data
/// directory whose passwords it does not know; TCP clients use scram-sha-256 passwords.
public final class LocalPostgres: @unchecked Sendable {
    public let dataDirectory: URL
    public let port: Int
    /// Holds the socket, the log and the access rules; removed by `stop()`.
    public let runtimeDirectory: URL
    /// The superuser's password over TCP (nil when started over a data directory Lifeboat did not create).
    public let password: String?
    public let superuser: String
    private let server: ServerProcess
    private let lock = NSLock()
    private var stopped = false

    /// The OS user servers run as when Lifeboat runs as root (PostgreSQL refuses to run as root).
    public static let serverUser = "postgres"

    /// Over TCP with the password (what applications and pg_dump over the network would use).
    public var endpoint: PostgresEndpoint {
        PostgresEndpoint(host: "127.0.0.1", port: port, user: superuser, password: password)
    }

    /// Over the private socket, without a password.
    public var socketEndpoint: PostgresEndpoint {
        PostgresEndpoint(host: runtimeDirectory.path, port: port, user: superuser)
    }

    public var logFile: URL { runtimeDirectory.appendingPathComponent("postgres.log") }
    public var pid: Int32 { server.pid }
    public var isRunning: Bool { server.isRunning }

    private init(dataDirectory: URL, port: Int, runtimeDirectory: URL, password: String?, superuser: String, server: ServerProcess) {
        self.dataDirectory = dataDirectory
        self.port = port
        self.runtimeDirectory = runtimeDirectory
        self.password = password
        self.superuser = superuser
        self.server = server
    }

    /// `initdb` into `dataDirectory` (absent or empty), then starts the server. `settings` are
    /// server parameters for this run; `archiveCommand` turns WAL archiving on with that command
    /// (for example `WALCommandLine.archiveCommand`). `durable: false` skips initdb's fsyncs (tests, demos).
    public static func initialize(
        in dataDirectory: URL, superuser: String = "postgres", archiveCommand: String? = nil, settings: [String: String] = [:],
        durable: Bool = true
    ) async throws -> LocalPostgres {
        let fileManager = FileManager.default
        try createEmptyDirectory(dataDirectory, refusal: "the data directory is not empty; initdb needs an empty or absent directory")
        try await prepareDataDirectory(dataDirectory)
        let runtime = try makeRuntimeDirectory()
        let password = Data((0..<24).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
            .replacingOccurrences(of: "/", with: "x").replacingOccurrences(of: "+", with: "y")
        let passwordFile = runtime.appendingPathComponent("initdb-password")
        try Data((password + "\n").utf8).write(to: passwordFile)
        try giveToServerUser(passwordFile, mode: 0o600)
        defer { try? fileManager.removeItem(at: passwordFile) }
        var arguments = ["-D", dataDirectory.path, "-U", superuser, "--pwfile=\(passwordFile.path)", "-E", "UTF8",
                         "--locale=C.UTF-8", "--auth-local=trust", "--auth-host=scram-sha-256"]
        if !durable { arguments.append("--no-sync") }
        let initdb = try asServerUser(try ExternalTool.locate("initdb"))
        let run = try await initdb.tool.run(initdb.prefix + arguments, currentDirectory: dataDirectory.deletingLastPathComponent())
        guard run.status == 0 else {
            try? fileManager.removeItem(at: runtime)
            throw PostgresError(.toolFailed, dataDirectory.path, "initdb failed (\(run.status)): \(run.stderr.split(separator: "\n").suffix(4).joined(separator: " "))")
        }
        return try await start(dataDirectory, runtime: runtime, password: password, superuser: superuser,
                               settings: archiving(archiveCommand).merging(settings) { $1 }, readyTimeout: 60)
    }

    /// Starts a server over an existing data directory (a restored one, or one `initialize` made
    /// earlier). With a `recovery.signal` present this runs recovery; readiness means accepting
    /// connections (recovery may still be under way: see `waitForPromotion`).
    public static func start(
        existing dataDirectory: URL, superuser: String = "postgres", password: String? = nil, archiveCommand: String? = nil,
        settings: [String: String] = [:], readyTimeout: TimeInterval = 300
    ) async throws -> LocalPostgres {
        guard FileManager.default.fileExists(atPath: dataDirectory.appendingPathComponent("PG_VERSION").path) else {
            throw PostgresError(.invalidArgument, dataDirectory.path, "not a PostgreSQL data directory (no PG_VERSION)")
        }
        try await prepareDataDirectory(dataDirectory, recursive: true)
        return try await start(dataDirectory, runtime: try makeRuntimeDirectory(), password: password, superuser: superuser,
                               settings: archiving(archiveCommand).merging(settings) { $1 }, readyTimeout: readyTimeout)
    }

    /// The settings that archive every finished WAL segment with `command` (none when nil).
    public static func archiving(_ command: String?) -> [String: String] {
        guard let command else { return [:] }
        return ["wal_level": "replica", "archive_mode": "on", "archive_command": command]
    }

    private static func start(
        _ dataDirectory: URL, runtime: URL, password: String?, superuser: String, settings: [String: String], readyTimeout: TimeInterval
    ) async throws -> LocalPostgres {
        let hba = runtime.appendingPathComponent("pg_hba.conf")
        try Data("""
        # Written by Lifeboat for this run: trust only on the private socket directory.
        local all all trust
        local replication all trust
        host all all 127.0.0.1/32 scram-sha-256
        host replication all 127.0.0.1/32 scram-sha-256

        """.utf8).write(to: hba)
        try giveToServerUser(hba, mode: 0o600)
        let port = try freeLoopbackPort()
        var parameters = [
            "listen_addresses": "127.0.0.1", "port": String(port), "unix_socket_directories": runtime.path,
            "hba_file": hba.path, "logging_collector": "off", "log_destination": "stderr",
        ]
        parameters.merge(settings) { $1 }
        let postgres = try asServerUser(try ExternalTool.locate("postgres"))
        var arguments = postgres.prefix + ["-D", dataDirectory.path]
        for (name, value) in parameters.sorted(by: { $0.key < $1.key }) { arguments += ["-c", "\(name)=\(value)"] }
        let server: ServerProcess
        do {
            server = try ServerProcess(name: "postgres", executable: postgres.tool.path, arguments: arguments,
                                       logFile: runtime.appendingPathComponent("postgres.log"))
        } catch {
            try? FileManager.default.removeItem(at: runtime)
            throw error
        }
        let instance = LocalPostgres(dataDirectory: dataDirectory, port: port, runtimeDirectory: runtime, password: password,
                                     superuser: superuser, server: server)
        do {
            try await Psql(instance.socketEndpoint).waitUntilReady(timeout: readyTimeout) { server.isRunning }
        } catch {
            let log = instance.logTail()
            await instance.stop()
            let reason = (error as? PostgresError)?.message ?? "\(error)"
            throw PostgresError(.unreachable, dataDirectory.path, "the server did not come up (\(reason)): \(log)")
        }
        return instance
    }

    /// Waits until the server has left recovery (promoted), or fails with the server's own last words
    /// if it exits first (for example "recovery ended before configured recovery target was reached").
    public func waitForPromotion(timeout: TimeInterval) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        let psql = try Psql(socketEndpoint)
        while Date() < deadline {
            guard isRunning else {
                throw PostgresError(.recoveryFailed, dataDirectory.path, "the server stopped during recovery: \(logTail())")
            }
            if (try? await psql.value("SELECT pg_is_in_recovery()")) == "f" { return }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw PostgresError(.recoveryFailed, dataDirectory.path, "still in recovery after \(Int(timeout)) s: \(logTail())")
    }

    /// The last lines of the server log, for error messages.
    public func logTail(lines: Int = 6) -> String {
        let text = (try? String(contentsOf: logFile, encoding: .utf8)) ?? ""
        let all = text.split(separator: "\n")
        let problems = all.filter { !$0.contains("LOG:  ") || $0.contains("FATAL") }
        // A server that only logged progress (still in recovery, waiting for WAL) says so through its LOG lines.
        return (problems.isEmpty ? all : problems).suffix(lines).joined(separator: " | ")
    }

    /// Fast shutdown (SIGINT: roll back open transactions, checkpoint, exit); SIGKILL after `grace`.
    /// Idempotent. Removes the runtime directory.
    public func stop(grace: TimeInterval = 30) async {
        guard markStopped() else { return }
        if server.isRunning {
            kill(server.pid, SIGINT)
            let deadline = Date().addingTimeInterval(grace)
            while server.isRunning, Date() < deadline { try? await Task.sleep(for: .milliseconds(20)) }
            if server.isRunning {
                kill(server.pid, SIGKILL)
                while server.isRunning { try? await Task.sleep(for: .milliseconds(20)) }
            }
        }
        try? FileManager.default.removeItem(at: runtimeDirectory)
    }

    private func markStopped() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        if stopped { return false }
        stopped = true
        return true
    }

    deinit {
        // An owner that forgot to stop: do not leave a postmaster (or its socket directory) behind.
        if !stopped {
            if server.isRunning { kill(server.pid, SIGINT) }
            try? FileManager.default.removeItem(at: runtimeDirectory)
        }
    }

    /// Creates `directory`, or accepts it when it exists and is empty; refuses anything else
    /// before a single file is written.
    static func createEmptyDirectory(_ directory: URL, refusal: String) throws {
        let fileManager = FileManager.default
        if fileManager.fileExists(atPath: directory.path) {
            guard (try fileManager.contentsOfDirectory(atPath: directory.path)).isEmpty else {
                throw PostgresError(.refused, directory.path, refusal)
            }
        } else {
            try fileManager.createDirectory(at: directory, withIntermediateDirectories: true)
        }
    }

    // MARK: running as the server's user

    static var runningAsRoot: Bool { geteuid() == 0 }

    /// The tool, prefixed with `setpriv` to drop to the server user when Lifeboat runs as root
    /// (`setpriv` execs, so the PID is the server's own, unlike `runuser` which forks).
    static func asServerUser(_ tool: ExternalTool) throws -> (tool: ExternalTool, prefix: [String]) {
        guard runningAsRoot else { return (tool, []) }
        let setpriv = try ExternalTool.locate("setpriv")
        return (setpriv, ["--reuid=\(serverUser)", "--regid=\(serverUser)", "--init-groups", "--", tool.path])
    }

    /// Owned by the server user, mode 0700 (PostgreSQL refuses anything looser than 0750).
    static func prepareDataDirectory(_ directory: URL, recursive: Bool = false) async throws {
        if runningAsRoot {
            if recursive {
                let run = try await ExternalTool.locate("chown").run(["-R", "\(serverUser):\(serverUser)", directory.path])
                guard run.status == 0 else { throw PostgresError(.toolFailed, directory.path, "chown -R failed: \(run.stderr)") }
            } else {
                try giveToServerUser(directory, mode: 0o700)
            }
        }
        guard chmod(directory.path, 0o700) == 0 else {
            throw PostgresError(.toolFailed, directory.path, "cannot set mode 0700: \(String(cString: strerror(errno)))")
        }
    }

    static func giveToServerUser(_ url: URL, mode: mode_t) throws {
        if runningAsRoot, let user = getpwnam(serverUser) {
            guard chown(url.path, user.pointee.pw_uid, user.pointee.pw_gid) == 0 else {
                throw PostgresError(.toolFailed, url.path, "cannot give it to \(serverUser): \(String(cString: strerror(errno)))")
            }
        }
        chmod(url.path, mode)
    }

    static func makeRuntimeDirectory() throws -> URL {
        // Short, under /tmp: a socket path must fit in 107 bytes.
        let directory = URL(fileURLWithPath: "/tmp").appendingPathComponent("lifeboat-pg-\(UUID().uuidString.prefix(13))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try giveToServerUser(directory, mode: 0o700)
        return directory
    }
}
