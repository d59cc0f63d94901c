import Foundation
import LifeboatCore
import LifeboatRepository
import LifeboatStorage
import LifeboatTesting
import Synchronization
import Testing
@testable import LifeboatScheduler

/// A backend that can be cut off, as a holder's storage is by a partition or a dead process.
final class SeveredBackend: Backend {
    let inner: any Backend
    private let severed = Mutex(false)
    init(_ inner: any Backend) { self.inner = inner }
    var location: String { inner.location }
    func sever() { severed.withLock { $0 = true } }
    private func check(_ name: String) throws(BackendError) {
        if severed.withLock({ $0 }) { throw BackendError(.unreachable, object: name, "cut off by the test") }
    }
    func create(_ name: String, data: Data) async throws(BackendError) { try check(name); try await inner.create(name, data: data) }
    func replace(_ name: String, data: Data) async throws(BackendError) { try check(name); try await inner.replace(name, data: data) }
    func load(_ name: String, range: Range<Int>?) async throws(BackendError) -> Data { try check(name); return try await inner.load(name, range: range) }
    func stat(_ name: String) async throws(BackendError) -> ObjectInfo? { try check(name); return try await inner.stat(name) }
    func list(prefix: String) async throws(BackendError) -> [ObjectInfo] { try check(prefix); return try await inner.list(prefix: prefix) }
    func delete(_ name: String) async throws(BackendError) { try check(name); try await inner.delete(name) }
}

/// Two schedulers on one repository, in real (short) time: one runs the jobs, the other takes
/// over when the holder stops renewing or hands over, and no job ever runs on both at once.
@Suite(.serialized) struct LeaseTests {
    static let timing = LeaseTiming(ttl: 3, renewInterval: 0.5, pollInterval: 0.25, margin: 1)
    static let configuration = SchedulerConfiguration(lease: timing, cancellationGrace: 0.5, recordTimeout: 2, historyRetryInterval: 0.2)

    /// A job every second that takes 0.3 s, logging which instance ran it (real time).
    static func job(_ log: RunLog, instance: String) -> JobSpec {
        JobSpec(id: "backup.a", kind: .backup, store: "a", trigger: .schedule(Schedule([.interval(TimeSpan(seconds: 1))]))) { _ in
            let index = log.begin("a", at: Date(), instance: instance)
            defer { log.end(index, at: Date()) }
            try await Task.sleep(for: .milliseconds(300))
            return JobOutcome(summary: "ran on \(instance)")
        }
    }

    static func holderCount(_ schedulers: [Scheduler]) -> Int { schedulers.filter(\.leaseStatus.holdsLease).count }

    /// A takes the lease and runs the job; A is cut off from the storage; B takes over within the
    /// bound, and A stopped before B started.
    static func takeover(_ makeBackend: @Sendable () async throws -> any Backend) async throws {
        let backendA = SeveredBackend(try await makeBackend())
        let repositoryA = try await makeRepository(backendA)
        let repositoryB = try await Repository.open(backend: try await makeBackend(), passphrase: "correct horse")
        let log = RunLog()
        let a = try Scheduler(jobs: [job(log, instance: "A")], repository: repositoryA, configuration: configuration,
                              holder: LeaseHolder(host: "host-a", pid: 1, nonce: "aaaa"))
        let runA = Task { await a.run() }
        try await eventually("A to hold the lease and run the job", within: 10) { a.leaseStatus.holdsLease && log.count("a") >= 1 }
        let b = try Scheduler(jobs: [job(log, instance: "B")], repository: repositoryB, configuration: configuration,
                              holder: LeaseHolder(host: "host-b", pid: 2, nonce: "bbbb"))
        let runB = Task { await b.run() }
        // B watches: a whole ttl passes with A renewing, and B runs nothing.
        try await Task.sleep(for: .seconds(timing.ttl + 0.5))
        #expect(!b.leaseStatus.holdsLease)
        #expect(b.leaseStatus.newest?.holder.nonce == "aaaa")
        #expect(log.entries.allSatisfy { $0.instance == "A" })
        let seen = try await JobHistory(repository: repositoryB).newest(of: "backup.a") { $0.status == .succeeded }
        #expect(seen?.outcome?.summary == "ran on A", "the standby reads the holder's history")
        #expect(try await b.describeJobs().first?.lastSuccess != nil)

        backendA.sever()
        let severed = Date()
        try await eventually("B to take over", within: timing.takeoverBound + 5) { b.leaseStatus.holdsLease && log.entries.contains { $0.instance == "B" } }
        let firstB = try #require(log.entries.first { $0.instance == "B" })
        #expect(firstB.started.timeIntervalSince(severed) <= timing.takeoverBound + 2, "took over \(firstB.started.timeIntervalSince(severed)) s after the cut")
        #expect(!a.leaseStatus.holdsLease)
        // No double running: every run of A ended before B's first started, and never two at once.
        #expect(log.entries.filter { $0.instance == "A" }.allSatisfy { ($0.ended ?? .distantFuture) <= firstB.started })
        #expect(log.maximumConcurrent == 1)
        runA.cancel()
        runB.cancel()
        await runA.value
        await runB.value
    }

