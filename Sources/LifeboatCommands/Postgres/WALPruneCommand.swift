import ArgumentParser
import Foundation
import LifeboatConnectors
import LifeboatRepository

/// `lifeboat postgres wal-prune --store NAME`
struct WALPruneCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wal-prune",
        abstract: "Remove archived WAL that no remaining base backup of the store needs (run after `lifeboat prune`).",
        discussion: """
        Removes segments (and .partial/.backup files) numbered before the oldest physical base backup's start segment; keeps every .history file; removes nothing when the store has no base backup. `lifeboat prune` itself never touches archived WAL.
        Exit codes: 0 · 2 usage · 3/10/12 repository.

        Example:
          lifeboat prune -c lifeboat.yaml && lifeboat postgres wal-prune --store app-db -c lifeboat.yaml --dry-run
        """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var output: OutputOptions

    @Option(help: ArgumentHelp("The catalog store.", valueName: "name"))
    var store: String

    @Flag(help: "Show what would be removed; remove nothing.")
    var dryRun = false

    func run() async throws {
        let repo = try await repository.open()
        let connector = PostgresConnector(store: store, endpoint: PostgresEndpoint(host: "unused"))
        let report = try await connector.pruneWAL(in: repo, dryRun: dryRun)
        if output.json {
            try printJSON(report)
        } else if let oldest = report.oldestNeeded {
            print("\(dryRun ? "would remove" : "removed") \(report.removed.count) WAL file\(report.removed.count == 1 ? "" : "s") before \(oldest); kept \(report.kept)")
        } else {
            print("store \(store) has no base backup: kept all \(report.kept) WAL files")
        }
    }
}
