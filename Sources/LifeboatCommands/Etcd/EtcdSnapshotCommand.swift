import ArgumentParser
import Foundation
import LifeboatConnectors
import LifeboatCore
import LifeboatPlatform
import LifeboatRepository

/// `lifeboat etcd snapshot --store NAME`
struct EtcdSnapshotCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshot",
        abstract: "Stream an etcd snapshot into the repository.",
        discussion: """
        Takes the snapshot through the etcd v3 JSON gateway of the first endpoint in the catalog that answers (each is tried in turn), authenticating with the store's username and password when the catalog gives them. The stream goes straight into the repository; no temporary file. etcd's SHA-256 trailer is checked at the end: a snapshot that fails it, or stops early, is refused and no snapshot is recorded.

        The manifest records the revision, cluster and member ids, member count, key count (a count-only read of all keys) and source_time; `revision_exact` says whether the cluster was written to while the snapshot ran.

        Exit codes: 0 stored · 1 no endpoint answered, authentication refused, or the snapshot was damaged · 2 usage or catalog error · 10/11/12 repository errors (see docs/exit-codes.md).

        Example:
          lifeboat etcd snapshot --store fleet-etcd --catalog lifeboat.yaml --tag nightly
        """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var output: OutputOptions

    @Option(help: "The catalog's etcd store (default: the catalog's only etcd store).")
    var store: String?

    @Option(name: .customLong("tag"), help: "A tag for the snapshot (repeatable).")
    var tags: [String] = []

    struct Summary: Encodable {
        var id: String
        var store: String
        var kind: String
        var size: Int64
        var sha256: String
        var source: [String: String]
        var seconds: Double
    }

    func run() async throws {
        let started = Date()
        let (catalogStore, resolver) = try repository.catalogStore(store, kind: .etcd)
        let repo = try await repository.open(resolver: resolver)
        let progress = TransferProgress("snapshot", total: nil)
        let manifest = try await resolver.etcd(catalogStore).connector.backup(into: repo, tags: tags, progress: progress.update)
        progress.finish()
        let seconds = Date().timeIntervalSince(started)
        if output.json {
            try printJSON(Summary(id: manifest.id, store: manifest.store, kind: manifest.kind, size: manifest.size, sha256: manifest.sha256,
                                  source: manifest.source, seconds: seconds))
        } else {
            print(manifest.id)
            let facts = EtcdFacts(manifest)
            let revision = facts.revision.map(String.init) ?? "?"
            printError("stored etcd snapshot \(manifest.id.prefix(8)) of \(manifest.store): \(formatBytes(manifest.size)), revision \(revision), "
                       + "\(facts.keyCount.map(String.init) ?? "?") keys, cluster \(facts.clusterID ?? "?") via \(facts.endpoint ?? "?"), \(String(format: "%.1f", seconds)) s")
            if facts.revisionExact == false {
                printError("note: the cluster was written to during the snapshot (revision \(revision) → \(facts.revisionAfter.map(String.init) ?? "?")); the key count is approximate")
            }
        }
    }
}
