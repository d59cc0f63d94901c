import AsyncHTTPClient
import Foundation
import LifeboatCore
import NIOCore

extension [EtcdMember] {
    /// `n1=http://127.0.0.1:2380,n2=…`: etcd's `--initial-cluster`, identical on every member.
    public var initialCluster: String { map { "\($0.name)=\($0.peerURL)" }.joined(separator: ",") }
}

/// etcd members running on this machine, on loopback: a fresh cluster for a drill or the demo, or
/// members started over data directories `etcdutl snapshot restore` produced. Stopped by PID.
public struct LocalEtcd: Sendable {
    public let members: [EtcdMember]
    /// Each member's client URL, in member order: the cluster's endpoints.
    public let endpoints: [String]
    /// Where each member's log is (`<name>.log`).
    public let logDirectory: URL
    let processes: [ServerProcess]

    /// How a launch behaves; the defaults suit production-like drills.
    public struct Options: Sendable {
        /// Skips fsync: only for throwaway data (tests, benchmarks loading fixtures).
        public var unsafeNoFsync = false
        public var startTimeout: TimeInterval = 60
        public var clusterToken = "lifeboat-local"
        public init(unsafeNoFsync: Bool = false, startTimeout: TimeInterval = 60, clusterToken: String = "lifeboat-local") {
            self.unsafeNoFsync = unsafeNoFsync
            self.startTimeout = startTimeout
            self.clusterToken = clusterToken
        }
    }

    /// Loopback members named `name1…nameN` with data directories `<directory>/<name>` and free peer
    /// ports: the layout for a fresh cluster or for a restore that `start(restored:)` then starts.
    public static func plan(members count: Int, in directory: URL, namePrefix: String = "member") throws -> [EtcdMember] {
        try (1...max(count, 1)).map { index in
            let name = "\(namePrefix)\(index)"
            return EtcdMember(name: name, peerURL: "http://127.0.0.1:\(try freeLoopbackPort())",
                              dataDirectory: directory.appendingPathComponent(name).path)
        }
    }

    /// A fresh cluster of `count` members under `directory`, ready when this returns.
    public static func start(in directory: URL, members count: Int = 1, options: Options = Options()) async throws -> LocalEtcd {
        try await launch(plan(members: count, in: directory), logDirectory: directory, options: options)
    }

    /// Members over restored data directories: the names and peer URLs must be those the restore used
    /// (etcd reads its membership from the data directory and listens on the peer URL given here).
    /// `clientURLs` (one per member) keeps a restarted member where its clients look for it.
    public static func start(restored members: [EtcdMember], logDirectory: URL, clientURLs: [String]? = nil,
                             options: Options = Options()) async throws -> LocalEtcd {
        for member in members where !FileManager.default.fileExists(atPath: member.dataDirectory + "/member") {
            throw EtcdError(.invalidTarget, object: member.dataDirectory, "no restored etcd data here (no member/ directory)")
        }
        if let clientURLs, clientURLs.count != members.count {
            throw EtcdError(.invalidTarget, object: nil, "\(clientURLs.count) client URLs for \(members.count) members")
        }
        return try await launch(members, logDirectory: logDirectory, clientURLs: clientURLs, options: options)
    }

