import Foundation
import LifeboatStorage
import LifeboatTesting
import Testing
@testable import LifeboatRepository

/// A backend that passes everything to `base`, counts the reads per object, and hands every
/// loaded object to `transform` (with its read number) before returning what that gives back.
struct InterceptingBackend: Backend {
    let base: any Backend
    let transform: @Sendable (_ name: String, _ read: Int, _ data: Data) async -> Data
    let reads = ReadCounter()

    var location: String { base.location }
    func create(_ name: String, data: Data) async throws(BackendError) { try await base.create(name, data: data) }
    func replace(_ name: String, data: Data) async throws(BackendError) { try await base.replace(name, data: data) }
    func stat(_ name: String) async throws(BackendError) -> ObjectInfo? { try await base.stat(name) }
    func list(prefix: String) async throws(BackendError) -> [ObjectInfo] { try await base.list(prefix: prefix) }
    func delete(_ name: String) async throws(BackendError) { try await base.delete(name) }
    func load(_ name: String, range: Range<Int>?) async throws(BackendError) -> Data {
        let data = try await base.load(name, range: range)
        return await transform(name, await reads.record(name), data)
    }

    enum Corruption: Sendable { case firstRead, everyRead }

    /// Flips a bit in the middle of the chunks read: the first read of each, or every read.
    static func corrupting(_ base: any Backend, _ corruption: Corruption) -> InterceptingBackend {
        InterceptingBackend(base: base) { name, read, data in
            guard name.hasPrefix("data/"), corruption == .everyRead || read == 1, !data.isEmpty else { return data }
            var flipped = data
            flipped[flipped.startIndex + flipped.count / 2] ^= 0x01
            return flipped
        }
    }
}

actor ReadCounter {
    private var counts: [String: Int] = [:]
    func record(_ name: String) -> Int {
        counts[name, default: 0] += 1
        return counts[name]!
    }
    func count(_ name: String) -> Int { counts[name, default: 0] }
}

@Suite struct FailureClassificationTests {
    // MARK: a chunk that fails authentication is read again

    @Test func aChunkCorruptedInTransitOnceIsReadAgainAndRestores() async throws {
        let memory = MemoryBackend()
        let data = randomBytes(600_000, seed: 61)
        let manifest = try await makeRepository(memory).put(SnapshotDescription(store: "db"), read: reader(data))
        let flaky = InterceptingBackend.corrupting(memory, .firstRead)
        let repository = try await Repository.open(backend: flaky, passphrase: "correct horse")
        #expect(try await roundTrip(repository, manifest) == data)
        for chunk in manifest.chunks {
            #expect(await flaky.reads.count(ObjectPath.chunk(chunk.id)) == 2, "the first read failed authentication; the second was used")
        }
        let report = try await repository.verify(readData: true)
        #expect(report.isHealthy, "\(report.problems)")
    }

    @Test func aChunkDamagedAtRestIsStillDamagedAfterTheSecondRead() async throws {
        let memory = MemoryBackend()
        let data = randomBytes(300_000, seed: 62)
        let manifest = try await makeRepository(memory).put(SnapshotDescription(store: "db"), read: reader(data))
        let damaged = InterceptingBackend.corrupting(memory, .everyRead)
        let repository = try await Repository.open(backend: damaged, passphrase: "correct horse")
        let error = try await #require(throws: RepositoryError.self) { _ = try await roundTrip(repository, manifest) }
        #expect(error.code == .corruptObject)
        #expect(error.isDamage)
        #expect(error.message.contains("authentication failed") && error.message.contains("read twice"), "\(error)")
        let chunk = try #require(manifest.chunks.first)
        #expect(await damaged.reads.count(ObjectPath.chunk(chunk.id)) == 2, "read exactly twice, not forever")
        let report = try await Repository.open(backend: InterceptingBackend.corrupting(memory, .everyRead), passphrase: "correct horse").verify(readData: true)
        #expect(!report.problems.isEmpty && report.problems.allSatisfy { $0.code == .corruptObject })
    }

    // MARK: key files

    /// A repository with two keys; the newest key file (`other`) is replaced by `damage`.
    func repositoryWithDamagedKey(_ damage: String) async throws -> (backend: MemoryBackend, damaged: String) {
        let memory = MemoryBackend()
        let repository = try await makeRepository(memory, passphrase: "first passphrase")
        let other = try await repository.addKey(passphrase: "second passphrase", label: "other", scrypt: testScrypt)
        try await memory.replace(ObjectPath.key(other), data: Data(damage.utf8))
        return (memory, ObjectPath.key(other))
    }

