#if canImport(Glibc)
import Glibc
#endif
import Foundation
import LifeboatConnectors
import LifeboatCore
import LifeboatRepository
import LifeboatStorage
import Testing

/// The files connector on real directory trees: types, modes, owners, times and bytes round-trip;
/// guarded restores; damage; files that are not regular.
@Suite struct FilesConnectorTests {
    static func scratch() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("lifeboat-files-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    static func repository(_ backend: any Backend = MemoryBackend()) async throws -> Repository {
        try await Repository.initialize(backend: backend, passphrase: "files tests",
                                        chunker: ChunkerParameters(minimumSize: 16 << 10, averageSize: 64 << 10, maximumSize: 256 << 10),
                                        scrypt: .standard)
    }

    /// What lstat says of a path, for comparing two trees.
    struct Entry: Equatable, CustomStringConvertible {
        var type: mode_t, mode: mode_t, uid: uid_t, gid: gid_t, size: Int, mtime: Int64, content: Data?, link: String?
        var description: String { "type \(type) mode \(String(mode, radix: 8)) \(uid):\(gid) size \(size) mtime \(mtime) link \(link ?? "-")" }
    }

    static func entries(of root: URL) throws -> [String: Entry] {
        var result: [String: Entry] = [:]
        let paths = [""] + (FileManager.default.subpaths(atPath: root.path) ?? [])
        for path in paths {
            let full = path.isEmpty ? root.path : root.path + "/" + path
            var info = Glibc.stat()
            guard lstat(full, &info) == 0 else { throw POSIXError(.ENOENT) }
            let type = info.st_mode & S_IFMT
            let link = type == S_IFLNK ? try FileManager.default.destinationOfSymbolicLink(atPath: full) : nil
            let content = type == S_IFREG ? try Data(contentsOf: URL(fileURLWithPath: full)) : nil
            result[path] = Entry(type: type, mode: info.st_mode & 0o7777, uid: info.st_uid, gid: info.st_gid,
                                 size: type == S_IFREG ? Int(info.st_size) : 0,
                                 mtime: type == S_IFDIR && path.isEmpty ? 0 : Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec),
                                 content: content, link: link)
        }
        return result
    }

    static func setTime(_ path: String, nanoseconds: Int64, link: Bool = false) {
        var times = [timespec(tv_sec: Int(nanoseconds / 1_000_000_000), tv_nsec: Int(nanoseconds % 1_000_000_000))]
        times.append(times[0])
        _ = utimensat(AT_FDCWD, path, &times, link ? AT_SYMLINK_NOFOLLOW : 0)
    }

    /// A tree with nested directories, modes, owners, nanosecond times, symlinks (one dangling) and a multi-chunk file.
    static func makeTree(at root: URL) throws {
        let fm = FileManager.default
        try fm.createDirectory(at: root.appendingPathComponent("platform-events/streams"), withIntermediateDirectories: true)
        try Data(#"{"streams":2}"#.utf8).write(to: root.appendingPathComponent("platform-events/backup.json"))
        var generator = SystemRandomNumberGenerator()
        try Data((0..<700_000).map { _ in UInt8.random(in: 0...255, using: &generator) }).write(to: root.appendingPathComponent("platform-events/streams/1.blk"))
        try Data().write(to: root.appendingPathComponent("platform-events/streams/empty"))
        try Data("#!/bin/sh\n".utf8).write(to: root.appendingPathComponent("run.sh"))
        chmod(root.appendingPathComponent("run.sh").path, 0o4755)
        chmod(root.appendingPathComponent("platform-events/backup.json").path, 0o640)
        chmod(root.appendingPathComponent("platform-events/streams").path, 0o750)
        if geteuid() == 0 {
            lchown(root.appendingPathComponent("platform-events/backup.json").path, 1234, 5678)
            lchown(root.appendingPathComponent("platform-events").path, 4321, 8765)
        }
        try fm.createSymbolicLink(atPath: root.appendingPathComponent("latest").path, withDestinationPath: "platform-events/backup.json")
        try fm.createSymbolicLink(atPath: root.appendingPathComponent("dangling").path, withDestinationPath: "/nowhere/at/all")
        for (index, path) in ["platform-events/backup.json", "platform-events/streams/1.blk", "platform-events/streams/empty", "run.sh"].enumerated() {
            setTime(root.appendingPathComponent(path).path, nanoseconds: 1_700_000_000_123_456_789 + Int64(index) * 1_000_000_007)
        }
        setTime(root.appendingPathComponent("latest").path, nanoseconds: 1_600_000_000_000_000_001, link: true)
        setTime(root.appendingPathComponent("platform-events/streams").path, nanoseconds: 1_650_000_000_987_654_321)
        setTime(root.appendingPathComponent("platform-events").path, nanoseconds: 1_660_000_000_000_000_042)
    }

    @Test func treesRoundTripWithModesOwnersTimesAndSymlinks() async throws {
        let scratch = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let source = scratch.appendingPathComponent("jetstream")
        try Self.makeTree(at: source)
        let repository = try await Self.repository()
        let connector = FilesConnector(store: "nats", roots: [source.path])
        let manifest = try await connector.backup(into: repository)
        let facts = try #require(FilesFacts(manifest))
        #expect(facts.files == 4)
        #expect(facts.symlinks == 2)
        #expect(facts.directories == 3)

        let target = scratch.appendingPathComponent("restored/jetstream")
        let report = try await FilesConnector.restore(manifest, from: repository, destinations: [target.path])
        #expect(report.files == 4)
        let before = try Self.entries(of: source)
        let after = try Self.entries(of: target)
        #expect(before.keys.sorted() == after.keys.sorted())
        for (path, entry) in before { #expect(after[path] == entry, "\(path): \(entry) became \(after[path].map(\.description) ?? "nothing")") }
        let gate = try await FilesConnector.runGate(manifest, in: repository, destinations: [target.path],
                                                    checks: [.file(path: "platform-events/backup.json"), .file(path: source.path + "/run.sh"), .file(path: "missing")])
        #expect(gate.map(\.passed) == [true, true, true, false], "\(gate)")

        // The gate reads back: a file changed after the restore fails it, by path.
        try Data(#"{"streams":3}"#.utf8).write(to: target.appendingPathComponent("platform-events/backup.json"))
        chmod(target.appendingPathComponent("platform-events/backup.json").path, 0o640)
        let failed = try await FilesConnector.runGate(manifest, in: repository, destinations: [target.path], checks: [])
        #expect(!failed[0].passed)
        #expect(failed[0].detail.contains("backup.json"), "\(failed[0].detail)")
    }

    @Test func aNonEmptyTargetIsRefusedAndForceMovesItAsideAndPutsItBackOnFailure() async throws {
        let scratch = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let source = scratch.appendingPathComponent("config")
        try FileManager.default.createDirectory(at: source, withIntermediateDirectories: true)
        try Data(repeating: 7, count: 200_000).write(to: source.appendingPathComponent("settings.bin"))
        let backend = MemoryBackend()
        let repository = try await Self.repository(backend)
        let manifest = try await FilesConnector(store: "config", roots: [source.path]).backup(into: repository)

        let target = scratch.appendingPathComponent("live")
        try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
        try Data("precious".utf8).write(to: target.appendingPathComponent("old.txt"))
        await #expect { try await FilesConnector.restore(manifest, from: repository, destinations: [target.path]) } throws: { error in
            (error as? FilesError)?.code == .refused
        }
        #expect(try Data(contentsOf: target.appendingPathComponent("old.txt")) == Data("precious".utf8))

        // A damaged chunk fails the forced restore: the old directory is back in place, untouched.
        let chunk = try #require(manifest.contentChunks?.first)
        let name = "data/\(chunk.id.prefix(2))/\(chunk.id)"
        let intact = try await backend.load(name)
        var damaged = intact
        damaged[damaged.count / 2] ^= 1
        try await backend.replace(name, data: damaged)
        await #expect { try await FilesConnector.restore(manifest, from: repository, destinations: [target.path], force: true) } throws: { error in
            (error as? RepositoryError)?.code == .corruptObject
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: target.path) == ["old.txt"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.path).sorted() == ["config", "live"])

        try await backend.replace(name, data: intact)
        let report = try await FilesConnector.restore(manifest, from: repository, destinations: [target.path], force: true)
        #expect(try Data(contentsOf: target.appendingPathComponent("settings.bin")) == Data(repeating: 7, count: 200_000))
        let aside = try #require(report.setAside.first)
        #expect(try Data(contentsOf: URL(fileURLWithPath: aside).appendingPathComponent("old.txt")) == Data("precious".utf8))
    }

    @Test func aFIFOInTheTreeFailsTheBackupNamingIt() async throws {
        let scratch = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: scratch) }
        try Data("x".utf8).write(to: scratch.appendingPathComponent("file"))
        #expect(mkfifo(scratch.appendingPathComponent("pipe").path, 0o600) == 0)
        let repository = try await Self.repository()
        await #expect { try await FilesConnector(store: "t", roots: [scratch.path]).backup(into: repository) } throws: { error in
            guard let error = error as? FilesError else { return false }
            return error.paths == [scratch.appendingPathComponent("pipe").path] && error.message.contains("no snapshot was written")
        }
        #expect(try await repository.snapshotIDs().isEmpty)
    }
}
