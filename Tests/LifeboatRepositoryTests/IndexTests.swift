import Foundation
import LifeboatStorage
import LifeboatTesting
import Testing
@testable import LifeboatRepository

/// Issue 16, item 1: the chunk index (repository-format.md §14).

// MARK: encoding

@Suite struct IndexEncodingTests {
    static func randomIDs(_ count: Int, _ generator: inout SeededGenerator) -> [String] {
        (0..<count).map { _ in Data((0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }).hexString }
    }

    /// Over 200 generated sets (with duplicates, in random order): the run is sorted and
    /// duplicate-free, round-trips through the object encoding, and answers membership exactly as a Set.
    @Test func encodingRoundTripsAndLookupsMatchASet() throws {
        var generator = SeededGenerator(seed: 1601)
        for round in 0..<200 {
            let n = Int.random(in: 0...(round % 10 == 0 ? 5_000 : 300), using: &generator)
            var ids = Self.randomIDs(n, &generator)
            ids += ids.prefix(n / 3) // duplicates
            ids.shuffle(using: &generator)
            let set = ChunkIDSet(hexIDs: ids)
            let expected = Set(ids)
            #expect(set.count == expected.count)
            #expect(set.hexIDs == expected.sorted(), "ascending hex order is memcmp order")
            let decoded = try IndexObject.decode(IndexObject.encode(set))
            #expect(decoded == set)
            for id in ids.prefix(50) { #expect(decoded.contains(hexID: id)) }
            for id in Self.randomIDs(50, &generator) { #expect(decoded.contains(hexID: id) == expected.contains(id)) }
        }
    }

    @Test func unionSubtractionAndSplitMatchSetAlgebra() {
        var generator = SeededGenerator(seed: 1602)
        for _ in 0..<100 {
            let pool = Self.randomIDs(400, &generator)
            let parts = (0..<Int.random(in: 0...6, using: &generator)).map { _ in
                Array(pool.shuffled(using: &generator).prefix(Int.random(in: 0...120, using: &generator)))
            }
            let union = ChunkIDSet.union(parts.map { ChunkIDSet(hexIDs: $0) })
            #expect(union.hexIDs == Set(parts.joined()).sorted())
            let a = ChunkIDSet(hexIDs: parts.first ?? [])
            #expect(union.subtracting(a).hexIDs == Set(parts.joined()).subtracting(parts.first ?? []).sorted())
            let pieces = union.split(every: 7)
            #expect(pieces.allSatisfy { $0.count <= 7 })
            #expect(ChunkIDSet.union(pieces) == union)
        }
    }

    @Test func malformedIndexPlaintextIsRefusedWithItsReason() throws {
        let valid = IndexObject.encode(ChunkIDSet(hexIDs: [String(repeating: "a", count: 64), String(repeating: "b", count: 64)]))
        var badMagic = valid; badMagic[0] = 0x58
        #expect(throws: IndexObject.DecodeFailure.notAnIndex) { try IndexObject.decode(badMagic) }
        var newer = valid; newer[4] = 2
        #expect(throws: IndexObject.DecodeFailure.unknownVersion(2)) { try IndexObject.decode(newer) }
        #expect(throws: IndexObject.DecodeFailure.wrongLength(declared: 2, actual: 63)) { try IndexObject.decode(valid.dropLast()) }
        var unsorted = valid
        unsorted.replaceSubrange(12..<76, with: Data(repeating: 0xbb, count: 32) + Data(repeating: 0xaa, count: 32))
        #expect(throws: IndexObject.DecodeFailure.notSorted) { try IndexObject.decode(unsorted) }
        var duplicate = valid
        duplicate.replaceSubrange(12..<76, with: Data(repeating: 0xaa, count: 64))
        #expect(throws: IndexObject.DecodeFailure.notSorted) { try IndexObject.decode(duplicate) }
        #expect(throws: IndexObject.DecodeFailure.notAnIndex) { try IndexObject.decode(Data("LBI".utf8)) }
    }

    @Test func foreignNamesAndUppercaseAreNotChunkIDs() {
        let set = ChunkIDSet(hexIDs: ["README", String(repeating: "A", count: 64), String(repeating: "0", count: 64)])
        #expect(set.count == 1)
        #expect(!set.contains(hexID: String(repeating: "A", count: 64)))
    }
}

// MARK: the index in a repository, on every backend

func temporaryDirectory(_ purpose: String) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("lifeboat-\(purpose)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// A repository over a counting backend, with its own index cache directory.
func countedRepository(_ base: any Backend, cache: URL? = nil) async throws -> (Repository, CountingBackend) {
    let counting = CountingBackend(base)
    var repository = try await makeRepository(counting)
    repository.cacheRoot = try cache ?? temporaryDirectory("cache")
    return (repository, counting)
}

enum IndexScenarios {
    /// After the first put, puts never list `data/`; unchanged data stores no new chunk; every
    /// snapshot restores; verify finds the index complete.
    static func putsDoNotListData(_ base: any Backend) async throws {
        let (repository, counting) = try await countedRepository(base)
        let first = randomBytes(700_000, seed: 1611)
        let firstManifest = try await repository.put(SnapshotDescription(store: "db"), read: reader(first))
        for round in 0..<3 {
            await counting.counts.reset()
            var data = first
            data.replaceSubrange(0..<1000, with: randomBytes(1000, seed: 1612 + UInt64(round)))
            let manifest = try await repository.put(SnapshotDescription(store: "db"), read: reader(data))
            #expect(await counting.counts.count(.list, "data/") == 0, "round \(round): the put listed data/")
            #expect(await counting.counts.count(.list, "index/") == 1)
            #expect(await counting.counts.count(.create, "data/") == 1, "only the changed first chunk is new")
            #expect(await counting.counts.count(.create, "index/") == 1)
            #expect(try await roundTrip(repository, manifest) == data)
        }
        let before = try await base.list(prefix: "data/").count
        let again = try await repository.put(SnapshotDescription(store: "db"), read: reader(first))
        #expect(try await base.list(prefix: "data/").count == before, "nothing new stored for unchanged data")
        #expect(again.chunks == firstManifest.chunks)
        let report = try await repository.verify()
        #expect(report.isHealthy, "\(report.problems)")
        #expect(report.unindexedChunks == 0)
        #expect(try await repository.loadIndex(useCache: false).allIDs == ChunkIDSet(hexIDs: try await base.list(prefix: "data/").map { $0.name.split(separator: "/").last! }))
    }

    /// Four puts at once of overlapping data: each restores, and the index names every chunk.
    static func concurrentPuts(_ base: any Backend) async throws {
        let (repository, _) = try await countedRepository(base)
        let shared = randomBytes(400_000, seed: 1620)
        let inputs = (0..<4).map { shared + randomBytes(200_000, seed: 1621 + UInt64($0)) }
        let manifests = try await withThrowingTaskGroup(of: (Int, SnapshotManifest).self) { group in
            for (i, data) in inputs.enumerated() {
                group.addTask { (i, try await repository.put(SnapshotDescription(store: "db\(i)"), read: reader(data))) }
            }
            var out: [Int: SnapshotManifest] = [:]
            for try await (i, manifest) in group { out[i] = manifest }
            return out
        }
        for (i, data) in inputs.enumerated() { #expect(try await roundTrip(repository, manifests[i]!) == data) }
        let report = try await repository.verify(readData: true)
        #expect(report.isHealthy, "\(report.problems)")
        #expect(report.unindexedChunks == 0, "every chunk the puts stored or reused is indexed")
        #expect(report.indexObjects >= 1)
    }

    /// Prune removes chunks from the index before deleting them; a put afterwards stores them again.
    static func pruneThenPut(_ base: any Backend) async throws {
        let (repository, counting) = try await countedRepository(base)
        let old = randomBytes(500_000, seed: 1630)
        let new = randomBytes(500_000, seed: 1631)
        _ = try await repository.put(SnapshotDescription(store: "db"), read: reader(old))
        _ = try await repository.put(SnapshotDescription(store: "db"), read: reader(new))
        #expect(try await base.list(prefix: "index/").count == 2)
        let report = try await repository.prune(policy: { _ in RetentionPolicy(keepLast: 1) }, grace: 0)
        #expect(report.removedSnapshots.count == 1 && report.removedChunks > 0)
        #expect(report.indexObjectsBefore == 2 && report.indexObjectsAfter == 1, "prune consolidates the index")
        let stored = ChunkIDSet(hexIDs: try await base.list(prefix: "data/").map { $0.name.split(separator: "/").last! })
        #expect(try await repository.loadIndex(useCache: false).allIDs == stored, "the index names exactly what is left")
        #expect(try await repository.loadIndex().allIDs == stored, "the cache followed the new index objects")

        await counting.counts.reset()
        let again = try await repository.put(SnapshotDescription(store: "db"), read: reader(old))
        #expect(await counting.counts.count(.list, "data/") == 0)
        #expect(await counting.counts.count(.create, "data/") == Set(again.chunks.map(\.id)).count, "every pruned chunk stored again")
        #expect(try await roundTrip(repository, again) == old)
        let verified = try await repository.verify(readData: true)
        #expect(verified.isHealthy && verified.unindexedChunks == 0, "\(verified.problems)")
    }

    /// A deleted index object, then a corrupt one: nothing lost, puts stay correct, verify names
    /// the damage, and `rebuildIndex` restores a complete index.
    static func damagedIndexIsRebuilt(_ base: any Backend) async throws {
        let (repository, counting) = try await countedRepository(base, cache: nil)
        let a = randomBytes(500_000, seed: 1640)
        let b = randomBytes(500_000, seed: 1641)
        let first = try await repository.put(SnapshotDescription(store: "a"), read: reader(a))
        let second = try await repository.put(SnapshotDescription(store: "b"), read: reader(b))
        let objects = try await base.list(prefix: "index/").map(\.name).sorted()
        try #require(objects.count == 2)

        // Every index object deleted: the next put lists data/ once, reuses what is there, and indexes it all.
        for name in objects { try await base.delete(name) }
        await counting.counts.reset()
        let chunksBefore = try await base.list(prefix: "data/").count
        let third = try await repository.put(SnapshotDescription(store: "b"), read: reader(b))
        #expect(await counting.counts.count(.list, "data/") == 1, "no index object left: one listing stands in")
        #expect(try await base.list(prefix: "data/").count == chunksBefore, "nothing stored twice")
        #expect(third.chunks == second.chunks)
        #expect(try await roundTrip(repository, first) == a)
        #expect(try await repository.verify().unindexedChunks == 0, "the put indexed everything it listed")

        // Corrupt: verify names it; puts skip it and stay correct; rebuild replaces it.
        let index = try await base.list(prefix: "index/").map(\.name)
        try #require(index.count == 1)
        var bytes = try await base.load(index[0])
        bytes[bytes.count / 2] ^= 0x20
        try await base.replace(index[0], data: bytes)
        let damaged = try await repository.verify()
        #expect(damaged.problems.map(\.object) == [index[0]])
        #expect(damaged.problems.first?.code == .corruptObject)
        #expect(damaged.problems.first?.message.contains("repo index rebuild") == true)
        let fourth = try await repository.put(SnapshotDescription(store: "a"), read: reader(a))
        #expect(try await roundTrip(repository, fourth) == a)
        let rebuilt = try await repository.rebuildIndex()
        let chunkCount = try await base.list(prefix: "data/").count
        #expect(rebuilt.objectsRemoved >= 1 && rebuilt.chunks == chunkCount)
        let healthy = try await repository.verify(readData: true)
        #expect(healthy.isHealthy && healthy.unindexedChunks == 0 && healthy.indexObjects == 1, "\(healthy.problems)")
    }

    /// The index names a chunk someone deleted: verify says so, the next put of that data stores it
    /// again (the index is never trusted over the data), and the older snapshot is whole again.
    static func indexNamingAMissingChunk(_ base: any Backend) async throws {
        let (repository, counting) = try await countedRepository(base)
        let data = randomBytes(600_000, seed: 1650)
        let first = try await repository.put(SnapshotDescription(store: "db"), read: reader(data))
        let victim = ObjectPath.chunk(first.chunks[1].id)
        try await base.delete(victim)
        let report = try await repository.verify()
        #expect(report.problems.contains { $0.object == victim && $0.code == .missingObject })
        #expect(report.problems.contains { $0.object == "index/" && $0.message.contains("does not hold") })
        await counting.counts.reset()
        let second = try await repository.put(SnapshotDescription(store: "db"), read: reader(data))
        #expect(await counting.counts.count(.list, "data/") == 0)
        #expect(second.chunks == first.chunks)
        #expect(try await roundTrip(repository, first) == data, "the missing chunk was stored again")
        #expect(try await repository.verify(readData: true).isHealthy)
    }

    /// Issue 10's guarantee through the index: an indexed chunk that rotted is read back, found
    /// damaged, and replaced, without a listing of data/.
    static func damagedIndexedChunkIsReplaced(_ base: any Backend) async throws {
        let (repository, counting) = try await countedRepository(base)
        let data = randomBytes(600_000, seed: 1660)
        let first = try await repository.put(SnapshotDescription(store: "db"), read: reader(data))
        let victim = ObjectPath.chunk(first.chunks[2].id)
        try await DamagedChunkTests.flipByte(victim, in: base)
        #expect(try await repository.verify(readData: true).problems.map(\.object) == [victim])
        await counting.counts.reset()
        let second = try await repository.put(SnapshotDescription(store: "db"), read: reader(data))
        #expect(await counting.counts.count(.list, "data/") == 0)
        #expect(await counting.counts.count(.replace, "data/") == 1, "the damaged chunk, and only it, was replaced")
        #expect(await counting.counts.count(.create, "data/") == 0)
        #expect(try await roundTrip(repository, second) == data)
        #expect(try await roundTrip(repository, first) == data)
        #expect(try await repository.verify(readData: true).isHealthy)
    }

    /// Mirroring one new snapshot lists neither data/ of the source nor of the target.
    static func mirrorOfOneNewSnapshot(_ source: any Backend, _ target: any Backend) async throws {
        let (repository, counting) = try await countedRepository(source)
        let countingTarget = CountingBackend(target)
        _ = try await repository.put(SnapshotDescription(store: "db"), read: reader(randomBytes(500_000, seed: 1670)))
        _ = try await repository.mirror(to: countingTarget)
        let data = randomBytes(500_000, seed: 1671)
        let manifest = try await repository.put(SnapshotDescription(store: "db"), read: reader(data))
        await counting.counts.reset()
        await countingTarget.counts.reset()
        let report = try await repository.mirror(to: countingTarget)
        #expect(report.copiedSnapshots == [manifest.id])
        #expect(report.copiedChunks == Set(manifest.chunks.map(\.id)).count)
        #expect(await counting.counts.count(.list, "data/") == 0)
        #expect(await countingTarget.counts.count(.list, "data/") == 0)
        var replica = try await Repository.open(backend: target, passphrase: "correct horse")
        replica.cacheRoot = nil
        #expect(try await roundTrip(replica, manifest) == data)
        let verified = try await replica.verify(readData: true)
        #expect(verified.isHealthy && verified.unindexedChunks == 0, "\(verified.problems)")
    }
}

@Suite struct IndexRepositoryTests {
    static func local() throws -> LocalDirectoryBackend { LocalDirectoryBackend(root: try temporaryDirectory("index")) }

    @Test func putsDoNotListDataInMemory() async throws { try await IndexScenarios.putsDoNotListData(MemoryBackend()) }
    @Test func putsDoNotListDataOnLocalDisk() async throws { try await IndexScenarios.putsDoNotListData(try Self.local()) }
    @Test func concurrentPutsInMemory() async throws { try await IndexScenarios.concurrentPuts(MemoryBackend()) }
    @Test func concurrentPutsOnLocalDisk() async throws { try await IndexScenarios.concurrentPuts(try Self.local()) }
    @Test func pruneThenPutInMemory() async throws { try await IndexScenarios.pruneThenPut(MemoryBackend()) }
    @Test func pruneThenPutOnLocalDisk() async throws { try await IndexScenarios.pruneThenPut(try Self.local()) }
    @Test func damagedIndexInMemory() async throws { try await IndexScenarios.damagedIndexIsRebuilt(MemoryBackend()) }
    @Test func damagedIndexOnLocalDisk() async throws { try await IndexScenarios.damagedIndexIsRebuilt(try Self.local()) }
    @Test func missingChunkInMemory() async throws { try await IndexScenarios.indexNamingAMissingChunk(MemoryBackend()) }
    @Test func missingChunkOnLocalDisk() async throws { try await IndexScenarios.indexNamingAMissingChunk(try Self.local()) }
    @Test func damagedChunkInMemory() async throws { try await IndexScenarios.damagedIndexedChunkIsReplaced(MemoryBackend()) }
    @Test func damagedChunkOnLocalDisk() async throws { try await IndexScenarios.damagedIndexedChunkIsReplaced(try Self.local()) }
    @Test func mirrorOnLocalDisk() async throws { try await IndexScenarios.mirrorOfOneNewSnapshot(try Self.local(), try Self.local()) }

    @Test func onS3() async throws {
        try await withMotoBucket("index") { configuration in
            let backend = try S3Backend(configuration: configuration)
            try await IndexScenarios.putsDoNotListData(backend)
        }
        for scenario in [IndexScenarios.concurrentPuts, IndexScenarios.pruneThenPut, IndexScenarios.damagedIndexIsRebuilt,
                         IndexScenarios.indexNamingAMissingChunk, IndexScenarios.damagedIndexedChunkIsReplaced] {
            try await withMotoBucket("index") { configuration in try await scenario(try S3Backend(configuration: configuration)) }
        }
        try await withMotoBucket("index-src") { source in
            try await withMotoBucket("index-dst") { target in
                try await IndexScenarios.mirrorOfOneNewSnapshot(try S3Backend(configuration: source), try S3Backend(configuration: target))
            }
        }
    }

    /// A repository written before the index (no index/ objects): puts work, the first lists data/
    /// once and indexes it, later ones do not list.
    @Test func aRepositoryWithoutIndexIsIndexedByItsFirstPut() async throws {
        let memory = MemoryBackend()
        let (repository, counting) = try await countedRepository(memory)
        let data = randomBytes(500_000, seed: 1680)
        let first = try await repository.put(SnapshotDescription(store: "db"), read: reader(data))
        for info in try await memory.list(prefix: "index/") { try await memory.delete(info.name) }
        await counting.counts.reset()
        _ = try await repository.put(SnapshotDescription(store: "db"), read: reader(randomBytes(10, seed: 1)))
        #expect(await counting.counts.count(.list, "data/") == 1)
        await counting.counts.reset()
        let again = try await repository.put(SnapshotDescription(store: "db"), read: reader(data))
        #expect(await counting.counts.count(.list, "data/") == 0)
        #expect(await counting.counts.count(.create, "data/") == 0, "the old chunks were indexed and reused")
        #expect(again.chunks == first.chunks)
    }

    /// The cache: a second process (another Repository value, same cache directory) reads no index
    /// object again; many puts are folded into the merged file, and lookups stay right.
    @Test func theCacheServesLaterPutsAndFoldsManyObjects() async throws {
        let memory = MemoryBackend()
        let cache = try temporaryDirectory("cache")
        let (repository, counting) = try await countedRepository(memory, cache: cache)
        var inputs: [[UInt8]] = []
        for i in 0..<(Repository.cachedRunsBeforeMerging + 3) {
            let data = randomBytes(40_000, seed: 1690 + UInt64(i))
            inputs.append(data)
            _ = try await repository.put(SnapshotDescription(store: "db"), read: reader(data))
        }
        await counting.counts.reset()
        var other = try await Repository.open(backend: counting, passphrase: "correct horse")
        other.cacheRoot = cache
        let index = try await other.loadIndex()
        #expect(await counting.counts.count(.load, "index/") == 0, "every index object came from the cache")
        let merged = FileManager.default.fileExists(atPath: IndexCache(root: cache, repositoryID: other.config.id, location: memory.location)!
            .directory.appendingPathComponent("merged").path)
        #expect(merged, "more than \(Repository.cachedRunsBeforeMerging) runs were folded")
        #expect(index.allIDs == ChunkIDSet(hexIDs: try await memory.list(prefix: "data/").map { $0.name.split(separator: "/").last! }))
        let again = try await other.loadIndex()
        #expect(again.allIDs == index.allIDs, "the merged file reads back the same set")
        await counting.counts.reset()
        for data in inputs { _ = try await other.put(SnapshotDescription(store: "db"), read: reader(data)) }
        #expect(await counting.counts.count(.create, "data/") == 0, "every chunk was found through the merged cache")
        // A prune replaces the index objects: the merged file and the old runs are dropped.
        _ = try await other.prune(policy: { _ in RetentionPolicy(keepLast: 1) }, grace: 0)
        let afterPrune = try await other.loadIndex()
        #expect(afterPrune.allIDs == ChunkIDSet(hexIDs: try await memory.list(prefix: "data/").map { $0.name.split(separator: "/").last! }))
        let files = try FileManager.default.contentsOfDirectory(atPath: IndexCache(root: cache, repositoryID: other.config.id, location: memory.location)!.directory.path)
        #expect(Set(files) == Set(try await memory.list(prefix: "index/").map { String($0.name.dropFirst("index/".count)) }))
    }
}
