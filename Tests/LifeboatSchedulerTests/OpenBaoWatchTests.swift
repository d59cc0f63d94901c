import Foundation
import LifeboatCore
import LifeboatRepository
import Synchronization
import Testing
@testable import LifeboatScheduler

/// The OpenBao change poll: rotation snapshots at once, and at each slot a snapshot or a record
/// that the newest snapshot is still current.
@Suite struct OpenBaoWatchTests {
    let start = utc("2026-05-05T10:00:00Z")

    @Test func decisions() {
        let state = OpenBaoState(raftIndex: 100, keyringTerm: 3, seal: "shamir 5/3")
        let baseline = OpenBaoWatch.Baseline(state: state, snapshot: "s1")
        #expect(OpenBaoWatch.decide(baseline: nil, current: state, atSlot: false) == .snapshot(reason: "initial"))
        #expect(OpenBaoWatch.decide(baseline: baseline, current: state, atSlot: false) == .nothing)
        #expect(OpenBaoWatch.decide(baseline: baseline, current: state, atSlot: true) == .unchanged(snapshot: "s1"))
        var written = state
        written.raftIndex = 101
        #expect(OpenBaoWatch.decide(baseline: baseline, current: written, atSlot: false) == .nothing)
        #expect(OpenBaoWatch.decide(baseline: baseline, current: written, atSlot: true) == .snapshot(reason: "schedule"))
        var rotated = written
        rotated.keyringTerm = 4
        #expect(OpenBaoWatch.decide(baseline: baseline, current: rotated, atSlot: false) == .snapshot(reason: "rotation"))
        var rekeyed = state
        rekeyed.seal = "shamir 7/4"
        #expect(OpenBaoWatch.decide(baseline: baseline, current: rekeyed, atSlot: false) == .snapshot(reason: "rotation"))
    }

    /// The server's state as the probe reads it, and the snapshots taken (reason, id).
    final class Server: Sendable {
        let state = Mutex(OpenBaoState(raftIndex: 10, keyringTerm: 1, seal: "shamir 5/3"))
        let snapshots = Mutex<[(reason: String, id: String)]>([])
        func take(_ reason: String) -> [String] {
            snapshots.withLock { taken in
                taken.append((reason, "snap\(taken.count + 1)"))
                return ["snap\(taken.count)"]
            }
        }
        var reasons: [String] { snapshots.withLock { $0.map(\.reason) } }
    }

    @Test func theWatchSnapshotsOnRotationAndRecordsCurrencyAtUnchangedSlots() async throws {
        let repository = try await makeRepository()
        let server = Server()
        let clock = ManualClock(start: start)
        let job = OpenBaoWatch.job(store: "vault", poll: TimeSpan(seconds: 60), slots: Schedule([.interval(TimeSpan(seconds: 4 * 3600))]),
                                   repository: repository, probe: { server.state.withLock { $0 } }, snapshot: { reason in server.take(reason) })
        let harness = try Harness(jobs: [job], repository: repository, clock: clock)
        try await harness.settle()
        #expect(server.reasons == ["initial"])
        let history = JobHistory(repository: repository)
        // Polls with nothing to do leave no record.
        try await harness.advance(by: 10 * 60)
        #expect(try await history.runIDs(of: job.id).count == 1)
        // A rotation is snapshotted at the next poll.
        server.state.withLock { $0.keyringTerm = 2; $0.raftIndex = 12 }
        try await harness.advance(by: 60)
        #expect(server.reasons == ["initial", "rotation"])
        // Writes between slots wait for the slot (10:00 + 4h), which snapshots them.
        server.state.withLock { $0.raftIndex = 30 }
        try await harness.advance(by: utc("2026-05-05T13:59:00Z").timeIntervalSince(clock.now()), step: 600)
        #expect(server.reasons == ["initial", "rotation"])
        try await harness.advance(by: 60)
        #expect(server.reasons == ["initial", "rotation", "schedule"])
        // Nothing changes until the 18:00 slot: no snapshot, a currency record instead.
        try await harness.advance(by: 4 * 3600, step: 600)
        #expect(server.reasons == ["initial", "rotation", "schedule"])
        let currency = try #require(try await repository.latestCurrency(store: "vault"))
        #expect(currency.snapshot == "snap3")
        #expect(currency.checked == utc("2026-05-05T18:00:00Z"))
        #expect(currency.basis["raft_index"] == "30")
        let newest = try #require(try await history.runs(of: job.id, limit: 1).first)
        #expect(newest.outcome?.summary?.hasPrefix("unchanged since snapshot snap3") == true)

        // A restarted instance continues from the history: the next slot is 22:00, and the state
        // it compares with is snap3's.
        await harness.stop()
        let again = try Harness(jobs: [job], repository: repository, clock: clock)
        try await again.advance(by: 3 * 3600, step: 600)
        #expect(server.reasons == ["initial", "rotation", "schedule"])
        try await again.advance(by: 3600, step: 600)
        #expect(try await repository.latestCurrency(store: "vault")?.checked == utc("2026-05-05T22:00:00Z"))
        await again.stop()
    }
}
