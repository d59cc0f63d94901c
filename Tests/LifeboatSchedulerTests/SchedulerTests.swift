import CoreMetrics
import Foundation
import LifeboatCore
import LifeboatRepository
import LifeboatStorage
import Prometheus
import Testing
@testable import LifeboatScheduler

/// The semantics a user relies on, on a manual clock (days of schedule in milliseconds) and a
/// repository in memory.
@Suite struct SchedulerTests {
    let start = utc("2026-05-05T10:00:00Z")

    func settledRun(_ job: JobID, slot: Date, status: RunStatus = .succeeded, holder: String = "old-host/1/abc") -> JobRun {
        JobRun(job: job, kind: .backup, store: "a", run: JobHistory.runID(started: slot), holder: holder, attempt: 1, slot: slot,
               started: slot, ended: slot.addingTimeInterval(60), status: status, lastAttempt: true)
    }

    @Test func anOverdueJobRunsOnceAtStartNotABurst() async throws {
        let repository = try await makeRepository()
        let history = JobHistory(repository: repository)
        // Ten days down: an hourly job missed 240 slots, a daily cron job three.
        try await history.end(settledRun("backup.a", slot: start.addingTimeInterval(-10 * 86_400)))
        try await history.end(settledRun("backup.b", slot: utc("2026-05-02T02:00:00Z")))
        let log = RunLog()
        let clock = ManualClock(start: start)
        let harness = try Harness(jobs: [
            JobSpec(id: "backup.a", kind: .backup, store: "a", trigger: .schedule(hourly()), body: log.body("a", clock: clock)),
            JobSpec(id: "backup.b", kind: .backup, store: "b", trigger: .schedule(Schedule([.cron(cron("0 2 * * *"))])), body: log.body("b", clock: clock)),
        ], repository: repository, clock: clock)
        try await harness.settle()
        #expect(log.count("a") == 1)
        #expect(log.count("b") == 1)
        let described = Dictionary(uniqueKeysWithValues: try await harness.scheduler.describeJobs().map { ($0.job, $0) })
        // The next slots count from the catch-up run, now.
        #expect(described["backup.a"]?.nextRun == start.addingTimeInterval(3600))
        #expect(described["backup.b"]?.nextRun == utc("2026-05-06T02:00:00Z"))
        try await harness.advance(by: 59 * 60)
        #expect(log.count("a") == 1)
        try await harness.advance(by: 60)
        #expect(log.count("a") == 2)
        #expect(log.count("b") == 1)
        await harness.stop()
    }

    @Test func twoRunsOfOneJobNeverOverlap() async throws {
        let repository = try await makeRepository()
        let log = RunLog()
        let clock = ManualClock(start: start)
        // Each run takes 2h30 of an hourly job: slots pass while it runs.
        let harness = try Harness(jobs: [
            JobSpec(id: "backup.a", kind: .backup, store: "a", trigger: .schedule(hourly()), body: log.body("a", clock: clock, duration: 9000)),
        ], repository: repository, clock: clock)
        try await harness.advance(by: 10 * 3600, step: 600, log)
        let runs = log.entries
        #expect(log.maximumConcurrent == 1)
        // A run that overran its slots is followed by one run, at once: 10:00, 12:30, 15:00, 17:30, 20:00.
        #expect(runs.map(\.started) == [0, 9000, 18000, 27000, 36000].map { start.addingTimeInterval($0) })
        for (earlier, later) in zip(runs, runs.dropFirst()) {
            #expect(earlier.ended.map { $0 <= later.started } == true)
        }
        await harness.stop()
    }

