import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// The OpenBao HTTP API calls Lifeboat makes, on one node. Tokens travel only in the
/// `X-Vault-Token` header; errors name the address and path, never the token.
public struct OpenBaoClient: Sendable {
    /// `http://127.0.0.1:8200`, without a trailing slash.
    public let address: String
    let http: HTTPClient

    /// One client for the process (see `HTTPClient.failingFast`).
    public static let sharedHTTPClient = HTTPClient.failingFast(connect: .seconds(10))

    public init(address: String, http: HTTPClient = OpenBaoClient.sharedHTTPClient) {
        var trimmed = address
        while trimmed.hasSuffix("/") { trimmed.removeLast() }
        self.address = trimmed
        self.http = http
    }

    /// An answer: status and body (small bodies only; snapshots stream through `snapshot`).
    public struct Reply: Sendable {
        public var status: Int
        public var body: Data
        public var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] }
        /// The answer's `data` object, or the answer itself where a `sys/` endpoint answers unwrapped.
        var payload: [String: Any]? { (json?["data"] as? [String: Any]) ?? json }
        /// OpenBao's `errors` list, joined; never contains a token.
        public var errors: String {
            let list = (json?["errors"] as? [String]) ?? []
            return list.isEmpty ? "HTTP \(status)" : "HTTP \(status): \(list.joined(separator: "; "))"
        }
        public var ok: Bool { (200..<300).contains(status) }
    }

    /// One request with a JSON (or empty) body.
    public func send(
        _ method: HTTPMethod, _ path: String, token: String? = nil, json: [String: Any]? = nil,
        timeout: TimeAmount = .seconds(30)
    ) async throws(OpenBaoError) -> Reply {
        var request = HTTPClientRequest(url: "\(address)/v1/\(path)")
        request.method = method
        if let token { request.headers.add(name: "X-Vault-Token", value: token) }
        if let json {
            guard let body = try? JSONSerialization.data(withJSONObject: json) else {
                throw OpenBaoError(.requestFailed, object: "\(address)/v1/\(path)", "the request body cannot be encoded")
            }
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        return try await execute(request, path: path, timeout: timeout)
    }

    func execute(_ request: HTTPClientRequest, path: String, timeout: TimeAmount) async throws(OpenBaoError) -> Reply {
        do {
            let response = try await http.execute(request, timeout: timeout)
            let body = try await response.body.collect(upTo: 64 << 20)
            return Reply(status: Int(response.status.code), body: Data(body.readableBytesView))
        } catch {
            throw OpenBaoError(.unreachable, object: "\(address)/v1/\(path)", "no answer: \(Self.describe(error))")
        }
    }

    /// A transport failure in words (AsyncHTTPClient's and NIO's errors print as type names).
    static func describe(_ error: any Error) -> String {
        let text = String(describing: error)
        if text.contains("connectTimeout") { return "the connection timed out" }
        if text.contains("connection refused") || text.contains("Connection refused") || text.contains("ECONNREFUSED") { return "connection refused" }
        if text.contains("deadlineExceeded") { return "the request timed out" }
        return text
    }

    // MARK: status and bootstrap

    /// `GET sys/seal-status` (no token needed).
    public func sealStatus() async throws(OpenBaoError) -> SealStatus {
        let reply = try await send(.GET, "sys/seal-status", timeout: .seconds(10))
        guard reply.ok, let status = try? JSONDecoder().decode(SealStatus.self, from: reply.body) else {
            throw OpenBaoError(.requestFailed, object: "\(address)/v1/sys/seal-status", "unexpected answer (\(reply.errors))")
        }
        return status
    }

    /// What changes when OpenBao's data, keyring or seal changes, read cheaply (no snapshot): the
    /// raft index from `sys/leader` (no token), the keyring term from `sys/key-status` (a token
    /// allowed to read it; `bao operator rotate` moves it) and the seal's shape from `sys/seal-status`.
    public func changeFacts(token: String?) async throws(OpenBaoError) -> (raftIndex: UInt64, keyringTerm: Int, seal: String) {
        let seal = try await sealStatus()
        let leader = try await send(.GET, "sys/leader", timeout: .seconds(10))
        guard leader.ok, let index = Self.unsigned(leader.json?["raft_committed_index"]) else {
            throw OpenBaoError(.requestFailed, object: "\(address)/v1/sys/leader", "no raft index in the answer (\(leader.errors)); is the storage raft?")
        }
        let keys = try await send(.GET, "sys/key-status", token: token, timeout: .seconds(10))
        guard keys.ok, let term = Self.unsigned(keys.payload?["term"]) else {
            throw OpenBaoError(.requestFailed, object: "\(address)/v1/sys/key-status",
                               "no keyring term in the answer (\(keys.errors)); the catalog's token must be allowed to read sys/key-status")
        }
        return (index, Int(term), "\(seal.type)/\(seal.t)-of-\(seal.n)/recovery:\(seal.recoverySeal ?? false)")
    }

    /// What stands between this node and restorable raft snapshots: storage that is not raft, a
    /// sealed node, an unhealthy cluster (autopilot, read with `token`). Throws when it cannot ask.
    public func coverageProblems(token: String?) async throws(OpenBaoError) -> [String] {
        let seal = try await sealStatus()
        var problems: [String] = []
        if let storage = seal.storageType, storage != "raft" {
            problems.append("storage is '\(storage)', not raft: raft snapshots are what Lifeboat backs up")
            return problems
        }
        if seal.sealed { problems.append("the node is sealed: no snapshot can be taken until it is unsealed") }
        let reply = try await send(.GET, "sys/storage/raft/autopilot/state", token: token, timeout: .seconds(10))
        let state = reply.payload
        if reply.ok, let healthy = state?["healthy"] as? Bool, !healthy {
            let tolerance = (state?["failure_tolerance"] as? NSNumber)?.intValue
            problems.append("raft autopilot reports the cluster unhealthy\(tolerance.map { " (failure tolerance \($0))" } ?? ""): a lost node may lose the quorum snapshots come from")
        }
        return problems
    }

    static func unsigned(_ value: Any?) -> UInt64? {
        switch value {
        case let number as NSNumber: number.uint64Value
        case let text as String: UInt64(text)
        default: nil
        }
    }

    /// `GET sys/health` status code: 200 active, 429 standby, 501 uninitialised, 503 sealed.
    public func healthCode() async throws(OpenBaoError) -> Int {
        try await send(.GET, "sys/health", timeout: .seconds(10)).status
    }

    /// `PUT sys/init`. Shamir seals take `shares`/`threshold`; a transit seal takes recovery shares instead.
    /// Takes 2–9 s (raft elects a leader first).
    public func initialize(shares: Int, threshold: Int, transitSeal: Bool) async throws(OpenBaoError) -> InitResult {
        let body: [String: Any] = transitSeal
            ? ["recovery_shares": shares, "recovery_threshold": threshold]
            : ["secret_shares": shares, "secret_threshold": threshold]
        let reply = try await send(.PUT, "sys/init", json: body, timeout: .seconds(60))
        guard reply.ok, let json = reply.json, let token = json["root_token"] as? String else {
            throw OpenBaoError(.requestFailed, object: "\(address)/v1/sys/init", "initialisation failed (\(reply.errors))")
        }
        let keys = (json["keys"] as? [String]) ?? []
        let recovery = (json["recovery_keys"] as? [String]) ?? []
        return InitResult(keys: keys.isEmpty ? recovery : keys, rootToken: token, recoveryKeys: !recovery.isEmpty && keys.isEmpty)
    }

    /// `PUT sys/unseal` with one share or key (hex or base64).
    public func unseal(key: String) async throws(OpenBaoError) -> SealStatus {
        let reply = try await send(.PUT, "sys/unseal", json: ["key": key])
        guard reply.ok, let status = try? JSONDecoder().decode(SealStatus.self, from: reply.body) else {
            throw OpenBaoError(.requestFailed, object: "\(address)/v1/sys/unseal", "the unseal key was refused (\(reply.errors))")
        }
        return status
    }

    /// Polls seal-status until `condition` holds; returns the status that satisfied it.
    public func waitFor(
        _ what: String, timeout: Duration = .seconds(30), every interval: Duration = .milliseconds(200),
        _ condition: (SealStatus) -> Bool
    ) async throws(OpenBaoError) -> SealStatus {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        var last: SealStatus?
        var lastError: OpenBaoError?
        while clock.now < deadline {
            do {
                let status = try await sealStatus()
                if condition(status) { return status }
                last = status
            } catch {
                lastError = error
            }
            do { try await Task.sleep(for: interval) } catch { break }
        }
        let seen = last.map { "last seen: initialized \($0.initialized), sealed \($0.sealed), t/n \($0.t)/\($0.n)" } ?? lastError.map(\.message) ?? "no answer"
        throw OpenBaoError(.timedOut, object: address, "not \(what) within \(timeout) (\(seen))")
    }

    /// Waits until the node is active (`sys/health` 200): unsealed and raft leader, so it serves reads and writes.
    public func waitUntilActive(timeout: Duration = .seconds(30)) async throws(OpenBaoError) {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        var last = 0
        while clock.now < deadline {
            if let code = try? await healthCode() {
                if code == 200 { return }
                last = code
            }
            do { try await Task.sleep(for: .milliseconds(100)) } catch { break }
        }
        throw OpenBaoError(.timedOut, object: address, "not active within \(timeout) (sys/health answered \(last))")
    }

    // MARK: snapshots

    /// `GET sys/storage/raft/snapshot`: the response, whose body streams the gzip tar.
    public func snapshot(token: String) async throws(OpenBaoError) -> HTTPClientResponse {
        var request = HTTPClientRequest(url: "\(address)/v1/sys/storage/raft/snapshot")
        request.headers.add(name: "X-Vault-Token", value: token)
        let response: HTTPClientResponse
        do {
            response = try await http.execute(request, timeout: .hours(6))
        } catch {
            throw OpenBaoError(.unreachable, object: "\(address)/v1/sys/storage/raft/snapshot", "no answer: \(Self.describe(error))")
        }
        guard response.status == .ok else {
            let body = (try? await response.body.collect(upTo: 1 << 20)).map { Data($0.readableBytesView) } ?? Data()
            let reply = Reply(status: Int(response.status.code), body: body)
            throw OpenBaoError(.requestFailed, object: "\(address)/v1/sys/storage/raft/snapshot", "the snapshot was refused (\(reply.errors))")
        }
        return response
    }

    /// The whole snapshot archive in memory (small stores, tests, tools); backups stream instead.
    public func downloadSnapshot(token: String) async throws -> Data {
        let response = try await snapshot(token: token)
        var data = Data()
        for try await buffer in response.body { data.append(contentsOf: buffer.readableBytesView) }
        return data
    }

    /// `POST sys/storage/raft/snapshot-force` with the archive as the body. Force skips only the
    /// key-consistency check (Lifeboat checks custody itself first); OpenBao still checks the hashes.
    public func restoreSnapshot(_ body: HTTPClientRequest.Body, token: String) async throws(OpenBaoError) {
        var request = HTTPClientRequest(url: "\(address)/v1/sys/storage/raft/snapshot-force")
        request.method = .POST
        request.headers.add(name: "X-Vault-Token", value: token)
        request.headers.add(name: "Content-Type", value: "application/gzip")
        request.body = body
        let reply = try await execute(request, path: "sys/storage/raft/snapshot-force", timeout: .hours(6))
        guard reply.ok else {
            throw OpenBaoError(.requestFailed, object: "\(address)/v1/sys/storage/raft/snapshot-force", "the snapshot was not restored (\(reply.errors))")
        }
    }

    // MARK: secrets

    /// Mounts kv version 2 at `path` (a no-op error when it exists already is reported as such).
    public func enableKV(at path: String = "secret", token: String) async throws(OpenBaoError) {
        let reply = try await send(.POST, "sys/mounts/\(path)", token: token, json: ["type": "kv", "options": ["version": "2"]])
        guard reply.ok else { throw OpenBaoError(.requestFailed, object: "\(address)/v1/sys/mounts/\(path)", "cannot mount kv-v2 (\(reply.errors))") }
        // A new kv-v2 mount answers 400 "Upgrading from non-versioned to versioned data" for a moment.
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(30)
        while clock.now < deadline {
            if try await send(.GET, "\(path)/config", token: token).ok { return }
            do { try await Task.sleep(for: .milliseconds(50)) } catch { break }
        }
        throw OpenBaoError(.timedOut, object: "\(address)/v1/\(path)", "the kv-v2 mount did not become ready")
    }

    /// Writes `data` to a kv-v2 secret: `writeSecret("app/db", ["password": "…"])` → `secret/data/app/db`.
    public func writeSecret(_ path: String, _ data: [String: String], mount: String = "secret", token: String) async throws(OpenBaoError) {
        let reply = try await send(.POST, "\(mount)/data/\(path)", token: token, json: ["data": data])
        guard reply.ok else { throw OpenBaoError(.requestFailed, object: "\(mount)/data/\(path)", "cannot write the secret (\(reply.errors))") }
    }

    /// Reads a kv-v2 secret's fields; nil when it does not exist.
    public func readSecret(_ path: String, mount: String = "secret", token: String) async throws(OpenBaoError) -> [String: String]? {
        let reply = try await send(.GET, "\(mount)/data/\(path)", token: token)
        if reply.status == 404 { return nil }
        guard reply.ok, let data = (reply.json?["data"] as? [String: Any])?["data"] as? [String: Any] else {
            throw OpenBaoError(.requestFailed, object: "\(mount)/data/\(path)", "cannot read the secret (\(reply.errors))")
        }
        return data.compactMapValues { $0 as? String }
    }
}

/// `sys/seal-status`, the fields Lifeboat uses.
public struct SealStatus: Sendable, Hashable, Codable {
    /// `shamir` or `transit`.
    public var type: String
    public var initialized: Bool
    public var sealed: Bool
    /// Threshold and shares: unseal shares under Shamir, recovery shares under Transit.
    public var t: Int
    public var n: Int
    public var progress: Int?
    public var version: String?
    public var clusterID: String?
    public var clusterName: String?
    public var recoverySeal: Bool?
    public var storageType: String?

    enum CodingKeys: String, CodingKey {
        case type, initialized, sealed, t, n, progress, version
        case clusterID = "cluster_id", clusterName = "cluster_name", recoverySeal = "recovery_seal", storageType = "storage_type"
    }
}

/// What `sys/init` returned. Held only in memory by Lifeboat (a temporary bootstrap of a restore target).
public struct InitResult: Sendable {
    /// Hex keys: unseal shares (Shamir) or recovery shares (Transit).
    public var keys: [String]
    public var rootToken: String
    public var recoveryKeys: Bool
}
