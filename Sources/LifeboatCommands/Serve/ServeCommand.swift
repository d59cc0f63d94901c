import ArgumentParser
import Foundation
import LifeboatCore
import LifeboatPlatform
import LifeboatEngine
import LifeboatRepository
import LifeboatScheduler
import LifeboatServer
import Logging
import Prometheus

/// `lifeboat serve`: the read-only HTTP API, and the scheduler that runs the catalog's cadences.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the catalog's cadences (backups, prune, mirror, verify, drills) and serve the read-only API and metrics.",
        discussion: """
        Every store's cadence runs its backup; OpenBao is polled for changes and snapshotted at once (tagged reason:rotation) when its keyring or seal changes; a `continuous` store's WAL archiving is checked, not run; prune follows each store's backup, mirror (--mirror-to) each backup; verify and the catalog's `drills:` run on their cadences. Two runs of one job never overlap; an overdue job runs once at start; a failed one is retried with backoff, then waits for its next slot. The history is kept in the repository (`lifeboat jobs` reads it). Several instances on one repository are safe: one holds a lease in the repository and runs the jobs; the others serve the API and take over within --lease-ttl of its death. --no-schedule serves only. See docs/scheduler.md.

        GET /v1/platform/backup/catalog       the coverage matrix
        GET /v1/platform/backup/restore-plan  the ordered restore plan
        GET /v1/platform/backup/status        per store: last backup, RPO exposure, last proven restore
        GET /v1/platform/backup/jobs          the scheduled jobs: last run, outcome, next run; the lease holder
        GET /metrics                          the same status and the scheduler's metrics for Prometheus
        GET /healthz                          liveness (never needs a token)

        Status and metrics read the repository (--repo, $LIFEBOAT_REPOSITORY or the catalog's repository section; the passphrase from --password-file, $LIFEBOAT_PASSWORD or the catalog), at most every 10 s; without one they answer 503.

        The catalog is read once at start; restart to pick up changes. With a token (--token-file or $LIFEBOAT_API_TOKEN) every API path needs Authorization: Bearer <token>. Errors are application/problem+json (RFC 9457). SIGTERM or SIGINT shuts down gracefully: running jobs are cancelled (a cancelled backup commits no snapshot), their end is recorded and the lease released, within three quarters of the lease's lifetime (90 s with the default 2m).

        Example:
          LIFEBOAT_API_TOKEN=$(cat /run/secrets/lifeboat-api) lifeboat serve -c lifeboat.yaml --port 8080
        """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var proof: ProofAgeOption
    @OptionGroup var schedule: ScheduleOptions

    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on (0 picks a free one and prints it).")
    var port = 8080

    @Option(help: ArgumentHelp("File holding the bearer token clients must send.", valueName: "path"))
    var tokenFile: String?

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0-65535") }
    }

    func run() async throws {
        let catalogPath = repository.catalogPath ?? CatalogLocation.defaultPath
        let (resolver, warnings) = try StoreResolver.load(path: catalogPath)
        for warning in warnings { printError(warning.description) }
        let token = try bearerToken()
        let operations = await openOperations(resolver)
        // Scheduling without the repository would leave the catalog unkept while /healthz says
        // all is well: fail, so the service manager restarts it (--no-schedule serves without it).
        if !schedule.noSchedule, case .failure(let failure)? = operations {
            throw CommandFailure(failure.status, "\(failure.message); serve runs the catalog's jobs and needs it (start with --no-schedule to serve the catalog and plan only)")
        }
        let scheduler = try makeScheduler(operations)
        let maximumProofAge = try proof.seconds()
        let status: (@Sendable () async throws -> PlatformStatus)? = switch operations {
        case .none: nil
        case .success(let operations)?: { try await operations.status(maximumProofAge: maximumProofAge) }
        case .failure(let failure)?: { throw failure }
        }
        let documents = try PlatformDocuments(
            catalog: resolver.catalog, status: status,
            jobs: scheduler.map { $0.jobsDocument }, extraMetrics: scheduler.map { $0.metricsText })
        var logger = Logger(label: "lifeboat.serve")
        logger.logLevel = .info
        let app = try buildApplication(
            documents: documents, settings: ServerSettings(host: host, port: port, bearerToken: token), logger: logger,
            onServerRunning: { [host] port in
                printError("lifeboat: serving \(catalogPath) on http://\(host):\(port)\(token == nil ? " (no token: open to anyone who can reach it)" : "")")
            })
        // The server owns the signals (SIGTERM, SIGINT); when it has shut down, the scheduler is
        // cancelled and given its bound to stop its jobs and release the lease.
        let served: Result<Void, any Error> = await withTaskGroup(of: Result<Void, any Error>?.self) { group in
            if let scheduler {
                printError("lifeboat: scheduling \(scheduler.scheduler.jobs.count) jobs (\(scheduler.scheduler.jobs.map(\.id.rawValue).joined(separator: ", "))) as \(scheduler.scheduler.holder)")
                group.addTask { await scheduler.scheduler.run(); return nil }
            }
            group.addTask {
                do { try await app.runService() } catch { return .failure(error) }
                return .success(())
            }
            var result: Result<Void, any Error> = .success(())
            while let next = await group.next() {
                if let next {
                    result = next
                    group.cancelAll()
                }
            }
            return result
        }
        if case .failure(let error) = served {
            throw CommandFailure(.failure, "cannot serve on \(host):\(port): \(error)")
        }
    }

    /// The use cases over the repository, when one is configured: nil when none is, a failure with
    /// the reason when it cannot be opened (status and metrics then answer 503, the catalog and
    /// plan are still served, and nothing is scheduled).
    func openOperations(_ resolver: StoreResolver) async -> Result<PlatformOperations, CommandFailure>? {
        let configured = repository.repository != nil || ProcessInfo.processInfo.environment["LIFEBOAT_REPOSITORY"] != nil || resolver.catalog.repository != nil
        guard configured else {
            printError("lifeboat: no repository configured: /v1/platform/backup/status and /metrics answer 503, and no job is scheduled")
            return nil
        }
        do {
            return .success(PlatformOperations(PlatformContext(resolver: resolver, repository: try await repository.open(resolver: resolver),
                                                               repositoryArguments: try repository.childArguments())))
        } catch {
            let reason = (error as? any LifeboatError)?.errorMessage ?? "\(error)"
            let status = (error as? any LifeboatError)?.exitStatus ?? .failure
            if schedule.noSchedule {
                printError("lifeboat: the repository cannot be opened (\(reason)): /v1/platform/backup/status and /metrics answer 503")
            }
            return .failure(CommandFailure(status, "the repository cannot be opened: \(reason)"))
        }
    }

    struct RunningScheduler: Sendable {
        var scheduler: Scheduler
        var registry: PrometheusCollectorRegistry

        /// `GET /v1/platform/backup/jobs`: the jobs and the live lease, as `lifeboat jobs --json` prints them.
        @Sendable func jobsDocument() async throws -> Data {
            let jobs = try await scheduler.describeJobs()
            let lease = scheduler.leaseStatus.newest.flatMap { !$0.released && $0.expires > Date() ? $0 : nil }
            return try JSONEncoder.api.encode(JobsCommand.JobsDocument((jobs, lease)))
        }

        @Sendable func metricsText() -> String {
            scheduler.refreshMetrics()
            return registry.emitToString()
        }
    }

    /// The scheduler over the catalog's jobs, unless --no-schedule, no repository, or no cadence.
    func makeScheduler(_ operations: Result<PlatformOperations, CommandFailure>?) throws -> RunningScheduler? {
        guard !schedule.noSchedule, case .success(let operations)? = operations else { return nil }
        let jobs = operations.jobs(try schedule.settings(repository: repository))
        guard !jobs.isEmpty else {
            printError("lifeboat: the catalog gives no store a cadence and no drill: nothing to schedule")
            return nil
        }
        let registry = PrometheusCollectorRegistry()
        let scheduler: Scheduler
        do {
            scheduler = try Scheduler(jobs: jobs, repository: operations.context.repository, configuration: try schedule.configuration(),
                                      metrics: PrometheusMetricsFactory(registry: registry))
        } catch {
            throw CommandFailure(.usage, "cannot schedule the catalog's jobs: \(error)")
        }
        return RunningScheduler(scheduler: scheduler, registry: registry)
    }

    /// The token from --token-file, else $LIFEBOAT_API_TOKEN; never printed.
    func bearerToken() throws -> String? {
        if let tokenFile {
            guard let text = try? String(contentsOfFile: tokenFile, encoding: .utf8) else {
                throw CommandFailure(.usage, "cannot read the token file \(tokenFile)")
            }
            let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !token.isEmpty else { throw CommandFailure(.usage, "the token file \(tokenFile) is empty") }
            return token
        }
        if let token = ProcessInfo.processInfo.environment["LIFEBOAT_API_TOKEN"]?.trimmingCharacters(in: .whitespacesAndNewlines), !token.isEmpty {
            return token
        }
        return nil
    }
}
