import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// An etcd cluster reached through its v3 JSON gateway (`/v3/*`, keys and values base64): tries each
/// endpoint in turn until one answers, and authenticates when a username is given.
public struct EtcdGateway: Sendable {
    public let endpoints: [String]
    let username: String?
    let password: String?
    let client: HTTPClient

    /// `endpoints` are client URLs (`http://10.0.0.5:2379`); `password` is already resolved and is never shown.
    public init(endpoints: [String], username: String? = nil, password: String? = nil) throws(EtcdError) {
        guard !endpoints.isEmpty else { throw EtcdError(.invalidTarget, "no etcd endpoint given") }
        var normalized: [String] = []
        for endpoint in endpoints {
            let trimmed = endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
            guard let url = URL(string: trimmed), url.scheme == "http" || url.scheme == "https", url.host != nil else {
                throw EtcdError(.invalidTarget, object: endpoint, "an etcd endpoint is an http(s) URL such as http://127.0.0.1:2379")
            }
            normalized.append(trimmed)
        }
        if username != nil, password == nil {
            throw EtcdError(.authentication, "a username is given without a password")
        }
        self.endpoints = normalized
        self.username = username
        self.password = password
        client = Self.sharedClient
    }

    /// One client for the process (see `HTTPClient.failingFast`: a refused endpoint fails at once and
    /// the next is tried); a stalled snapshot stream fails after the read timeout.
    static let sharedClient = HTTPClient.failingFast(connect: .seconds(5), read: .seconds(120))

    /// The first endpoint that answers (authenticated when a username is given). An endpoint that
    /// refuses, times out or is not etcd is skipped; a refused password stops at once.
    public func connect(timeout: Duration = .seconds(10)) async throws(EtcdError) -> EtcdSession {
        var failures: [String] = []
        for endpoint in endpoints {
            var session = EtcdSession(endpoint: endpoint, token: nil, client: client, timeout: timeout)
            do {
                if let username, let password {
                    let reply: EtcdSession.AuthenticateReply = try await session.call(
                        "/v3/auth/authenticate", EtcdSession.AuthenticateRequest(name: username, password: password))
                    session.token = reply.token
                }
                // A read proves the member serves requests (a member without quorum times out here).
                _ = try await session.count(prefix: nil)
                return session
            } catch {
                // A wrong password is wrong on every member: stop. Anything else (refused, timed out,
                // no quorum, not etcd) may be this member's trouble: try the next one.
                if error.message.contains("authentication failed") {
                    throw EtcdError(.authentication, object: endpoint, "etcd refused the username or password of user \(username ?? "")")
                } else if error.message.contains("user name is empty") {
                    throw EtcdError(.authentication, object: endpoint, "etcd has authentication enabled: give a username and password in the catalog's connection")
                } else if error.message.contains("permission denied") {
                    throw EtcdError(.authentication, object: endpoint, "user \(username ?? "") may not read every key: a backup needs the root role")
                }
                failures.append("\(endpoint) (\(error.message))")
            }
        }
        throw EtcdError(.unreachable, "no etcd endpoint answered: " + failures.joined(separator: "; "))
    }
}

/// A connection to one etcd member through the gateway, with its auth token when there is one.
public struct EtcdSession: Sendable {
    public let endpoint: String
    var token: String?
    let client: HTTPClient
    let timeout: Duration

    /// The response header every etcd reply carries (int64 values arrive as strings).
    public struct Header: Sendable, Hashable, Decodable {
        public var clusterID: String
        public var memberID: String
        public var revision: Int64
        enum CodingKeys: String, CodingKey { case clusterID = "cluster_id", memberID = "member_id", revision }
        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            clusterID = try container.decode(String.self, forKey: .clusterID)
            memberID = try container.decode(String.self, forKey: .memberID)
            revision = Int64(try container.decodeIfPresent(String.self, forKey: .revision) ?? "0") ?? 0
        }

