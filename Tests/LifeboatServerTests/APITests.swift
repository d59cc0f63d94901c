import Foundation
import Hummingbird
import HummingbirdTesting
import LifeboatCore
import Logging
import Testing
@testable import LifeboatServer

/// The read-only API over real HTTP (a live server on a free loopback port).
@Suite struct APITests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func documents() throws -> PlatformDocuments {
        let loaded = try CatalogLoader.load(contentsOf: root.appendingPathComponent("examples/platform.yaml").path)
        return try PlatformDocuments(catalog: loaded.catalog)
    }

    static func app(token: String? = nil) throws -> some ApplicationProtocol {
        try buildApplication(documents: documents(), settings: ServerSettings(host: "127.0.0.1", port: 0, bearerToken: token),
                             logger: Logger(label: "test"))
    }

    func json(_ buffer: ByteBuffer) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(buffer.readableBytesView)) as? [String: Any])
    }

    @Test func catalogFollowsTheContract() async throws {
        try await Self.app().test(.live) { client in
            try await client.execute(uri: "/v1/platform/backup/catalog", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "application/json")
                let body = try json(response.body)
                #expect(Set(body.keys).isSuperset(of: ["entries", "targets", "exclusions"]))
                let entries = try #require(body["entries"] as? [[String: Any]])
                #expect(entries.count == 10)
                var steps: [Int] = []
                for entry in entries {
                    for key in ["store", "method", "cadence", "retention", "priority", "notes"] {
                        #expect(entry[key] is String, "\(key) must be a string in \(entry["store"] ?? "?")")
                    }
                    let priority = try #require(entry["priority"] as? String)
                    #expect(["P0", "P1", "P2", "P3"].contains(priority))
                    let step = try #require(entry["restore_step"] as? Int)
                    #expect(step >= 0)
                    if step > 0 { steps.append(step) }
                }
                // Every non-zero restore_step names exactly one plan step.
                #expect(steps.sorted() == Array(1...9))
                let loki = try #require(entries.first { $0["store"] as? String == "loki" })
                #expect(loki["restore_step"] as? Int == 0)
                let openbao = try #require(entries.first { $0["store"] as? String == "openbao" })
                #expect(openbao["cadence"] as? String == "every 4h")
                #expect(openbao["retention"] as? String == "keep last 12, 14 daily, 8 weekly, 12 monthly")

                let targets = try #require(body["targets"] as? [[String: Any]])
                #expect(targets.count == 5)
                for target in targets {
                    for key in ["plane", "rpo", "rto"] { #expect(target[key] is String) }
                }
                let exclusions = try #require(body["exclusions"] as? [[String: Any]])
                #expect(exclusions.count == 5)
                for exclusion in exclusions {
                    for key in ["name", "rationale", "recovery_path"] { #expect(exclusion[key] is String) }
                }
            }
        }
    }

    @Test func restorePlanFollowsTheContract() async throws {
        try await Self.app().test(.live) { client in
            try await client.execute(uri: "/v1/platform/backup/restore-plan", method: .get) { response in
                #expect(response.status == .ok)
                let sequence = try #require(try json(response.body)["sequence"] as? [[String: Any]])
                #expect(sequence.compactMap { $0["order"] as? Int } == Array(1...9))
                for step in sequence {
                    for key in ["name", "action", "verify"] { #expect(step[key] is String) }
                }
                #expect(sequence.compactMap { $0["store"] as? String }.prefix(3) == ["config-as-code", "openbao", "postgres"])
                let postgres = try #require(sequence.first { $0["store"] as? String == "postgres" })
                #expect((postgres["verify"] as? String)?.contains("SELECT count(*) > 0 FROM tenants") == true)
            }
        }
    }

    @Test func neverServesSecretReferencesOrConnections() async throws {
        try await Self.app().test(.live) { client in
            for uri in ["/v1/platform/backup/catalog", "/v1/platform/backup/restore-plan"] {
                try await client.execute(uri: uri, method: .get) { response in
                    let text = String(buffer: response.body)
                    for leak in ["env:", "file:/", "OPENBAO_TOKEN", "/run/secrets", "PGPASSWORD", "openbao.platform.svc"] {
                        #expect(!text.contains(leak), "\(uri) exposes \(leak)")
                    }
                }
            }
        }
    }

    @Test func tokenIsRequiredWhenSet() async throws {
        let token = "s3cret-token-for-tests"
        try await Self.app(token: token).test(.live) { client in
            try await client.execute(uri: "/v1/platform/backup/catalog", method: .get) { response in
                #expect(response.status == .unauthorized)
                #expect(response.headers[.contentType] == "application/problem+json")
                #expect(response.headers[.wwwAuthenticate]?.hasPrefix("Bearer") == true)
                let problem = try json(response.body)
                #expect(problem["status"] as? Int == 401)
                #expect(problem["code"] as? String == "unauthenticated")
                #expect(problem["instance"] as? String == "/v1/platform/backup/catalog")
                for key in ["type", "title", "detail"] { #expect(problem[key] is String) }
            }
            try await client.execute(uri: "/v1/platform/backup/restore-plan", method: .get, headers: [.authorization: "Bearer wrong"]) { response in
                #expect(response.status == .unauthorized)
                let code = try json(response.body)["code"] as? String
                #expect(code == "invalid_token")
                #expect(!String(buffer: response.body).contains(token))
            }
            try await client.execute(uri: "/v1/platform/backup/restore-plan", method: .get, headers: [.authorization: "Bearer \(token)"]) { response in
                #expect(response.status == .ok)
            }
            try await client.execute(uri: "/v1/platform/backup/catalog", method: .get, headers: [.authorization: "bearer \(token)"]) { response in
                #expect(response.status == .ok, "the scheme is case-insensitive")
            }
            try await client.execute(uri: "/healthz", method: .get) { response in
                #expect(response.status == .ok, "health checks never need a token")
            }
        }
    }

    @Test func unknownPathIsAProblemDocument() async throws {
        try await Self.app().test(.live) { client in
            try await client.execute(uri: "/v1/platform/backup/secrets", method: .get) { response in
                #expect(response.status == .notFound)
                #expect(response.headers[.contentType] == "application/problem+json")
                let problem = try json(response.body)
                #expect(problem["code"] as? String == "not_found")
                #expect(problem["status"] as? Int == 404)
            }
        }
    }

    @Test func healthzAnswers() async throws {
        try await Self.app().test(.live) { client in
            try await client.execute(uri: "/healthz", method: .get) { response in
                #expect(response.status == .ok)
                let status = try json(response.body)["status"] as? String
                #expect(status == "ok")
            }
        }
    }

    @Test func tokenComparisonIsExact() {
        #expect(BearerTokenMiddleware<BasicRequestContext>.constantTimeEqual(Array("abc".utf8), Array("abc".utf8)))
        #expect(!BearerTokenMiddleware<BasicRequestContext>.constantTimeEqual(Array("abc".utf8), Array("abd".utf8)))
        #expect(!BearerTokenMiddleware<BasicRequestContext>.constantTimeEqual(Array("abc".utf8), Array("abcd".utf8)))
        #expect(!BearerTokenMiddleware<BasicRequestContext>.constantTimeEqual([], Array("a".utf8)))
    }
}
