import ArgumentParser
import Foundation
import LifeboatConnectors
import LifeboatCore
import LifeboatPlatform
import LifeboatRepository

/// `lifeboat restore etcd --snapshot ID …`
struct EtcdRestoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "etcd",
        abstract: "Restore an etcd snapshot into new data directories (one member or several).",
        discussion: """
        Streams the snapshot out of the repository into a private temporary file, checks etcd's SHA-256 trailer, then runs `etcdutl snapshot restore` once per member with the same initial cluster and token: the members form a new cluster (new cluster and member ids) at the snapshot's revision.

        One member per machine (the usual production form; run it on every member's host with the same --initial-cluster and --initial-cluster-token):
          --name NAME --initial-advertise-peer-urls URL --data-dir DIR [--initial-cluster N1=URL1,N2=URL2,…]
        Several members on this machine: repeat --member name=NAME,peer-url=URL[,data-dir=DIR] (data-dir defaults to --data-dir/NAME).
        A local rehearsal: --members N --data-dir DIR (members member1…N on free loopback peer ports under DIR).

        The same procedure as a production step of `lifeboat restore`. Guards: every member's peer URL (and the catalog store's client endpoints) must refuse connections, or nothing is changed; a data directory that is not empty is refused, and nothing is changed, unless --force; --force moves it aside (DIR.lifeboat-previous-TIME), puts it back if the restore fails or the restored members cannot be started for --verify, and deletes it once the restore (and --verify) succeeded unless --keep-previous. Run as root, each restored directory gets the owner of the data it replaced.

        --verify starts the restored members on this machine (their peer URLs must be local), checks that every member answers with one cluster id, the snapshot's revision and key count, runs the catalog store's `prefix` checks, then stops them.

        Exit codes: 0 restored (and verified) · 1 etcdutl or etcd failed, or verification failed · 2 usage: bad target, non-empty data directory without --force, not an etcd snapshot, unknown snapshot · 3 the snapshot in the repository is damaged · 10/11/12 repository errors (see docs/exit-codes.md).

        Examples:
          lifeboat restore etcd --snapshot latest --store fleet-etcd --name etcd-0 --initial-advertise-peer-urls http://10.0.0.5:2380 --initial-cluster etcd-0=http://10.0.0.5:2380,etcd-1=http://10.0.0.6:2380,etcd-2=http://10.0.0.7:2380 --initial-cluster-token fleet-dr --data-dir /var/lib/etcd
          lifeboat restore etcd --snapshot 9c2e41aa --members 3 --data-dir /tmp/etcd-dr --verify
        """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var damaged: DamagedChoiceOptions
    @OptionGroup var output: OutputOptions

    @Option(help: "The snapshot: an id (4+ hex digits) or `latest` (of --store).")
    var snapshot: String

    @Option(help: "The catalog store: picks `latest`, and gives --verify its checks and credentials (default: the snapshot's store).")
    var store: String?

    @Option(help: ArgumentHelp("This member's name (one-member form).", valueName: "name"))
    var name = "default"

    @Option(help: ArgumentHelp("This member's peer URL (one-member form).", valueName: "url"))
    var initialAdvertisePeerUrls = "http://localhost:2380"

    @Option(help: ArgumentHelp("The data directory (one-member form), or the parent of each member's with --member/--members.", valueName: "dir"))
    var dataDir: String?

    @Option(help: ArgumentHelp("The whole cluster: NAME=PEER_URL,… (default: the members restored here).", valueName: "list"))
    var initialCluster: String?

    @Option(help: ArgumentHelp("Token of the new cluster, the same on every member.", valueName: "token"))
    var initialClusterToken = "lifeboat-restored"

    @Option(name: .customLong("member"), help: ArgumentHelp("A member restored here: name=NAME,peer-url=URL[,data-dir=DIR] (repeatable).", valueName: "spec"))
    var memberSpecs: [String] = []

    @Option(help: ArgumentHelp("Restore N members on free loopback peer ports under --data-dir (a local rehearsal).", valueName: "n"))
    var members: Int?

    @Flag(help: "Move non-empty data directories aside instead of refusing.")
    var force = false

    @Flag(help: "With --force, keep the moved-aside data after a successful restore.")
    var keepPrevious = false

    @Flag(name: [.customLong("verify"), .customLong("start")], help: "Start the restored members here, compare them with the snapshot, run the catalog's checks, stop them.")
    var verify = false

    func validate() throws {
        if members != nil, !memberSpecs.isEmpty { throw ValidationError("give --members or --member, not both") }
        if let members, !(1...9).contains(members) { throw ValidationError("--members takes 1 to 9") }
        if members != nil || !memberSpecs.isEmpty {
            if members != nil, dataDir == nil { throw ValidationError("--members needs --data-dir, the parent of the members' data directories") }
        } else if dataDir == nil {
            throw ValidationError("--data-dir is required")
        }
    }

    /// The members restored here, from whichever form was used.
    func targetMembers() throws -> [EtcdMember] {
        if let members, let dataDir {
            return try LocalEtcd.plan(members: members, in: URL(fileURLWithPath: dataDir))
        }
        if memberSpecs.isEmpty {
            return [EtcdMember(name: name, peerURL: initialAdvertisePeerUrls, dataDirectory: dataDir!)]
        }
        return try memberSpecs.map { spec in
            var fields: [String: String] = [:]
            for part in spec.split(separator: ",") {
                let pair = part.split(separator: "=", maxSplits: 1).map(String.init)
                guard pair.count == 2, ["name", "peer-url", "data-dir"].contains(pair[0]) else {
                    throw CommandFailure(.usage, "--member \(spec): expected name=NAME,peer-url=URL[,data-dir=DIR]")
                }
                fields[pair[0]] = pair[1]
            }
            guard let name = fields["name"], let peer = fields["peer-url"] else {
                throw CommandFailure(.usage, "--member \(spec): name and peer-url are required")
            }
            guard let directory = fields["data-dir"] ?? dataDir.map({ URL(fileURLWithPath: $0).appendingPathComponent(name).path }) else {
                throw CommandFailure(.usage, "--member \(spec): give data-dir=DIR, or --data-dir as the parent directory")
            }
            return EtcdMember(name: name, peerURL: peer, dataDirectory: directory)
        }
    }

    struct Outcome: Encodable {
        var restore: EtcdRestoreReport
        var checks: [CheckResult]?
        var verified: Bool?
        var previousDataDeleted: Bool
        enum CodingKeys: String, CodingKey { case restore, checks, verified, previousDataDeleted = "previous_data_deleted" }
    }

    func run() async throws {
        let resolver = try repository.storeResolver(showWarnings: false)
        let repo = damaged.applied(to: try await repository.open(resolver: resolver))
        let manifest = try await repo.resolveSnapshot(snapshot, store: store)
        let target = EtcdRestoreTarget(members: try targetMembers(), initialCluster: initialCluster,
                                       clusterToken: initialClusterToken, force: force)
        if verify {
            for member in target.members where !["127.0.0.1", "localhost"].contains(URL(string: member.peerURL)?.host ?? "") {
                throw CommandFailure(.usage, "--verify starts the members on this machine: member \(member.name)'s peer URL \(member.peerURL) is not on 127.0.0.1 or localhost")
            }
        }
        // The catalog is optional: it gives the guards the store's client endpoints, and --verify the
        // store's checks and the credentials the restored cluster still expects (auth travels inside the snapshot).
        var access: EtcdStoreAccess?
        if let resolver, store != nil || resolver.catalog.store(named: manifest.store)?.kind == .etcd {
            access = try resolver.etcd(try resolver.store(named: store ?? manifest.store, kind: .etcd))
        }
        // Restoring over the store's own members' directories is a production restore: its live
        // cluster must be down. A restore elsewhere leaves production alone and probes only its own peer URLs.
        var endpoints: [String] = []
        if case .etcd(let connection)? = access?.store.connection {
            let own = Set(connection.members.map { URL(fileURLWithPath: $0.dataDirectory).standardizedFileURL.path })
            if target.members.contains(where: { own.contains(URL(fileURLWithPath: $0.dataDirectory).standardizedFileURL.path) }) { endpoints = connection.endpoints }
        }
        let procedure = EtcdRestoreProcedure(manifest: manifest, repository: repo, target: target, clientEndpoints: endpoints,
                                             username: access?.username, password: access?.password)
        let progress = TransferProgress("restored", total: manifest.size)
        let report = try await procedure.restore(progress: progress.update)
        progress.finish()

        var checks: [CheckResult]?
        if verify {
            let logs = FileManager.default.temporaryDirectory.appendingPathComponent("lifeboat-etcd-verify-\(UUID().uuidString.prefix(8))")
            let restored = try await procedure.start(report, logDirectory: logs, removeLogs: true)
            do {
                checks = try await restored.check(access?.store.verify ?? [])
            } catch {
                await restored.release()
                throw error
            }
            await restored.release()
        }
        let verified = checks.map { $0.allSatisfy(\.passed) }
        let deletePrevious = !report.setAside.isEmpty && !keepPrevious && verified != false
        if deletePrevious { try EtcdConnector.discardSetAside(report) }

        if output.json {
            try printJSON(Outcome(restore: report, checks: checks, verified: verified, previousDataDeleted: deletePrevious))
        } else {
            printText(report, checks: checks, previousDeleted: deletePrevious)
        }
        if verified == false {
            throw CommandFailure(.failure, "the restored cluster does not match the snapshot (see the checks above)"
                                 + (report.setAside.isEmpty ? "" : "; the previous data is kept at \(report.setAside.joined(separator: ", "))"))
        }
    }

    func printText(_ report: EtcdRestoreReport, checks: [CheckResult]?, previousDeleted: Bool) {
        print("restored etcd snapshot \(report.snapshot.prefix(8)) of \(report.store): revision \(report.revision)"
              + (report.keyCount.map { ", \($0) keys" } ?? "") + ", \(formatBytes(report.size)), \(String(format: "%.1f", report.seconds)) s")
        var table = Table("MEMBER", "PEER URL", "DATA DIRECTORY")
        for member in report.members { table.add(member.name, member.peerURL, member.dataDirectory) }
        print(table.render())
        print("initial cluster: \(report.initialCluster)")
        print("initial cluster token: \(report.clusterToken)")
        for path in report.setAside {
            print(previousDeleted ? "previous data (moved aside to \(path)) deleted" : "previous data kept at \(path)")
        }
        if let checks {
            for check in checks { print("\(check.passed ? "ok  " : "FAIL") \(check.check): \(check.detail)") }
        } else if let member = report.members.first {
            print("start each member with its name, data directory and peer URL, e.g.: etcd --name \(member.name) --data-dir \(member.dataDirectory) "
                  + "--listen-peer-urls \(member.peerURL) --initial-advertise-peer-urls \(member.peerURL) --listen-client-urls … --advertise-client-urls …")
        }
    }
}
