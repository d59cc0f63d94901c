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
        case .production(let force):
            if let refusal = Self.productionRefusal(request.store) { "refused: \(refusal)" } else {
                "etcdutl snapshot restore of \(request.snapshot.id.prefix(8)) (revision \(request.snapshot.source["revision"] ?? "?")) into members "
                    + Self.layout(request.store).map { "\($0.name) (\($0.dataDirectory))" }.joined(separator: ", ")
                    + " (every member must be stopped" + (force ? "; non-empty data directories are moved aside: --force" : "; refused if a data directory is not empty: --force")
                    + "), started on their peer URLs and compared with the snapshot, then stopped for your service manager to start"
            }
        }
    }

    static func layout(_ store: Store) -> [EtcdMemberLayout] {
        if case .etcd(let connection) = store.connection { connection.members } else { [] }
    }

    /// Why a production restore of this store cannot run here, or nil when it can.
    static func productionRefusal(_ store: Store) -> String? {
        let members = layout(store)
        guard !members.isEmpty else {
            return "an etcd restore recreates its members' data directories, and store '\(store.name)' names none: set connection.members (name, peer_url, data_directory), or run `lifeboat restore etcd --store \(store.name) …` on each member's host and resume after this step"
        }
        // The gate starts the restored members to compare them with the snapshot: they must be able to listen here.
        if let remote = members.first(where: { URL(string: $0.peerURL)?.host.map { !["127.0.0.1", "localhost"].contains($0) } ?? true }) {
            return "member \(remote.name)'s peer URL \(remote.peerURL) is not on this machine's loopback, so its restore cannot be verified here: run `lifeboat restore etcd` on each member's host and resume after this step"
        }
        return nil
    }

    func restore(_ request: StoreRestoreRequest) async throws -> any RestoredStore {
        let members: [EtcdMember], target: EtcdRestoreTarget, directory: URL, handedOver: Bool
        switch request.destination {
        case .scratch(let scratch):
            directory = scratch
            members = try LocalEtcd.plan(members: 1, in: scratch)
            target = EtcdRestoreTarget(members: members, clusterToken: "lifeboat-drill")
            handedOver = false
        case .production(let force):
            if let refusal = Self.productionRefusal(request.store) { throw EngineError(.invalidArgument, refusal) }
            if case .etcd(let connection) = request.store.connection,
               let running = connection.endpoints.first(where: { endpoint in
                   URL(string: endpoint).flatMap { url in url.host.map { tcpEndpointAccepts(host: $0, port: url.port ?? 2379) } } ?? false }) {
                throw EngineError(.invalidArgument, "etcd still answers at \(running): stop every member before their data directories are replaced; nothing was changed")
            }
            members = Self.layout(request.store).map { EtcdMember(name: $0.name, peerURL: $0.peerURL, dataDirectory: $0.dataDirectory) }
            let token = if case .etcd(let connection) = request.store.connection { connection.clusterToken } else { String?.none }
            target = EtcdRestoreTarget(members: members, clusterToken: token ?? "lifeboat-restored", force: force)
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("lifeboat-etcd-\(UUID().uuidString.prefix(8))", isDirectory: true)
            handedOver = true
        }
        let report: EtcdRestoreReport, cluster: LocalEtcd
        do {
            report = try await EtcdConnector.restore(request.snapshot, from: request.repository, to: target, scratch: directory)
            cluster = try await LocalEtcd.start(restored: members, logDirectory: directory)
        } catch {
            if handedOver { try? FileManager.default.removeItem(at: directory) }
            throw error
        }
        var username: String?, password: String?
        if case .etcd(let connection) = request.store.connection {
            username = connection.username
            password = try connection.password.map { try resolve($0, relativeTo: catalogDirectory) }
        }
        return RestoredEtcd(cluster: cluster, report: report, manifest: request.snapshot, username: username, password: password,
                            handedOver: handedOver ? directory : nil)
    }
}

/// A restored etcd member started for the gate.
struct RestoredEtcd: RestoredStore {
    let cluster: LocalEtcd
    let report: EtcdRestoreReport
    let manifest: SnapshotManifest
    let username: String?
    let password: String?
    /// Production members verified by a temporary start: stopped on release for the service manager (the logs' directory is removed).
    var handedOver: URL?

    var target: String {
        guard handedOver != nil else { return cluster.endpoints.joined(separator: ",") }
        return "data directories " + report.members.map(\.dataDirectory).joined(separator: ", ") + ", restored and checked, then stopped: start the members on them"
    }

    func check(_ checks: [VerifyCheck]) async throws -> [CheckResult] {
        let restored = try await EtcdConnector.verifyRestored(report, manifest: manifest, endpoints: cluster.endpoints, username: username, password: password)
        return restored + (try await EtcdConnector.runChecks(checks, against: cluster.gateway(username: username, password: password)))
    }

    func release() async {
        await cluster.stop()
        if let handedOver { try? FileManager.default.removeItem(at: handedOver) }
    }
}
