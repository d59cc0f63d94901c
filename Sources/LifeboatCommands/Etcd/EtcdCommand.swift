import ArgumentParser
import Foundation
import LifeboatConnectors
import LifeboatCore

/// `lifeboat etcd …`: etcd stores of the catalog.
struct EtcdCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "etcd",
        abstract: "etcd stores: snapshots into the repository (restore with `lifeboat restore etcd`).",
        subcommands: [EtcdSnapshotCommand.self])
}
