import Foundation
import LifeboatCore
import LifeboatRepository

/// Where an etcd snapshot is restored: the members restored on this machine, the whole cluster's
/// `--initial-cluster` (which may list members restored elsewhere), and the new cluster's token.
public struct EtcdRestoreTarget: Sendable, Hashable {
    public var members: [EtcdMember]
    public var initialCluster: String
    public var clusterToken: String
    /// Move non-empty data directories aside instead of refusing (they are put back if the restore fails).
    public var force: Bool

    public init(members: [EtcdMember], initialCluster: String? = nil, clusterToken: String = "lifeboat-restored", force: Bool = false) {
        self.members = members
        self.initialCluster = initialCluster ?? members.initialCluster
        self.clusterToken = clusterToken
        self.force = force
    }

    /// Refuses an incoherent target before anything is touched.
    public func validate() throws(EtcdError) {
        guard !members.isEmpty else { throw EtcdError(.invalidTarget, "no member to restore") }
        guard !clusterToken.isEmpty else { throw EtcdError(.invalidTarget, "the initial cluster token is empty") }
        var cluster: [String: String] = [:]
        for entry in initialCluster.split(separator: ",") {
            let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty else {
                throw EtcdError(.invalidTarget, object: "--initial-cluster", "\(entry) is not NAME=PEER_URL")
            }
            guard cluster[parts[0]] == nil else { throw EtcdError(.invalidTarget, object: "--initial-cluster", "member \(parts[0]) is listed twice") }
            cluster[parts[0]] = parts[1]
        }
        var names = Set<String>(), directories = Set<String>()
        for member in members {
            guard !member.name.isEmpty, member.name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) else {
                throw EtcdError(.invalidTarget, object: member.name, "a member name may hold letters, digits, '-', '_' and '.'")
            }
            guard names.insert(member.name).inserted else { throw EtcdError(.invalidTarget, object: member.name, "two members have this name") }
            guard let url = URL(string: member.peerURL), url.scheme == "http" || url.scheme == "https", url.host != nil, url.port != nil else {
                throw EtcdError(.invalidTarget, object: member.name, "the peer URL \(member.peerURL) is not http(s)://host:port")
            }
            guard !member.dataDirectory.isEmpty else { throw EtcdError(.invalidTarget, object: member.name, "no data directory given") }
            let directory = URL(fileURLWithPath: member.dataDirectory).standardizedFileURL.path
            guard directories.insert(directory).inserted else {
                throw EtcdError(.invalidTarget, object: directory, "two members would be restored into the same data directory")
            }
            guard cluster[member.name] == member.peerURL else {
                throw EtcdError(.invalidTarget, object: member.name,
                                "the initial cluster must list \(member.name)=\(member.peerURL) (it has \(cluster[member.name].map { "\(member.name)=\($0)" } ?? "no such member"))")
            }
        }
    }
}

/// What a restore did: the snapshot's revision as the file itself says, where each member's data is,
/// and where earlier data was moved (with `force`).
public struct EtcdRestoreReport: Sendable, Codable {
    public var snapshot: String
    public var store: String
    /// The revision inside the snapshot file (`etcdutl snapshot status`): a restored member starts at it.
    public var revision: Int64
    /// User keys at the snapshot, from the manifest (exact when the manifest says `revision_exact`).
    public var keyCount: Int64?
    public var size: Int64
    public var members: [EtcdMember]
    public var initialCluster: String
    public var clusterToken: String
    /// Earlier contents of non-empty data directories, moved here by `force`; delete them once satisfied.
    public var setAside: [String]
    /// The same moves, each with the directory it came from (not encoded: `set_aside` is the record).
    public var moves: [SetAsideDirectory] = []
    public var seconds: Double

    enum CodingKeys: String, CodingKey {
        case snapshot, store, revision, keyCount = "key_count", size, members, initialCluster = "initial_cluster"
        case clusterToken = "cluster_token", setAside = "set_aside", seconds
    }
}

