import ArgumentParser
import Foundation
import LifeboatCore
import LifeboatEngine
import LifeboatPlatform
import LifeboatRepository

/// `lifeboat backup [STORE…]`
struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Back up the catalog's stores now, as one recovery point.",
        discussion: """
        With no store named, every store Lifeboat handles (postgres, openbao, etcd, s3, files) is backed up.
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
        let operations = PlatformOperations(try await repository.platformContext())
        let json = output.json
        if stores.isEmpty {
            // Say what a whole-platform backup leaves out, so nobody mistakes it for everything.
            for (store, why) in operations.storesNotBackedUp() {
                printError("note: \(store.name) (\(store.kind.rawValue)) is not backed up by `lifeboat backup`: \(why)")
            }
        }
        let point = try await operations.backup(stores: stores, tags: tag) { event in
            guard !json else { return }
            switch event {
            case .started(let store): printError("backing up \(store.name) (\(store.kind.rawValue))…")
            case .finished(let store, let manifest):
                // A bucket's or a tree's snapshot: its stream is the index; say how much data it holds.
                let bytes = manifest.contentChunks == nil ? manifest.size : manifest.source["bytes"].flatMap(Int64.init) ?? manifest.size
                printError("  \(store.name): snapshot \(manifest.id.prefix(8)), \(formatBytes(bytes))")
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
