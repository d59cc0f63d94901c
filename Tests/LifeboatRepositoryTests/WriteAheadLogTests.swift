import Foundation
import LifeboatStorage
import Testing
@testable import LifeboatRepository

@Suite struct WriteAheadLogTests {
    static let segment = "000000010000000000000003"

    @Test func aPushedSegmentFetchesBackByteForByteAndIsStoredSealed() async throws {
        let backend = MemoryBackend()
        let repository = try await makeRepository(backend)
        let contents = Data(randomBytes(200_000, seed: 7)) + Data(count: 16 << 10)
        #expect(try await repository.pushWAL(store: "app-db", name: Self.segment, contents: contents) == .stored)
        #expect(try await repository.fetchWAL(store: "app-db", name: Self.segment) == contents)
        let stored = try await backend.load("wal/app-db/\(Self.segment)")
        #expect(stored.range(of: contents.prefix(64)) == nil, "the object is encrypted")
        #expect(try await repository.listWAL(store: "app-db").map(\.name) == [Self.segment])
        #expect(try await repository.walStores() == ["app-db"])
        // Segments are not snapshots.
        #expect(try await repository.snapshots().manifests.isEmpty)
    }

    @Test func pushingTheSameSegmentTwiceIsFineButADifferentOneIsAConflict() async throws {
        let backend = MemoryBackend()
        let repository = try await makeRepository(backend)
        let contents = Data(randomBytes(50_000, seed: 1))
        #expect(try await repository.pushWAL(store: "db", name: Self.segment, contents: contents) == .stored)
        #expect(try await repository.pushWAL(store: "db", name: Self.segment, contents: contents) == .alreadyPresent)
        var other = contents
        other[100] ^= 0xFF
        let error = await #expect(throws: RepositoryError.self) {
            try await repository.pushWAL(store: "db", name: Self.segment, contents: other)
        }
        #expect(error?.code == .conflict)
        #expect(error?.object == "wal/db/\(Self.segment)")
        #expect(try await repository.fetchWAL(store: "db", name: Self.segment) == contents, "nothing was overwritten")
    }

    @Test func missingFilesAreNilAndBadNamesAreRefused() async throws {
        let repository = try await makeRepository()
        #expect(try await repository.fetchWAL(store: "db", name: "00000002.history") == nil)
        for name in ["00000002.history", "000000010000000000000003.partial", "000000010000000000000002.00000028.backup"] {
            #expect(try await repository.pushWAL(store: "db", name: name, contents: Data("x".utf8)) == .stored)
        }
        for bad in ["../config", "00000001000000000000000", "000000010000000000000003.gz", "0000000z0000000000000003", "000000010000000000000003/x", "RECOVERYXLOG"] {
            await #expect(throws: RepositoryError.self, "\(bad)") {
                try await repository.pushWAL(store: "db", name: bad, contents: Data())
            }
        }
        await #expect(throws: RepositoryError.self) { try await repository.fetchWAL(store: "../keys", name: Self.segment) }
    }

    @Test func aSegmentCopiedToAnotherNameFailsToOpen() async throws {
        let backend = MemoryBackend()
        let repository = try await makeRepository(backend)
        try await repository.pushWAL(store: "db", name: Self.segment, contents: Data("one".utf8))
        let sealed = try await backend.load("wal/db/\(Self.segment)")
        try await backend.create("wal/db/000000010000000000000004", data: sealed)
        try await backend.create("wal/other/\(Self.segment)", data: sealed)
        for (store, name) in [("db", "000000010000000000000004"), ("other", Self.segment)] {
            let error = await #expect(throws: RepositoryError.self) { try await repository.fetchWAL(store: store, name: name) }
            #expect(error?.code == .corruptObject)
        }
    }

    @Test func pruneAndVerifyLeaveWALAlone() async throws {
        let backend = MemoryBackend()
        let repository = try await makeRepository(backend)
        try await repository.pushWAL(store: "db", name: Self.segment, contents: Data(randomBytes(10_000, seed: 3)))
        _ = try await repository.put(SnapshotDescription(store: "db"), read: reader(randomBytes(1000, seed: 4)))
        let report = try await repository.verify(readData: true)
        #expect(report.isHealthy)
        _ = try await repository.prune(policy: { _ in RetentionPolicy(keepLast: 1) }, grace: 0)
        #expect(try await repository.fetchWAL(store: "db", name: Self.segment) != nil)
    }
}
