import Foundation
import LifeboatStorage
import LifeboatTesting
import Testing
@testable import LifeboatRepository

@Suite struct RetentionPolicyTests {
    static func manifest(_ id: String, store: String = "db", at date: Date) -> SnapshotManifest {
        SnapshotManifest(version: 1, id: id, store: store, kind: "artefact", tags: [], hostname: "h", started: date, finished: date,
                         source: [:], size: 0, sha256: "", chunks: [], point: nil)
    }

    /// One snapshot every 6 hours for 60 days, newest at `end`.
    static func history(end: Date) -> [SnapshotManifest] {
        (0..<240).map { manifest(String(format: "%04d", $0), at: end.addingTimeInterval(-Double($0) * 6 * 3600)) }
    }

    static let end = Date(timeIntervalSince1970: 1_790_000_000) // a fixed instant, so buckets are stable

    @Test func keepLastAndWithin() {
        let snapshots = Self.history(end: Self.end)
        #expect(Set(RetentionPolicy(keepLast: 5).reasons(for: snapshots).keys) == Set(snapshots.prefix(5).map(\.id)))
        let within = RetentionPolicy(keepWithin: 2 * 86_400).reasons(for: snapshots)
        #expect(within.count == 9, "2 days of 6-hourly snapshots, both ends included")
    }

    @Test func calendarBucketsKeepTheNewestOfEach() {
        let snapshots = Self.history(end: Self.end)
        let daily = RetentionPolicy(keepDaily: 7).reasons(for: snapshots)
        #expect(daily.count == 7)
        let days = Set(daily.keys.map { id in Calendar.utc.startOfDay(for: snapshots.first { $0.id == id }!.finished) })
        #expect(days.count == 7, "one per day")
        for id in daily.keys {
            let kept = snapshots.first { $0.id == id }!
            // Nothing newer on the same day.
            #expect(!snapshots.contains { Calendar.utc.isDate($0.finished, inSameDayAs: kept.finished) && $0.finished > kept.finished })
        }
        #expect(RetentionPolicy(keepWeekly: 4).reasons(for: snapshots).count == 4)
        #expect(RetentionPolicy(keepMonthly: 12).reasons(for: snapshots).count == 3, "60 days span at most 3 months")
        let union = RetentionPolicy(keepLast: 2, keepDaily: 3).reasons(for: snapshots)
        #expect(union.count == 4, "the newest two (same day) plus the newest of the two days before")
    }

    @Test func theNewestIsAlwaysKeptAndAnEmptyPolicyKeepsEverything() {
        var generator = SeededGenerator(seed: 5)
        for _ in 0..<200 {
            let snapshots = (0..<Int.random(in: 1...30, using: &generator)).map {
                Self.manifest("s\($0)", at: Self.end.addingTimeInterval(-Double.random(in: 0...(90 * 86_400), using: &generator)))
            }
            let policy = RetentionPolicy(keepLast: Int.random(in: 1...3, using: &generator), keepDaily: Bool.random(using: &generator) ? 2 : nil)
            let newest = snapshots.max { ($0.finished, $0.id) < ($1.finished, $1.id) }!
            #expect(policy.reasons(for: snapshots)[newest.id] != nil)
        }
        #expect(RetentionPolicy().reasons(for: Self.history(end: Self.end)).count == 240)
    }
}

@Suite struct LockPruneMirrorTests {
    @Test func pruneAppliesPoliciesPerStoreAndCollectsOnlyOldOrphans() async throws {
        let backend = MemoryBackend()
        let repository = try await makeRepository(backend)
        var ids: [String: [String]] = [:]
        for (index, store) in ["a", "a", "a", "b"].enumerated() {
            let manifest = try await repository.put(SnapshotDescription(store: store), read: reader(randomBytes(200_000, seed: UInt64(index))))
            ids[store, default: []].append(manifest.id)
        }
        let policy: (String) -> RetentionPolicy = { $0 == "a" ? RetentionPolicy(keepLast: 1) : RetentionPolicy() }

        let dry = try await repository.prune(policy: policy, grace: 0, dryRun: true)
        #expect(Set(dry.removedSnapshots.map(\.id)) == Set(ids["a"]!.prefix(2)))
        #expect(dry.removedChunks > 0)
        #expect(try await repository.snapshotIDs().count == 4, "a dry run changes nothing")

        // With the default grace nothing young is collected: a running backup's chunks look just like these.
        let graced = try await repository.prune(policy: policy)
        #expect(graced.removedSnapshots.count == 2)
        #expect(graced.removedChunks == 0)
        #expect(graced.chunksInGrace == dry.removedChunks)
        #expect(try await repository.verify(readData: true).isHealthy)

        let collected = try await repository.prune(policy: policy, grace: 0)
        #expect(collected.removedChunks == dry.removedChunks)
        let report = try await repository.verify(readData: true)
        #expect(report.isHealthy)
        #expect(report.unreferencedChunks == 0)
        #expect(Set(try await repository.snapshotIDs()) == [ids["a"]![2], ids["b"]![0]])
        #expect(try await backend.list(prefix: "locks/").isEmpty, "prune releases its lock")
    }