    @Test func aFailedJobRetriesWithBackoffThenWaitsForItsNextSlot() async throws {
        let repository = try await makeRepository()
        let log = RunLog()
        let clock = ManualClock(start: start)
        let retry = RetryPolicy(attempts: 3, initialDelay: 60, maximumDelay: 600)
        let harness = try Harness(jobs: [
            JobSpec(id: "backup.a", kind: .backup, store: "a", trigger: .schedule(Schedule([.cron(cron("0 * * * *"))])), retry: retry,
                    body: log.body("a", clock: clock, fails: { _ in true })),
        ], repository: repository, clock: clock)
        try await harness.settle()
        #expect(harness.scheduler.phases["backup.a"] == .sleeping(until: start.addingTimeInterval(60)))
        try await harness.advance(by: 60, step: 60)
        #expect(harness.scheduler.phases["backup.a"] == .sleeping(until: start.addingTimeInterval(180)))
        try await harness.advance(by: 120, step: 120)
        // Three attempts failed: no fourth, the next slot (11:00) instead.
        #expect(harness.scheduler.phases["backup.a"] == .sleeping(until: utc("2026-05-05T11:00:00Z")))
        #expect(log.entries.map(\.started) == [0, 60, 180].map { start.addingTimeInterval($0) })
        let runs = try await JobHistory(repository: repository).runs(of: "backup.a").reversed()
        #expect(runs.map(\.status) == [.failed, .failed, .failed])
        #expect(runs.map(\.attempt) == [1, 2, 3])
        #expect(runs.map(\.lastAttempt) == [false, false, true])
        #expect(runs.allSatisfy { $0.error?.contains("failed on purpose") == true })
        try await harness.advance(by: utc("2026-05-05T11:00:00Z").timeIntervalSince(clock.now()), step: 600)
        #expect(log.count("a") == 4)
        #expect(try await JobHistory(repository: repository).runs(of: "backup.a", limit: 1).first?.attempt == 1)
        await harness.stop()
    }

    @Test func aRetryNeverRunsPastTheNextSlot() async throws {
        let repository = try await makeRepository()
        let log = RunLog()
        let clock = ManualClock(start: start)
        let harness = try Harness(jobs: [
            JobSpec(id: "backup.a", kind: .backup, store: "a", trigger: .schedule(Schedule([.interval(TimeSpan(seconds: 120))])),
                    retry: RetryPolicy(attempts: 5, initialDelay: 60, maximumDelay: 600), body: log.body("a", clock: clock, fails: { $0 <= 2 })),
        ], repository: repository, clock: clock)
        try await harness.advance(by: 120, step: 30)
        // 10:00 failed, 10:01 failed; the next retry (10:03) would pass the 10:02 slot, which runs instead.
        #expect(log.entries.map(\.started) == [0, 60, 120].map { start.addingTimeInterval($0) })
        let runs = try await JobHistory(repository: repository).runs(of: "backup.a").reversed()
        #expect(runs.map(\.lastAttempt) == [false, true, true])
        #expect(runs.map(\.status) == [.failed, .failed, .succeeded])
        await harness.stop()
    }

    @Test func successesStartTheirDependentsAndFoldWhileTheyRun() async throws {
        let repository = try await makeRepository()
        let log = RunLog()
        let clock = ManualClock(start: start)
        let harness = try Harness(jobs: [
            // a fails its first run, then succeeds; b takes 10 minutes.
            JobSpec(id: "backup.a", kind: .backup, store: "a", trigger: .schedule(hourly()), retry: .never,
                    body: log.body("a", clock: clock, fails: { $0 == 1 })),
            JobSpec(id: "backup.b", kind: .backup, store: "b", trigger: .schedule(hourly()), body: log.body("b", clock: clock, duration: 600)),
            JobSpec(id: "prune.a", kind: .prune, store: "a", trigger: .afterSuccess(of: ["backup.a"]), body: log.body("prune.a", clock: clock)),
            // The mirror takes 30 minutes; b's success comes while it runs for a's.
            JobSpec(id: "mirror", kind: .mirror, trigger: .afterSuccess(of: ["backup.a", "backup.b"]), body: log.body("mirror", clock: clock, duration: 1800)),
        ], repository: repository, clock: clock)
        try await harness.settle(log)
        #expect(log.count("a") == 1)
        #expect(log.count("prune.a") == 0, "a failed: no prune")
        try await harness.advance(by: 600, step: 60, log)
        // b succeeded at 10:10: the mirror runs for it.
        #expect(log.count("mirror") == 1)
        try await harness.advance(by: 3000, step: 60, log)
        // 11:00: a succeeds (prune runs), b starts again.
        #expect(log.count("a") == 2)
        #expect(log.count("prune.a") == 1)
        try await harness.advance(by: 3600, step: 60, log)
        let mirrors = log.entries.filter { $0.job == "mirror" }
        for (earlier, later) in zip(mirrors, mirrors.dropFirst()) {
            #expect(earlier.ended.map { $0 <= later.started } == true, "mirror runs never overlap")
        }
        // 10:10 (b), 11:00 (a; b's 11:10 success folds into the run after it), 11:30, …
        #expect(mirrors.first?.started == start.addingTimeInterval(600))
        #expect(mirrors.count >= 3)
        await harness.stop()
    }

