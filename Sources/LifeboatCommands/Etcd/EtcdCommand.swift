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

/// A catalog's etcd store, its resolved password, and the directory relative secret paths start from.
struct CatalogEtcdStore {
    var store: Store
    var password: String?

    /// `name` from the catalog at `path`; nil `name` picks the catalog's only etcd store.
    static func load(catalog path: String?, name: String?) throws -> CatalogEtcdStore {
        guard let path else {
            throw CommandFailure(.usage, "a catalog is needed to find the etcd store: pass --catalog or set LIFEBOAT_CATALOG")
        }
        let catalog = try CatalogLoader.load(contentsOf: path).catalog
        let etcdStores = catalog.stores.filter { $0.kind == .etcd }
        let store: Store
        if let name {
            guard let found = catalog.store(named: name) else {
                throw CommandFailure(.usage, "\(path) has no store named \(name) (its etcd stores: \(etcdStores.map(\.name).joined(separator: ", ")))")
            }
            guard found.kind == .etcd else { throw CommandFailure(.usage, "store \(name) is of kind \(found.kind.rawValue), not etcd") }
            store = found
        } else {
            guard etcdStores.count == 1 else {
                throw CommandFailure(.usage, "name the etcd store with --store (the catalog has \(etcdStores.count): \(etcdStores.map(\.name).joined(separator: ", ")))")
            }
            store = etcdStores[0]
        }
        guard case .etcd(let connection) = store.connection else {
            throw CommandFailure(.usage, "store \(store.name) has no connection in the catalog (etcd needs `endpoints`)")
        }
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent()
        return CatalogEtcdStore(store: store, password: try connection.password.map { try resolve($0, relativeTo: directory) })
    }

    var username: String? {
        if case .etcd(let connection) = store.connection { return connection.username }
        return nil
    }
}

extension EtcdError {
    /// The documented exit status: 2 when the command was not run as asked (an incoherent target,
    /// a snapshot of another kind), 3 for a snapshot that fails its own checksum (in the repository,
    /// or streamed from etcd at backup: as for an OpenBao archive), 1 otherwise — a guard that
    /// refused a non-empty data directory included, as for PostgreSQL.
    func commandFailure() -> CommandFailure {
        let status: ExitStatus = switch code {
        case .invalidTarget, .wrongSnapshot: .usage
        case .dataDirectoryNotEmpty: .failure
        case .damagedSnapshot: .damaged
        case .unreachable, .authentication, .server, .tool, .verification: .failure
        }
        return CommandFailure(status, description)
    }
}

/// Runs `body`, turning etcd and tool errors into documented exit statuses.
func mappingEtcdErrors<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as EtcdError {
        throw error.commandFailure()
    } catch let error as ToolError {
        throw CommandFailure(.failure, error.description)
    }
}
