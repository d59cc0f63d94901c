import Foundation
import LifeboatTesting
import Testing
@testable import LifeboatStorage

/// One contract, every backend: each test runs against each implementation. The S3 kinds run on a
/// moto_server and on a single-node Ceph RGW, both with SigV4 checking on; each test gets its own
/// bucket, under a prefix with a `/`.
@Suite(.moto, .rgw) struct BackendConformanceTests {
    enum Kind: String, CaseIterable, CustomTestStringConvertible {
        case memory, localDirectory, s3Moto = "s3-moto", s3RGW = "s3-rgw"
        var testDescription: String { rawValue }
    }

    static func make(_ kind: Kind) async throws -> any Backend {
        switch kind {
        case .memory:
            return MemoryBackend()
        case .localDirectory:
            let root = FileManager.default.temporaryDirectory.appendingPathComponent("lifeboat-backend-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
            return LocalDirectoryBackend(root: root)
        case .s3Moto:
            return try S3Backend(configuration: try await MotoScope.require().freshBucket("conformance", prefix: "lifeboat/repo"))
        case .s3RGW:
            return try S3Backend(configuration: try await RGWScope.require().freshBucket("conformance", prefix: "lifeboat/repo"))
        }
    }

    @Test(arguments: Kind.allCases)
    func createIsWriteOnce(kind: Kind) async throws {
        let backend = try await Self.make(kind)
        try await backend.create("data/ab/abc", data: Data("first".utf8))
        await #expect(throws: BackendError.self) { try await backend.create("data/ab/abc", data: Data("second".utf8)) }
        do {
            try await backend.create("data/ab/abc", data: Data("second".utf8))
        } catch {
            #expect(error.code == .alreadyExists)
            #expect(error.object == "data/ab/abc")
        }
        #expect(try await backend.load("data/ab/abc") == Data("first".utf8), "the first write wins and stays intact")
    }

    @Test(arguments: Kind.allCases)
    func replaceOverwrites(kind: Kind) async throws {
        let backend = try await Self.make(kind)
        try await backend.replace("locks/x", data: Data("one".utf8))
        try await backend.replace("locks/x", data: Data("two".utf8))
        #expect(try await backend.load("locks/x") == Data("two".utf8))
    }

    /// How a damaged chunk is repaired: replace over a create-once object, which stays create-once after.
    @Test(arguments: Kind.allCases)
    func replaceOverACreatedObject(kind: Kind) async throws {
        let backend = try await Self.make(kind)
        let damaged = Data((0..<5000).map { UInt8($0 % 7) })
        let correct = Data((0..<4000).map { UInt8($0 % 13) })
        try await backend.create("data/ab/abcd", data: damaged)
        try await backend.replace("data/ab/abcd", data: correct)
        #expect(try await backend.load("data/ab/abcd") == correct)
        #expect(try await backend.stat("data/ab/abcd")?.size == correct.count)
        #expect(try await backend.list(prefix: "data/").map(\.name) == ["data/ab/abcd"], "one object, no temporary left over")
        do {
            try await backend.create("data/ab/abcd", data: damaged)
            Issue.record("create over a replaced object succeeded")
        } catch {
            #expect(error.code == .alreadyExists)
        }
        #expect(try await backend.load("data/ab/abcd") == correct)
    }

    @Test(arguments: Kind.allCases)
    func loadRangeStatAndMissingObjects(kind: Kind) async throws {
        let backend = try await Self.make(kind)
        let bytes = Data((0..<1000).map { UInt8($0 % 251) })
        try await backend.create("snapshots/s1", data: bytes)
        #expect(try await backend.load("snapshots/s1", range: 10..<20) == bytes.subdata(in: 10..<20))
        #expect(try await backend.load("snapshots/s1", range: 0..<0) == Data())
        let info = try #require(try await backend.stat("snapshots/s1"))
        #expect(info.size == 1000)
        #expect(abs(info.modified.timeIntervalSinceNow) < 60)
        #expect(try await backend.stat("snapshots/none") == nil)
        do {
            _ = try await backend.load("snapshots/none")
            Issue.record("loading a missing object succeeded")
        } catch {
            #expect(error.code == .notFound)
            #expect(error.object == "snapshots/none")
        }
        await #expect(throws: BackendError.self) { try await backend.load("snapshots/s1", range: 990..<1010) }
    }

    @Test(arguments: Kind.allCases)
    func emptyObjectsRoundTrip(kind: Kind) async throws {
        let backend = try await Self.make(kind)
        try await backend.create("data/00/empty", data: Data())
        #expect(try await backend.load("data/00/empty") == Data())
        #expect(try await backend.stat("data/00/empty")?.size == 0)
    }

    @Test(arguments: Kind.allCases)
    func listFiltersByPrefixAcrossDirectories(kind: Kind) async throws {
        let backend = try await Self.make(kind)
        for name in ["data/aa/aa1", "data/aa/aa2", "data/ab/ab1", "snapshots/s1", "config"] {
            try await backend.create(name, data: Data(name.utf8))
        }
        #expect(Set(try await backend.list(prefix: "data/").map(\.name)) == ["data/aa/aa1", "data/aa/aa2", "data/ab/ab1"])
        #expect(Set(try await backend.list(prefix: "data/aa").map(\.name)) == ["data/aa/aa1", "data/aa/aa2"])
        #expect(Set(try await backend.list(prefix: "").map(\.name)).count == 5)
        #expect(try await backend.list(prefix: "keys/").isEmpty)
        #expect(try await backend.list(prefix: "snapshots/").first?.size == "snapshots/s1".utf8.count)
    }

    @Test(arguments: Kind.allCases)
    func deleteIsIdempotent(kind: Kind) async throws {
        let backend = try await Self.make(kind)
        try await backend.create("locks/l1", data: Data("x".utf8))
        try await backend.delete("locks/l1")
        try await backend.delete("locks/l1")
        #expect(try await backend.stat("locks/l1") == nil)
        try await backend.create("locks/l1", data: Data("again".utf8))
        #expect(try await backend.load("locks/l1") == Data("again".utf8))
    }

    @Test(arguments: Kind.allCases)
    func namesThatEscapeAreRefused(kind: Kind) async throws {
        let backend = try await Self.make(kind)
        for name in ["../etc/passwd", "/abs", "data//x", "data/./x", "", "a b", "data/x/"] {
            do {
                try await backend.create(name, data: Data())
                Issue.record("\(name) was accepted")
            } catch {
                #expect(error.code == .invalidName, "\(name)")
            }
        }
    }

    @Test(arguments: Kind.allCases)
    func concurrentCreatesOfOneNameHaveExactlyOneWinner(kind: Kind) async throws {
        let backend = try await Self.make(kind)
        let winners = await withTaskGroup(of: Int?.self) { group in
            for writer in 0..<16 {
                group.addTask {
                    do {
                        try await backend.create("snapshots/race", data: Data("writer \(writer)".utf8))
                        return writer
                    } catch {
                        return nil
                    }
                }
            }
            return await group.reduce(into: [Int]()) { if let writer = $1 { $0.append(writer) } }
        }
        #expect(winners.count == 1)
        #expect(try await backend.load("snapshots/race") == Data("writer \(winners[0])".utf8))
    }
}

@Suite struct LocalDirectoryBackendTests {
    @Test func leftoverTemporaryFilesAreInvisible() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("lifeboat-local-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("data/aa"), withIntermediateDirectories: true)
        // What a crash between write and publish leaves behind.
        try Data("half".utf8).write(to: root.appendingPathComponent("data/aa/.tmp-123"))
        let backend = LocalDirectoryBackend(root: root)
        #expect(try await backend.list(prefix: "data/").isEmpty)
        try await backend.create("data/aa/real", data: Data("x".utf8))
        #expect(try await backend.list(prefix: "data/").map(\.name) == ["data/aa/real"])
        // Publishing leaves no temporary file of its own.
        let entries = try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("data/aa").path)
        #expect(Set(entries) == [".tmp-123", "real"])
    }

    @Test func permissionDeniedIsNamed() async throws {
        guard getuid() != 0 else { return } // root ignores permissions; nothing to observe
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("lifeboat-ro-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        chmod(root.path, 0o500)
        defer { chmod(root.path, 0o700) }
        do {
            try await LocalDirectoryBackend(root: root).create("config", data: Data())
            Issue.record("write into a read-only directory succeeded")
        } catch {
            #expect(error.code == .permissionDenied)
        }
    }
}