    static func launch(_ members: [EtcdMember], logDirectory: URL, clientURLs: [String]? = nil, options: Options) async throws -> LocalEtcd {
        let etcd = try ExternalTool.locate("etcd")
        try FileManager.default.createDirectory(at: logDirectory, withIntermediateDirectories: true)
        var processes: [ServerProcess] = []
        var endpoints: [String] = []
        do {
            for (index, member) in members.enumerated() {
                guard let peer = URL(string: member.peerURL), let host = peer.host, host == "127.0.0.1" || host == "localhost" else {
                    throw EtcdError(.invalidTarget, object: member.name, "a local member's peer URL must be on 127.0.0.1, not \(member.peerURL)")
                }
                let client = try clientURLs?[index] ?? "http://127.0.0.1:\(try freeLoopbackPort())"
                var arguments = [
                    "--name", member.name, "--data-dir", member.dataDirectory,
                    "--listen-client-urls", client, "--advertise-client-urls", client,
                    "--listen-peer-urls", member.peerURL, "--initial-advertise-peer-urls", member.peerURL,
                    "--initial-cluster", members.initialCluster, "--initial-cluster-token", options.clusterToken,
                    "--initial-cluster-state", "new", "--log-level", "warn",
                ]
                if options.unsafeNoFsync { arguments.append("--unsafe-no-fsync") }
                processes.append(try ServerProcess(name: "etcd \(member.name)", executable: etcd.path, arguments: arguments,
                                                   logFile: logDirectory.appendingPathComponent("\(member.name).log")))
                endpoints.append(client)
            }
            let cluster = LocalEtcd(members: members, endpoints: endpoints, logDirectory: logDirectory, processes: processes)
            try await cluster.waitUntilHealthy(timeout: options.startTimeout)
            return cluster
        } catch {
            await Self.stop(processes)
            throw error
        }
    }

    /// Waits until every member answers `GET /health` with `"health":"true"` (it has a leader and serves reads).
    func waitUntilHealthy(timeout: TimeInterval) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        for (index, endpoint) in endpoints.enumerated() {
            let process = processes[index]
            var last = "no answer"
            while true {
                guard process.isRunning else {
                    throw EtcdError(.tool, object: members[index].name, "etcd exited \(process.exitDescription): \(logTail(of: members[index]))")
                }
                var request = HTTPClientRequest(url: endpoint + "/health")
                request.method = .GET
                if let response = try? await EtcdGateway.sharedClient.execute(request, timeout: .seconds(2)),
                   let body = try? await response.body.collect(upTo: 1 << 16) {
                    let text = String(decoding: body.readableBytesView, as: UTF8.self)
                    if response.status == .ok, text.contains(#""health":"true""#) { break }
                    last = "HTTP \(response.status.code) \(text)"
                }
                guard Date() < deadline else {
                    throw EtcdError(.tool, object: members[index].name, "not healthy within \(Int(timeout)) s (\(last)): \(logTail(of: members[index]))")
                }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    /// The last lines a member logged, for error messages.
    public func logTail(of member: EtcdMember, lines: Int = 5) -> String {
        let text = (try? String(contentsOf: logDirectory.appendingPathComponent("\(member.name).log"), encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(lines).joined(separator: "\n")
    }

    /// A gateway to these members (credentials only when auth was enabled on them).
    public func gateway(username: String? = nil, password: String? = nil) throws(EtcdError) -> EtcdGateway {
        try EtcdGateway(endpoints: endpoints, username: username, password: password)
    }

    /// The members' process ids, for callers that record what they started.
    public var pids: [Int32] { processes.map(\.pid) }

    /// Runs `body` and stops the members afterwards, also when it throws.
    public func whileRunning<T>(_ body: (LocalEtcd) async throws -> T) async throws -> T {
        do {
            let result = try await body(self)
            await stop()
            return result
        } catch {
            await stop()
            throw error
        }
    }

    /// Stops every member by PID (SIGTERM, SIGKILL after `grace`); safe to call twice.
    public func stop(grace: TimeInterval = 10) async {
        await Self.stop(processes, grace: grace)
    }

    /// One member at a time: members stopped together each wait out their peers (about 7 s for three
    /// on loopback), one by one they stop in about a second each.
    static func stop(_ processes: [ServerProcess], grace: TimeInterval = 10) async {
        for server in processes where server.isRunning {
            kill(server.pid, SIGTERM)
            let deadline = Date().addingTimeInterval(grace)
            // A cancelled caller still stops its servers: it just stops waiting politely.
            while server.isRunning, Date() < deadline, !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(20))
            }
            if server.isRunning { kill(server.pid, SIGKILL) }
            while server.isRunning { try? await Task.sleep(for: .milliseconds(20)) }
        }
    }
}
