import CoreMetrics
import Foundation
import Synchronization

/// The scheduler's metrics, recorded through swift-metrics into the factory it is given (the
/// server passes swift-prometheus's `PrometheusMetricsFactory` and renders its registry at
/// `/metrics`). Labels are what deploy/prometheus/lifeboat-rules.yaml selects on: `job` is the
/// kind of work (`backup` — the OpenBao watch included —, `prune`, `mirror`, `verify`, `drill`,
/// `archive-check`), `store` the store when the job has one, `name` the job's own name.
///
/// - `lifeboat_job_last_success_timestamp_seconds`: end of the newest successful run.
/// - `lifeboat_job_last_outcome`: 1 when the newest settled run succeeded, 0 when it failed with
///   no retry left (a failed attempt that will be retried, a cancelled or interrupted run change
///   nothing). Exported only while this instance runs the job: a former lease holder withdraws it,
///   so its last failure does not keep an alert firing after another instance took over.
/// - `lifeboat_job_duration_seconds`: each run's duration (a histogram).
/// - `lifeboat_job_failures_total`: failed runs (each attempt counts).
/// - `lifeboat_job_next_run_timestamp_seconds`: when the job is due next (0: not scheduled).
/// - `lifeboat_job_running`: 1 while a run is in progress.
/// - `lifeboat_scheduler_up`: 1 while the scheduler runs (holding the lease or standing by).
/// - `lifeboat_scheduler_lease_held`: 1 when this instance holds the lease and runs jobs.
/// - `lifeboat_scheduler_lease_holder{holder=…}`: 1 for the holder this instance last saw.
/// - `lifeboat_verify_last_outcome`: the newest scheduled verify, 1 passed, 0 failed.
/// - `lifeboat_mirror_lag_seconds`: how long the oldest backup the mirror does not hold yet has
///   been waiting (0 when the mirror is current); only with a mirror job.
struct SchedulerMetrics: Sendable {
    private final class Store: @unchecked Sendable {
        // Metric objects are thread-safe; the dictionaries that cache them are guarded here.
        let lock = Mutex<Void>(())
        var gauges: [String: Gauge] = [:]
        var counters: [String: Counter] = [:]
        var timers: [String: CoreMetrics.Timer] = [:]
        var holder: String?
        /// End of the oldest successful backup since the last successful mirror began.
        var unmirroredSince: Date?
        var hasMirror = false
    }
    private let factory: (any MetricsFactory)?
    private let store = Store()

    init(factory: (any MetricsFactory)?) { self.factory = factory }

    private static func key(_ label: String, _ dimensions: [(String, String)]) -> String {
        ([label] + dimensions.map { "\($0.0)=\($0.1)" }).joined(separator: "|")
    }

    private func gauge(_ label: String, _ dimensions: [(String, String)]) -> Gauge? {
        cached(\.gauges, label, dimensions) { Gauge(label: label, dimensions: dimensions, factory: $0) }
    }

    private func counter(_ label: String, _ dimensions: [(String, String)]) -> Counter? {
        cached(\.counters, label, dimensions) { Counter(label: label, dimensions: dimensions, factory: $0) }
    }

    private func timer(_ label: String, _ dimensions: [(String, String)]) -> CoreMetrics.Timer? {
        cached(\.timers, label, dimensions) { CoreMetrics.Timer(label: label, dimensions: dimensions, factory: $0) }
    }

    /// The metric object for `label` and `dimensions` from `table`, made once; nil without a factory.
    private func cached<Metric: Sendable>(_ table: ReferenceWritableKeyPath<Store, [String: Metric]>, _ label: String,
                                _ dimensions: [(String, String)], make: (any MetricsFactory) -> Metric) -> Metric? {
        guard let factory else { return nil }
        return store.lock.withLock { _ in
            let key = Self.key(label, dimensions)
            if let existing = store[keyPath: table][key] { return existing }
            let made = make(factory)
            store[keyPath: table][key] = made
            return made
        }
    }

    /// The kind of work as the alert rules name it: the OpenBao watch takes OpenBao's backups.
    static func work(_ kind: JobKind) -> String {
        kind == .openbaoWatch ? JobKind.backup.rawValue : kind.rawValue
    }

    static func dimensions(_ job: JobSpec) -> [(String, String)] {
        var dimensions = [("job", work(job.kind))]
        if let store = job.store { dimensions.append(("store", store)) }
        dimensions.append(("name", job.id.rawValue))
        return dimensions
    }

