import Foundation
import LifeboatStorage
import Testing
@testable import LifeboatRepository

/// A repository written by an earlier build is committed under Fixtures/; it must keep decoding,
/// so a format change cannot slip in unnoticed (docs/repository-format.md is the spec).
@Suite struct FixtureTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/repository-v1")
    static let passphrase = "fixture passphrase"

    /// ~390 KB of text: several chunks at the fixture's chunker sizes, all compressible.
    static var content: Data {
        Data((0..<10_000).map { "line \($0) of the Lifeboat repository format v1 fixture\n" }.joined().utf8)
    }

    @Test func committedRepositoryStillDecodes() async throws {
        let backend = LocalDirectoryBackend(root: Self.directory)
        let repository = try await Repository.open(backend: backend, passphrase: Self.passphrase)
        #expect(repository.config.version == 1)
        let listing = try await repository.snapshots()
        #expect(listing.unreadable.isEmpty)
        let manifest = try #require(listing.manifests.first { $0.store == "fixture" })
        #expect(manifest.chunks.count > 1)
        #expect(manifest.tags == ["format-v1"])
        var restored = Data()
        try await repository.restore(manifest) { restored.append($0) }
        #expect(restored == Self.content)
        #expect(try await repository.verify(readData: true).isHealthy)
        // Its key opens only with its passphrase.
        await #expect(throws: RepositoryError.self) { try await Repository.open(backend: backend, passphrase: "wrong") }
    }

    /// Regenerates the fixture: `LIFEBOAT_WRITE_FIXTURE=1 swift test --filter writeFixture`, then commit it.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["LIFEBOAT_WRITE_FIXTURE"] == "1"))
    func writeFixture() async throws {
        try? FileManager.default.removeItem(at: Self.directory)
        try FileManager.default.createDirectory(at: Self.directory, withIntermediateDirectories: true)
        let repository = try await Repository.initialize(
            backend: LocalDirectoryBackend(root: Self.directory), passphrase: Self.passphrase, label: "fixture",
            chunker: ChunkerParameters(minimumSize: 16 << 10, averageSize: 64 << 10, maximumSize: 256 << 10),
            scrypt: KeyFile.ScryptParameters(n: 1 << 10, r: 8, p: 1))
        let content = Self.content
        var sent = false
        _ = try await repository.put(SnapshotDescription(store: "fixture", tags: ["format-v1"], source: ["written-by": "FixtureTests.writeFixture"])) {
            defer { sent = true }
            return sent ? nil : content
        }
    }
}
