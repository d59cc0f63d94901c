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

    /// Every member must be down before its data directory is replaced: each client endpoint and
    /// each peer URL must refuse connections. "Cannot tell" (a name that does not resolve) refuses.
    static func requireStopped(_ store: Store, members: [EtcdMember]) throws {
        if let first = runningMembers(store, members: members).first { throw EngineError(.invalidArgument, first) }
    }

    /// One problem per client endpoint or peer URL that accepts connections, or cannot be probed.
    static func runningMembers(_ store: Store, members: [EtcdMember]) -> [String] {
        guard case .etcd(let connection) = store.connection else { return [] }
        return (connection.endpoints + members.map(\.peerURL)).compactMap { address in
            guard let url = URL(string: address), let host = url.host else { return nil }
            switch probeTCPEndpoint(host: host, port: url.port ?? 2379) {
            case .refused: return nil
            case .accepts: return "etcd still answers at \(address): stop every member before their data directories are replaced; nothing was changed"
            case .unknown(let why): return "cannot tell whether the etcd member at \(address) is stopped (\(why)); nothing was changed"
            }
        }
    }

    func preflight(_ request: StoreRestoreRequest) async -> [String] {
        guard case .production(let force) = request.destination else { return [] }
        if let refusal = Self.productionRefusal(request.store) { return [refusal] }
        let members = Self.layout(request.store)
        var problems = Self.runningMembers(request.store, members: members)
        if !force {
            for member in members {
                if let entries = try? FileManager.default.contentsOfDirectory(atPath: member.dataDirectory), !entries.isEmpty {
                    problems.append("the data directory \(member.dataDirectory) of member \(member.name) is not empty: the restore refuses without --force (which moves it aside)")
                }
            }
        }
        return problems
    }

    /// Run as root, the restored directories would belong to root: give each the owner of the data
    /// it replaced, so the service that runs etcd (often as its own user) can open it.
    static func giveOwnership(of report: EtcdRestoreReport) async throws {
        guard geteuid() == 0 else { return }
        for previous in report.setAside {
            guard let range = previous.range(of: ".lifeboat-previous-") else { continue }
            let original = String(previous[..<range.lowerBound])
            _ = try await ExternalTool.locate("chown").run(["-R", "--reference=\(previous)", original]).check("chown")
        }
    }

    /// Removes what a failed restore wrote and moves the previous data back; says where things are.
    static func putBack(_ report: EtcdRestoreReport) -> String {
        let fileManager = FileManager.default
        var stuck: [String] = []
        for member in report.members { try? fileManager.removeItem(atPath: member.dataDirectory) }
        for previous in report.setAside {
            guard let range = previous.range(of: ".lifeboat-previous-") else { continue }
            do { try fileManager.moveItem(atPath: previous, toPath: String(previous[..<range.lowerBound])) } catch { stuck.append(previous) }
        }
        if stuck.isEmpty { return "the restored data was removed and the previous data directories put back" }
        return "the restored data was removed; the previous data could not be moved back and is intact at " + stuck.joined(separator: ", ")
    }

    static func layout(_ store: Store) -> [EtcdMember] {
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
            members = Self.layout(request.store)
            try Self.requireStopped(request.store, members: members)
            let token = if case .etcd(let connection) = request.store.connection { connection.clusterToken } else { String?.none }
            target = EtcdRestoreTarget(members: members, clusterToken: token ?? "lifeboat-restored", force: force)
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("lifeboat-etcd-\(UUID().uuidString.prefix(8))", isDirectory: true)
            handedOver = true
        }
        let report: EtcdRestoreReport, cluster: LocalEtcd
        do {
            report = try await EtcdConnector.restore(request.snapshot, from: request.repository, to: target, scratch: directory)
        } catch {
            if handedOver { try? FileManager.default.removeItem(at: directory) }
            throw error
        }
        do {
            if handedOver { try await Self.giveOwnership(of: report) }
            cluster = try await LocalEtcd.start(restored: members, logDirectory: directory)
        } catch {
            guard handedOver else { throw error }
            try? FileManager.default.removeItem(at: directory)
            // The restored data could not be checked: it does not stay in production's place.
            throw EngineError(.invalidArgument, "the restored members could not be started to check them (\(error)); " + Self.putBack(report))
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
