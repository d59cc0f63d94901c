import ArgumentParser
import Foundation
import LifeboatConnectors
import LifeboatRepository

/// `lifeboat postgres wal-push --store NAME %p` — PostgreSQL's archive_command.
struct WALPushCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wal-push",
        abstract: "Archive one WAL file into the repository (use as PostgreSQL's archive_command).",
        discussion: """
        Exits 0 only once the file is durably stored. Pushing the same file again exits 0; a different file under an already archived name is refused (exit 1) and nothing is overwritten. Segments, .partial, .history and .backup files are accepted.

        Example (postgresql.conf):
          archive_mode = on
          archive_command = '/usr/local/bin/lifeboat postgres wal-push --store app-db --repo /srv/lifeboat --password-file /etc/lifeboat/passphrase %p'
        """)

    @OptionGroup var repository: RepositoryOptions

    @Option(help: ArgumentHelp("The catalog store the WAL belongs to.", valueName: "name"))
    var store: String

    @Argument(help: "The WAL file (%p: relative to the data directory, where PostgreSQL runs the command).")
    var path: String

    func run() async throws {
        let name = URL(fileURLWithPath: path).lastPathComponent
        guard let contents = FileManager.default.contents(atPath: path) else {
            throw CommandFailure(.failure, "cannot read \(path)")
        }
        let repo = try await repository.open()
        let outcome = try await repo.pushWAL(store: store, name: name, contents: contents)
        if outcome == .alreadyPresent { printError("lifeboat: \(name) was already archived with the same contents") }
    }
}
