import ArgumentParser
import Foundation
import LifeboatCore
import LifeboatErrors
import LifeboatRepository

/// `lifeboat snapshots`
struct SnapshotsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshots",
        abstract: "List the snapshots in the repository, oldest first.",
        discussion: """
        A snapshot whose manifest is damaged is reported on stderr and the command exits 3 (7 when no manifest is damaged but the storage failed to hand one over: try again).

        Example:
          lifeboat snapshots --store postgres-dump --json
        """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var output: OutputOptions

    @Option(help: "Only this store or artefact.")
    var store: String?

    @Option(help: "Only snapshots with this tag.")
    var tag: String?

    struct Entry: Encodable {
        var id: String
        var store: String
        var kind: String
        var tags: [String]
        var hostname: String
        var started: Date
        var finished: Date
        var size: Int64
        var sha256: String
        var chunks: Int
        var source: [String: String]
        var point: String?
    }

    func run() async throws {
        let repo = try await repository.open()
        let listing = try await repo.snapshots()
        let shown = listing.manifests.filter { (store == nil || $0.store == store) && (tag == nil || $0.tags.contains(tag!)) }
        if output.json {
            try printJSON(shown.map {
                Entry(id: $0.id, store: $0.store, kind: $0.kind, tags: $0.tags, hostname: $0.hostname, started: $0.started,
                      finished: $0.finished, size: $0.size, sha256: $0.sha256, chunks: $0.chunks.count, source: $0.source, point: $0.point)
            })
        } else {
            var table = Table("ID", "STORE", "KIND", "FINISHED (UTC)", "SIZE", "TAGS")
            for manifest in shown {
                table.add(String(manifest.id.prefix(8)), manifest.store, manifest.kind, RepositoryTimeText.format(manifest.finished),
                          formatBytes(manifest.size), manifest.tags.joined(separator: ","))
            }
            print(table.render())
            print("\(shown.count) snapshot\(shown.count == 1 ? "" : "s")")
        }
        for problem in listing.unreadable { printProblem(problem) }
        if let status = ExitStatus(problems: listing.unreadable) { throw ExitCode(status.rawValue) }
    }
}
