import ArgumentParser
import Foundation
import LifeboatRepository

/// `lifeboat key …`: custody of the repository key.
struct KeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key",
        abstract: "Repository key custody: passphrases, and Shamir shares for break-glass recovery.",
        subcommands: [KeyAddCommand.self, KeyListCommand.self, KeyRemoveCommand.self, KeySplitCommand.self, KeyCombineCommand.self])
}

/// The second passphrase of `key add` and `key combine`.
struct NewPassphraseOptions: ParsableArguments {
    @Option(help: ArgumentHelp("File holding the new passphrase (default: $LIFEBOAT_NEW_PASSWORD).", valueName: "path"))
    var newPasswordFile: String?

    @Option(help: "A label for the new key, shown by `key list`.")
    var label = "added key"

    func passphrase() throws -> String {
        try readSecret(file: newPasswordFile, environment: "LIFEBOAT_NEW_PASSWORD", prompt: "new passphrase: ", what: "the new passphrase",
                       flag: "--new-password-file")
    }
}

struct KeyAddCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Add a passphrase that opens the repository.",
        discussion: """
        Example:
          lifeboat key add --new-password-file ./oncall.pass --label on-call
        """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var newKey: NewPassphraseOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let repo = try await repository.open()
        let id = try await repo.addKey(passphrase: try newKey.passphrase(), label: newKey.label)
        if output.json { try printJSON(["id": id]) } else { print("added key \(id.prefix(8)) (\(newKey.label))") }
    }
}

struct KeyListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List the repository's keys.",
        discussion: """
        Example:
          lifeboat key list --json
        """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var output: OutputOptions

    struct Entry: Encodable {
        var id: String
        var label: String
        var hostname: String
        var created: Date
        var current: Bool
    }

    func run() async throws {
        let repo = try await repository.open()
        let entries = try await repo.listKeys().map {
            Entry(id: $0.id, label: $0.file.label, hostname: $0.file.hostname, created: $0.file.created, current: $0.id == repo.openedWithKey)
        }
        if output.json {
            try printJSON(entries)
            return
        }
        var table = Table("ID", "LABEL", "HOST", "CREATED (UTC)", "")
        for entry in entries {
            table.add(String(entry.id.prefix(8)), entry.label, entry.hostname, entry.created.formatted(.iso8601), entry.current ? "(opened with)" : "")
        }
        print(table.render())
    }
}

struct KeyRemoveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove",
        abstract: "Remove a key; never the last one, nor the one you opened the repository with.",
        discussion: """
        Example:
          lifeboat key remove 1c9e44a0 --password-file ./admin.pass
        """)

    @OptionGroup var repository: RepositoryOptions

    @Argument(help: "The key's id, or a unique prefix of it.")
    var id: String

    func run() async throws {
        let repo = try await repository.open()
        let removed = try await repo.removeKey(id: id)
        print("removed key \(removed.prefix(8))")
    }
}

struct KeySplitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "split",
        abstract: "Split the repository's master key into Shamir shares, any THRESHOLD of which recover it.",
        discussion: """
        Prints one share per line. Give each to a different custodian and store them apart; anyone holding THRESHOLD of them can open the repository without a passphrase. Each share carries a checksum, the threshold and the repository id, so `key combine` detects a mistyped, missing or foreign share instead of producing a wrong key.

        Example:
          lifeboat key split --shares 5 --threshold 3
        """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var output: OutputOptions

    @Option(help: "How many shares to make (2-255).")
    var shares = 5

    @Option(help: "How many shares recover the key (2 to --shares).")
    var threshold = 3

    func validate() throws {
        guard 2 <= threshold, threshold <= shares, shares <= 255 else {
            throw ValidationError("need 2 ≤ --threshold ≤ --shares ≤ 255")
        }
    }

    func run() async throws {
        let repo = try await repository.open()
        let printable = try repo.splitMasterSecret(shares: shares, threshold: threshold).map(\.description)
        if output.json {
            try printJSON(["threshold": AnyEncodable(threshold), "shares": AnyEncodable(printable)])
        } else {
            printError("\(shares) shares, any \(threshold) of which open this repository; hand them to different people:")
            printable.forEach { print($0) }
        }
    }
}

struct KeyCombineCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "combine",
        abstract: "Break glass: recombine Shamir shares and add a new passphrase to the repository.",
        discussion: """
        Shares come as arguments or, one per line, on standard input. They are checked against the repository before anything is written: a wrong, mistyped, foreign or short set is refused. The recovered key is never printed; it is wrapped under the new passphrase instead.

        Example:
          printf '%s\\n' "$SHARE1" "$SHARE2" "$SHARE3" | lifeboat key combine --repo /srv/lifeboat --new-password-file ./new.pass
        """)

    @Option(name: [.customShort("r"), .customLong("repo")], help: ArgumentHelp("The repository (default: $LIFEBOAT_REPOSITORY).", valueName: "location"))
    var repositoryLocation: String?

    @OptionGroup var s3: S3Options

    @OptionGroup var newKey: NewPassphraseOptions
    @OptionGroup var output: OutputOptions

    @Argument(help: "The shares (lbshare1-…); read from standard input when none are given.")
    var shares: [String] = []

    func run() async throws {
        guard let location = repositoryLocation ?? ProcessInfo.processInfo.environment["LIFEBOAT_REPOSITORY"], !location.isEmpty else {
            throw CommandFailure(.usage, "no repository given: pass --repo or set LIFEBOAT_REPOSITORY")
        }
        let backend = try makeBackend(location: location, s3: s3)
        var texts = shares
        if texts.isEmpty {
            texts = (String(data: FileHandle.standardInput.readDataToEndOfFile(), encoding: .utf8) ?? "")
                .split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        let secret = try await Repository.combine(shares: texts, backend: backend)
        let repo = try await Repository.open(backend: backend, masterSecret: secret)
        let id = try await repo.addKey(passphrase: try newKey.passphrase(), label: newKey.label)
        if output.json { try printJSON(["id": id]) } else { print("shares accepted; added key \(id.prefix(8)) (\(newKey.label))") }
    }
}

/// Lets a heterogeneous dictionary be printed as JSON.
struct AnyEncodable: Encodable {
    let value: any Encodable
    init(_ value: any Encodable) { self.value = value }
    func encode(to encoder: any Encoder) throws { try value.encode(to: encoder) }
}
