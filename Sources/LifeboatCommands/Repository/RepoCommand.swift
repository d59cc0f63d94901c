import ArgumentParser
import Foundation
import LifeboatRepository

/// `lifeboat repo …`: repository-wide operations.
struct RepoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "repo",
        abstract: "Create a repository.",
        subcommands: [RepoInitCommand.self])
}

struct RepoInitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create an encrypted repository protected by a passphrase.",
        discussion: """
        Refuses a location that already holds a repository. Keep the passphrase (and ideally Shamir shares of the key: `lifeboat key split`) somewhere that survives the disaster you are preparing for.

        Example:
          LIFEBOAT_PASSWORD=$(cat /run/secrets/lifeboat) lifeboat repo init --repo /srv/lifeboat
        """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var output: OutputOptions

    @Option(help: "A label for the first key, shown by `key list`.")
    var label = "initial key"

    func run() async throws {
        let backend = try repository.backend()
        let created = try await Repository.initialize(backend: backend, passphrase: try repository.passphrase(), label: label)
        if output.json {
            try printJSON(["id": created.config.id, "location": backend.location, "key": created.openedWithKey ?? ""])
        } else {
            print("created repository \(created.config.id.prefix(8)) at \(backend.location)")
        }
    }
}