extension EtcdConnector {
    /// Restores an etcd snapshot from the repository into new data directories with `etcdutl snapshot
    /// restore`, one run per member (same file, same initial cluster and token). Refuses, before touching
    /// anything, a snapshot of another kind, an incoherent target and a non-empty data directory (unless
    /// `force`, which moves it aside and puts it back if the restore fails). The snapshot goes through a
    /// private temporary file (etcdutl reads only files) under `scratch`, checked against its trailer.
    public static func restore(
        _ manifest: SnapshotManifest, from repository: Repository, to target: EtcdRestoreTarget,
        scratch: URL = FileManager.default.temporaryDirectory, progress: (@Sendable (Int64) -> Void)? = nil
    ) async throws -> EtcdRestoreReport {
        let started = Date()
        guard manifest.kind == kind else {
            throw EtcdError(.wrongSnapshot, object: "snapshot \(manifest.id.prefix(8))", "it is a \(manifest.kind) snapshot of \(manifest.store), not etcd")
        }
        try target.validate()
        let fileManager = FileManager.default
        var occupied: [String] = []
        for member in target.members {
            var isDirectory: ObjCBool = false
            guard fileManager.fileExists(atPath: member.dataDirectory, isDirectory: &isDirectory) else { continue }
            guard isDirectory.boolValue else { throw EtcdError(.invalidTarget, object: member.dataDirectory, "exists and is not a directory") }
            if !((try? fileManager.contentsOfDirectory(atPath: member.dataDirectory)) ?? []).isEmpty { occupied.append(member.dataDirectory) }
        }
        if !occupied.isEmpty, !target.force {
            throw EtcdError(.dataDirectoryNotEmpty, object: occupied.joined(separator: ", "),
                            "the data directory is not empty; nothing was changed. Choose an empty directory, or pass --force to move the old data aside")
        }
        let etcdutl = try ExternalTool.locate("etcdutl")

        // Private: the snapshot holds every key and value of the cluster.
        let work = scratch.appendingPathComponent("lifeboat-etcd-\(UUID().uuidString)")
        do {
            try fileManager.createDirectory(at: work, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw EtcdError(.invalidTarget, object: scratch.path, "cannot create a private temporary directory: \(error)")
        }
        defer { try? fileManager.removeItem(at: work) }
        let file = work.appendingPathComponent("snapshot.db")
        guard fileManager.createFile(atPath: file.path, contents: nil, attributes: [.posixPermissions: 0o600]),
              let handle = FileHandle(forWritingAtPath: file.path) else {
            throw EtcdError(.invalidTarget, object: file.path, "cannot create the temporary snapshot file")
        }
        var trailer = EtcdSnapshotTrailer()
        do {
            defer { try? handle.close() }
            try await repository.restore(manifest, progress: progress) { data in
                trailer.update(data)
                try handle.write(contentsOf: data)
            }
        }
        try trailer.verify("snapshot \(manifest.id.prefix(8))")
        // Reads the revision while the members are restored (it hashes the whole file: ~0.3 s for 138 MB).
        async let status = snapshotStatus(file, etcdutl: etcdutl)

        // Only now is anything on the target touched.
        let now = Date()
        var setAside: [(original: String, moved: String)] = []
        var restored: [String] = []
        let revision: Int64
        do {
            for directory in occupied {
                let moved = setAsidePath(for: directory, at: now)
                do { try fileManager.moveItem(atPath: directory, toPath: moved) } catch {
                    throw EtcdError(.invalidTarget, object: directory, "cannot move the old data aside to \(moved): \(error)")
                }
                setAside.append((directory, moved))
            }
            for member in target.members {
                // etcdutl wants the directory absent or empty; an empty one we leave in place.
                restored.append(member.dataDirectory)
                let run = try await etcdutl.run([
                    "snapshot", "restore", file.path, "--data-dir", member.dataDirectory, "--name", member.name,
                    "--initial-cluster", target.initialCluster, "--initial-advertise-peer-urls", member.peerURL,
                    "--initial-cluster-token", target.clusterToken,
                ])
                guard run.status == 0 else {
                    let tail = run.stderr.split(separator: "\n").suffix(3).joined(separator: "\n")
                    throw EtcdError(.tool, object: member.name, "etcdutl snapshot restore failed (status \(run.status)): \(tail)")
                }
            }
            revision = try await status.revision
        } catch {
            // Lose nothing: remove what this restore wrote and put the old data back where it was.
            for directory in restored { try? fileManager.removeItem(atPath: directory) }
            for (original, moved) in setAside { try? fileManager.moveItem(atPath: moved, toPath: original) }
            throw error
        }
        return EtcdRestoreReport(
            snapshot: manifest.id, store: manifest.store, revision: revision, keyCount: EtcdFacts(manifest).keyCount,
            size: manifest.size, members: target.members, initialCluster: target.initialCluster, clusterToken: target.clusterToken,
            setAside: setAside.map(\.moved), moves: setAside.map { SetAsideDirectory(original: $0.original, moved: $0.moved) },
            seconds: Date().timeIntervalSince(started))
    }

    /// Deletes the data `force` moved aside, once the restore (and its verification) succeeded.
    public static func discardSetAside(_ report: EtcdRestoreReport) throws {
        for path in report.setAside { try FileManager.default.removeItem(atPath: path) }
    }

    struct SnapshotStatus: Decodable { var revision: Int64; var totalKey: Int64; var totalSize: Int64 }

    /// `etcdutl snapshot status -w json` (it does not check the trailer; the caller has).
    static func snapshotStatus(_ file: URL, etcdutl: ExternalTool) async throws -> SnapshotStatus {
        let run = try await etcdutl.run(["snapshot", "status", file.path, "-w", "json"])
        guard run.status == 0, let status = try? JSONDecoder().decode(SnapshotStatus.self, from: run.stdout) else {
            throw EtcdError(.damagedSnapshot, object: "snapshot", "etcdutl cannot read it: \(run.stderr.split(separator: "\n").suffix(2).joined(separator: " "))")
        }
        return status
    }

    /// Checks running restored members against the snapshot: every member answers, all share one
    /// cluster id, each holds the snapshot's revision and (when the manifest's count is exact) its key
    /// count, and the cluster has the members the restore made. Failed comparisons are results; this
    /// throws only when a member cannot be reached. `username`/`password`: the source's, since auth
    /// settings travel inside the snapshot.
    public static func verifyRestored(
        _ report: EtcdRestoreReport, manifest: SnapshotManifest, endpoints: [String], username: String? = nil, password: String? = nil
    ) async throws(EtcdError) -> [CheckResult] {
        var results: [CheckResult] = []
        var clusters = Set<String>()
        let facts = EtcdFacts(manifest)
        let exact = facts.revisionExact == true
        let expectedCount = facts.keyCount
        if exact, let recorded = facts.revision {
            results.append(CheckResult(check: "snapshot file's revision = the backup's \(recorded)", passed: recorded == report.revision,
                                       detail: "revision \(report.revision) in the file"))
        }
        for endpoint in endpoints {
            let session = try await EtcdGateway(endpoints: [endpoint], username: username, password: password).connect()
            let (count, header) = try await session.count(prefix: nil, serializable: true)
            clusters.insert(header.clusterIDHex)
            let who = "member \(header.memberIDHex) at \(endpoint)"
            results.append(CheckResult(check: "\(who): revision = snapshot's \(report.revision)", passed: header.revision == report.revision,
                                       detail: "revision \(header.revision)"))
            if let expectedCount {
                results.append(CheckResult(check: "\(who): key count = snapshot's \(expectedCount)", passed: !exact || count == expectedCount,
                                           detail: exact ? "\(count) keys" : "\(count) keys (the source was written to during the backup: its count is approximate)"))
            }
            if endpoint == endpoints.first {
                let members = try await session.members()
                let expected = Set(report.initialCluster.split(separator: ",").map { String($0.prefix { $0 != "=" }) })
                results.append(CheckResult(check: "cluster has the \(expected.count) member\(expected.count == 1 ? "" : "s") of the initial cluster",
                                           passed: Set(members.compactMap(\.name)) == expected,
                                           detail: members.compactMap(\.name).sorted().joined(separator: ", ")))
            }
        }
        results.append(CheckResult(check: "one cluster id on every member", passed: clusters.count == 1, detail: clusters.sorted().joined(separator: ", ")))
        return results
    }
}