    @Test func aTruncatedKeyFileIsDamagedNotAWrongPassphrase() async throws {
        let (memory, damaged) = try await repositoryWithDamagedKey(#"{"version":1,"kdf":"scr"#)
        // An intact key opens it; the damaged one is named for the warning.
        let opened = try await Repository.open(backend: memory, passphrase: "first passphrase")
        #expect(opened.damagedKeyFiles.map(\.object) == [damaged])
        #expect(opened.damagedKeyFiles.first?.message.contains("not valid JSON") == true)
        // The damaged key's own passphrase: no intact key opens, so the error names the damaged file (exit 3), not exit 12.
        let error = try await #require(throws: RepositoryError.self) { _ = try await Repository.open(backend: memory, passphrase: "second passphrase") }
        #expect(error.code == .corruptObject, "\(error)")
        #expect(error.object == damaged)
        #expect(error.message.contains("damaged"), "\(error)")
        // `key list` names it too.
        let listed = try await #require(throws: RepositoryError.self) { _ = try await opened.listKeys() }
        #expect(listed.code == .corruptObject && listed.object == damaged)
    }

    @Test func aKeyFileWithABadFieldNamesTheField() async throws {
        let (memory, damaged) = try await repositoryWithDamagedKey(
            #"{"version":1,"kdf":"scrypt","scrypt":{"n":"1024","r":8,"p":1},"salt":"AAAA","wrapped":"AAAA","created":"2026-01-01T00:00:00Z","label":"x","hostname":"h"}"#)
        let opened = try await Repository.open(backend: memory, passphrase: "first passphrase")
        let warning = try #require(opened.damagedKeyFiles.first)
        #expect(warning.object == damaged)
        #expect(warning.message.contains("`scrypt.n`"), "\(warning)")
    }

    @Test func withEveryKeyIntactAWrongPassphraseIsStillAWrongPassphrase() async throws {
        let memory = MemoryBackend()
        _ = try await makeRepository(memory, passphrase: "first passphrase")
        let error = try await #require(throws: RepositoryError.self) { _ = try await Repository.open(backend: memory, passphrase: "nope") }
        #expect(error.code == .wrongPassphrase)
        #expect(try await Repository.open(backend: memory, passphrase: "first passphrase").damagedKeyFiles.isEmpty)
    }

    // MARK: the config

    @Test func aConfigWithValidJSONButABadFieldNamesTheField() async throws {
        let memory = MemoryBackend()
        _ = try await makeRepository(memory)
        let original = try JSONSerialization.jsonObject(with: try await memory.load(ObjectPath.config)) as! [String: Any]
        func configError(_ change: (inout [String: Any]) -> Void) async throws -> RepositoryError {
            var fields = original
            change(&fields)
            try await memory.replace(ObjectPath.config, data: try JSONSerialization.data(withJSONObject: fields))
            return try await #require(throws: RepositoryError.self) { _ = try await Repository.open(backend: memory, passphrase: "correct horse") }
        }
        let wrongType = try await configError { $0["compression_level"] = "three" }
        #expect(wrongType.code == .corruptObject && wrongType.object == ObjectPath.config)
        #expect(wrongType.message.contains("`compression_level`") && wrongType.message.contains("an integer"), "\(wrongType)")
        #expect(!wrongType.message.contains("not valid JSON"))
        let missing = try await configError { $0["key_check"] = nil }
        #expect(missing.message.contains("`key_check` is missing"), "\(missing)")
        let nested = try await configError { fields in
            var chunker = fields["chunker"] as! [String: Any]
            chunker[chunker.keys.sorted().first!] = nil
            fields["chunker"] = chunker
        }
        #expect(nested.message.contains("`chunker."), "\(nested)")
        let badTime = try await configError { $0["created"] = "yesterday" }
        #expect(badTime.message.contains("`created`") && badTime.message.contains("RFC 3339"), "\(badTime)")
        try await memory.replace(ObjectPath.config, data: Data(#"{"version":1,"id":"#.utf8))
        let truncated = try await #require(throws: RepositoryError.self) { _ = try await Repository.open(backend: memory, passphrase: "correct horse") }
        #expect(truncated.message.contains("not valid JSON"), "\(truncated)")
    }

    // MARK: storage that fails is not damage

    @Test func storageThatStopsAnsweringMidwayIsUnavailableNotDamaged() async throws {
        // A private moto, stopped (by PID) once verify has read its first chunk.
        let moto = try await MotoServer.start()
        defer { moto.stop() }
        let bucket = MotoServer.uniqueBucketName("unavailable")
        try await moto.createBucket(bucket)
        var configuration = moto.configuration(bucket: bucket, prefix: "repo")
        configuration.retry = S3RetryPolicy(maxAttempts: 2, baseDelay: .milliseconds(10), maxDelay: .milliseconds(20), requestTimeout: .seconds(10))
        let s3 = try S3Backend(configuration: configuration)
        let data = randomBytes(400_000, seed: 63)
        let manifest = try await makeRepository(s3).put(SnapshotDescription(store: "db"), read: reader(data))
        #expect(manifest.chunks.count > 1)

        let chunksRead = ReadCounter()
        let stopping = InterceptingBackend(base: s3) { name, _, data in
            if name.hasPrefix("data/"), await chunksRead.record("any") == 1 { moto.stop() }
            return data
        }
        let repository = try await Repository.open(backend: stopping, passphrase: "correct horse")
        let report = try await repository.verify(readData: true)
        #expect(!report.problems.isEmpty)
        for problem in report.problems {
            #expect(problem.code == .unavailable, "\(problem)")
            #expect(!problem.isDamage)
            #expect(problem.message.contains("transient") && problem.message.contains("try again"), "\(problem)")
        }
        // A restore from storage that does not answer fails as unavailable too, never as damage.
        let error = try await #require(throws: RepositoryError.self) { _ = try await roundTrip(repository, manifest) }
        #expect(error.code == .unavailable, "\(error)")
    }
}
