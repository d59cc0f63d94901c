import Foundation
import LifeboatConnectors
import LifeboatCore
import LifeboatEngine
import LifeboatRepository

/// The etcd connector as the engine sees it; restores run `EtcdRestoreProcedure`.
public struct EtcdStoreConnector: StoreConnector {
    let resolver: StoreResolver

    public init(resolver: StoreResolver) { self.resolver = resolver }

    public func backup(_ store: Store, into repository: Repository, point: String, tags: [String]) async throws -> SnapshotManifest {
        try await resolver.etcd(store).connector.backup(into: repository, point: point, tags: tags)
    }

    /// The cluster's members against the catalog's `members` (when it lists them): a member added,
    /// removed or moved since the catalog was written would be lost or misplaced by a restore.
    public func coverage(_ store: Store) async -> [String]? {
        guard case .etcd(let connection)? = store.connection, !connection.members.isEmpty,
              let live = try? await resolver.etcd(store).connector.gateway.connect().members() else { return nil }
        var problems: [String] = []
        let byName = Dictionary(live.compactMap { member in member.name.map { ($0, member) } }, uniquingKeysWith: { a, _ in a })
        for member in connection.members {
            guard let running = byName[member.name] else {
                problems.append("member \(member.name) is in the catalog but not in the cluster")
                continue
            }
            if let peers = running.peerURLs, !peers.contains(member.peerURL) {
                problems.append("member \(member.name) listens for peers on \(peers.joined(separator: ", ")), the catalog says \(member.peerURL)")
            }
        }
        let named = Set(connection.members.map(\.name))
        for member in live where !named.contains(member.name ?? "") {
            problems.append("member \(member.name ?? member.id) is in the cluster but not in the catalog: a restore would not recreate it")
        }
        return problems
    }

    /// Only snapshot times: no continuous archive.
    public func canRestore(_ store: Store, to instant: Date, in repository: Repository) async throws -> Bool { false }

    public func describe(_ request: StoreRestoreRequest) -> String {
        switch request.destination {
        case .scratch(let directory):
            "etcdutl snapshot restore of \(request.snapshot.id.prefix(8)) (revision \(EtcdFacts(request.snapshot).revision.map(String.init) ?? "?")) into a new one-member cluster under \(directory.path), started and compared with the snapshot"
        case .production(let force):
            if let refusal = Self.productionRefusal(request.store) { "refused: \(refusal)" } else {
                "etcdutl snapshot restore of \(request.snapshot.id.prefix(8)) (revision \(EtcdFacts(request.snapshot).revision.map(String.init) ?? "?")) into members "
                    + Self.layout(request.store).map { "\($0.name) (\($0.dataDirectory))" }.joined(separator: ", ")
                    + " (every member must be stopped" + (force ? "; non-empty data directories are moved aside: --force" : "; refused if a data directory is not empty: --force")
                    + "), started on their peer URLs and compared with the snapshot, then stopped for your service manager to start"
            }
        }
    }

    public func preflight(_ request: StoreRestoreRequest) async -> [String] {
        guard case .production(let force) = request.destination else { return [] }
        if let refusal = Self.productionRefusal(request.store) { return [refusal] }
        return Self.procedure(request, target: EtcdRestoreTarget(members: Self.layout(request.store), clusterToken: "lifeboat-restored", force: force),
                              access: nil).guards()
    }

    /// The one etcd restore procedure for this request.
    static func procedure(_ request: StoreRestoreRequest, target: EtcdRestoreTarget, access: EtcdStoreAccess?) -> EtcdRestoreProcedure {
        let endpoints = if case .production = request.destination, case .etcd(let connection)? = request.store.connection { connection.endpoints } else { [String]() }
        return EtcdRestoreProcedure(manifest: request.snapshot, repository: request.repository, target: target, clientEndpoints: endpoints,
                                    username: access?.username, password: access?.password)
    }

    public static func layout(_ store: Store) -> [EtcdMember] {
        if case .etcd(let connection) = store.connection { connection.members } else { [] }
    }

    /// Why a production restore of this store cannot run here, or nil when it can.
    public static func productionRefusal(_ store: Store) -> String? {
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

    public func restore(_ request: StoreRestoreRequest) async throws -> any RestoredStore {
        let access = try resolver.etcd(request.store)
        switch request.destination {
        case .scratch(let scratch):
            let members = try LocalEtcd.plan(members: 1, in: scratch)
            let procedure = Self.procedure(request, target: EtcdRestoreTarget(members: members, clusterToken: "lifeboat-drill"), access: access)
            let report = try await procedure.restore(scratch: scratch)
            return try await procedure.start(report, logDirectory: scratch, removeLogs: false)
        case .production(let force):
            if let refusal = Self.productionRefusal(request.store) { throw PlatformError(.refused, object: request.store.name, refusal) }
            let token = if case .etcd(let connection)? = request.store.connection { connection.clusterToken } else { String?.none }
            let procedure = Self.procedure(request, target: EtcdRestoreTarget(members: Self.layout(request.store), clusterToken: token ?? "lifeboat-restored", force: force),
                                           access: access)
            let work = FileManager.default.temporaryDirectory.appendingPathComponent("lifeboat-etcd-\(UUID().uuidString.prefix(8))", isDirectory: true)
            let report: EtcdRestoreReport
            do {
                report = try await procedure.restore(scratch: work)
            } catch {
                try? FileManager.default.removeItem(at: work)
                throw error
            }
            var restored = try await procedure.start(report, logDirectory: work, removeLogs: true)
            restored.handedOver = true
            return restored
        }
    }
}