        /// etcd's ids are uint64 in decimal on the wire; etcdctl prints them in hex.
        public var clusterIDHex: String { Self.hex(clusterID) }
        public var memberIDHex: String { Self.hex(memberID) }
        static func hex(_ decimal: String) -> String { UInt64(decimal).map { String($0, radix: 16) } ?? decimal }
    }

    /// How many keys are under `prefix` (all keys when nil), and the header of that read.
    /// `serializable` reads this member's own state instead of asking the leader.
    public func count(prefix: Data?, serializable: Bool = false) async throws(EtcdError) -> (count: Int64, header: Header) {
        let (key, end) = Self.range(prefix)
        let reply: RangeReply = try await call("/v3/kv/range", RangeRequest(key: key, rangeEnd: end, countOnly: true, serializable: serializable))
        return (Int64(reply.count ?? "0") ?? 0, reply.header)
    }

    /// Every key and value under `prefix` (all when nil), in key order, read in pages of `pageSize`.
    public func keyValues(prefix: Data?, pageSize: Int = 1000) async throws(EtcdError) -> [(key: Data, value: Data)] {
        var (key, end) = Self.range(prefix)
        var found: [(key: Data, value: Data)] = []
        var revision: Int64?
        while true {
            // Every page at the first page's revision, so a concurrent write cannot tear the listing.
            let reply: RangeReply = try await call("/v3/kv/range", RangeRequest(key: key, rangeEnd: end, limit: Int64(pageSize), revision: revision))
            revision = revision ?? reply.header.revision
            for pair in reply.kvs ?? [] {
                guard let k = Data(base64Encoded: pair.key) else { continue }
                found.append((k, pair.value.flatMap { Data(base64Encoded: $0) } ?? Data()))
            }
            guard reply.more == true, let last = found.last?.key else { return found }
            key = (last + [0]).base64EncodedString()
            if prefix == nil { end = "AA==" }
        }
    }

    /// Writes one key (used to load fixtures and by the demo).
    public func put(_ key: Data, _ value: Data) async throws(EtcdError) {
        let _: PutReply = try await call("/v3/kv/put", PutRequest(key: key.base64EncodedString(), value: value.base64EncodedString()))
    }

    /// Creates user `root` (role root) and turns authentication on: for drills and the demo that
    /// rehearse an authenticated cluster. Every later call needs the username and password.
    public func enableAuthentication(rootPassword: String) async throws(EtcdError) {
        let _: HeaderReply = try await call("/v3/auth/user/add", ["name": "root", "password": rootPassword])
        let _: HeaderReply = try await call("/v3/auth/user/grant", ["user": "root", "role": "root"])
        let _: HeaderReply = try await call("/v3/auth/enable", Empty())
    }

    /// The cluster's members as etcd reports them.
    public func members() async throws(EtcdError) -> [Member] {
        let reply: MemberListReply = try await call("/v3/cluster/member/list", Empty())
        return reply.members ?? []
    }

    public struct Member: Sendable, Hashable, Decodable {
        public var id: String
        public var name: String?
        public var peerURLs: [String]?
        public var clientURLs: [String]?
        enum CodingKeys: String, CodingKey { case id = "ID", name, peerURLs, clientURLs }
    }

    /// The member's server version (`/v3/maintenance/status`).
    public func serverVersion() async throws(EtcdError) -> String {
        let reply: StatusReply = try await call("/v3/maintenance/status", Empty())
        return reply.version ?? "unknown"
    }

    /// The snapshot as etcd streams it: decoded blobs in order, the SHA-256 trailer checked at the end
    /// (the sequence throws instead of ending when it does not match or the stream stopped early).
    public func snapshot() async throws(EtcdError) -> EtcdSnapshotStream {
        let response = try await send("/v3/maintenance/snapshot", body: Data("{}".utf8))
        guard response.status == .ok else {
            let body = try? await response.body.collect(upTo: 1 << 20)
            throw Self.failure(status: response.status, body: body.map { Data($0.readableBytesView) } ?? Data(), endpoint: endpoint)
        }
        return EtcdSnapshotStream(body: response.body, endpoint: endpoint)
    }

    // MARK: transport

    func call<Request: Encodable, Reply: Decodable>(_ path: String, _ request: Request) async throws(EtcdError) -> Reply {
        let body: Data
        do { body = try JSONEncoder().encode(request) } catch { throw EtcdError(.invalidTarget, object: path, "cannot encode the request: \(error)") }
        let response = try await send(path, body: body)
        let data: Data
        do {
            data = Data(try await response.body.collect(upTo: 64 << 20).readableBytesView)
        } catch {
            throw EtcdError(.unreachable, object: endpoint, "the reply to \(path) was cut off: \(error)")
        }
        guard response.status == .ok else { throw Self.failure(status: response.status, body: data, endpoint: endpoint) }
        do {
            return try JSONDecoder().decode(Reply.self, from: data)
        } catch {
            throw EtcdError(.server, object: endpoint, "\(path) answered with something that is not etcd's reply: \(String(decoding: data.prefix(200), as: UTF8.self))")
        }
    }

    private func send(_ path: String, body: Data) async throws(EtcdError) -> HTTPClientResponse {
        var request = HTTPClientRequest(url: endpoint + path)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        // etcd's gateway takes the bare token, not `Bearer …`.
        if let token { request.headers.add(name: "Authorization", value: token) }
        request.body = .bytes(ByteBuffer(bytes: body))
        let nanoseconds = timeout.components.seconds * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000
        do {
            return try await client.execute(request, timeout: .nanoseconds(nanoseconds))
        } catch {
            throw EtcdError(.unreachable, object: endpoint, Self.describe(error))
        }
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError {
            if [HTTPClientError.deadlineExceeded, .connectTimeout, .readTimeout].contains(error) { return "timed out" }
            if error == .remoteConnectionClosed { return "the connection was closed" }
        }
        let text = "\(error)"
        if text.contains("connection refused") || text.contains("Connection refused") || text.contains("ECONNREFUSED") { return "connection refused" }
        return text
    }

    /// etcd's error reply: `{"error":"…","code":N,"message":"…"}`, or `{"error":{"message":…}}` on a stream.
    static func failure(status: HTTPResponseStatus, body: Data, endpoint: String) -> EtcdError {
        let object = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any]
        let message = (object?["message"] as? String)
            ?? ((object?["error"] as? [String: Any])?["message"] as? String)
            ?? (object?["error"] as? String)
        guard let message else {
            // Not etcd's JSON: something else listens there, so another endpoint may still answer.
            return EtcdError(.unreachable, object: endpoint, "HTTP \(status.code), not an etcd v3 gateway reply")
        }
        if message.contains("authentication failed") || message.contains("invalid auth token") || message.contains("user name is empty")
            || message.contains("permission denied") {
            return EtcdError(.server, object: endpoint, message)
        }
        return EtcdError(.server, object: endpoint, "HTTP \(status.code): \(message)")
    }

    /// Key and range_end for a prefix: the prefix with its last byte incremented (trailing 0xff bytes
    /// dropped first); `AA==`/`AA==` (a single zero byte) for every key.
    static func range(_ prefix: Data?) -> (key: String, end: String) {
        guard let prefix, !prefix.isEmpty else { return ("AA==", "AA==") }
        var end = Array(prefix)
        while let last = end.last, last == 0xff { end.removeLast() }
        guard !end.isEmpty else { return (prefix.base64EncodedString(), "AA==") }
        end[end.count - 1] += 1
        return (prefix.base64EncodedString(), Data(end).base64EncodedString())
    }

    // MARK: wire types

    struct Empty: Encodable {}
    struct AuthenticateRequest: Encodable { var name: String; var password: String }
    struct AuthenticateReply: Decodable { var token: String }
    struct RangeRequest: Encodable {
        var key: String
        var rangeEnd: String
        var countOnly: Bool?
        var serializable: Bool?
        var limit: Int64?
        var revision: Int64?
        init(key: String, rangeEnd: String, countOnly: Bool? = nil, serializable: Bool? = nil, limit: Int64? = nil, revision: Int64? = nil) {
            self.key = key
            self.rangeEnd = rangeEnd
            self.countOnly = countOnly
            self.serializable = serializable == true ? true : nil
            self.limit = limit
            self.revision = revision
        }
        enum CodingKeys: String, CodingKey { case key, rangeEnd = "range_end", countOnly = "count_only", serializable, limit, revision }
    }
    struct RangeReply: Decodable {
        var header: Header
        var kvs: [KeyValue]?
        var count: String?
        var more: Bool?
    }
    struct KeyValue: Decodable { var key: String; var value: String? }
    struct PutRequest: Encodable { var key: String; var value: String }
    struct PutReply: Decodable { var header: Header }
    struct HeaderReply: Decodable { var header: Header? }
    struct MemberListReply: Decodable { var members: [Member]? }
    struct StatusReply: Decodable { var version: String? }
}

