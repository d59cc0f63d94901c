import Foundation
import Hummingbird
import LifeboatCore
import Logging

/// What the read-only API serves. The catalog and plan are computed once at start-up (the server
/// reloads nothing implicitly); the status is read from the repository, cached for a few seconds.
public struct PlatformDocuments: Sendable {
    public var catalog: CatalogDocument
    public var restorePlan: RestorePlanDocument
    /// Reads the platform's backup status; nil when no repository is configured.
    public var status: (@Sendable () async throws -> PlatformStatus)?
    /// The scheduler's jobs as JSON (last and next run of each); nil when `serve` schedules nothing.
    public var jobs: (@Sendable () async throws -> Data)?
    /// More Prometheus exposition text for `/metrics` (the scheduler's registry), appended to the status.
    public var extraMetrics: (@Sendable () -> String)?

    public init(catalog: Catalog, status: (@Sendable () async throws -> PlatformStatus)? = nil,
                jobs: (@Sendable () async throws -> Data)? = nil, extraMetrics: (@Sendable () -> String)? = nil) throws(PlanError) {
        let plan = try RestorePlan(catalog: catalog)
        self.catalog = CatalogDocument(catalog: catalog, plan: plan)
        self.restorePlan = RestorePlanDocument(plan: plan)
        self.status = status
        self.jobs = jobs
        self.extraMetrics = extraMetrics
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
    let statusCache = documents.status.map { StatusCache(lifetime: 10, compute: $0) }
    @Sendable func currentStatus() async throws -> PlatformStatus {
        guard let statusCache else {
            throw Problem(.serviceUnavailable, code: "no_repository", title: "No repository",
                          detail: "status needs the repository: start `lifeboat serve` with --repo or a catalog with a repository section")
        }
        do {
            return try await statusCache.status()
        } catch {
            throw Problem(.serviceUnavailable, code: "repository_unreadable", title: "Repository unreadable",
                          detail: "the repository cannot be read: \(error)")
        }
    }
    router.get("/v1/platform/backup/status") { _, _ in
        let status = try await currentStatus()
        return Response(status: .ok, headers: jsonHeaders, body: .init(byteBuffer: ByteBuffer(bytes: try JSONEncoder.api.encode(status))))
    }
    router.get("/v1/platform/backup/jobs") { _, _ in
        guard let jobs = documents.jobs else {
            throw Problem(.serviceUnavailable, code: "no_scheduler", title: "No scheduler",
                          detail: "this `lifeboat serve` schedules no job (started with --no-schedule, or the catalog has no cadence)")
        }
        let body: Data
        do { body = try await jobs() } catch {
            throw Problem(.serviceUnavailable, code: "repository_unreadable", title: "Repository unreadable",
                          detail: "the job history cannot be read: \(error)")
        }
        return Response(status: .ok, headers: jsonHeaders, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
    router.get("/metrics") { _, _ in
        // An unreadable repository answers 503 (LifeboatDown), never a page without the status
        // series: the RPO alerts would then go silent instead of firing.
        let text = PrometheusText.render(try await currentStatus()) + (documents.extraMetrics?() ?? "")
        return Response(status: .ok, headers: [.contentType: PrometheusText.contentType, .cacheControl: "no-store"], body: .init(byteBuffer: ByteBuffer(string: text)))
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
