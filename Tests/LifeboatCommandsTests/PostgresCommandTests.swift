import Foundation
@testable import LifeboatRepository
import LifeboatStorage
import LifeboatTesting
import Testing

/// A repository (cheap scrypt) plus passphrase file in a directory the postgres OS user may use:
/// PostgreSQL runs archive_command and restore_command as that user.
struct SharedRepository {
    let directory: URL
    let repository: Repository
    var location: URL { directory.appendingPathComponent("repo") }
    var passwordFile: URL { directory.appendingPathComponent("passphrase") }
    var arguments: [String] { ["--repo", location.path, "--password-file", passwordFile.path] }

    init(label: String) async throws {
        directory = URL(fileURLWithPath: "/tmp/lifeboat-\(label)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        chmod(directory.path, 0o755)
        repository = try await Repository.initialize(backend: LocalDirectoryBackend(root: directory.appendingPathComponent("repo")),
                                                     passphrase: "wal passphrase", scrypt: KeyFile.ScryptParameters(n: 1 << 10, r: 8, p: 1))
        try Data("wal passphrase\n".utf8).write(to: directory.appendingPathComponent("passphrase"))
        if geteuid() == 0 {
            let chown = try ExternalTool.locate("chown")
            _ = try await chown.run(["-R", "postgres:postgres", location.path, passwordFile.path]).check("chown")
        }
    }

    func remove() { try? FileManager.default.removeItem(at: directory) }
}

@Suite struct PostgresCommandTests {
    static let segment = "000000010000000000000007"

    @Test func walPushIsIdempotentAndRefusesADifferentSegmentUnderTheSameName() async throws {
        let shared = try await SharedRepository(label: "walpush")
        defer { shared.remove() }
        let first = shared.directory.appendingPathComponent("a"), second = shared.directory.appendingPathComponent("b")
        try FileManager.default.createDirectory(at: first, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: second, withIntermediateDirectories: true)
        let contents = Data((0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 9) })
        try contents.write(to: first.appendingPathComponent(Self.segment))
        var other = contents
        other[4096] ^= 1
        try other.write(to: second.appendingPathComponent(Self.segment))

        let push = ["postgres", "wal-push", "--store", "app-db"] + shared.arguments
        let stored = try await CommandLineTests.run(push + [first.appendingPathComponent(Self.segment).path])
        #expect(stored.status == 0, "\(stored.stderr)")
        let again = try await CommandLineTests.run(push + [first.appendingPathComponent(Self.segment).path])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stderr.contains("already archived with the same contents"))
        let conflict = try await CommandLineTests.run(push + [second.appendingPathComponent(Self.segment).path])
        #expect(conflict.status == 1)
        #expect(conflict.stderr.contains("wal/app-db/\(Self.segment)"), "\(conflict.stderr)")
        #expect(conflict.stderr.contains("a different file with this name is already archived"))
        #expect(try await shared.repository.fetchWAL(store: "app-db", name: Self.segment) == contents)
        // Timeline history and backup-label files are archived too, and come back through wal-fetch.
        let history = first.appendingPathComponent("00000002.history"), label = first.appendingPathComponent("\(Self.segment).00000028.backup")
        try Data("1\t0/7000000\tbefore 2026-12-01 00:00:00+00\n".utf8).write(to: history)
        try Data("START WAL LOCATION: 0/7000028 (file \(Self.segment))\n".utf8).write(to: label)
        for file in [history, label] {
            let pushed = try await CommandLineTests.run(push + [file.path])
            #expect(pushed.status == 0, "\(file.lastPathComponent): \(pushed.stderr)")
            let back = second.appendingPathComponent("fetched-" + file.lastPathComponent)
            let fetched = try await CommandLineTests.run(["postgres", "wal-fetch", "--store", "app-db"] + shared.arguments + [file.lastPathComponent, back.path])
            #expect(fetched.status == 0 && FileManager.default.contents(atPath: back.path) == FileManager.default.contents(atPath: file.path), "\(fetched.stderr)")
        }
        let missing = try await CommandLineTests.run(push + [shared.directory.appendingPathComponent("nope/\(Self.segment)").path])
        #expect(missing.status == 1)
        let badName = try await CommandLineTests.run(push + [shared.passwordFile.path])
        #expect(badName.status == 2, "\(badName.stderr)")
    }

    @Test func walFetchExitCodesLetRecoveryTellNotArchivedFromBroken() async throws {
        let shared = try await SharedRepository(label: "walfetch")
        defer { shared.remove() }
        let contents = Data((0..<300_000).map { UInt8(truncatingIfNeeded: $0 / 7) })
        try await shared.repository.pushWAL(store: "app-db", name: Self.segment, contents: contents)
        let destination = shared.directory.appendingPathComponent("pg_wal/RECOVERYXLOG")
        try FileManager.default.createDirectory(at: destination.deletingLastPathComponent(), withIntermediateDirectories: true)
        let fetch = ["postgres", "wal-fetch", "--store", "app-db"]

        let found = try await CommandLineTests.run(fetch + shared.arguments + [Self.segment, destination.path])
        #expect(found.status == 0, "\(found.stderr)")
        #expect(FileManager.default.contents(atPath: destination.path) == contents)
        #expect(try FileManager.default.contentsOfDirectory(atPath: destination.deletingLastPathComponent().path) == ["RECOVERYXLOG"], "no temporary file left")

        let absent = shared.directory.appendingPathComponent("pg_wal/00000002.history")
        let notArchived = try await CommandLineTests.run(fetch + shared.arguments + ["00000002.history", absent.path])
        #expect(notArchived.status == 1)
        #expect(!FileManager.default.fileExists(atPath: absent.path))

        let wrongPassword = shared.directory.appendingPathComponent("wrong")
        try Data("not it".utf8).write(to: wrongPassword)
        let wrongKey = try await CommandLineTests.run(fetch + ["--repo", shared.location.path, "--password-file", wrongPassword.path, Self.segment, absent.path])
        #expect(wrongKey.status == 126, "\(wrongKey.stderr)")
        let noRepository = try await CommandLineTests.run(fetch + ["--repo", shared.directory.appendingPathComponent("none").path,
                                                                   "--password-file", shared.passwordFile.path, Self.segment, absent.path])
        #expect(noRepository.status == 126)
        let badUsage = try await CommandLineTests.run(fetch + shared.arguments + [Self.segment])
        #expect(badUsage.status == 126, "a restore_command typo must stop recovery, not end it")
        let badName = try await CommandLineTests.run(fetch + shared.arguments + ["../../config", absent.path])
        #expect(badName.status == 126)
        // A damaged object is a real error, not "not archived".
        let object = shared.location.appendingPathComponent("wal/app-db/\(Self.segment)")
        var sealed = try Data(contentsOf: object)
        sealed[sealed.count / 2] ^= 0x55
        try FileManager.default.removeItem(at: object)
        try sealed.write(to: object)
        let damaged = try await CommandLineTests.run(fetch + shared.arguments + [Self.segment, absent.path])
        #expect(damaged.status == 126)
        #expect(damaged.stderr.contains("damaged"))
    }
}
