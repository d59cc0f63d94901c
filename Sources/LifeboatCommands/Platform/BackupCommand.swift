import ArgumentParser
import Foundation
import LifeboatCore
import LifeboatEngine
import LifeboatRepository

/// `lifeboat backup [STORE…]`
struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Back up the catalog's stores now, as one recovery point.",
        discussion: """
        With no store named, every store Lifeboat handles (postgres, openbao, etcd) is backed up.
        Stores are backed up dependents first, so that the OpenBao snapshot of a point is newer than
        the PostgreSQL data whose rows name its secrets. A store that fails does not stop the others:
        the point is then partial, the failures are listed, and the command exits 4.

        Example:
          lifeboat backup --catalog lifeboat.yaml
          lifeboat backup openbao --catalog lifeboat.yaml --tag reason:rotation
        """)

    @Argument(help: "Stores to back up (default: all that Lifeboat handles).")
    var stores: [String] = []

    @Option(help: "A tag for every snapshot of this point (repeatable), e.g. reason:rotation.")
    var tag: [String] = []

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let context = try await PlatformContext.open(repository)
        let backup = PlatformBackup(catalog: context.catalog, repository: context.repository, connectors: context.connectors)
        let json = output.json
        if stores.isEmpty {
            // Say what a whole-platform backup leaves out, so nobody mistakes it for everything.
            for store in context.catalog.stores where context.connectors[store.kind] == nil {
                printError("note: \(store.name) (\(store.kind.rawValue)) is not backed up by `lifeboat backup`: \(store.kind.isManual ? "restored by hand" : "no connector yet; put its data with `lifeboat put`")")
            }
        }
        let point = try await backup.run(stores: stores, tags: tag) { event in
            guard !json else { return }
            switch event {
            case .started(let store): printError("backing up \(store.name) (\(store.kind.rawValue))…")
            case .finished(let store, let manifest): printError("  \(store.name): snapshot \(manifest.id.prefix(8)), \(formatBytes(manifest.size))")
            case .failed(let store, let reason): printError("  \(store.name): FAILED: \(reason)")
            }
        }
        if json {
            try printJSON(point)
        } else {
            print(PointsCommand.describe(point))
        }
        if !point.isComplete {
            throw CommandFailure(.partial, "recovery point \(point.id.prefix(8)) is partial: \(point.failedStores.joined(separator: ", ")) failed")
        }
    }
}
