import ArgumentParser
import Foundation
import LifeboatCore
import LifeboatPlatform
import LifeboatRepository
import LifeboatScheduler

/// How `serve` keeps the catalog's cadences; `lifeboat jobs` takes the same options so it shows
/// the same jobs `serve` runs.
struct ScheduleOptions: ParsableArguments {
    @Flag(help: "Serve the API only: run no scheduled job (another instance, cron or people back up).")
    var noSchedule = false

    @Option(help: ArgumentHelp("Mirror the repository here after every backup: a directory or s3://bucket/prefix (its S3 options are the repository's).", valueName: "location"))
    var mirrorTo: String?

    @Option(help: ArgumentHelp("S3 endpoint of the mirror, when it differs from the repository's.", valueName: "url"))
    var mirrorToEndpoint: String?

    @Option(help: ArgumentHelp("S3 storage class for what the mirror writes (cold storage).", valueName: "class"))
    var mirrorToStorageClass: String?

    @Option(help: ArgumentHelp("Mirror on this cadence (an interval such as 6h, or a cron expression) instead of after every backup.", valueName: "cadence"))
    var mirrorCadence: String?

    @Option(help: ArgumentHelp("Run `verify --read-data-subset` on this cadence, or `never`.", valueName: "cadence"))
    var verifyCadence = "0 4 * * 0"

    @Option(help: ArgumentHelp("The share of chunks each scheduled verify reads back.", valueName: "percent"))
    var verifySubset = "5%"

    @Option(help: ArgumentHelp("How often OpenBao is polled for writes, keyring rotation and seal changes.", valueName: "duration"))
    var openbaoPoll = "1m"

    @Option(help: ArgumentHelp("How often PostgreSQL's WAL archiving health is checked (stores with `continuous`).", valueName: "duration"))
    var archiveCheckInterval = "1m"

    @Option(help: "Attempts per slot before a failed job waits for its next slot.")
    var retryAttempts = 3

    @Option(help: ArgumentHelp("Wait before the first retry (doubling after each, up to 15m).", valueName: "duration"))
    var retryDelay = "1m"

    @Option(help: ArgumentHelp("The scheduler lease's lifetime: a standby instance takes over at most this long (plus an eighth) after the holder dies.", valueName: "duration"))
    var leaseTtl = "2m"

    @Flag(help: "Do not run the catalog's `drills:` (leave drills to people).")
    var noDrills = false

    func validate() throws {
        guard (1...20).contains(retryAttempts) else { throw ValidationError("--retry-attempts must be 1-20") }
        _ = try settingsWithoutMirror()
        _ = try leaseTiming()
    }

    private func span(_ text: String, _ flag: String) throws -> TimeSpan {
        do {
            let span = try TimeSpan(parsing: text)
            guard span.seconds > 0 else { throw ValidationError("\(flag) must be longer than 0s") }
            return span
        } catch let error as TimeSpan.ParseError {
            throw ValidationError("\(flag): \(error.message)")
        }
    }

    private func cadence(_ text: String, _ flag: String) throws -> Cadence {
        do {
            let cadence = try Cadence(parsing: text)
            guard cadence != .continuous else { throw ValidationError("\(flag) takes an interval or a cron expression, not continuous") }
            return cadence
        } catch let error as TimeSpan.ParseError {
            throw ValidationError("\(flag): \(error.message)")
        }
    }

    /// Everything but the mirror's backend (which needs the repository's S3 options).
    func settingsWithoutMirror() throws -> ScheduleSettings {
        let verifyCadences = verifyCadence == "never" ? [] : [try cadence(verifyCadence, "--verify-cadence")]
        guard let subset = VerifyCommand.fraction(verifySubset), subset > 0 else {
            throw ValidationError("--verify-subset takes a percentage above 0% and at most 100%, e.g. 5%")
        }
        let delay = TimeInterval(try span(retryDelay, "--retry-delay").seconds)
        return ScheduleSettings(
            mirrorCadences: try mirrorCadence.map { [try cadence($0, "--mirror-cadence")] } ?? [],
            verifyCadences: verifyCadences, verifySubset: subset,
            openbaoPoll: try span(openbaoPoll, "--openbao-poll"), archiveCheck: try span(archiveCheckInterval, "--archive-check-interval"),
            retry: RetryPolicy(attempts: retryAttempts, initialDelay: delay, maximumDelay: max(delay, 900)),
            drills: !noDrills)
    }