    @Test func cancellationStopsWithinTheBoundAndTheRunReportsCancelled() async throws {
        let repository = try await makeRepository()
        let log = RunLog()
        let clock = ManualClock(start: start)
        let harness = try Harness(jobs: [
            JobSpec(id: "backup.a", kind: .backup, store: "a", trigger: .schedule(hourly()), body: log.body("a", clock: clock, duration: 3600)),
        ], repository: repository, clock: clock)
        try await eventually("the body to run") { log.asleep == 1 }
        let stopped = ContinuousClock.now
        await harness.stop()
        #expect(ContinuousClock.now - stopped < .seconds(2))
        let run = try #require(try await JobHistory(repository: repository).runs(of: "backup.a").first)
        #expect(run.status == .cancelled)
        #expect(run.lastAttempt == false)
        #expect(run.error?.contains("cancellation") == true)

        // The cancelled slot was not served: a restarted instance runs it once, at start.
        let again = try Harness(jobs: [
            JobSpec(id: "backup.a", kind: .backup, store: "a", trigger: .schedule(hourly()), body: log.body("a", clock: clock)),
        ], repository: repository, clock: clock)
        try await again.settle()
        #expect(log.count("a") == 2)
        await again.stop()
    }

    @Test func aBodyThatIgnoresCancellationIsLeftAfterTheGrace() async throws {
        let repository = try await makeRepository()
        let release = AsyncStream<Void>.makeStream()
        let clock = ManualClock(start: start)
        let harness = try Harness(jobs: [
            JobSpec(id: "backup.a", kind: .backup, store: "a", trigger: .schedule(hourly())) { _ in
                // A detached task is not cancelled with the body: it ends only when the test finishes the stream.
                await Task.detached { for await _ in release.stream {} }.value
                return JobOutcome()
            },
        ], repository: repository, clock: clock, configuration: SchedulerConfiguration(lease: nil, cancellationGrace: 0.3, recordTimeout: 5))
        try await eventually("the body to run") { harness.scheduler.phases["backup.a"] == .running }
        let stopped = ContinuousClock.now
        await harness.stop()
        let took = ContinuousClock.now - stopped
        #expect(took >= .milliseconds(300) && took < .seconds(3), "stopped after \(took)")
        let run = try #require(try await JobHistory(repository: repository).runs(of: "backup.a").first)
        #expect(run.status == .cancelled)
        #expect(run.error?.contains("did not stop within the cancellation grace") == true)
        release.continuation.finish()
    }

    @Test func aRestartedInstanceSeesTheHistoryAndClosesInterruptedRuns() async throws {
        let repository = try await makeRepository()
        let log = RunLog()
        let clock = ManualClock(start: start)
        let first = try Harness(jobs: [
            JobSpec(id: "backup.a", kind: .backup, store: "a", trigger: .schedule(hourly()), body: log.body("a", clock: clock, snapshots: ["5e1f"])),
        ], repository: repository, clock: clock)
        try await first.settle()
        await first.stop()
        // Another instance died while running b: its start record has no end.
        let orphan = JobRun(job: "backup.b", kind: .backup, store: "b", run: JobHistory.runID(started: start), holder: "gone/7/dead",
                            attempt: 1, slot: start, started: start, status: .running)
        try await JobHistory(repository: repository).start(orphan)

        clock.advance(by: 600)
        let second = try Harness(jobs: [
            JobSpec(id: "backup.a", kind: .backup, store: "a", trigger: .schedule(hourly()), body: log.body("a", clock: clock)),
            JobSpec(id: "backup.b", kind: .backup, store: "b", trigger: .schedule(hourly()), body: log.body("b", clock: clock)),
        ], repository: repository, clock: clock)
        try await second.settle()
        let described = Dictionary(uniqueKeysWithValues: try await second.scheduler.describeJobs().map { ($0.job, $0) })
        #expect(log.count("a") == 1, "a ran 10 minutes ago: not again before its slot")
        #expect(described["backup.a"]?.lastRun?.outcome?.snapshotIDs == ["5e1f"])
        #expect(described["backup.a"]?.lastSuccess == start)
        #expect(described["backup.a"]?.nextRun == start.addingTimeInterval(3600))
        #expect(log.count("b") == 1, "b's interrupted run left its slot open: it runs once at start")
        let bRuns = try await JobHistory(repository: repository).runs(of: "backup.b")
        #expect(bRuns.map(\.status) == [.succeeded, .interrupted])
        #expect(bRuns.last?.error?.contains("gone/7/dead") == true)
        try await second.advance(by: 3000)
        #expect(log.count("a") == 2)
        await second.stop()
    }

