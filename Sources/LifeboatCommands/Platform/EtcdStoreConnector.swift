import Foundation
import LifeboatConnectors
import LifeboatCore
import LifeboatEngine
import LifeboatRepository

/// The etcd connector as the engine sees it.
struct EtcdStoreConnector: StoreConnector {
    /// Relative secret-file references resolve against the catalog's directory.
    let catalogDirectory: URL

    func connector(_ store: Store) throws -> EtcdConnector {
        guard case .etcd(let connection) = store.connection else { return try EtcdConnector(store: store) }
        return try EtcdConnector(store: store, password: try connection.password.map { try resolve($0, relativeTo: catalogDirectory) })
    }

    func backup(_ store: Store, into repository: Repository, point: String, tags: [String]) async throws -> SnapshotManifest {
        try await connector(store).backup(into: repository, point: point, tags: tags)
    }

    /// Only snapshot times: no continuous archive.
    func canRestore(_ store: Store, to instant: Date, in repository: Repository) async throws -> Bool { false }

    func describe(_ request: StoreRestoreRequest) -> String {
        switch request.destination {
        case .scratch(let directory):
            "etcdutl snapshot restore of \(request.snapshot.id.prefix(8)) (revision \(request.snapshot.source["revision"] ?? "?")) into a new one-member cluster under \(directory.path), started and compared with the snapshot"
        case .production:
            "refused: an etcd restore needs new data directories; run `lifeboat restore etcd --store \(request.store.name) --snapshot \(request.snapshot.id.prefix(8)) --data-dir …`, start the members, then resume after this step"
        }
    }

    func restore(_ request: StoreRestoreRequest) async throws -> any RestoredStore {
        guard case .scratch(let directory) = request.destination else {
            throw EngineError(.invalidArgument, describe(request))
        }
        let members = try LocalEtcd.plan(members: 1, in: directory)
        let report = try await EtcdConnector.restore(
            request.snapshot, from: request.repository, to: EtcdRestoreTarget(members: members, clusterToken: "lifeboat-drill"), scratch: directory)
        let cluster = try await LocalEtcd.start(restored: members, logDirectory: directory)
        var username: String?, password: String?
        if case .etcd(let connection) = request.store.connection {
            username = connection.username
            password = try connection.password.map { try resolve($0, relativeTo: catalogDirectory) }
        }
        return RestoredEtcd(cluster: cluster, report: report, manifest: request.snapshot, username: username, password: password)
    }
}

/// A restored etcd member started for the gate.
struct RestoredEtcd: RestoredStore {
    let cluster: LocalEtcd
    let report: EtcdRestoreReport
    let manifest: SnapshotManifest
    let username: String?
    let password: String?

    var target: String { cluster.endpoints.joined(separator: ",") }

    func check(_ checks: [VerifyCheck]) async throws -> [CheckResult] {
        let restored = try await EtcdConnector.verifyRestored(report, manifest: manifest, endpoints: cluster.endpoints, username: username, password: password)
        return restored + (try await EtcdConnector.runChecks(checks, against: cluster.gateway(username: username, password: password)))
    }

    func release() async { await cluster.stop() }
}
