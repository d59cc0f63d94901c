import ArgumentParser
import Foundation
import LifeboatConnectors
import LifeboatCore
import LifeboatRepository

/// `lifeboat postgres backup --store NAME`
struct PostgresBackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Back up a PostgreSQL store into the repository: a logical dump or a physical base backup.",
        discussion: """
        logical: roles (pg_dumpall --globals-only) and every database (pg_dump -Fc under an exported snapshot), streamed as one snapshot.
        physical: pg_basebackup (tar, WAL included, fast checkpoint) with its backup_manifest, for point-in-time recovery with archived WAL.
        The default comes from the store's `method` in the catalog ("basebackup" or "physical" → physical, else logical).
        Prints the snapshot id. Exit codes: 0 stored · 1 the server or a tool failed (nothing stored) · 2 usage or catalog error · 10/11/12 repository.

        Example:
          lifeboat postgres backup --store app-db --catalog lifeboat.yaml --method physical --tag nightly
        """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var postgres: PostgresStoreOptions
    @OptionGroup var output: OutputOptions

    @Option(help: "logical or physical (default: from the catalog's method).")
    var method: PostgresBackupMethod?

    @Option(name: .customLong("tag"), help: "A tag for the snapshot (repeatable).")
    var tags: [String] = []

    @Option(help: "The recovery point this backup belongs to.")
    var point: String?

    func run() async throws {
        let connector = try postgres.connector(repository)
        let repo = try await repository.open()
        let chosen = method ?? connector.defaultMethod
        let progress = TransferProgress("backed up", total: nil)
        let manifest = try await connector.backup(into: repo, point: point, tags: tags, method: chosen, progress: progress.update)
        progress.finish()
        let facts = PostgresFacts(manifest)
        if output.json {
            try printJSON(["id": manifest.id, "method": chosen.rawValue, "size": String(manifest.size),
                           "source_time": facts.sourceTime.map(SourceTime.format) ?? ""])
        } else {
            print(manifest.id)
            var summary = "stored a \(chosen.rawValue) backup of \(connector.store): \(formatBytes(manifest.size)) as snapshot \(manifest.id.prefix(8))"
            if let time = facts.sourceTime { summary += ", data as of \(SourceTime.format(time))" }
            if let end = facts.endLSN { summary += ", WAL \(facts.startLSN.map(\.description) ?? "?")…\(end) on timeline \(facts.timeline.map(String.init) ?? "?")" }
            printError(summary)
        }
    }
}

extension PostgresBackupMethod: ExpressibleByArgument {}
