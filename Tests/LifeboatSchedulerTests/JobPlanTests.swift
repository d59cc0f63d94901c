import Foundation
import LifeboatCore
import LifeboatRepository
import Testing
@testable import LifeboatScheduler

/// From a catalog to jobs: what runs, on which trigger.
@Suite struct JobPlanTests {
    static let yaml = """
    stores:
      - name: vault
        kind: openbao
        method: raft snapshot
        cadence: 4h
        retention: {keep_last: 6}
        priority: P0
        verify: [{read: secret/data/app}]
      - name: pg-main
        kind: postgres
        method: WAL + base backup
        cadence: [continuous, "0 2 * * *"]
        retention: {keep_daily: 7}
        priority: P0
        verify: [{sql: SELECT 1, expect: "1"}]
      - name: wal-only
        kind: postgres
        method: WAL archiving
        cadence: continuous
        retention: {keep_daily: 7}
        priority: P1
        verify: [{sql: SELECT 1, expect: "1"}]
      - name: etcd
        kind: etcd
        method: snapshot
        cadence: 15m
        priority: P0
        verify: [{prefix: /registry, min_keys: 1}]
      - name: gitops
        kind: external
        method: git
        priority: P1
    timezone: Europe/Berlin
    drills:
      - name: quarterly
        cadence: "0 3 1 */3 *"
        max_proof_age: 100d
    """

    static func body(_ label: String) -> JobBody { { _ in JobOutcome(summary: label) } }

    @Test func theCatalogsJobs() async throws {
        let catalog = try CatalogLoader.load(yaml: Self.yaml, file: "plan.yaml").catalog
        let repository = try await makeRepository()
        let bodies = JobBodies(
            backup: { store in Self.body("backup \(store.name)") }, prune: { store in Self.body("prune \(store.name)") },
            mirror: Self.body("mirror"), verify: Self.body("verify"), drill: { drill in Self.body("drill \(drill.name)") },
            archiveCheck: { store in Self.body("archive \(store.name)") },
            openbaoProbe: { _ in { OpenBaoState(raftIndex: 1, keyringTerm: 1, seal: "s") } }, openbaoSnapshot: { _ in { _ in ["x"] } })
        let jobs = JobPlan.jobs(for: catalog, repository: repository, bodies: bodies)
        let byID = Dictionary(uniqueKeysWithValues: jobs.map { ($0.id, $0) })
        #expect(jobs.map(\.id.rawValue).sorted() == [
            "archive-check.pg-main", "archive-check.wal-only", "backup.etcd", "backup.pg-main", "drill.quarterly", "mirror",
            "openbao-watch.vault", "prune.pg-main", "prune.vault", "verify",
        ])
        // pg-main's base backup runs on its cron entry, in the catalog's time zone; continuous is a check.
        let berlin = TimeZone(identifier: "Europe/Berlin")!
        #expect(byID["backup.pg-main"]?.trigger == .schedule(Schedule([try Cadence(parsing: "0 2 * * *")], timeZone: berlin)))
        #expect(byID["archive-check.wal-only"]?.trigger == .schedule(Schedule([.interval(TimeSpan(seconds: 60))])))
        #expect(byID["backup.wal-only"] == nil, "continuous alone yields no backup job")
        // Prune follows each store's backup (etcd has no retention: no prune); mirror follows all backups.
        #expect(byID["prune.vault"]?.trigger == .afterSuccess(of: ["openbao-watch.vault"]))
        #expect(byID["prune.pg-main"]?.trigger == .afterSuccess(of: ["backup.pg-main"]))
        #expect(byID["mirror"]?.trigger == .afterSuccess(of: ["openbao-watch.vault", "backup.pg-main", "backup.etcd"]))
        #expect(byID["drill.quarterly"]?.trigger == .schedule(Schedule([try Cadence(parsing: "0 3 1 */3 *")], timeZone: berlin)))
        #expect(byID["openbao-watch.vault"]?.writesStartRecord == false)
        // Bodies are the ones given, per store.
        let context = JobContext(job: "backup.etcd", kind: .backup, store: "etcd", run: "r", attempt: 1, slot: nil, started: Date(), previousSuccess: nil)
        #expect(try await byID["backup.etcd"]?.body(context).summary == "backup etcd")
        // Every planned job is accepted by the scheduler.
        _ = try Scheduler(jobs: jobs, repository: repository)

        // Without OpenBao probes the vault store gets a plain backup; a mirror cadence replaces "after backups".
        let plain = JobPlan.jobs(for: catalog, repository: repository, bodies: JobBodies(backup: { _ in Self.body("b") }, mirror: Self.body("m")),
                                 options: JobPlanOptions(mirror: .cadence([.interval(TimeSpan(seconds: 3600))])))
        #expect(plain.map(\.id.rawValue).sorted() == ["backup.etcd", "backup.pg-main", "backup.vault", "mirror"])
        #expect(plain.first { $0.id == "mirror" }?.trigger == .schedule(Schedule([.interval(TimeSpan(seconds: 3600))], timeZone: berlin)))
    }

    @Test func theSchedulerRefusesBadJobSets() async throws {
        let repository = try await makeRepository()
        let body = Self.body("x")
        #expect(throws: SchedulerError.self) {
            try Scheduler(jobs: [JobSpec(id: "a b", kind: .backup, trigger: .schedule(hourly()), body: body)], repository: repository)
        }
        #expect(throws: SchedulerError.self) {
            try Scheduler(jobs: [JobSpec(id: "a", kind: .backup, trigger: .schedule(hourly()), body: body),
                                 JobSpec(id: "a", kind: .backup, trigger: .schedule(hourly()), body: body)], repository: repository)
        }
        #expect(throws: SchedulerError.self) {
            try Scheduler(jobs: [JobSpec(id: "p", kind: .prune, trigger: .afterSuccess(of: ["missing"]), body: body)], repository: repository)
        }
        #expect(throws: SchedulerError.self) {
            try Scheduler(jobs: [], repository: repository,
                          configuration: SchedulerConfiguration(lease: LeaseTiming(ttl: 10, renewInterval: 2, pollInterval: 1, margin: 5), cancellationGrace: 30))
        }
    }
}
