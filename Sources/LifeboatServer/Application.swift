import Foundation
import Hummingbird
import LifeboatCore
import Logging

/// What the read-only API serves, computed once at start-up: the server reloads nothing implicitly.
public struct PlatformDocuments: Sendable {
    public var catalog: CatalogDocument
    public var restorePlan: RestorePlanDocument

    public init(catalog: Catalog) throws(PlanError) {
        let plan = try RestorePlan(catalog: catalog)
        self.catalog = CatalogDocument(catalog: catalog, plan: plan)
        self.restorePlan = RestorePlanDocument(plan: plan)
    }
}

/// Where and how `lifeboat serve` listens.
public struct ServerSettings: Sendable {
    public var host: String
    public var port: Int
    /// When set, every API path requires `Authorization: Bearer <token>`.
    public var bearerToken: String?

    public init(host: String = "127.0.0.1", port: Int = 8080, bearerToken: String? = nil) {
        self.host = host
        self.port = port
        self.bearerToken = bearerToken
    }
}

/// Routes of the read-only API. Documents are encoded once; requests only copy bytes.
public func buildRouter(documents: PlatformDocuments, bearerToken: String?) throws -> Router<BasicRequestContext> {
    let router = Router()
    router.add(middleware: ProblemMiddleware())
    if let bearerToken {
        router.add(middleware: BearerTokenMiddleware(token: Array(bearerToken.utf8), openPaths: ["/healthz"]))
    }
    let catalogBody = ByteBuffer(bytes: try JSONEncoder.api.encode(documents.catalog))
    let planBody = ByteBuffer(bytes: try JSONEncoder.api.encode(documents.restorePlan))
    let jsonHeaders: HTTPFields = [.contentType: "application/json", .cacheControl: "no-store"]

    router.get("/healthz") { _, _ in
        Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: #"{"status":"ok"}"#)))
    }
    router.get("/v1/platform/backup/catalog") { _, _ in
        Response(status: .ok, headers: jsonHeaders, body: .init(byteBuffer: catalogBody))
    }
    router.get("/v1/platform/backup/restore-plan") { _, _ in
        Response(status: .ok, headers: jsonHeaders, body: .init(byteBuffer: planBody))
    }
    return router
}

/// The whole server; `runService()` serves until SIGTERM or SIGINT, then shuts down gracefully.
public func buildApplication(
    documents: PlatformDocuments, settings: ServerSettings, logger: Logger,
    onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) throws -> some ApplicationProtocol {
    let router = try buildRouter(documents: documents, bearerToken: settings.bearerToken)
    return Application(
        router: router,
        configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: "lifeboat"),
        onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? settings.port) },
        logger: logger)
}
