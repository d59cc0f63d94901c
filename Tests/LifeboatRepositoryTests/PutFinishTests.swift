import Foundation
import LifeboatStorage
import Testing
@testable import LifeboatRepository

/// `put` with a suspending reader and an end-of-input check, as connectors stream server output.
@Suite struct PutFinishTests {
    @Test func factsKnownAtTheEndAreRecorded() async throws {
        let repository = try await makeRepository()
        var blocks = [Data("raft ".utf8), Data("archive".utf8)]
        let manifest = try await repository.put(
            SnapshotDescription(store: "vault", kind: "openbao", source: ["seal": "shamir"]),
            finish: { ["raft_index": "42"] },
            read: {
                try await Task.sleep(for: .milliseconds(1))
                return blocks.isEmpty ? nil : blocks.removeFirst()
            })
        #expect(manifest.source == ["seal": "shamir", "raft_index": "42"])
        var restored = Data()
        try await repository.restore(manifest) { restored.append($0) }
        #expect(restored == Data("raft archive".utf8))
    }

    @Test func aRefusedInputLeavesNoSnapshot() async throws {
        struct BadArchive: Error {}
        let repository = try await makeRepository()
        var sent = false
        await #expect {
            try await repository.put(SnapshotDescription(store: "vault"), finish: { throw BadArchive() }) {
                defer { sent = true }
                return sent ? nil : Data("tampered".utf8)
            }
        } throws: { "\($0)".contains("the input was refused") }
        #expect(try await repository.snapshotIDs().isEmpty)
    }
}
