import ArgumentParser
import Foundation
import LifeboatRepository

/// `lifeboat repo …`: repository-wide operations.
struct RepoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "repo",
        abstract: "Create a repository; rebuild its index.",
        subcommands: [RepoInitCommand.self, RepoIndexCommand.self])
}

/// `lifeboat repo index …`
struct RepoIndexCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "index",
        abstract: "The repository's chunk index.",
        subcommands: [RepoIndexRebuildCommand.self])
}

struct RepoIndexRebuildCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rebuild",
        abstract: "Rebuild the chunk index from the chunks the repository holds.",
        discussion: """
        Lists data/ once and replaces every index object (damaged ones included) with objects naming exactly the chunks stored, under the exclusive lock (no backup runs meanwhile). Backups consult the index instead of listing data/; they never trust it (every reused chunk is read back), so a stale or damaged index costs speed, never data. Run it when `lifeboat verify` reports an index problem, or once on a repository written before the index existed (the first backup there indexes it too). `lifeboat prune` rewrites the index as well.

        Example:
          lifeboat repo index rebuild --repo /srv/lifeboat
        """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let repo = try await repository.open()
        let report = try await repo.rebuildIndex()
        if output.json {
            try printJSON(["chunks": report.chunks, "objects_written": report.objectsWritten, "objects_removed": report.objectsRemoved])
        } else {
            print("index rebuilt: \(report.chunks) chunks in \(report.objectsWritten) index objects (replaced \(report.objectsRemoved))")
        }
    }
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
        let fromCatalog = repository.catalogRepository(try repository.storeResolver(showWarnings: false))
        let backend = try repository.backend(fromCatalog)
        let created = try await Repository.initialize(backend: backend, passphrase: try repository.passphrase(fromCatalog), label: label)
        if output.json {
            try printJSON(["id": created.config.id, "location": backend.location, "key": created.openedWithKey ?? ""])
        } else {
            print("created repository \(created.config.id.prefix(8)) at \(backend.location)")
        }
    }
}
