import Foundation
import LifeboatCore
import LifeboatRepository

/// The bodies `lifeboat serve` wires in from the application layer; a job whose body is absent is
/// not planned (so a deployment can, say, leave drills to people).
public struct JobBodies: Sendable {
    /// A store's backup (for PostgreSQL with `[continuous, cron]`: the base backup).
    public var backup: @Sendable (Store) -> JobBody
    /// A store's prune by its retention.
    public var prune: (@Sendable (Store) -> JobBody)?
    public var mirror: JobBody?
    /// `verify --read-data-subset`.
    public var verify: JobBody?
    public var drill: (@Sendable (DrillSchedule) -> JobBody)?
    /// A `continuous` store's archiving health check; it returns `JobOutcome(recorded: false)`
    /// when healthy (so the history keeps the failures), and throws when archiving fails or lags.
    public var archiveCheck: (@Sendable (Store) -> JobBody)?
    /// OpenBao: the cheap state read and the tagged snapshot. With both, an OpenBao store gets the
    /// change-watching job instead of a plain backup job.
    public var openbaoProbe: (@Sendable (Store) -> @Sendable () async throws -> OpenBaoState)?
    public var openbaoSnapshot: (@Sendable (Store) -> @Sendable (_ reason: String) async throws -> [String])?

    public init(
        backup: @escaping @Sendable (Store) -> JobBody, prune: (@Sendable (Store) -> JobBody)? = nil, mirror: JobBody? = nil,
        verify: JobBody? = nil, drill: (@Sendable (DrillSchedule) -> JobBody)? = nil, archiveCheck: (@Sendable (Store) -> JobBody)? = nil,
        openbaoProbe: (@Sendable (Store) -> @Sendable () async throws -> OpenBaoState)? = nil,
        openbaoSnapshot: (@Sendable (Store) -> @Sendable (_ reason: String) async throws -> [String])? = nil
    ) {
        self.backup = backup
        self.prune = prune
        self.mirror = mirror
        self.verify = verify
        self.drill = drill
        self.archiveCheck = archiveCheck
        self.openbaoProbe = openbaoProbe
        self.openbaoSnapshot = openbaoSnapshot
    }
}

/// Choices the catalog does not make (yet): where they come from is the caller's (flags, defaults).
public struct JobPlanOptions: Sendable {
    public enum MirrorTrigger: Sendable, Hashable {
        /// After every backup job's success.
        case afterBackups
        case cadence([Cadence])
    }
    public var mirror: MirrorTrigger
    /// `verify --read-data-subset`'s cadence (default weekly, Sunday 04:00).
    public var verify: [Cadence]
    /// How often OpenBao is polled for changes and rotation.
    public var openbaoPoll: TimeSpan
    /// How often WAL archiving's health is checked.
    public var archiveCheck: TimeSpan
    public var retry: RetryPolicy

    public init(mirror: MirrorTrigger = .afterBackups, verify: [Cadence] = [.cron(try! CronSchedule(parsing: "0 4 * * 0"))],
                openbaoPoll: TimeSpan = TimeSpan(seconds: 60), archiveCheck: TimeSpan = TimeSpan(seconds: 60), retry: RetryPolicy = .standard) {
        self.mirror = mirror
        self.verify = verify
        self.openbaoPoll = openbaoPoll
        self.archiveCheck = archiveCheck
        self.retry = retry
    }
}

/// The catalog's jobs: per store a backup (or the OpenBao watch) on its cadence, an archive check
/// for `continuous`, prune after each backup; mirror after backups or on its cadence; verify on its
/// cadence; one job per `drills:` entry. Cron entries are read in the catalog's `timezone` (UTC).
public enum JobPlan {
    public static func jobs(for catalog: Catalog, repository: Repository, bodies: JobBodies, options: JobPlanOptions = JobPlanOptions()) -> [JobSpec] {
        let timeZone = catalog.timeZone.flatMap(TimeZone.init(identifier:)) ?? .utc
        var jobs: [JobSpec] = []
        var backupJobs: [JobID] = []
        for store in catalog.stores where !store.kind.isManual {
            let schedule = Schedule(store.cadences, timeZone: timeZone)
            var backupJob: JobID?
            if !schedule.isEmpty {
                if store.kind == .openbao, let probe = bodies.openbaoProbe, let snapshot = bodies.openbaoSnapshot {
                    let job = OpenBaoWatch.job(store: store.name, poll: options.openbaoPoll, slots: schedule, repository: repository,
                                               retry: options.retry, probe: probe(store), snapshot: snapshot(store))
                    jobs.append(job)
                    backupJob = job.id
                } else {
                    let id = JobID(.backup, store.name)
                    jobs.append(JobSpec(id: id, kind: .backup, store: store.name, trigger: .schedule(schedule), retry: options.retry,
                                        body: bodies.backup(store)))
                    backupJob = id
                }
            }
            if store.cadences.contains(.continuous), let check = bodies.archiveCheck {
                jobs.append(JobSpec(id: JobID(.archiveCheck, store.name), kind: .archiveCheck, store: store.name,
                                    trigger: .schedule(Schedule([.interval(options.archiveCheck)])), retry: .never,
                                    writesStartRecord: false, body: check(store)))
            }
            if let backupJob {
                backupJobs.append(backupJob)
                if let prune = bodies.prune, store.retention?.hasPolicy == true {
                    jobs.append(JobSpec(id: JobID(.prune, store.name), kind: .prune, store: store.name,
                                        trigger: .afterSuccess(of: [backupJob]), retry: options.retry, body: prune(store)))
                }
            }
        }
        if let mirror = bodies.mirror {
            switch options.mirror {
            case .afterBackups where !backupJobs.isEmpty:
                jobs.append(JobSpec(id: JobID(.mirror, nil), kind: .mirror, trigger: .afterSuccess(of: backupJobs), retry: options.retry, body: mirror))
            case .cadence(let cadences) where !Schedule(cadences).isEmpty:
                jobs.append(JobSpec(id: JobID(.mirror, nil), kind: .mirror, trigger: .schedule(Schedule(cadences, timeZone: timeZone)),
                                    retry: options.retry, body: mirror))
            default:
                break
            }
        }
        if let verify = bodies.verify, !Schedule(options.verify).isEmpty {
            jobs.append(JobSpec(id: JobID(.verify, nil), kind: .verify, trigger: .schedule(Schedule(options.verify, timeZone: timeZone)),
                                retry: options.retry, body: verify))
        }
        if let drill = bodies.drill {
            for schedule in catalog.drills where !Schedule(schedule.cadences).isEmpty {
                jobs.append(JobSpec(id: JobID(.drill, schedule.name), kind: .drill, trigger: .schedule(Schedule(schedule.cadences, timeZone: timeZone)),
                                    retry: options.retry, body: drill(schedule)))
            }
        }
        return jobs
    }
}