    @Test func aStandbyTakesOverWhenTheHolderStopsRenewingOnLocalStorage() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("lifeboat-lease-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        try await Self.takeover { LocalDirectoryBackend(root: directory) }
    }

    @Test func aStandbyTakesOverWhenTheHolderStopsRenewingOnS3() async throws {
        try await MotoServer.withShared { moto in
            let bucket = MotoServer.uniqueBucketName("lease")
            try await moto.createBucket(bucket)
            let configuration = moto.configuration(bucket: bucket, prefix: "lifeboat")
            try await Self.takeover { try S3Backend(configuration: configuration) }
        }
    }

    @Test func aCleanStopHandsTheLeaseOverAtOnce() async throws {
        let repository = try await makeRepository()
        let log = RunLog()
        let a = try Scheduler(jobs: [Self.job(log, instance: "A")], repository: repository, configuration: Self.configuration,
                              holder: LeaseHolder(host: "host-a", pid: 1, nonce: "aaaa"))
        let b = try Scheduler(jobs: [Self.job(log, instance: "B")], repository: repository, configuration: Self.configuration,
                              holder: LeaseHolder(host: "host-b", pid: 2, nonce: "bbbb"))
        let runA = Task { await a.run() }
        try await eventually("A to hold the lease", within: 10) { a.leaseStatus.holdsLease }
        let runB = Task { await b.run() }
        try await Task.sleep(for: .seconds(1))
        #expect(Self.holderCount([a, b]) == 1)
        let stopped = Date()
        runA.cancel()
        await runA.value
        #expect(Date().timeIntervalSince(stopped) < Self.configuration.stopBound)
        try await eventually("B to take over", within: Self.timing.ttl) { b.leaseStatus.holdsLease }
        // A released: well before a ttl of watching.
        #expect(Date().timeIntervalSince(stopped) < Self.timing.ttl, "took \(Date().timeIntervalSince(stopped)) s")
        #expect(log.maximumConcurrent == 1)
        let epochs = try await repository.documentIDs(in: .lease)
        #expect(epochs.count <= 4, "old epochs are cleaned up: \(epochs)")
        runB.cancel()
        await runB.value
    }

    @Test func claimingAnEpochTwiceFailsForTheSecondWriter() async throws {
        let repository = try await makeRepository()
        let gate = LeaseGate()
        func keeper(_ nonce: String) -> LeaseKeeper {
            LeaseKeeper(repository: repository, holder: LeaseHolder(host: "h", pid: 1, nonce: nonce), timing: Self.timing, clock: SystemClock(),
                        gate: gate) { _, _ in }
        }
        #expect(try await keeper("one").claim(epoch: 1) != nil)
        #expect(try await keeper("two").claim(epoch: 1) == nil, "create-once: the second writer of an epoch loses")
        #expect(try await keeper("two").claim(epoch: 2) != nil)
        // A number freed by cleanup cannot make a late writer holder: a newer epoch exists.
        try await repository.deleteDocument(in: .lease, id: LeaseRecord.objectID(1))
        #expect(try await keeper("late").claim(epoch: 1) == nil)
        #expect(try await repository.documentIDs(in: .lease) == [LeaseRecord.objectID(2)])
        #expect(try await keeper("x").newest().record?.holder.nonce == "two")
    }
}
