import Foundation

/// An OpenBao server Lifeboat runs itself — a drill's scratch target, the demo's vault, a test's
/// server: raft storage in `directory`, API and cluster listeners on free loopback ports, a Shamir
/// or Transit seal. Starting over an existing data directory works (a restored node, a restart).
/// Stopped by PID (`stop()`, idempotent; also on deinit).
public final class LocalOpenBao: @unchecked Sendable {
    public enum Seal: Sendable, Hashable {
        case shamir
        /// Auto-unseal through a Transit key; `token` may encrypt and decrypt with it.
        case transit(TransitSealKey, token: String)
    }

    public let directory: URL
    /// The seal its configuration names (changed only by `restart(seal:)`).
    public var seal: Seal { lock.withLock { currentSeal } }
    public let nodeID: String
    public let apiPort: Int
    public let clusterPort: Int
    /// `http://127.0.0.1:<apiPort>`
    public var address: String { "http://127.0.0.1:\(apiPort)" }
    public var client: OpenBaoClient { OpenBaoClient(address: address) }
    public var logFile: URL { directory.appendingPathComponent("openbao.log") }
    /// Dev mode: in-memory storage, unsealed at start with `devRootToken` (used as a Transit provider).
    public let devRootToken: String?

    private let lock = NSLock()
    private var running: ServerProcess?
    private var currentSeal: Seal

    private init(directory: URL, seal: Seal, nodeID: String, apiPort: Int, clusterPort: Int, devRootToken: String?) {
        self.directory = directory
        self.currentSeal = seal
        self.nodeID = nodeID
        self.apiPort = apiPort
        self.clusterPort = clusterPort
        self.devRootToken = devRootToken
    }

    /// Starts a raft node in `directory` (created if needed; an existing `data/` is reused) and waits
    /// until its API answers. The node is uninitialised unless the directory already held one.
    public static func start(in directory: URL, seal: Seal = .shamir, nodeID: String = "lifeboat-1") async throws -> LocalOpenBao {
        let (api, cluster) = try freePortPair()
        let server = LocalOpenBao(directory: directory, seal: seal, nodeID: nodeID, apiPort: api, clusterPort: cluster, devRootToken: nil)
        try FileManager.default.createDirectory(at: server.directory.appendingPathComponent("data"), withIntermediateDirectories: true)
        try server.writeConfiguration()
        try await server.launch()
        return server
    }

    /// Writes `openbao.hcl`; it may hold the Transit token, so it is readable by the owner only.
    func writeConfiguration() throws {
        let file = directory.appendingPathComponent("openbao.hcl")
        guard FileManager.default.createFile(atPath: file.path, contents: Data(configuration().utf8), attributes: [.posixPermissions: 0o600]) else {
            throw ServerStartError(message: "cannot write \(file.path)")
        }
    }

    /// Starts a dev-mode server (in-memory, unsealed, root token `rootToken`): a quick Transit provider.
    public static func startDev(in directory: URL, rootToken: String) async throws -> LocalOpenBao {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        // Dev mode puts the cluster listener on the API port + 1.
        let (api, cluster) = try freePortPair()
        let server = LocalOpenBao(directory: directory, seal: .shamir, nodeID: "dev", apiPort: api, clusterPort: cluster, devRootToken: rootToken)
        try await server.launch()
        try await server.client.waitUntilActive()
        return server
    }

    /// Two free loopback ports, adjacent (dev mode needs port + 1; adjacency costs nothing otherwise).
    static func freePortPair() throws -> (Int, Int) {
        for _ in 0..<50 {
            let port = try freeLoopbackPort()
            if port < 65535, loopbackPortIsFree(port + 1) { return (port, port + 1) }
        }
        throw ServerStartError(message: "no two adjacent free loopback ports found")
    }

    /// The server configuration. `performance_multiplier = 1` makes raft elect a leader in ~1 s
    /// instead of ~5 s (the default tunes for WAN latency; these nodes are alone on loopback).
    func configuration() -> String {
        var text = """
        storage "raft" {
          path = "\(directory.appendingPathComponent("data").path)"
          node_id = "\(nodeID)"
          performance_multiplier = 1
        }
        listener "tcp" {
          address = "127.0.0.1:\(apiPort)"
          cluster_address = "127.0.0.1:\(clusterPort)"
          tls_disable = true
        }
        api_addr = "http://127.0.0.1:\(apiPort)"
        cluster_addr = "http://127.0.0.1:\(clusterPort)"
        ui = false

        """
        if case .transit(let key, let token) = seal {
            text += """
            seal "transit" {
              address = "\(key.address)"
              token = "\(token)"
              key_name = "\(key.keyName)"
              mount_path = "\(key.mount)/"
            }

            """
        }
        return text
    }