    func up(_ running: Bool) {
        gauge("lifeboat_scheduler_up", [])?.record(running ? 1 : 0)
    }

    /// Creates every job's series at start, so a job that never ran still shows (failures 0, next run).
    func register(_ job: JobSpec) {
        let dimensions = Self.dimensions(job)
        _ = counter("lifeboat_job_failures_total", dimensions)
        gauge("lifeboat_job_running", dimensions)?.record(0)
        if job.kind == .mirror {
            store.lock.withLock { _ in store.hasMirror = true }
            gauge("lifeboat_mirror_lag_seconds", [])?.record(0)
        }
    }

    /// Brings the time-dependent gauges up to `now` (the server calls it before each scrape).
    func refresh(now: Date) {
        let (hasMirror, since) = store.lock.withLock { _ in (store.hasMirror, store.unmirroredSince) }
        if hasMirror { gauge("lifeboat_mirror_lag_seconds", [])?.record(since.map { max(0, now.timeIntervalSince($0)) } ?? 0) }
    }

    func nextRun(_ job: JobSpec, _ date: Date?) {
        gauge("lifeboat_job_next_run_timestamp_seconds", Self.dimensions(job))?.record(date?.timeIntervalSince1970 ?? 0)
    }

    func running(_ job: JobSpec, _ running: Bool) {
        gauge("lifeboat_job_running", Self.dimensions(job))?.record(running ? 1 : 0)
    }

    /// A run (or an earlier instance's run read from the history at start) ended.
    func ended(_ job: JobSpec, _ run: JobRun, countFailure: Bool) {
        let dimensions = Self.dimensions(job)
        if run.status == .succeeded || (run.status == .failed && run.lastAttempt) {
            let value: Double = run.status == .succeeded ? 1 : 0
            gauge("lifeboat_job_last_outcome", dimensions)?.record(value)
            if job.kind == .verify { gauge("lifeboat_verify_last_outcome", [])?.record(value) }
        }
        if run.status == .succeeded, countFailure, let ended = run.ended {
            // Only runs of this instance move the mirror's lag: the history read at start does not
            // say which backups the mirror already holds, so the lag starts at 0 until one happens.
            store.lock.withLock { _ in
                switch job.kind {
                case .backup, .openbaoWatch:
                    if run.outcome?.snapshotIDs.isEmpty == false, store.unmirroredSince == nil { store.unmirroredSince = ended }
                case .mirror:
                    if let since = store.unmirroredSince, since <= run.started { store.unmirroredSince = nil }
                default:
                    break
                }
            }
        }
        if let duration = run.duration, countFailure {
            timer("lifeboat_job_duration_seconds", dimensions)?.recordNanoseconds(Int64(max(0, duration) * 1e9))
        }
        if run.status == .succeeded, let ended = run.ended {
            gauge("lifeboat_job_last_success_timestamp_seconds", dimensions)?.record(ended.timeIntervalSince1970)
        }
        if run.status == .failed, countFailure {
            counter("lifeboat_job_failures_total", dimensions)?.increment()
        }
    }

    /// The job's loop stopped (lease lost, shutdown): its outcome is no longer this instance's to report.
    func stopped(_ job: JobSpec) {
        var labels = [("lifeboat_job_last_outcome", Self.dimensions(job))]
        if job.kind == .verify { labels.append(("lifeboat_verify_last_outcome", [])) }
        for (label, dimensions) in labels {
            let gauge = store.lock.withLock { _ in store.gauges.removeValue(forKey: Self.key(label, dimensions)) }
            gauge?.destroy()
        }
    }

    func lastSuccess(_ job: JobSpec, _ date: Date) {
        gauge("lifeboat_job_last_success_timestamp_seconds", Self.dimensions(job))?.record(date.timeIntervalSince1970)
    }

    func lease(held: Bool, holder: String?) {
        gauge("lifeboat_scheduler_lease_held", [])?.record(held ? 1 : 0)
        let previous = store.lock.withLock { _ -> String? in
            defer { store.holder = holder }
            return store.holder
        }
        if let previous, previous != holder {
            gauge("lifeboat_scheduler_lease_holder", [("holder", previous)])?.record(0)
        }
        if let holder {
            gauge("lifeboat_scheduler_lease_holder", [("holder", holder)])?.record(1)
        }
    }
}
