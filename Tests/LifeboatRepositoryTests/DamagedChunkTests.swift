import Foundation
import LifeboatStorage
import Testing
@testable import LifeboatRepository

/// Issue 10, item 5: a chunk an interrupted backup left behind rots; the next backup of the same
/// data must not build on it, `verify --read-data` must see it, and it must be replaceable.
@Suite struct DamagedChunkTests {
    static func localBackend() throws -> LocalDirectoryBackend {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("lifeboat-damaged-chunk-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        return LocalDirectoryBackend(root: root)
    }

    /// Flips one byte in the middle of a stored object, the way rot at rest would.
    static func flipByte(_ name: String, in backend: any Backend) async throws {
        var bytes = try await backend.load(name)
        bytes[bytes.count / 2] ^= 0x40
        try await backend.replace(name, data: bytes)
    }

    /// The whole story on one backend; returns nothing, asserts on data read back.
    static func damagedLeftoverIsNeverReused(_ backend: any Backend) async throws {
        let repository = try await makeRepository(backend)
        let data = randomBytes(900_000, seed: 1010)
        // An interrupted put: the first 500 kB were chunked and stored, then the input failed. It
        // fails once a chunk is stored: on a loaded S3 the failure cancelled every upload in flight,
        // and the put left nothing behind to rot.
        var served = 0
        await #expect(throws: RepositoryError.self) {
            _ = try await repository.put(SnapshotDescription(store: "db")) {
                guard served < 5 else {
                    let deadline = Date().addingTimeInterval(60)
                    while try await backend.list(prefix: "data/").isEmpty, Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
                    throw CocoaError(.fileReadUnknown)
                }
                defer { served += 1 }
                return Data(data[(served * 100_000)..<((served + 1) * 100_000)])
            }
        }
        let leftovers = try await backend.list(prefix: "data/").map(\.name).sorted()
        try #require(!leftovers.isEmpty, "the interrupted put stored chunks")
        let victim = leftovers[0]
        try await flipByte(victim, in: backend)

        let before = try await repository.verify(readData: true)
        #expect(before.unreferencedChunks == leftovers.count)
        #expect(before.unreferencedChunksRead == leftovers.count)
        #expect(before.problems.map(\.object) == [victim], "the damaged unreferenced chunk is reported")
        #expect(before.problems.first?.code == .corruptObject)
        #expect(before.problems.first?.message.contains("no snapshot references it") == true)

        let manifest = try await repository.put(SnapshotDescription(store: "db"), read: reader(data))
        try #require(manifest.chunks.map { ObjectPath.chunk($0.id) }.contains(victim), "the new snapshot needs the chunk that was damaged")
        #expect(try await roundTrip(repository, manifest) == data, "the snapshot the put reported restores")
        let after = try await repository.verify(readData: true)
        #expect(after.isHealthy, "\(after.problems)")
        #expect(after.unreferencedChunks == 0)
        #expect(try await backend.list(prefix: "data/").count == Set(manifest.chunks.map(\.id)).count, "replaced in place, not stored twice")
    }

    @Test func onTheLocalDirectory() async throws {
        try await Self.damagedLeftoverIsNeverReused(try Self.localBackend())
    }

    @Test func onS3() async throws {
        try await withMotoBucket("damaged") { configuration in
            try await Self.damagedLeftoverIsNeverReused(try S3Backend(configuration: configuration))
        }
    }

    /// A chunk that snapshots already reference rots: the next put of that data repairs it, so the
    /// old snapshot restores again too.
    @Test func aReferencedDamagedChunkIsReplacedByTheNextPut() async throws {
        let backend = try Self.localBackend()
        let repository = try await makeRepository(backend)
        let data = randomBytes(700_000, seed: 1020)
        let first = try await repository.put(SnapshotDescription(store: "db"), read: reader(data))
        let victim = ObjectPath.chunk(first.chunks[2].id)
        try await Self.flipByte(victim, in: backend)
        #expect(try await repository.verify(readData: true).problems.map(\.object) == [victim])

        let second = try await repository.put(SnapshotDescription(store: "db"), read: reader(data))
        #expect(second.chunks == first.chunks)
        #expect(try await roundTrip(repository, second) == data)
        #expect(try await roundTrip(repository, first) == data, "the older snapshot is whole again")
        #expect(try await repository.verify(readData: true).isHealthy)
    }

    /// An intact chunk is reused as it is: a re-put writes nothing new.
    @Test func anIntactChunkIsNotRewritten() async throws {
        let backend = try Self.localBackend()
        let repository = try await makeRepository(backend)
        let data = randomBytes(500_000, seed: 1030)
        let first = try await repository.put(SnapshotDescription(store: "db"), read: reader(data))
        let stored = try await backend.list(prefix: "data/")
        _ = try await repository.put(SnapshotDescription(store: "db"), read: reader(data))
        let again = try await backend.list(prefix: "data/")
        #expect(Set(again) == Set(stored), "same objects, same modification times: nothing was replaced")
        #expect(again.count == Set(first.chunks.map(\.id)).count)
    }
}
