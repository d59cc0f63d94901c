import Foundation
import LifeboatConnectors
import LifeboatCore
import LifeboatRepository
import LifeboatStorage

/// Real OpenBao servers for the connector tests. Each test owns its servers; they stop by PID on
/// deinit, so a failing test cleans up too.
enum OpenBaoFixture {
    static func scratch(_ name: String) throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("lifeboat-openbao-\(name)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    /// A local repository with cheap scrypt (the production code paths otherwise).
    static func repository(in directory: URL) async throws -> Repository {
        try await Repository.initialize(backend: LocalDirectoryBackend(root: directory.appendingPathComponent("repository")),
                                        passphrase: "test passphrase")
    }

    /// A started, initialised and unsealed node with kv-v2 at `secret/` and `secrets` written.
    struct Node {
        var server: LocalOpenBao
        var initResult: InitResult
        var token: String { initResult.rootToken }
        var client: OpenBaoClient { server.client }
    }

    static func node(
        _ name: String, in directory: URL, seal: LocalOpenBao.Seal = .shamir, shares: Int = 5, threshold: Int = 3,
        secrets: [String: [String: String]] = [:]
    ) async throws -> Node {
        let server = try await LocalOpenBao.start(in: directory.appendingPathComponent(name), seal: seal, nodeID: name)
        let result = try await server.initialize(shares: shares, threshold: threshold)
        try await server.enableKV(token: result.rootToken)
        for (path, data) in secrets.sorted(by: { $0.key < $1.key }) {
            try await server.client.writeSecret(path, data, token: result.rootToken)
        }
        return Node(server: server, initResult: result)
    }

    static let sourceSecrets: [String: [String: String]] = [
        "platform/postgres/app": ["password": "pg-\(UUID().uuidString)", "user": "app"],
        "platform/sessions/signing-key": ["key": "sk-\(UUID().uuidString)"],
        "tenants/acme": ["db_password": "acme-\(UUID().uuidString)"],
    ]

    static let checks: [VerifyCheck] = [
        .openbaoRead(path: "secret/data/platform/postgres/app", field: "password"),
        .openbaoRead(path: "secret/data/tenants/acme", field: "db_password"),
    ]

    /// The raw archive, as `curl` would save it.
    static func rawSnapshot(_ node: Node) async throws -> Data {
        try await node.client.downloadSnapshot(token: node.token)
    }
}