    @Test func historyIsBoundedPerJob() async throws {
        let repository = try await makeRepository()
        let log = RunLog()
        let clock = ManualClock(start: start)
        let harness = try Harness(jobs: [
            JobSpec(id: "backup.a", kind: .backup, store: "a", trigger: .schedule(hourly()), retry: .never,
                    body: log.body("a", clock: clock, snapshots: ["first"], fails: { $0 > 1 })),
        ], repository: repository, clock: clock, configuration: SchedulerConfiguration(lease: nil, historyPerJob: 3, cancellationGrace: 1, recordTimeout: 10))
        try await harness.advance(by: 7 * 3600, step: 3600)
        #expect(log.count("a") == 8)
        let kept = try await JobHistory(repository: repository).runs(of: "backup.a")
        // The newest three, and the newest success (the one with snapshots), kept past the limit.
        #expect(kept.count == 4)
        #expect(kept.prefix(3).allSatisfy { $0.status == .failed })
        #expect(kept.last?.outcome?.snapshotIDs == ["first"])
        #expect(try await repository.documentIDs(in: .runs).count == 8, "a start and an end record per run kept")
        await harness.stop()
    }

    @Test func metricsRenderForPrometheus() async throws {
        let repository = try await makeRepository()
        let log = RunLog()
        let clock = ManualClock(start: start)
        let registry = PrometheusCollectorRegistry()
        let harness = try Harness(jobs: [
            JobSpec(id: "backup.a", kind: .backup, store: "a", trigger: .schedule(hourly()), body: log.body("a", clock: clock, duration: 90)),
            JobSpec(id: "backup.b", kind: .backup, store: "b", trigger: .schedule(hourly()), retry: .never, body: log.body("b", clock: clock, fails: { _ in true })),
        ], repository: repository, clock: clock, metrics: PrometheusMetricsFactory(registry: registry))
        try await harness.advance(by: 120, step: 30, log)
        let text = registry.emitToString()
        let lines = Set(text.split(separator: "\n").map(String.init))
        func has(_ line: String) -> Bool { lines.contains(line) }
        // The labels the alert rules select on (deploy/prometheus/lifeboat-rules.yaml): job is the kind of work.
        #expect(has(#"lifeboat_job_failures_total{job="backup",store="b",name="backup.b"} 1"#), "\(text)")
        #expect(has(#"lifeboat_job_failures_total{job="backup",store="a",name="backup.a"} 0"#))
        #expect(has(#"lifeboat_job_last_outcome{job="backup",store="a",name="backup.a"} 1.0"#), "\(text)")
        #expect(has(#"lifeboat_job_last_outcome{job="backup",store="b",name="backup.b"} 0.0"#))
        #expect(has(#"lifeboat_job_last_success_timestamp_seconds{job="backup",store="a",name="backup.a"} \#(start.timeIntervalSince1970 + 90)"#), "\(text)")
        #expect(has(#"lifeboat_job_next_run_timestamp_seconds{job="backup",store="a",name="backup.a"} \#(start.timeIntervalSince1970 + 3600)"#))
        #expect(has(#"lifeboat_job_running{job="backup",store="a",name="backup.a"} 0.0"#))
        #expect(text.contains(#"lifeboat_job_duration_seconds_count{job="backup",store="a",name="backup.a"} 1"#), "\(text)")
        #expect(has(#"lifeboat_scheduler_up 1.0"#))
        #expect(has(#"lifeboat_scheduler_lease_held 1.0"#))
        await harness.stop()
    }
}
