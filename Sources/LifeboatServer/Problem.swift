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
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let body = Body(type: "urn:lifeboat:problem:\(code)", title: title, status: Int(status.code), detail: detail,
                        instance: request.uri.path, code: code)
        var headers = self.headers
        headers[.contentType] = "application/problem+json"
        headers[.cacheControl] = "no-store"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: try JSONEncoder.api.encode(body))))
    }
}

/// Turns every error into a problem document; unexpected errors become a 500 whose detail reveals nothing internal.
struct ProblemMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let problem as Problem {
            return try problem.response(from: request, context: context)
        } catch let error as HTTPResponseError {
            let status = error.status
            let code = status == .notFound ? "not_found" : "http_\(status.code)"
            return try Problem(status, code: code, title: status.reasonPhrase,
                               detail: status == .notFound ? "no resource at \(request.uri.path)" : status.reasonPhrase)
                .response(from: request, context: context)
        } catch {
            context.logger.error("request failed", metadata: ["path": .string(request.uri.path), "error": .string(String(describing: type(of: error)))])
            return try Problem(.internalServerError, code: "internal", title: "Internal Server Error",
                               detail: "the server failed to answer; its log has the cause")
                .response(from: request, context: context)
        }
    }
}

extension JSONEncoder {
    /// Stable output: sorted keys, no escaped slashes.
    static var api: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }
}
