import Foundation
import LifeboatStorage
import Testing
@testable import LifeboatRepository

/// `put` from an async sequence: what network sources (an etcd snapshot stream) use.
@Suite struct AsyncPutTests {
    static func blocks(_ data: [UInt8], size: Int) -> AsyncStream<Data> {
        AsyncStream { continuation in
            var offset = 0
            while offset < data.count {
                continuation.yield(Data(data[offset..<min(offset + size, data.count)]))
                offset += size
            }
            continuation.finish()
        }
    }

    @Test func streamsInAndAddsFactsKnownAtTheEnd() async throws {
        let repository = try await makeRepository()
        var generator = SystemRandomNumberGenerator()
        let data = (0..<700_000).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let manifest = try await repository.put(
            SnapshotDescription(store: "stream", kind: "etcd", source: ["revision": "5"]), blocks: Self.blocks(data, size: 32 << 10)
        ) { ["revision_exact": "true"] }
        #expect(manifest.source == ["revision": "5", "revision_exact": "true"])
        #expect(try await roundTrip(repository, manifest) == data)
    }

    @Test func aFinishThatThrowsLeavesNoSnapshot() async throws {
        struct Refused: Error {}
        let repository = try await makeRepository()
        await #expect(throws: (any Error).self) {
            try await repository.put(SnapshotDescription(store: "stream"), blocks: Self.blocks([1, 2, 3], size: 1)) { throw Refused() }
        }
        #expect(try await repository.snapshotIDs().isEmpty)
    }
}
