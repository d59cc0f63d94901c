import Foundation
import LifeboatConnectors
import LifeboatCore
import LifeboatEngine
import LifeboatRepository

/// The restore of an etcd snapshot into members' data directories: written once, run by the ordered
/// restore (production) and by `lifeboat restore etcd` alike.
///
/// 1. Guards before anything moves: every member's peer URL and the store's client endpoints refuse
///    connections ("cannot tell" refuses); a non-empty data directory needs `force`.
/// 2. `etcdutl snapshot restore` per member (the connector moves non-empty directories aside with
///    `force`, and puts them back if that fails).
/// 3. Run as root: each restored directory gets the owner of the data it replaced.
/// 4. `start`: the members are started to be checked; if they cannot start, what the restore wrote
///    is removed and the previous data put back — unchecked data never stays in a member's place.
public struct EtcdRestoreProcedure: Sendable {
    public var manifest: SnapshotManifest
    public var repository: Repository
    public var target: EtcdRestoreTarget
    /// The store's client endpoints, probed with the peer URLs (empty without a catalog store).
    public var clientEndpoints: [String]
    /// Credentials the restored cluster expects (auth travels inside the snapshot).
    public var username: String?
    public var password: String?

    public init(manifest: SnapshotManifest, repository: Repository, target: EtcdRestoreTarget, clientEndpoints: [String] = [],
                username: String? = nil, password: String? = nil) {
        self.manifest = manifest
        self.repository = repository
        self.target = target
        self.clientEndpoints = clientEndpoints
        self.username = username
        self.password = password
    }

    /// One problem per client endpoint or peer URL that accepts connections, or cannot be probed.
    public static func runningMembers(clientEndpoints: [String], members: [EtcdMember]) -> [String] {
        (clientEndpoints + members.map(\.peerURL)).compactMap { address in
            guard let url = URL(string: address), let host = url.host else { return nil }
            switch probeTCPEndpoint(host: host, port: url.port ?? 2379) {
            case .refused: return nil
            case .accepts: return "etcd still answers at \(address): stop every member before their data directories are replaced; nothing was changed"
            case .unknown(let why): return "cannot tell whether the etcd member at \(address) is stopped (\(why)); nothing was changed"
            }
        }
    }

    /// Every reason the restore refuses, all at once; empty when it can run. Changes nothing.
    public func guards() -> [String] {
        var problems = Self.runningMembers(clientEndpoints: clientEndpoints, members: target.members)
        if !target.force {
            for member in target.members {
                if let entries = try? FileManager.default.contentsOfDirectory(atPath: member.dataDirectory), !entries.isEmpty {
                    problems.append("the data directory \(member.dataDirectory) of member \(member.name) is not empty: the restore refuses without --force (which moves it aside)")
                }
            }
        }
        return problems
    }

    /// Steps 1-3: the data directories restored (not started). `scratch`: where the snapshot file goes meanwhile.
    public func restore(scratch: URL = FileManager.default.temporaryDirectory, progress: (@Sendable (Int64) -> Void)? = nil) async throws -> EtcdRestoreReport {
        // A non-empty directory without --force is the connector's own typed refusal (it names the directories).
        let running = Self.runningMembers(clientEndpoints: clientEndpoints, members: target.members)
        guard running.isEmpty else { throw PlatformError(.refused, object: manifest.store, running.joined(separator: "; ")) }
        let report = try await EtcdConnector.restore(manifest, from: repository, to: target, scratch: scratch, progress: progress)
        do {
            try await Self.giveOwnership(of: report)
        } catch {
            throw PlatformError(.unverified, object: manifest.store, "the restored data directories could not be given their owner (\(error)); " + Self.putBack(report),
                                underlying: error)
        }
        return report
    }

    /// Step 4: the restored members started here (their peer URLs must be local) to be checked;
    /// `release()` of the result stops them. If they cannot start, the previous data is put back.
    public func start(_ report: EtcdRestoreReport, logDirectory: URL, removeLogs: Bool) async throws -> RestoredEtcd {
        let cluster: LocalEtcd
        do {
            cluster = try await LocalEtcd.start(restored: report.members, logDirectory: logDirectory,
                                                options: LocalEtcd.Options(clusterToken: report.clusterToken))
        } catch {
            if removeLogs { try? FileManager.default.removeItem(at: logDirectory) }
            // The restored data could not be checked: it does not stay in the members' place.
            throw PlatformError(.unverified, object: manifest.store,
                                "the restored members could not be started to check them (\(error)); " + Self.putBack(report), underlying: error)
        }
        return RestoredEtcd(cluster: cluster, report: report, manifest: manifest, username: username, password: password,
                            logDirectory: removeLogs ? logDirectory : nil)
    }

    /// Run as root, the restored directories would belong to root: give each the owner of the data
    /// it replaced, so the service that runs etcd (often as its own user) can open it.
    static func giveOwnership(of report: EtcdRestoreReport) async throws {
        guard geteuid() == 0 else { return }
        for move in report.moves {
            _ = try await ExternalTool.locate("chown").run(["-R", "--reference=\(move.moved)", move.original]).check("chown")
        }
    }

    /// Removes what a failed restore wrote and moves the previous data back; says where things are.
    static func putBack(_ report: EtcdRestoreReport) -> String {
        let fileManager = FileManager.default
        var stuck: [String] = []
        for member in report.members { try? fileManager.removeItem(atPath: member.dataDirectory) }
        for move in report.moves {
            do { try fileManager.moveItem(atPath: move.moved, toPath: move.original) } catch { stuck.append(move.moved) }
        }
        if stuck.isEmpty { return "the restored data was removed" + (report.moves.isEmpty ? "" : " and the previous data directories put back") }
        return "the restored data was removed; the previous data could not be moved back and is intact at " + stuck.joined(separator: ", ")
    }
}

/// Restored etcd members started to be checked.
public struct RestoredEtcd: RestoredStore {
    public let cluster: LocalEtcd
    public let report: EtcdRestoreReport
    public let manifest: SnapshotManifest
    public let username: String?
    public let password: String?
    /// A directory of the members' logs, removed on release (production and `restore etcd --verify`);
    /// nil for a drill, whose scratch directory holds the logs.
    var logDirectory: URL?
    /// Data directories handed over to their owner (production): stopped on release for the service manager.
    var handedOver = false

    public var target: String {
        guard handedOver else { return cluster.endpoints.joined(separator: ",") }
        return "data directories " + report.members.map(\.dataDirectory).joined(separator: ", ") + ", restored and checked, then stopped: start the members on them"
    }

    /// The members compared with the snapshot (one cluster id, its revision and key count, the
    /// members the restore made), then the catalog's checks.
    public func check(_ checks: [VerifyCheck]) async throws -> [CheckResult] {
        let restored = try await EtcdConnector.verifyRestored(report, manifest: manifest, endpoints: cluster.endpoints, username: username, password: password)
        return restored + (try await EtcdConnector.runChecks(checks, against: cluster.gateway(username: username, password: password)))
    }

    public func release() async {
        await cluster.stop()
        if let logDirectory { try? FileManager.default.removeItem(at: logDirectory) }
    }
}
