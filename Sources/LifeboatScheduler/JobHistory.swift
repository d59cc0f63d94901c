import Foundation
import LifeboatRepository

/// The job history in the repository: `runs/<job>/<run>.start` when a run begins and
/// `runs/<job>/<run>.end` when it ends, both sealed and create-once like every repository
/// document. A run id is `<start in ms, 13 digits>-<8 hex>`, so names sort by start time and the
/// newest runs are found from a listing alone. Any instance (a restarted one, a standby) reads it.
public struct JobHistory: Sendable {
    public let repository: Repository
    /// Runs kept per job (each is one or two small objects); older ones are deleted after each run,
    /// except the newest success and the newest run that took snapshots.
    public var keepPerJob: Int

    public init(repository: Repository, keepPerJob: Int = 50) {
        precondition(keepPerJob >= 1, "keep at least the newest run")
        self.repository = repository
        self.keepPerJob = keepPerJob
    }

    public static func runID(started: Date) -> String {
        let millis = Int64((started.timeIntervalSince1970 * 1000).rounded(.down))
        return String(format: "%013lld", millis) + "-" + Repository.newDocumentID().prefix(8)
    }

    static func documentID(_ job: JobID, _ run: String, ended: Bool) -> String {
        "\(job.rawValue)/\(run).\(ended ? "end" : "start")"
    }

    func start(_ run: JobRun) async throws(RepositoryError) {
        try await repository.writeDocument(run, in: .runs, id: Self.documentID(run.job, run.run, ended: false))
    }

    func end(_ run: JobRun) async throws(RepositoryError) {
        try await repository.writeDocument(run, in: .runs, id: Self.documentID(run.job, run.run, ended: true))
    }

    /// The run ids of `job`, newest first, with whether each has ended.
    public func runIDs(of job: JobID) async throws(RepositoryError) -> [(run: String, ended: Bool)] {
        var ended: [String: Bool] = [:]
        for id in try await repository.documentIDs(in: .runs, prefix: "\(job.rawValue)/") {
            let name = id.dropFirst(job.rawValue.count + 1)
            if name.hasSuffix(".end") {
                ended[String(name.dropLast(4))] = true
            } else if name.hasSuffix(".start") {
                let run = String(name.dropLast(6))
                ended[run] = ended[run] ?? false
            }
        }
        return ended.sorted { $0.key > $1.key }.map { (run: $0.key, ended: $0.value) }
    }

    /// One run as recorded: its end record, or its start record (status `running`) while it has none.
    public func load(_ job: JobID, run: String, ended: Bool) async throws(RepositoryError) -> JobRun {
        try await repository.loadDocument(JobRun.self, in: .runs, id: Self.documentID(job, run, ended: ended))
    }

    /// The newest runs of `job`, newest first (at most `limit`). A damaged record is skipped, not fatal.
    public func runs(of job: JobID, limit: Int = .max) async throws(RepositoryError) -> [JobRun] {
        var found: [JobRun] = []
        for (run, ended) in try await runIDs(of: job).prefix(limit) {
            if let record = try? await load(job, run: run, ended: ended) { found.append(record) }
        }
        return found
    }

    /// The newest run (newest first) that satisfies `predicate`.
    public func newest(of job: JobID, where predicate: (JobRun) -> Bool) async throws(RepositoryError) -> JobRun? {
        for (run, ended) in try await runIDs(of: job) {
            guard let record = try? await load(job, run: run, ended: ended) else { continue }
            if predicate(record) { return record }
        }
        return nil
    }

    /// Deletes runs beyond the newest `keepPerJob`, except those in `pinned`.
    func applyRetention(_ job: JobID, pinned: Set<String>) async throws(RepositoryError) {
        for (run, ended) in try await runIDs(of: job).dropFirst(keepPerJob) where !pinned.contains(run) {
            if ended { try await repository.deleteDocument(in: .runs, id: Self.documentID(job, run, ended: true)) }
            try await repository.deleteDocument(in: .runs, id: Self.documentID(job, run, ended: false))
        }
    }
}
