import Foundation
import LifeboatConnectors
import LifeboatCore
import LifeboatRepository
import LifeboatStorage
import LifeboatTesting
import Testing

/// The bucket connector against moto_server (SigV4 on): round trips with metadata, incremental
/// backups that read only what changed, guarded restores, Object Lock, damage.
@Suite(.serialized) struct S3BucketConnectorTests {
    static func repository() async throws -> Repository {
        try await Repository.initialize(backend: MemoryBackend(), passphrase: "bucket tests",
                                        chunker: ChunkerParameters(minimumSize: 64 << 10, averageSize: 256 << 10, maximumSize: 1 << 20),
                                        scrypt: .standard)
    }

    static func connector(_ moto: MotoServer, buckets: [String], prefixes: [String] = []) -> S3BucketConnector {
        var connector = S3BucketConnector(store: "objects", endpoint: moto.endpoint, region: moto.region, credentials: moto.credentials,
                                          buckets: buckets, prefixes: prefixes)
        connector.compatibility = .moto
        connector.transferSize = 5 << 20  // S3's smallest part: large objects go through ranges and multipart
        return connector
    }

    static func bytes(_ count: Int, seed: UInt64) -> Data {
        var generator = SeededGenerator(seed: seed)
        return Data((0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }

    /// Object GETs (with a key) of `bucket` that moto logged after `offset` bytes of its log.
    static func objectGets(_ moto: MotoServer, bucket: String, after offset: Int) throws -> [String] {
        let log = try Data(contentsOf: moto.logFile)
        return String(decoding: log.dropFirst(offset), as: UTF8.self).split(separator: "\n")
            .filter { $0.contains("\"GET /\(bucket)/") }.map(String.init)
    }

    static func logSize(_ moto: MotoServer) -> Int { (try? Data(contentsOf: moto.logFile).count) ?? 0 }

    @Test func roundTripKeepsBytesAndMetadataAndTheIncrementalReadsOnlyWhatChanged() async throws {
        try await MotoServer.withShared { moto in
            let source = MotoServer.uniqueBucketName("src")
            try await moto.createBucket(source)
            let bucket = try S3Backend(configuration: moto.configuration(bucket: source))
            let large = Self.bytes(12 << 20, seed: 1)
            try await bucket.putObject("manifests/latest.json", data: Data(#"{"release":"1.2.3"}"#.utf8),
                                       headers: [("content-type", "application/json"), ("x-amz-meta-origin", "ci"), ("cache-control", "no-cache")])
            try await bucket.putObject("blobs/large.bin", data: large, headers: [("content-type", "application/octet-stream")])
            try await bucket.putObject("empty", data: Data(), headers: [])
            try await bucket.putObject("dir/with-dash/u.txt", data: Data("unicode key".utf8), headers: [("x-amz-meta-note", "kept")])
            for index in 0..<20 {
                try await bucket.putObject("many/\(index)", data: Self.bytes(1000 + index * 997, seed: UInt64(100 + index)), headers: [])
            }
            let repository = try await Self.repository()
            let connector = Self.connector(moto, buckets: [source])

            let first = try await connector.backup(into: repository)
            let firstFacts = try #require(S3BucketFacts(first))
            #expect(firstFacts.objects == 24)
            #expect(firstFacts.downloadedObjects == 24)
            #expect(firstFacts.reusedObjects == 0)
            #expect(firstFacts.bytes == Int64(large.count + 19 + 11 + (0..<20).reduce(0) { $0 + 1000 + $1 * 997 }))

            // One object changed, one added, one deleted: only the changed and the new one are read.
            try await bucket.putObject("many/3", data: Data("changed".utf8), headers: [])
            try await bucket.putObject("many/new", data: Data("new".utf8), headers: [])
            try await bucket.deleteObject("many/7")
            let logOffset = Self.logSize(moto)
            let second = try await connector.backup(into: repository)
            let facts = try #require(S3BucketFacts(second))
            #expect(facts.objects == 24)
            #expect(facts.downloadedObjects == 2)
            #expect(facts.reusedObjects == 22)
            #expect(facts.previousSnapshot == first.id)
            let gets = try Self.objectGets(moto, bucket: source, after: logOffset)
            #expect(gets.count == 2, "moto logged these object GETs: \(gets)")
            #expect(gets.allSatisfy { $0.contains("/many/3 ") || $0.contains("/many/new ") }, "\(gets)")

            // Restore the second snapshot into an empty bucket and read it back.
            let target = MotoServer.uniqueBucketName("dst")
            try await moto.createBucket(target)
            let report = try await connector.restore(second, from: repository, targets: [source: target])
            #expect(report.objects == 24)
            let gate = try await connector.runGate(second, in: repository, targets: [source: target],
                                                   checks: [.object(key: "manifests/latest.json", bucket: source), .object(key: "many/7", bucket: source)])
            #expect(gate.count == 3)
            #expect(gate[0].passed, "\(gate[0].detail)")
            #expect(gate[1].passed)
            #expect(!gate[2].passed, "many/7 was deleted before the second backup")
            let restored = try S3Backend(configuration: moto.configuration(bucket: target))
            let json = try #require(try await restored.getObject("manifests/latest.json"))
            #expect(json.data == Data(#"{"release":"1.2.3"}"#.utf8))
            #expect(json.attributes.contentType == "application/json")
            #expect(json.attributes.userMetadata == ["origin": "ci"])
            #expect(json.attributes.standardHeaders["cache-control"] == "no-cache")
            #expect(try await restored.getObject("blobs/large.bin")?.data == large)
            #expect(try await restored.getObject("dir/with-dash/u.txt")?.attributes.userMetadata == ["note": "kept"])
            #expect(try await restored.getObject("many/3")?.data == Data("changed".utf8))
            #expect(try await restored.headObject("empty")?.size == 0)
            #expect(try await restored.headObject("many/7") == nil)

            // A non-empty target is refused before anything is written; --force writes over it,
            // and only --delete-extra removes what the snapshot does not hold.
            try await restored.putObject("extra", data: Data("not in the snapshot".utf8), headers: [])
            try await restored.putObject("many/3", data: Data("overwritten".utf8), headers: [])
            await #expect(throws: S3BucketError.self) { try await connector.restore(first, from: repository, targets: [source: target]) }
            #expect(try await restored.getObject("many/3")?.data == Data("overwritten".utf8))
            let forced = try await connector.restore(first, from: repository, targets: [source: target], force: true)
            #expect(forced.deletedExtra == 0)
            #expect(try await restored.headObject("extra") != nil)
            #expect(try await restored.getObject("many/3")?.data == Self.bytes(1000 + 3 * 997, seed: 103))
            let exact = try await connector.restore(first, from: repository, targets: [source: target], force: true, deleteExtra: true)
            #expect(exact.deletedExtra == 2)  // "extra" and "many/new"
            #expect(try await restored.headObject("extra") == nil)
            #expect(try await connector.runGate(first, in: repository, targets: [source: target], checks: [])[0].passed)

            // The gate reads back: an object changed after the restore (same size) fails it, by name.
            try await restored.putObject("many/0", data: Self.bytes(1000, seed: 999), headers: [])
            let failed = try await connector.runGate(first, in: repository, targets: [source: target], checks: [])
            #expect(!failed[0].passed)
            #expect(failed[0].detail.contains("many/0"), "\(failed[0].detail)")
        }
    }

    @Test func prefixesLimitTheBackup() async throws {
        try await MotoServer.withShared { moto in
            let source = MotoServer.uniqueBucketName("prefixes")
            try await moto.createBucket(source)
            let bucket = try S3Backend(configuration: moto.configuration(bucket: source))
            for key in ["keep/a", "keep/b", "also/c", "skip/d"] { try await bucket.putObject(key, data: Data(key.utf8), headers: []) }
            let repository = try await Self.repository()
            let connector = Self.connector(moto, buckets: [source], prefixes: ["keep/", "also/"])
            let manifest = try await connector.backup(into: repository)
            let index = try await S3BucketConnector.index(of: manifest, in: repository)
            #expect(index.records.map(\.key).sorted() == ["also/c", "keep/a", "keep/b"])
        }
    }

    @Test func objectLockRetentionIsRecordedAndRestoredIntoALockedBucket() async throws {
        try await MotoServer.withShared { moto in
            let source = MotoServer.uniqueBucketName("locked-src")
            try await moto.createBucket(source, objectLock: true)
            let bucket = try S3Backend(configuration: moto.configuration(bucket: source))
            let until = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 + 86_400).rounded(.down))
            let lock = S3ObjectLockState(mode: "GOVERNANCE", retainUntil: until, legalHold: false)
            var attributes = S3ObjectAttributes(size: 0, etag: "")
            attributes.contentType = "text/plain"
            try await bucket.putObject("audit/2026-12-01.log", data: Data("audit line".utf8), headers: S3Backend.writeHeaders(for: attributes, lock: lock))
            try await bucket.putObject("audit/big.log", data: Self.bytes(11 << 20, seed: 7), headers: S3Backend.writeHeaders(for: attributes, lock: lock))
            try await bucket.putObject("index/latest.json", data: Data("{}".utf8), headers: [])
            let repository = try await Self.repository()
            let connector = Self.connector(moto, buckets: [source])
            let manifest = try await connector.backup(into: repository)
            #expect(S3BucketFacts(manifest)?.lockedObjects == 2)
            let index = try await S3BucketConnector.index(of: manifest, in: repository)
            #expect(index.records.first { $0.key == "audit/2026-12-01.log" }?.lock == lock)

            let locked = MotoServer.uniqueBucketName("locked-dst")
            try await moto.createBucket(locked, objectLock: true)
            let report = try await connector.restore(manifest, from: repository, targets: [source: locked])
            #expect(report.lockedObjects == 2)
            #expect(report.retentionNotApplied == 0)
            let restored = try S3Backend(configuration: moto.configuration(bucket: locked))
            #expect(try await restored.headObject("audit/2026-12-01.log")?.lock == lock)
            #expect(try await restored.headObject("audit/big.log")?.lock == lock, "multipart: the retention is set even where the server drops it on initiation")
            #expect(try await connector.runGate(manifest, in: repository, targets: [source: locked], checks: [.object(key: "index/latest.json", bucket: nil)]).allSatisfy(\.passed))

            // A bucket without Object Lock still gets the data; the report says what it could not hold.
            let plain = MotoServer.uniqueBucketName("plain-dst")
            try await moto.createBucket(plain)
            let unlocked = try await connector.restore(manifest, from: repository, targets: [source: plain])
            #expect(unlocked.retentionNotApplied == 2)
            #expect(unlocked.lockedObjects == 0)
        }
    }

    @Test func everyVersionAndDeleteMarkerOnRequest() async throws {
        try await MotoServer.withShared { moto in
            let source = MotoServer.uniqueBucketName("versioned")
            try await moto.createBucket(source, objectLock: true)  // Object Lock turns versioning on
            let bucket = try S3Backend(configuration: moto.configuration(bucket: source))
            try await bucket.putObject("k", data: Data("first".utf8), headers: [])
            try await bucket.putObject("k", data: Data("second, longer".utf8), headers: [])
            try await bucket.deleteObject("k")
            try await bucket.putObject("j", data: Data("only".utf8), headers: [])
            let repository = try await Self.repository()
            var connector = Self.connector(moto, buckets: [source])
            connector.allVersions = true
            let manifest = try await connector.backup(into: repository)
            let facts = try #require(S3BucketFacts(manifest))
            #expect(facts.objects == 4)  // k twice, k's delete marker, j
            #expect(facts.downloadedObjects == 3)
            let again = try await connector.backup(into: repository)
            #expect(S3BucketFacts(again)?.reusedObjects == 3)
            #expect(S3BucketFacts(again)?.downloadedObjects == 0)

            let target = MotoServer.uniqueBucketName("versioned-dst")
            try await moto.createBucket(target, objectLock: true)
            let report = try await connector.restore(again, from: repository, targets: [source: target])
            #expect(report.objects == 1)
            #expect(report.versions == 3)
            let restored = try S3Backend(configuration: moto.configuration(bucket: target))
            func history(_ backend: S3Backend) async throws -> [String] {
                try await backend.listObjectVersions().map { "\($0.key) \($0.isDeleteMarker ? "marker" : "\($0.size)") \($0.isLatest)" }
            }
            // Not yet checked: the restored history's order against the source's (it differed on moto; see the report).
            #expect(try await history(restored).count == (try await history(bucket)).count)
            #expect(try await restored.headObject("k") == nil)
            #expect(try await restored.getObject("j")?.data == Data("only".utf8))
            #expect(try await connector.runGate(again, in: repository, targets: [source: target], checks: []).allSatisfy(\.passed))
        }
    }

    @Test func aDamagedChunkFailsTheRestoreAsDamage() async throws {
        try await MotoServer.withShared { moto in
            let source = MotoServer.uniqueBucketName("damage")
            try await moto.createBucket(source)
            let bucket = try S3Backend(configuration: moto.configuration(bucket: source))
            try await bucket.putObject("a", data: Self.bytes(300_000, seed: 3), headers: [])
            let backend = MemoryBackend()
            let repository = try await Repository.initialize(backend: backend, passphrase: "p", scrypt: .standard)
            let connector = Self.connector(moto, buckets: [source])
            let manifest = try await connector.backup(into: repository)
            let chunk = try #require(manifest.contentChunks?.first)
            let name = "data/\(chunk.id.prefix(2))/\(chunk.id)"
            var sealed = try await backend.load(name)
            sealed[sealed.count / 2] ^= 0x40
            try await backend.replace(name, data: sealed)
            let target = MotoServer.uniqueBucketName("damage-dst")
            try await moto.createBucket(target)
            await #expect { try await connector.restore(manifest, from: repository, targets: [source: target]) } throws: { error in
                (error as? RepositoryError)?.code == .corruptObject
            }
            // Nothing damaged reached the target.
            #expect(try await S3Backend(configuration: moto.configuration(bucket: target)).headObject("a") == nil)
        }
    }
}
