import Foundation
import LifeboatStorage
import Testing
@testable import LifeboatRepository

/// Many-item snapshots (manifest version 2): items stored on their own, reused by chunk list,
/// kept by prune, copied by mirror, read by verify; a newer version is refused.
@Suite struct ContentsTests {
    static func items(_ writer: ContentWriter, _ payloads: [Data]) async throws -> [StoredItem] {
        var stored: [StoredItem] = []
        for payload in payloads {
            var remaining = payload
            stored.append(try await writer.store {
                guard !remaining.isEmpty else { return nil }
                let block = remaining.prefix(100_000)
                remaining.removeFirst(block.count)
                return Data(block)
            })
        }
        return stored
    }

    @Test func itemsRoundTripAndTheirChunksAreKeptMirroredAndVerified() async throws {
        let backend = MemoryBackend()
        let repository = try await makeRepository(backend)
        var generator = SeededBytes(seed: 11)
        let payloads = [generator.bytes(300_000), Data(), generator.bytes(5_000)]
        var first: [StoredItem] = []
        let manifest = try await repository.putContents(SnapshotDescription(store: "bucket", kind: "s3")) { writer in
            first = try await Self.items(writer, payloads)
            return (Data("index of three items\n".utf8), first, ["objects": "3"])
        }
        #expect(manifest.version == 2)
        #expect(manifest.source["objects"] == "3")
        #expect(Set(manifest.contentChunks!.map(\.id)) == Set(first.flatMap(\.chunks).map(\.id)))
        #expect(try await repository.loadStream(manifest) == Data("index of three items\n".utf8))
        for (item, payload) in zip(first, payloads) {
            var read = Data()
            try await repository.restore(item, object: "item", what: "item") { read.append($0) }
            #expect(read == payload)
        }

        // A second snapshot reuses the first item by its chunk list; a prune keeping only it keeps those chunks.
        let second = try await repository.putContents(SnapshotDescription(store: "bucket", kind: "s3")) { writer in
            #expect(writer.canReuse(first[0]))
            return (Data("one item\n".utf8), [first[0]], [:])
        }
        _ = try await repository.prune(policy: { _ in RetentionPolicy(keepLast: 1) }, grace: 0)
        #expect(try await repository.snapshotIDs() == [second.id])
        var read = Data()
        try await repository.restore(first[0], object: "item", what: "item") { read.append($0) }
        #expect(read == payloads[0])
        let verified = try await repository.verify(readData: true)
        #expect(verified.isHealthy, "\(verified.problems)")
        #expect(verified.unreferencedChunks == 0)

        let mirror = MemoryBackend()
        let copied = try await repository.mirror(to: mirror)
        #expect(copied.copiedChunks == Set(second.allChunks.map(\.id)).count)
        let replica = try await Repository.open(backend: mirror, passphrase: "correct horse")
        #expect(try await replica.verify(readData: true).isHealthy)

        // A damaged item chunk is damage for verify --read-data and for the item's restore.
        let chunk = first[0].chunks[0]
        let name = ObjectPath.chunk(chunk.id)
        var sealed = try await backend.load(name)
        sealed[sealed.count - 3] ^= 1
        try await backend.replace(name, data: sealed)
        #expect(try await repository.verify(readData: true).problems.contains { $0.code == .corruptObject })
        await #expect { try await repository.restore(first[0], object: "item", what: "item") { _ in } } throws: { error in
            (error as? RepositoryError)?.code == .corruptObject
        }
    }

}

/// Reproducible bytes for the tests.
struct SeededBytes {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func bytes(_ count: Int) -> Data {
        Data((0..<count).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: state >> 33)
        })
    }
}
