import Foundation
@testable import LifeboatConnectors
import LifeboatRepository
import LifeboatStorage
import Testing

/// Issue 10, item 4, for `openbao auto-restore`: a damaged newest manifest never lets the guard
/// pick an older snapshot as "the newest" (against a real empty OpenBao node).
@Suite struct OpenBaoAutoRestoreDamageTests {
    @Test func aDamagedNewestManifestRefusesTheGuardUnlessSkipped() async throws {
        let directory = try OpenBaoFixture.scratch("auto-damage")
        defer { try? FileManager.default.removeItem(at: directory) }
        let empty = try await LocalOpenBao.start(in: directory.appendingPathComponent("empty"), nodeID: "empty")
        defer { empty.stop() }
        let repository = try await OpenBaoFixture.repository(in: directory)
        // Only the manifests matter to the choice: the guard reads the newest one's recorded custody.
        func put(_ bytes: [UInt8]) async throws -> SnapshotManifest {
            var sent = false
            return try await repository.put(SnapshotDescription(store: "openbao", kind: OpenBaoConnector.kind)) {
                defer { sent = true }
                return sent ? nil : Data(bytes)
            }
        }
        let older = try await put([1, 2, 3])
        let newer = try await put([4, 5, 6])
        let manifest = "snapshots/\(newer.id)"
        var bytes = try await repository.backend.load(manifest)
        bytes[bytes.count / 2] ^= 0x08
        try await repository.backend.replace(manifest, data: bytes)

        await #expect {
            _ = try await AutoRestoreGuard.gather(nodes: [empty.address], repository: { repository }, store: "openbao",
                                                  keys: nil, keysGoneReason: "no keys in this test")
        } throws: { error in
            let error = error as? RepositoryError
            return error?.code == .corruptObject && error?.object == manifest
        }
        #expect(try await !empty.client.sealStatus().initialized, "nothing was done to the node")

        let skipping = repository.skippingDamaged { _ in }
        let (facts, chosen) = try await AutoRestoreGuard.gather(nodes: [empty.address], repository: { skipping }, store: "openbao",
                                                                keys: nil, keysGoneReason: "no keys in this test")
        #expect(facts.newestSnapshot == older.id, "asked to skip: the newest readable snapshot")
        #expect(chosen?.id == older.id)
    }
}