/// The blobs of an etcd snapshot as they arrive from the gateway, each one decoded; at the end the
/// SHA-256 trailer is checked, so a consumer that saw the sequence end normally has a whole, intact snapshot.
public struct EtcdSnapshotStream: AsyncSequence, Sendable {
    public typealias Element = Data
    let body: HTTPClientResponse.Body
    let endpoint: String

    public func makeAsyncIterator() -> Iterator { Iterator(body: body.makeAsyncIterator(), endpoint: endpoint) }

    public struct Iterator: AsyncIteratorProtocol {
        var body: HTTPClientResponse.Body.AsyncIterator
        let endpoint: String
        var lines = EtcdSnapshotLines()
        public private(set) var trailer = EtcdSnapshotTrailer()
        var done = false

        public mutating func next() async throws -> Data? {
            guard !done else { return nil }
            while true {
                if let blob = try lines.next() {
                    trailer.update(blob)
                    return blob
                }
                let buffer: ByteBuffer?
                do { buffer = try await body.next() } catch {
                    throw EtcdError(.unreachable, object: endpoint, "the snapshot stream broke after \(trailer.size) bytes: \(EtcdSession.describe(error))")
                }
                guard let buffer else { break }
                lines.append(buffer.readableBytesView)
            }
            if let blob = try lines.finish() {
                trailer.update(blob)
                return blob
            }
            done = true
            try trailer.verify("snapshot from \(endpoint)")
            return nil
        }
    }
}
