import Foundation
import Hummingbird
import HummingbirdTesting
import LifeboatCore
import Logging
import Testing
@testable import LifeboatServer

/// Every problem body parses as the platform SDK's `Problem` model (all six fields required), and
/// every response carries the same correlation id in `X-Correlation-Id`.
@Suite struct CorrelationTests {
    /// The SDK's model: decoding fails when any field is missing or of another type.
    struct SDKProblem: Decodable {
        var type: String
        var title: String
        var status: Int
        var detail: String
        var instance: String
        var correlationID: String

        enum CodingKeys: String, CodingKey {
            case type, title, status, detail, instance, correlationID = "correlation_id"
        }
    }

    struct Failure: Error {}

    /// The real router plus one route that fails with an unexpected error, to reach the 500 path.
    static func app(token: String? = nil, status: (@Sendable () async throws -> PlatformStatus)? = nil) throws -> some ApplicationProtocol {
        let loaded = try CatalogLoader.load(contentsOf: APITests.root.appendingPathComponent("examples/platform.yaml").path)
        let router = try buildRouter(documents: try PlatformDocuments(catalog: loaded.catalog, status: status), bearerToken: token)
        router.get("/test/boom") { _, _ -> Response in throw Failure() }
        return Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: Logger(label: "test"))
    }

    /// Parses the body as the SDK does and checks the header carries the body's id.
    static func problem(_ response: TestResponse, status: HTTPResponse.Status, path: String) throws -> SDKProblem {
        #expect(response.status == status)
        #expect(response.headers[.contentType] == "application/problem+json")
        let problem = try JSONDecoder().decode(SDKProblem.self, from: Data(response.body.readableBytesView))
        #expect(problem.status == Int(status.code))
        #expect(problem.instance == path)
        #expect(problem.type.hasPrefix("urn:lifeboat:problem:"))
        #expect(!problem.title.isEmpty && !problem.detail.isEmpty)
        #expect(response.headers[.correlationID] == problem.correlationID)
        return problem
    }

    static func isUUID(_ text: String) -> Bool { UUID(uuidString: text) != nil }

    @Test func problemsCarryAGeneratedCorrelationIDInBodyAndHeader() async throws {
        try await Self.app(token: "t0ken").test(.live) { client in
            var seen = Set<String>()
            for path in ["/v1/platform/backup/catalog", "/nope"] {
                try await client.execute(uri: path, method: .get) { response in
                    let problem = try Self.problem(response, status: .unauthorized, path: path)
                    #expect(Self.isUUID(problem.correlationID), "\(problem.correlationID) is not a UUID")
                    seen.insert(problem.correlationID)
                }
            }
            #expect(seen.count == 2, "each request gets its own id")
            try await client.execute(uri: "/nope", method: .get, headers: [.authorization: "Bearer t0ken"]) { response in
                let problem = try Self.problem(response, status: .notFound, path: "/nope")
                #expect(Self.isUUID(problem.correlationID))
            }
            try await client.execute(uri: "/test/boom", method: .get, headers: [.authorization: "Bearer t0ken"]) { response in
                let problem = try Self.problem(response, status: .internalServerError, path: "/test/boom")
                #expect(Self.isUUID(problem.correlationID))
                #expect(problem.detail.contains(problem.correlationID), "the detail points at the log line")
            }
        }
    }

    @Test func aSaneCorrelationIDFromTheRequestIsEchoed() async throws {
        try await Self.app(token: "t0ken").test(.live) { client in
            let sent = "req-4f2a:trace/01HZX.9_~"
            try await client.execute(uri: "/v1/platform/backup/catalog", method: .get, headers: [.correlationID: sent]) { response in
                let problem = try Self.problem(response, status: .unauthorized, path: "/v1/platform/backup/catalog")
                #expect(problem.correlationID == sent)
            }
            try await client.execute(uri: "/nope", method: .get, headers: [.authorization: "Bearer t0ken", .correlationID: sent]) { response in
                let problem = try Self.problem(response, status: .notFound, path: "/nope")
                #expect(problem.correlationID == sent)
            }
            try await client.execute(uri: "/test/boom", method: .get, headers: [.authorization: "Bearer t0ken", .correlationID: sent]) { response in
                let problem = try Self.problem(response, status: .internalServerError, path: "/test/boom")
                #expect(problem.correlationID == sent)
            }
            // Successful answers carry it too, and so does the open health check.
            for path in ["/v1/platform/backup/catalog", "/healthz"] {
                try await client.execute(uri: path, method: .get, headers: [.authorization: "Bearer t0ken", .correlationID: sent]) { response in
                    #expect(response.status == .ok)
                    #expect(response.headers[.correlationID] == sent)
                }
            }
            try await client.execute(uri: "/healthz", method: .get) { response in
                let header = try #require(response.headers[.correlationID])
                #expect(Self.isUUID(header))
            }
        }
    }

    @Test func anUnsaneCorrelationIDIsReplacedByAUUID() async throws {
        try await Self.app().test(.live) { client in
            for sent in [String(repeating: "a", count: CorrelationID.maximumLength + 1), "two words", "tab\there", "ünïcode"] {
                try await client.execute(uri: "/nope", method: .get, headers: [.correlationID: sent]) { response in
                    let problem = try Self.problem(response, status: .notFound, path: "/nope")
                    #expect(problem.correlationID != sent)
                    #expect(Self.isUUID(problem.correlationID), "\(sent.debugDescription) must be replaced by a UUID")
                }
            }
            let longest = String(repeating: "b", count: CorrelationID.maximumLength)
            try await client.execute(uri: "/nope", method: .get, headers: [.correlationID: longest]) { response in
                let problem = try Self.problem(response, status: .notFound, path: "/nope")
                #expect(problem.correlationID == longest)
            }
        }
    }

    @Test func statusProblemsCarryTheFieldsToo() async throws {
        try await Self.app(status: { @Sendable in throw Failure() }).test(.live) { client in
            try await client.execute(uri: "/v1/platform/backup/status", method: .get, headers: [.correlationID: "abc-1"]) { response in
                let problem = try Self.problem(response, status: .serviceUnavailable, path: "/v1/platform/backup/status")
                #expect(problem.correlationID == "abc-1")
            }
        }
    }
}
