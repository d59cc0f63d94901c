import Crypto
import Foundation
import LifeboatStorage
import Testing
@testable import LifeboatRepository

/// Cheap scrypt and small chunks keep these tests fast; the code paths are the production ones.
let testScrypt = KeyFile.ScryptParameters(n: 1 << 10, r: 8, p: 1)
let testChunker = ChunkerParameters(minimumSize: 16 << 10, averageSize: 64 << 10, maximumSize: 256 << 10)

func makeRepository(_ backend: any Backend = MemoryBackend(), passphrase: String = "correct horse") async throws -> Repository {
    try await Repository.initialize(backend: backend, passphrase: passphrase, chunker: testChunker, scrypt: testScrypt)
}

/// Feeds `data` in blocks, as a file or a pipe would.
func reader(_ data: [UInt8], blockSize: Int = 100_000) -> () throws -> Data? {
    var offset = 0
    return {
        guard offset < data.count else { return nil }
        defer { offset += blockSize }
        return Data(data[offset..<min(offset + blockSize, data.count)])
    }
}

func roundTrip(_ repository: Repository, _ manifest: SnapshotManifest) async throws -> [UInt8] {
    var output = [UInt8]()
    try await repository.restore(manifest) { output.append(contentsOf: $0) }
    return output
}

@Suite struct RepositoryTests {
    @Test(arguments: [0, 1, 16 << 10, (16 << 10) + 1, 256 << 10, 3_000_000])
    func putThenGetIsByteIdentical(size: Int) async throws {
        let repository = try await makeRepository()
        let data = randomBytes(size, seed: UInt64(size))
        let manifest = try await repository.put(SnapshotDescription(store: "db"), read: reader(data))
        #expect(manifest.size == Int64(size))
        #expect(manifest.sha256 == Data(SHA256.hash(data: data)).hexString)
        #expect(manifest.chunks.reduce(0) { $0 + $1.size } == size)
        #expect(try await roundTrip(repository, manifest) == data)
        // The manifest reads back identically from the repository.
        #expect(try await repository.loadManifest(id: manifest.id) == manifest)
    }

    @Test func onTheLocalDirectoryBackendToo() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("lifeboat-repo-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        let repository = try await makeRepository(LocalDirectoryBackend(root: root))
        let data = randomBytes(1_500_000, seed: 4)
        let manifest = try await repository.put(SnapshotDescription(store: "files"), read: reader(data))
        let reopened = try await Repository.open(backend: LocalDirectoryBackend(root: root), passphrase: "correct horse")
        #expect(try await roundTrip(reopened, manifest) == data)
        // On disk nothing is plaintext: the config is the only readable object.
        let chunkFiles = try await reopened.backend.list(prefix: "data/")
        #expect(!chunkFiles.isEmpty)
    }

    @Test func identicalContentIsStoredOnce() async throws {
        let backend = MemoryBackend()
        let repository = try await makeRepository(backend)
        let data = randomBytes(2_000_000, seed: 8)
        _ = try await repository.put(SnapshotDescription(store: "a"), read: reader(data))
        let objectsAfterFirst = try await backend.list(prefix: "data/").count
        _ = try await repository.put(SnapshotDescription(store: "b"), read: reader(data, blockSize: 7_777))
        #expect(try await backend.list(prefix: "data/").count == objectsAfterFirst)
        // A small edit in the middle adds only the chunks around it.
        var edited = data
        edited.replaceSubrange(1_000_000..<1_000_010, with: [UInt8](repeating: 0, count: 10))
        _ = try await repository.put(SnapshotDescription(store: "c"), read: reader(edited))
        let added = try await backend.list(prefix: "data/").count - objectsAfterFirst
        #expect(added >= 1 && added <= 3, "added \(added) chunks for a 10-byte edit")
    }

    @Test func concurrentPutsBothSucceed() async throws {
        let repository = try await makeRepository()
        let first = randomBytes(800_000, seed: 20), second = randomBytes(900_000, seed: 21)
        async let a = repository.put(SnapshotDescription(store: "a"), read: reader(first))
        async let b = repository.put(SnapshotDescription(store: "b"), read: reader(second))
        let (ma, mb) = try await (a, b)
        #expect(try await roundTrip(repository, ma) == first)
        #expect(try await roundTrip(repository, mb) == second)
        #expect(try await repository.verify(readData: true).isHealthy)
    }