    @Test func pruneRefusesToRunOverADamagedManifest() async throws {
        let backend = MemoryBackend()
        let repository = try await makeRepository(backend)
        let manifest = try await repository.put(SnapshotDescription(store: "a"), read: reader(randomBytes(100_000, seed: 1)))
        await backend.corrupt(ObjectPath.snapshot(manifest.id), with: Data("garbage".utf8))
        await #expect(throws: RepositoryError.self) { try await repository.prune(policy: { _ in RetentionPolicy(keepLast: 1) }, grace: 0) }
        #expect(try await backend.list(prefix: "data/").count == manifest.chunks.count, "nothing was deleted")
    }

    @Test func locksKeepPruneAndBackupsApartButStaleLocksNeverBlock() async throws {
        let backend = MemoryBackend()
        let repository = try await makeRepository(backend)
        // While a backup holds its shared lock, prune refuses…
        try await repository.withLock(exclusive: false, purpose: "put test") {
            await #expect { try await repository.prune(policy: { _ in RetentionPolicy(keepLast: 1) }, grace: 0) } throws: { error in
                (error as? RepositoryError)?.code == .locked && (error as? RepositoryError)?.message.contains("put test") == true
            }
            // …but other backups proceed side by side.
            _ = try await repository.put(SnapshotDescription(store: "x"), read: reader([1, 2, 3]))
        }
        // While prune holds the exclusive lock, a backup refuses.
        try await repository.withLock(exclusive: true, purpose: "prune") {
            await #expect { try await repository.put(SnapshotDescription(store: "x"), read: reader([4])) } throws: { error in
                (error as? RepositoryError)?.code == .locked
            }
        }
        // A lock left by a dead process on this host is stale at once; one not refreshed for 30 minutes too.
        let dead = RepositoryLock(exclusive: true, hostname: ProcessInfo.processInfo.hostName, pid: 2_147_483_000,
                                  created: Date(), refreshed: Date(), purpose: "prune")
        try await repository.writeLock(dead, id: "deadbeef")
        let old = RepositoryLock(exclusive: true, hostname: "elsewhere", pid: 1, created: Date(timeIntervalSinceNow: -7200),
                                 refreshed: Date(timeIntervalSinceNow: -3600), purpose: "prune")
        try await repository.writeLock(old, id: "0ldl0ck")
        #expect(try await repository.activeLocks().isEmpty)
        _ = try await repository.put(SnapshotDescription(store: "x"), read: reader([5]))
        // Prune clears the stale lock objects away.
        #expect(try await repository.prune(policy: { _ in RetentionPolicy() }).removedStaleLocks == 2)
        #expect(try await backend.list(prefix: "locks/").isEmpty)
        // A live exclusive lock from another host does block.
        let live = RepositoryLock(exclusive: true, hostname: "elsewhere", pid: 1, created: Date(), refreshed: Date(), purpose: "prune")
        try await repository.writeLock(live, id: "11fe")
        await #expect(throws: RepositoryError.self) { try await repository.put(SnapshotDescription(store: "x"), read: reader([6])) }
    }

    /// Lock writes work once, then fail: the storage stopped answering for lock refreshes.
    actor LockRefreshFails: Backend {
        let inner: MemoryBackend
        var lockWrites = 0
        init(_ inner: MemoryBackend) { self.inner = inner }
        nonisolated var location: String { "memory (lock refreshes fail)" }
        func create(_ name: String, data: Data) async throws(BackendError) { try await inner.create(name, data: data) }
        func replace(_ name: String, data: Data) async throws(BackendError) {
            if name.hasPrefix("locks/") {
                lockWrites += 1
                if lockWrites > 1 { throw BackendError(.unreachable, object: name, "connection refused") }
            }
            try await inner.replace(name, data: data)
        }
        func load(_ name: String, range: Range<Int>?) async throws(BackendError) -> Data { try await inner.load(name, range: range) }
        func stat(_ name: String) async throws(BackendError) -> ObjectInfo? { try await inner.stat(name) }
        func list(prefix: String) async throws(BackendError) -> [ObjectInfo] { try await inner.list(prefix: prefix) }
        func delete(_ name: String) async throws(BackendError) { try await inner.delete(name) }
    }

    @Test func anOperationWhoseLockCannotBeRefreshedStopsBeforeTheLockGoesStale() async throws {
        let memory = MemoryBackend()
        let repository = try await makeRepository(LockRefreshFails(memory))
        let started = Date()
        // A backup that would run forever: only the lost lock stops it.
        try await RepositoryLock.$timing.withValue(.init(refreshInterval: 0.05, retryInterval: 0.05, giveUpAfter: 0.3)) {
            await #expect {
                _ = try await repository.put(SnapshotDescription(store: "endless"), read: {
                    try await Task.sleep(for: .milliseconds(20))
                    return Data(repeating: 7, count: 4096)
                })
            } throws: { error in
                (error as? RepositoryError)?.message.contains("could not be refreshed") == true
            }
        }
        #expect(Date().timeIntervalSince(started) < 20)
        #expect(try await memory.list(prefix: "snapshots/").isEmpty, "nothing was committed")
        #expect(try await memory.list(prefix: "locks/").isEmpty, "the lock was removed on the way out")
    }

    @Test func mirrorIsCopyOnlyAndVerified() async throws {
        let source = MemoryBackend(), target = MemoryBackend()
        let repository = try await makeRepository(source)
        let first = try await repository.put(SnapshotDescription(store: "a"), read: reader(randomBytes(500_000, seed: 70)))
        let second = try await repository.put(SnapshotDescription(store: "a"), read: reader(randomBytes(500_000, seed: 71)))

        let run = try await repository.mirror(to: target)
        #expect(run.createdTarget)
        #expect(Set(run.copiedSnapshots) == [first.id, second.id])
        let replica = try await Repository.open(backend: target, passphrase: "correct horse")
        var restored = [UInt8]()
        try await replica.restore(first) { restored.append(contentsOf: $0) }
        #expect(restored == randomBytes(500_000, seed: 70))

        // The source loses a snapshot (prune, accident, attack); mirroring again deletes nothing on the target.
        _ = try await repository.prune(policy: { _ in RetentionPolicy(keepLast: 1) }, grace: 0)
        #expect(try await repository.snapshotIDs() == [second.id])
        let again = try await repository.mirror(to: target)
        #expect(again.copiedSnapshots.isEmpty)
        #expect(Set(try await replica.snapshotIDs()) == [first.id, second.id])
        #expect(try await replica.verify(readData: true).isHealthy)

        // The target's own policy prunes it, after a successful copy.
        let third = try await repository.put(SnapshotDescription(store: "a"), read: reader(randomBytes(500_000, seed: 72)))
        let pruned = try await repository.mirror(to: target, targetPolicy: { _ in RetentionPolicy(keepLast: 2) }, grace: 0)
        #expect(pruned.copiedSnapshots == [third.id])
        #expect(pruned.prune?.removedSnapshots.map(\.id) == [first.id])
        #expect(Set(try await replica.snapshotIDs()) == [second.id, third.id])
    }

    @Test func mirrorRefusesAnotherRepositoryAndDamagedSources() async throws {
        let source = MemoryBackend()
        let repository = try await makeRepository(source)
        let other = MemoryBackend()
        _ = try await makeRepository(other)
        await #expect { try await repository.mirror(to: other) } throws: { error in
            (error as? RepositoryError)?.message.contains("another repository") == true
        }
        let manifest = try await repository.put(SnapshotDescription(store: "a"), read: reader(randomBytes(300_000, seed: 80)))
        let victim = ObjectPath.chunk(manifest.chunks[1].id)
        var bytes = try await source.load(victim)
        bytes[40] ^= 1
        await source.corrupt(victim, with: bytes)
        let target = MemoryBackend()
        await #expect { try await repository.mirror(to: target) } throws: { error in
            (error as? RepositoryError)?.object == victim
        }
        #expect(try await target.list(prefix: "snapshots/").isEmpty, "a snapshot with a damaged chunk is not propagated")
    }
}