    func settings(repository: RepositoryOptions) throws -> ScheduleSettings {
        var settings = try settingsWithoutMirror()
        if let mirrorTo {
            settings.mirrorTarget = try mirrorBackend(location: mirrorTo, repositoryS3: repository.s3, endpoint: mirrorToEndpoint,
                                                      storageClass: mirrorToStorageClass, storageClassFlag: "--mirror-to-storage-class")
        }
        return settings
    }

    /// The lease, its renewal and the standby's poll scaled from one lifetime (2m: renewed every
    /// 30s, a standby looks every 15s, the holder's jobs stop 40s before it would run out).
    func leaseTiming() throws -> (lease: LeaseTiming, grace: TimeInterval) {
        let ttl = TimeInterval(try span(leaseTtl, "--lease-ttl").seconds)
        guard ttl >= 8 else { throw ValidationError("--lease-ttl must be at least 8s") }
        let margin = ttl / 3
        return (LeaseTiming(ttl: ttl, renewInterval: ttl / 4, pollInterval: ttl / 8, margin: margin), margin * 0.75)
    }

    func configuration() throws -> SchedulerConfiguration {
        let (lease, grace) = try leaseTiming()
        return SchedulerConfiguration(lease: lease, cancellationGrace: grace, recordTimeout: min(30, grace))
    }
}

/// `lifeboat jobs`: what `serve` runs, when each job last ran and how, and when it runs next — read
/// from the history in the repository, so it shows what the running instance (or instances) did.
struct JobsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobs",
        abstract: "Show the scheduled jobs `lifeboat serve` runs: last run, outcome and next run of each.",
        discussion: """
        The jobs come from the catalog's cadences and `drills:`, with the same scheduling options `serve` takes (give the same ones); their history is read from the repository, where every instance writes it. A job shown overdue runs once when a scheduler next holds the lease.

        Exits 0, or 6 when a job's newest run failed (the same signal as the backup-failing alert).

        Example:
          lifeboat jobs -c lifeboat.yaml --json
        """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var schedule: ScheduleOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let resolver = try repository.storeResolver() ?? { throw CommandFailure(.usage, "jobs needs a catalog: -c lifeboat.yaml") }()
        let repo = try await repository.open(resolver: resolver)
        let operations = PlatformOperations(PlatformContext(resolver: resolver, repository: repo, repositoryArguments: try repository.childArguments()))
        let jobs = operations.jobs(try schedule.settings(repository: repository))
        let scheduler = try Scheduler(jobs: jobs, repository: repo, configuration: try schedule.configuration())
        // The lease first: describeJobs() tells a holder's running job from a dead one's by it.
        let lease = try await scheduler.currentLease()
        let described = try await scheduler.describeJobs()
        if output.json {
            try printJSON(JobsDocument((described, lease)))
        } else {
            print(Self.table(described, lease: lease.map { "\($0.holder) until \(SourceTime.format($0.expires))" }))
        }
        if described.contains(where: { $0.lastRun?.status == .failed }) { throw CommandFailure(.targetMissed, "a job's newest run failed") }
    }

    /// What `lifeboat jobs --json` prints and `GET /v1/platform/backup/jobs` answers.
    struct JobsDocument: Encodable {
        var jobs: [JobDescription]
        var leaseHolder: String?
        var leaseExpires: Date?
        enum CodingKeys: String, CodingKey { case jobs, leaseHolder = "lease_holder", leaseExpires = "lease_expires" }
        init(_ described: (jobs: [JobDescription], lease: LeaseRecord?)) {
            jobs = described.jobs
            leaseHolder = described.lease?.holder.description
            leaseExpires = described.lease?.expires
        }
    }

    static func table(_ jobs: [JobDescription], lease: String?) -> String {
        var table = Table("JOB", "TRIGGER", "LAST RUN", "OUTCOME", "NEXT RUN")
        for job in jobs {
            table.add(job.job.rawValue, job.trigger, job.lastRun.map { SourceTime.format($0.started) } ?? "never",
                      job.running ? "running" : job.lastRun?.status.rawValue ?? "-",
                      job.nextRun.map { $0 < Date() ? "overdue" : SourceTime.format($0) } ?? "-")
        }
        var text = table.render()
        for job in jobs where job.lastRun?.status == .failed {
            if let error = job.lastRun?.error { text += "\n\(job.job): FAILED: \(error)" }
        }
        return text + "\n" + (lease.map { "lease: held by \($0)" } ?? "lease: not held (no scheduler is running on this repository)")
    }
}
