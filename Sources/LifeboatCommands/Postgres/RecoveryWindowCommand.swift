import ArgumentParser
import Foundation
import LifeboatConnectors
import LifeboatCore
import LifeboatRepository
import LifeboatErrors

/// `lifeboat postgres recovery-window --store NAME`
struct RecoveryWindowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recovery-window",
        abstract: "Print the earliest and latest times a store can be restored to (base backups plus unbroken archived WAL).",
        discussion: """
        Per timeline, then per base backup and the timeline its WAL follows: the earliest instant (when the base backup finished, or when a later timeline began) and the latest (the last archived transaction reachable without a gap), and a missing segment if the archive has a gap. Every instant printed is one `restore postgres --time` reaches. Exit codes: 0 · 1 no physical backup · 2 usage.

        Example:
          lifeboat postgres recovery-window --store app-db --repo /srv/lifeboat --json
        """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var damaged: DamagedChoiceOptions
    @OptionGroup var output: OutputOptions

    @Option(help: ArgumentHelp("The catalog store.", valueName: "name"))
    var store: String

    func run() async throws {
        let repo = damaged.applied(to: try await repository.open())
        let connector = PostgresConnector(store: store, endpoint: PostgresEndpoint(host: "unused"))
        let window = try await connector.recoveryWindow(in: repo)
        if output.json {
            try printJSON(window)
            if window.bases.isEmpty { throw ExitCode(ExitStatus.failure.rawValue) }
            return
        }
        guard let earliest = window.earliest, let latest = window.latest else {
            throw CommandFailure(.failure, "store \(store) has no physical base backup; the recovery window is empty (\(window.archivedFiles) WAL files archived)")
        }
        print("earliest \(SourceTime.format(earliest))")
        print("latest   \(SourceTime.format(latest))")
        for line in window.timelines {
            print("timeline \(line.timeline): \(SourceTime.format(line.from)) … \(SourceTime.format(line.to))")
        }
        var table = Table("BASE", "TAKEN ON", "FOLLOWS", "FROM (UTC)", "TO (UTC)", "LAST SEGMENT", "GAP")
        for base in window.bases {
            table.add(String(base.snapshot.prefix(8)), "timeline \(base.timeline)", "timeline \(base.recoveryTimeline)",
                      SourceTime.format(base.from), SourceTime.format(base.to),
                      base.lastSegment ?? "-", base.missingSegment.map { "missing \($0)" } ?? "-")
        }
        print(table.render())
    }
}
