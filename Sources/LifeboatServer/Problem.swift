import Foundation
import Hummingbird

/// An error answered as `application/problem+json` (RFC 9457), with a machine-readable `code`.
public struct Problem: HTTPResponseError, Sendable {
    public var status: HTTPResponse.Status
    public var code: String
    public var title: String
    public var detail: String
    public var headers: HTTPFields

    public init(_ status: HTTPResponse.Status, code: String, title: String, detail: String, headers: HTTPFields = [:]) {
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.headers = headers
    }

    struct Body: Encodable {
        var type: String
        var title: String
        var status: Int
        var detail: String
        var instance: String
        var code: String
        /// The request's correlation id, also sent as `X-Correlation-Id` (the platform SDK requires it).
        var correlationID: String

        enum CodingKeys: String, CodingKey {
            case type, title, status, detail, instance, code, correlationID = "correlation_id"
        }
    }

    /// The problem document for `request`, carrying `correlationID` in its body and header.
    func response(from request: Request, correlationID: String) throws -> Response {
        let body = Body(type: "urn:lifeboat:problem:\(code)", title: title, status: Int(status.code), detail: detail,
                        instance: request.uri.path, code: code, correlationID: correlationID)
        var headers = self.headers
        headers[.contentType] = "application/problem+json"
        headers[.cacheControl] = "no-store"
        headers[.correlationID] = correlationID
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: try JSONEncoder.api.encode(body))))
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        try response(from: request, correlationID: CorrelationID.of(request))
    }
}

/// The id that ties a response (and the platform's logs) to its request: the client's `X-Correlation-Id`
/// when it sent a sane one, else a new UUID.
enum CorrelationID {
    /// Long enough for any tracing id format in use (UUIDs, W3C trace ids, ULIDs), short enough not to bloat logs.
    static let maximumLength = 128

    static func of(_ request: Request) -> String {
        request.headers[.correlationID].flatMap(accepted) ?? UUID().uuidString.lowercased()
    }

    /// The client's id if it is 1–128 visible ASCII characters (no spaces or controls, so it cannot
    /// split a header or a log line); nil otherwise.
    static func accepted(_ value: String) -> String? {
        let bytes = value.utf8
        guard (1...maximumLength).contains(bytes.count), bytes.allSatisfy({ $0 >= 0x21 && $0 <= 0x7E }) else { return nil }
        return value
    }
}

// `HTTPField` itself is not re-exported by Hummingbird; reach its `Name` through `HTTPFields`.
extension HTTPFields.Element.Name {
    static let correlationID = Self("X-Correlation-Id")!
}

/// Turns every error into a problem document (unexpected errors become a 500 whose detail reveals
/// nothing internal), and stamps every response, success or problem, with `X-Correlation-Id`.
struct ProblemMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let correlationID = CorrelationID.of(request)
        do {
            var response = try await next(request, context)
            response.headers[.correlationID] = correlationID
            return response
        } catch let problem as Problem {
            return try problem.response(from: request, correlationID: correlationID)
        } catch let error as HTTPResponseError {
            let status = error.status
            let code = status == .notFound ? "not_found" : "http_\(status.code)"
            return try Problem(status, code: code, title: status.reasonPhrase,
                               detail: status == .notFound ? "no resource at \(request.uri.path)" : status.reasonPhrase)
                .response(from: request, correlationID: correlationID)
        } catch {
            context.logger.error("request failed", metadata: [
                "path": .string(request.uri.path), "error": .string(String(describing: type(of: error))), "correlation_id": .string(correlationID),
            ])
            return try Problem(.internalServerError, code: "internal", title: "Internal Server Error",
                               detail: "the server failed to answer; its log has the cause (correlation id \(correlationID))")
                .response(from: request, correlationID: correlationID)
        }
    }
}

extension JSONEncoder {
    /// Stable output: sorted keys, no escaped slashes.
    public static var api: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }
}
