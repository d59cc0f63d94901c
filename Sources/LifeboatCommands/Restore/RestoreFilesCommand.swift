import ArgumentParser
import Foundation
import LifeboatConnectors
import LifeboatCore
import LifeboatPlatform
import LifeboatRepository

/// `lifeboat restore files STORE [--snapshot ID] [--to DIR] [--force]`
struct RestoreFilesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "files",
        abstract: "Restore a files store's directory trees from a snapshot, then read every file back against it.",
        discussion: """
        Recreates regular files, directories and symlinks with their permissions, modification times and (as root) owners, at the snapshot's own paths or under --to (the directory itself for one tree; DIR/<name> for several). A non-empty target directory is refused unless --force, which moves it aside (DIR.lifeboat-previous-<time>, never deleted) and puts it back if the restore fails. Then the gate: every entry's type and mode, every file's size and SHA-256 read back against the snapshot, and the store's `file` checks.
        Exit codes: 0 restored and every check passed · 1 refused, the restore failed, or a check failed · 2 usage · 3 the snapshot is damaged.

        Examples:
          lifeboat restore files nats-jetstream -c lifeboat.yaml --force
          lifeboat restore files nats-jetstream -c lifeboat.yaml --snapshot 3fa9c2d1 --to /srv/restored/jetstream
        """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var damaged: DamagedChoiceOptions
    @OptionGroup var output: OutputOptions

    @Argument(help: ArgumentHelp("The catalog store (kind files).", valueName: "store"))
    var store: String

    @Option(help: "The snapshot: an id prefix, or latest.")
    var snapshot = "latest"

    @Option(help: ArgumentHelp("Restore under this directory instead of the snapshot's own paths.", valueName: "dir"))
    var to: String?

    @Flag(help: "Move a non-empty target directory aside and restore in its place.")
    var force = false

    struct Outcome: Encodable {
        var restore: FilesRestoreReport
        var checks: [CheckResult]
    }

    func run() async throws {
        let (catalogStore, _) = try resolveCatalogStore(store, kind: .files, repository: repository)
        let repo = damaged.applied(to: try await repository.open())
        let manifest = try await repo.resolveSnapshot(snapshot, store: store)
        guard let facts = FilesFacts(manifest) else {
            throw CommandFailure(.usage, "snapshot \(manifest.id.prefix(8)) is a \(manifest.kind) snapshot, not a files snapshot of \(store)")
        }
        let base = to.map { URL(fileURLWithPath: $0, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath)).standardizedFileURL.path }
        let destinations = try FilesConnector.destinations(for: facts.roots, to: base)
        let report = try await FilesConnector.restore(manifest, from: repo, destinations: destinations, force: force)
        let checks = try await FilesConnector.runGate(manifest, in: repo, destinations: destinations, checks: catalogStore.verify)
        if output.json {
            try printJSON(Outcome(restore: report, checks: checks))
        } else {
            print("restored snapshot \(report.snapshot.prefix(8)): \(report.files) files (\(report.bytes) bytes), \(report.entries) entries into \(report.destinations.joined(separator: ", ")) in \(String(format: "%.1f", report.seconds)) s")
            if !report.setAside.isEmpty { print("the previous contents were moved to \(report.setAside.joined(separator: ", "))") }
            if !report.ownershipRestored { print("not running as root: the files belong to the user who ran the restore, not their recorded owners") }
            for check in checks { print("\(check.passed ? "ok  " : "FAIL") \(check.check): \(check.detail)") }
        }
        if checks.contains(where: { !$0.passed }) {
            throw CommandFailure(.failure, "\(checks.filter { !$0.passed }.count) check(s) failed after the restore")
        }
    }
}