    func launch() async throws {
        let bao = try ExternalTool.locate("bao")
        var arguments = ["server"]
        if let devRootToken {
            arguments += ["-dev", "-dev-root-token-id=\(devRootToken)", "-dev-listen-address=127.0.0.1:\(apiPort)", "-dev-no-store-token"]
        } else {
            arguments += ["-config=\(directory.appendingPathComponent("openbao.hcl").path)"]
        }
        let process = try ServerProcess(name: "openbao \(nodeID)", executable: bao.path, arguments: arguments,
                                        environment: ["BAO_LOG_LEVEL": "info", "HOME": directory.path], logFile: logFile)
        lock.withLock { running = process }
        do {
            try await awaitLoopbackPort(apiPort, timeout: 30, process: process)
            // The listener accepts before the core answers; wait for a real answer.
            _ = try await client.waitFor("answering", timeout: .seconds(30)) { _ in true }
        } catch {
            process.stop()
            let log = (try? String(contentsOf: logFile, encoding: .utf8)).map { String($0.suffix(2000)) } ?? ""
            throw ServerStartError(message: "openbao \(nodeID) did not start: \(error)\n\(log)")
        }
    }

    public var pid: Int32? { lock.withLock { running?.pid } }

    /// Initialises the node and returns its keys and root token (held by the caller; never written
    /// here). A Shamir node is then unsealed with the first `threshold` keys; a Transit node unseals
    /// itself (its keys are recovery keys). Returns once the node is active.
    @discardableResult
    public func initialize(shares: Int = 5, threshold: Int = 3) async throws -> InitResult {
        let transit = if case .transit = seal { true } else { false }
        let result = try await client.initialize(shares: shares, threshold: threshold, transitSeal: transit)
        if !transit { try await unseal(keys: Array(result.keys.prefix(threshold))) }
        try await client.waitUntilActive()
        return result
    }

    /// Sends keys to `sys/unseal` until the node is unsealed.
    public func unseal(keys: [String]) async throws {
        for key in keys {
            if try await !client.unseal(key: key).sealed { return }
        }
        throw OpenBaoError(.notReady, object: address, "still sealed after \(keys.count) key\(keys.count == 1 ? "" : "s")")
    }

    /// Mounts kv version 2 at `path`.
    public func enableKV(at path: String = "secret", token: String) async throws {
        try await client.enableKV(at: path, token: token)
    }

    /// Mounts Transit at `mount` and creates `keyName` (for a Transit provider).
    public func enableTransit(mount: String = "transit", keyName: String, token: String) async throws -> TransitSealKey {
        let mounted = try await client.send(.POST, "sys/mounts/\(mount)", token: token, json: ["type": "transit"])
        guard mounted.ok else { throw OpenBaoError(.requestFailed, object: "\(address)/v1/sys/mounts/\(mount)", "cannot mount transit (\(mounted.errors))") }
        return try await createTransitKey(mount: mount, keyName: keyName, token: token)
    }

    /// Creates `keyName` in the Transit mount `mount`, which exists already.
    public func createTransitKey(mount: String = "transit", keyName: String, token: String) async throws -> TransitSealKey {
        let created = try await client.send(.POST, "\(mount)/keys/\(keyName)", token: token, json: [:])
        guard created.ok else { throw OpenBaoError(.requestFailed, object: "\(address)/v1/\(mount)/keys/\(keyName)", "cannot create the key (\(created.errors))") }
        return TransitSealKey(address: address, mount: mount, keyName: keyName)
    }

    /// Stops the process and starts it again on the same ports and data directory (sealed again
    /// under Shamir; a Transit node unseals itself).
    public func restart() async throws {
        stop()
        try await launch()
    }

    /// Restarts with another seal stanza (what an operator does after fixing `key_name`).
    public func restart(seal: Seal) async throws {
        stop()
        lock.withLock { currentSeal = seal }
        try writeConfiguration()
        try await launch()
    }

    /// SIGTERM (SIGKILL after the grace period) to the PID Lifeboat started. Idempotent.
    public func stop() {
        let process = lock.withLock { () -> ServerProcess? in
            defer { running = nil }
            return running
        }
        process?.stop()
    }

    deinit { stop() }
}
