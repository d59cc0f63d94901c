import Foundation
import Testing

/// docs/repository-format.md §4: how a passphrase file becomes the passphrase's bytes — valid
/// UTF-8, a leading byte-order mark dropped, exactly one trailing `\n` removed (and `\r\n`, with
/// the defect below), no trimming and no Unicode normalisation. A second reader derives its key
/// from the same bytes.
@Suite struct PassphraseFileTests {
    typealias CLI = CommandLineTests

    @Test func aPassphraseFileLosesOneLineEndingAndALeadingByteOrderMarkAndNothingElse() async throws {
        let directory = try RepositoryCommandTests.scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let repository = directory.appendingPathComponent("repo")
        let passphrase = "caf\u{E9} horse"   // é precomposed (NFC)
        let created = try await CLI.run(["repo", "init"], environment: RepositoryCommandTests.environment(repository, password: passphrase))
        #expect(created.status == 0, "\(created.stderr)")

        /// `snapshots` with the passphrase read from a file holding exactly `bytes`; its exit status.
        func opens(_ bytes: [UInt8]) async throws -> Int32 {
            let file = directory.appendingPathComponent("passphrase-\(UUID().uuidString)")
            try Data(bytes).write(to: file)
            return try await CLI.run(["snapshots", "--password-file", file.path], environment: ["LIFEBOAT_REPOSITORY": repository.path]).status
        }
        let text = Array(passphrase.utf8)
        #expect(try await opens(text) == 0)
        #expect(try await opens(text + [0x0A]) == 0)
        // "\r\n" is one Character in Swift: the ending goes whole, the passphrase's last character stays.
        #expect(try await opens(text + [0x0D, 0x0A]) == 0, "a CRLF line ending is removed like a LF one")
        #expect(try await opens(text + [0x0D]) == 12, "a lone CR is part of the passphrase")
        #expect(try await opens([0xEF, 0xBB, 0xBF] + text + [0x0A]) == 0, "a leading UTF-8 byte-order mark is dropped")
        #expect(try await opens(text + [0x0A, 0x0A]) == 12, "only one line ending is removed")
        #expect(try await opens(text + [0x20, 0x0A]) == 12, "a trailing space is part of the passphrase")
        #expect(try await opens([0x20] + text) == 12, "so is a leading one")
        #expect(try await opens(Array("cafe\u{301} horse".utf8)) == 12, "no normalisation: the NFD spelling is another passphrase")
        #expect(try await opens(text + [0xFF]) == 2, "a file that is not UTF-8 is refused")
        #expect(try await opens([0x0A]) == 2, "an empty passphrase is refused")
    }
}
