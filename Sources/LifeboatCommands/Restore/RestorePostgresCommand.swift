import ArgumentParser
import Foundation
import LifeboatConnectors
import LifeboatCore
import LifeboatPlatform
import LifeboatRepository

/// `lifeboat restore postgres --store NAME …`
struct RestorePostgresCommand: AsyncParsableCommand {
    /// One line for the dry run: which base, which timeline, where recovery stops, what it reflects.
    static func describe(_ plan: PhysicalRestorePlan) -> String {
        let stop = switch plan.stop {
        case .immediate: "its own consistency point (recovery_target = immediate)"
        case .time(let time): "the last transaction at or before \(SourceTime.format(time))"
        case .lsn(let lsn): "LSN \(lsn)"
        case .endOfChain: "the end of the archived WAL (segment \(plan.base.lastSegment ?? "of the base backup"))"
        }
        return "\(plan.target) from base backup \(plan.base.snapshot.prefix(8)) along timeline \(plan.base.recoveryTimeline), stopping at \(stop)"
            + (plan.dataTime.map { "; the data will be as of \(SourceTime.format($0))" } ?? "")
            + (plan.leftBehind.map { "; not restored: \($0)" } ?? "")
    }

    static let configuration = CommandConfiguration(
        commandName: "postgres",
        abstract: "Restore a PostgreSQL store: a logical backup into a server, or a base backup plus WAL into a new data directory.",
        discussion: """
        Logical (--to-host …): creates the roles and databases of the backup in the target server; refuses a target that already holds any of them unless --force (which drops and replaces them).
        Physical (--data-dir …): the same procedure as a production step of `lifeboat restore`. It checks first that the target is covered by a base backup plus an unbroken WAL chain (naming the missing segment if not) and that no live PostgreSQL owns the directory (when it is the store's own data_directory, also that the catalog's address refuses connections); a non-empty directory is refused unless --force, which moves it aside (never deleted) and puts it back if the restore fails. Then it lays the base backup down, runs pg_verifybackup, recovers to --time / --target latest / --target-lsn, waits for promotion, archives the new timeline's history (the store's own directory), runs the catalog's checks, and shuts the server down cleanly, waiting up to an hour for its shutdown checkpoint (never SIGKILL before): the directory is then ready to be started.
        Exit codes: 0 restored and every check passed · 1 refused, not restorable, the restore failed, or a check failed · 2 usage · 3 the repository is damaged.

        Examples:
          lifeboat restore postgres --store app-db -c lifeboat.yaml --to-host 10.0.0.5 --to-password-file pw --snapshot latest
          lifeboat restore postgres --store app-db -c lifeboat.yaml --data-dir /var/lib/postgresql/15/restored --time '2026-11-22T09:14:00Z'
        """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var damaged: DamagedChoiceOptions
    @OptionGroup var output: OutputOptions

    @Option(help: ArgumentHelp("The catalog store.", valueName: "name"))
    var store: String

    @Option(help: "Logical: the snapshot to restore (id prefix or latest).")
    var snapshot = "latest"

    @Option(help: "Logical: the target server's host (or socket directory).")
    var toHost: String?
    @Option(help: "Logical: the target server's port.")
    var toPort = 5432
    @Option(help: "Logical: the user to connect as (a superuser: it creates roles and databases).")
    var toUser = "postgres"
    @Option(help: "Logical: a file holding that user's password (default: $PGPASSWORD).")
    var toPasswordFile: String?
    @Flag(help: "Logical: drop and replace databases the target already has. Physical: move a non-empty data directory aside.")
    var force = false

    @Option(help: "Physical: the new data directory (absent or empty).")
    var dataDir: String?
    @Option(help: "Physical: recover to this time (ISO 8601, e.g. 2026-11-22T09:14:00Z); `latest` or `now`: to the end of the archived WAL.")
    var time: String?
    @Option(help: "Physical: follow this timeline (default: the one that was current at --time; for latest, the one with the newest data).")
    var timeline: UInt32?
    @Option(help: "Physical: `latest` recovers to the end of the archived WAL.")
    var target: String?
    @Option(help: "Physical: recover to this LSN (e.g. 0/3000148).")
    var targetLsn: String?
    @Flag(help: "Physical: keep WAL archiving on in the restored server (off by default so a drill cannot write into the archive).")
    var keepArchiving = false
    @Flag(help: "Physical: only check that the target is restorable, change nothing.")
    var dryRun = false

    struct Outcome: Encodable {
        var logical: LogicalRestoreReport?
        var physical: PhysicalRestoreReport?
        var checks: [CheckResult]
    }

    func validate() throws {
        guard (toHost == nil) != (dataDir == nil) else {
            throw ValidationError("give either --to-host (logical restore into a server) or --data-dir (physical restore)")
        }
        if dataDir != nil {
            let targets = [time, target, targetLsn].compactMap { $0 }
            guard targets.count == 1 else { throw ValidationError("a physical restore needs exactly one of --time, --target latest, --target-lsn") }
            if let target, target != "latest" { throw ValidationError("--target takes `latest`") }
        }
    }

    func recoveryTarget() throws -> RecoveryTarget {
        if let time, ["latest", "now"].contains(time.lowercased()) {
            // Nothing newer than the archive can be restored: "now" is the newest archived data.
            return .latest
        }
        if let time {
            guard let date = SourceTime.parse(time) ?? SourceTime.parse(time.replacingOccurrences(of: " ", with: "T")) else {
                throw CommandFailure(.usage, "--time \(time) is not an ISO 8601 time (2026-11-22T09:14:00Z)")
            }
            return .time(date)
        }
        if let targetLsn {
            guard let lsn = LSN(targetLsn) else { throw CommandFailure(.usage, "--target-lsn \(targetLsn) is not an LSN (0/3000148)") }
            return .lsn(lsn)
        }
        return .latest
    }

    func run() async throws {
        let resolver = try repository.storeResolver(showWarnings: false)
        let repo = damaged.applied(to: try await repository.open(resolver: resolver))
        var connector = PostgresConnector(store: store, endpoint: PostgresEndpoint(host: "unused"))
        var connection: PostgresConnection?
        if let resolver {
            let catalogStore = try resolver.store(named: store, kind: .postgres)
            connector = try resolver.postgres(catalogStore)
            if case .postgres(let found)? = catalogStore.connection { connection = found }
        }
        var outcome = Outcome(checks: [])
        if let dataDir {
            let plan = try await connector.planPhysicalRestore(to: try recoveryTarget(), timeline: timeline, in: repo)
            let directory = URL(fileURLWithPath: dataDir, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath)).standardizedFileURL
            let restore = PostgresPhysicalRestore(
                connector: connector, connection: connection, dataDirectory: directory, plan: plan, repository: repo,
                wal: WALCommandLine(executable: lifeboatExecutablePath(), repositoryArguments: try repository.childArguments(), store: store),
                force: force, keepArchiving: keepArchiving)
            if dryRun {
                let problems = restore.guards()
                guard problems.isEmpty else { throw PlatformError(.refused, object: directory.path, problems.joined(separator: "; ")) }
                printError("restorable: \(Self.describe(plan))")
                return
            }
            let restored = try await restore.run()
            do {
                outcome.checks = try await restored.check(connector.checks)
            } catch {
                await restored.release()
                throw error
            }
            await restored.release()
            outcome.physical = restored.report
        } else if let toHost {
            let password = try toPasswordFile.map { try readSecretFile($0, what: "the target's password") }
                ?? ProcessInfo.processInfo.environment["PGPASSWORD"]
            let endpoint = PostgresEndpoint(host: toHost, port: toPort, user: toUser, password: password)
            let manifest = try await repo.resolveSnapshot(snapshot, store: store)
            outcome.logical = try await connector.restoreLogical(manifest, from: repo, into: endpoint, force: force)
            outcome.checks = try await connector.runChecks(against: endpoint)
        }
        if output.json {
            try printJSON(outcome)
        } else {
            if let report = outcome.logical {
                print("restored snapshot \(report.snapshot.prefix(8)) into \(report.target): databases \(report.databases.joined(separator: ", ")); roles created: \(report.rolesCreated.isEmpty ? "none" : report.rolesCreated.joined(separator: ", ")) (\(String(format: "%.1f", report.seconds)) s)")
            }
            if let report = outcome.physical {
                print("restored base backup \(report.snapshot.prefix(8)) into \(report.dataDirectory), recovered to \(report.target) along timeline \(report.recoveredAlong)\(report.dataTime.map { " (data as of \(SourceTime.format($0)))" } ?? ""), promoted on timeline \(report.timeline) (\(String(format: "%.1f", report.seconds)) s)")
                if let behind = report.leftBehind { print("not restored: \(behind)") }
                print("pg_verifybackup: \(report.verifyBackup)")
                if let replayed = report.lastReplayedTransaction { print(replayed) }
            }
            for check in outcome.checks { print("\(check.passed ? "ok  " : "FAIL") \(check.check): \(check.detail)") }
        }
        if outcome.checks.contains(where: { !$0.passed }) {
            throw CommandFailure(.failure, "\(outcome.checks.filter { !$0.passed }.count) check(s) failed after the restore")
        }
    }
}
