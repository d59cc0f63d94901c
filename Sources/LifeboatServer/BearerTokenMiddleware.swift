import Hummingbird

/// Requires `Authorization: Bearer <token>` on every path except the health check.
struct BearerTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: [UInt8]
    let openPaths: Set<String>

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard !openPaths.contains(request.uri.path) else { return try await next(request, context) }
        guard let header = request.headers[.authorization] else {
            throw Problem(.unauthorized, code: "unauthenticated", title: "Unauthorized",
                          detail: "this server requires a bearer token: send Authorization: Bearer <token>",
                          headers: [.wwwAuthenticate: "Bearer realm=\"lifeboat\""])
        }
        let prefix = "bearer "
        guard header.count > prefix.count, header.prefix(prefix.count).lowercased() == prefix,
              Self.constantTimeEqual(Array(header.utf8.dropFirst(prefix.count)), token) else {
            throw Problem(.unauthorized, code: "invalid_token", title: "Unauthorized",
                          detail: "the bearer token was not accepted",
                          headers: [.wwwAuthenticate: "Bearer realm=\"lifeboat\", error=\"invalid_token\""])
        }
        return try await next(request, context)
    }

    /// Compares without stopping at the first difference, so timing does not reveal the token.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(a.count == b.count ? 0 : 1)
        for index in 0..<max(a.count, b.count) {
            difference |= (index < a.count ? a[index] : 0) ^ (index < b.count ? b[index] : 0)
        }
        return difference == 0
    }
}