    @Test func wrongPassphraseAndMissingRepository() async throws {
        let backend = MemoryBackend()
        _ = try await makeRepository(backend)
        await #expect { try await Repository.open(backend: backend, passphrase: "wrong") } throws: { error in
            (error as? RepositoryError)?.code == .wrongPassphrase
        }
        await #expect { try await Repository.open(backend: MemoryBackend(), passphrase: "x") } throws: { error in
            (error as? RepositoryError)?.code == .noRepository
        }
        await #expect { try await makeRepository(backend) } throws: { error in
            (error as? RepositoryError)?.code == .alreadyInitialized
        }
    }

    @Test func keysCanBeAddedListedAndRemovedButNotTheLast() async throws {
        let backend = MemoryBackend()
        let repository = try await makeRepository(backend)
        let second = try await repository.addKey(passphrase: "second pass", label: "on-call", scrypt: testScrypt)
        #expect(try await repository.listKeys().count == 2)
        let viaSecond = try await Repository.open(backend: backend, passphrase: "second pass")
        #expect(viaSecond.openedWithKey == second)
        // Not the key in use…
        await #expect(throws: RepositoryError.self) { try await viaSecond.removeKey(id: second) }
        // …but the other one.
        let first = try #require(repository.openedWithKey)
        #expect(try await viaSecond.removeKey(id: String(first.prefix(6))) == first)
        await #expect { try await Repository.open(backend: backend, passphrase: "correct horse") } throws: { error in
            (error as? RepositoryError)?.code == .wrongPassphrase
        }
        // The last key cannot go.
        let third = try await viaSecond.addKey(passphrase: "third", label: "tmp", scrypt: testScrypt)
        let viaThird = try await Repository.open(backend: backend, passphrase: "third")
        _ = try await viaThird.removeKey(id: second)
        await #expect(throws: RepositoryError.self) { try await viaThird.removeKey(id: third) }
    }

    @Test func sharesRecombineOnlyWhenEnoughAndRight() async throws {
        let backend = MemoryBackend()
        let repository = try await makeRepository(backend)
        let data = randomBytes(300_000, seed: 30)
        let manifest = try await repository.put(SnapshotDescription(store: "vault"), read: reader(data))
        let shares = try repository.splitMasterSecret(shares: 5, threshold: 3).map(\.description)

        let secret = try await Repository.combine(shares: [shares[4], shares[0], shares[2]], backend: backend)
        let recovered = try await Repository.open(backend: backend, masterSecret: secret)
        #expect(try await roundTrip(recovered, manifest) == data, "three shares open the repository with no passphrase")

        await #expect { try await Repository.combine(shares: Array(shares.prefix(2)), backend: backend) } throws: { error in
            (error as? RepositoryError)?.message.contains("needs 3") == true
        }
        // A share from another split of the same key recombines to garbage: the key check catches it.
        let otherSplit = try repository.splitMasterSecret(shares: 5, threshold: 3).map(\.description)
        await #expect { try await Repository.combine(shares: [shares[0], shares[1], otherSplit[2]], backend: backend) } throws: { error in
            (error as? RepositoryError)?.code == .invalidShares
        }
        let otherRepository = try await makeRepository()
        let foreign = try otherRepository.splitMasterSecret(shares: 3, threshold: 2).map(\.description)
        await #expect { try await Repository.combine(shares: foreign, backend: backend) } throws: { error in
            (error as? RepositoryError)?.message.contains("another repository") == true
        }
    }

    @Test func corruptChunkFailsLoudlyAndNamesTheObject() async throws {
        let backend = MemoryBackend()
        let repository = try await makeRepository(backend)
        let data = randomBytes(600_000, seed: 40)
        let manifest = try await repository.put(SnapshotDescription(store: "db"), read: reader(data))
        let victim = ObjectPath.chunk(manifest.chunks[3].id)
        var bytes = try await backend.load(victim)
        bytes[bytes.count / 2] ^= 0xFF
        await backend.corrupt(victim, with: bytes)

        var written = [UInt8]()
        await #expect { try await repository.restore(manifest) { written.append(contentsOf: $0) } } throws: { error in
            let error = error as? RepositoryError
            return error?.code == .corruptObject && error?.object == victim
        }
        // Only verified chunks before the damaged one were written; never wrong bytes.
        #expect(written == Array(data.prefix(written.count)))
        #expect(written.count < data.count)

        let quick = try await repository.verify()
        #expect(quick.isHealthy, "without --read-data, verify only checks presence")
        let thorough = try await repository.verify(readData: true)
        #expect(thorough.problems.map(\.object) == [victim])
        #expect(thorough.problems.first?.code == .corruptObject)
    }

    @Test func missingChunkAndTruncatedManifestAreReported() async throws {
        let backend = MemoryBackend()
        let repository = try await makeRepository(backend)
        let first = try await repository.put(SnapshotDescription(store: "a"), read: reader(randomBytes(400_000, seed: 50)))
        let second = try await repository.put(SnapshotDescription(store: "b"), read: reader(randomBytes(400_000, seed: 51)))
        let missing = ObjectPath.chunk(first.chunks[0].id)
        try await backend.delete(missing)
        let truncated = ObjectPath.snapshot(second.id)
        let manifestBytes = try await backend.load(truncated)
        await backend.corrupt(truncated, with: manifestBytes.prefix(manifestBytes.count / 2))

        let report = try await repository.verify()
        // The index still names the deleted chunk: that is reported too (repository-format.md §14.4).
        #expect(Set(report.problems.compactMap(\.object)) == [missing, truncated, "index/"])
        #expect(report.problems.first { $0.object == missing }?.message.contains(String(first.id.prefix(8))) == true)
        await #expect { try await roundTrip(repository, first) } throws: { error in
            (error as? RepositoryError)?.code == .missingObject
        }
        let listing = try await repository.snapshots()
        #expect(listing.manifests.map(\.id) == [first.id])
        #expect(listing.unreadable.first?.object == truncated)
    }

    @Test func anInterruptedPutLeavesAValidRepository() async throws {
        let backend = MemoryBackend()
        let repository = try await makeRepository(backend)
        let kept = try await repository.put(SnapshotDescription(store: "a"), read: reader(randomBytes(300_000, seed: 60)))
        // The input fails half way: chunks were uploaded, the manifest never is.
        var served = 0
        await #expect(throws: RepositoryError.self) {
            _ = try await repository.put(SnapshotDescription(store: "b")) {
                served += 1
                if served > 5 { throw CocoaError(.fileReadUnknown) }
                return Data(randomBytes(100_000, seed: UInt64(100 + served)))
            }
        }
        let report = try await repository.verify(readData: true)
        #expect(report.isHealthy)
        #expect(report.snapshots == 1)
        #expect(report.unreferencedChunks > 0, "the orphaned chunks are visible for prune")
        #expect(try await repository.snapshots().manifests.map(\.id) == [kept.id])
    }

    @Test func snapshotsResolveByPrefixOrLatest() async throws {
        let repository = try await makeRepository()
        let a = try await repository.put(SnapshotDescription(store: "a"), read: reader([1, 2, 3]))
        let b = try await repository.put(SnapshotDescription(store: "b", tags: ["nightly"]), read: reader([4]))
        #expect(try await repository.resolveSnapshot(String(a.id.prefix(8))).id == a.id)
        #expect(try await repository.resolveSnapshot("latest").id == b.id)
        #expect(try await repository.resolveSnapshot("latest", store: "a").id == a.id)
        await #expect { try await repository.resolveSnapshot("ffffffff") } throws: { error in
            (error as? RepositoryError)?.code == .unknownSnapshot
        }
        await #expect { try await repository.resolveSnapshot("ab") } throws: { error in
            (error as? RepositoryError)?.code == .unknownSnapshot
        }
        await #expect { try await repository.resolveSnapshot("latest", store: "nope") } throws: { error in
            (error as? RepositoryError)?.code == .unknownSnapshot
        }
    }
}
