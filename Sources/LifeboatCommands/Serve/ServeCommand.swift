import ArgumentParser
import Foundation
import LifeboatCore
import LifeboatEngine
import LifeboatServer
import Logging

/// `lifeboat serve`: the read-only HTTP API.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the read-only API: the catalog, the restore plan, backup status, metrics and a health check.",
        discussion: """
        GET /v1/platform/backup/catalog       the coverage matrix
        GET /v1/platform/backup/restore-plan  the ordered restore plan
        GET /v1/platform/backup/status        per store: last backup, RPO exposure, last proven restore
        GET /metrics                          the same status for Prometheus
        GET /healthz                          liveness (never needs a token)

        Status and metrics read the repository (--repo, $LIFEBOAT_REPOSITORY or the catalog's repository section; the passphrase from --password-file, $LIFEBOAT_PASSWORD or the catalog), at most every 10 s; without one they answer 503.

        The catalog is read once at start; restart to pick up changes. With a token (--token-file or $LIFEBOAT_API_TOKEN) every API path needs Authorization: Bearer <token>. Errors are application/problem+json (RFC 9457). SIGTERM or SIGINT shuts down gracefully.

        Example:
          LIFEBOAT_API_TOKEN=$(cat /run/secrets/lifeboat-api) lifeboat serve -c lifeboat.yaml --port 8080
        """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var proof: ProofAgeOption

    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on (0 picks a free one and prints it).")
    var port = 8080

    @Option(help: ArgumentHelp("File holding the bearer token clients must send.", valueName: "path"))
    var tokenFile: String?

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0-65535") }
    }

    func run() async throws {
        let catalogPath = repository.catalogPath ?? CatalogLocation.defaultPath
        let loaded = try CatalogLoader.load(contentsOf: catalogPath)
        for warning in loaded.warnings { printError(warning.description) }
        let documents = try PlatformDocuments(catalog: loaded.catalog, status: await statusSource(loaded.catalog))
        let token = try bearerToken()
        var logger = Logger(label: "lifeboat.serve")
        logger.logLevel = .info
        let app = try buildApplication(
            documents: documents, settings: ServerSettings(host: host, port: port, bearerToken: token), logger: logger,
            onServerRunning: { [host] port in
                printError("lifeboat: serving \(catalogPath) on http://\(host):\(port)\(token == nil ? " (no token: open to anyone who can reach it)" : "")")
            })
        do {
            try await app.runService()
        } catch {
            throw CommandFailure(.failure, "cannot serve on \(host):\(port): \(error)")
        }
    }

    /// Status from the repository, when one is configured; opened once (key derivation is slow).
    /// A repository that cannot be opened does not stop the catalog and plan from being served:
    /// status and metrics then answer 503 with the reason.
    func statusSource(_ catalog: Catalog) async -> (@Sendable () async throws -> PlatformStatus)? {
        let configured = repository.repository != nil || ProcessInfo.processInfo.environment["LIFEBOAT_REPOSITORY"] != nil || catalog.repository != nil
        guard configured else {
            printError("lifeboat: no repository configured: /v1/platform/backup/status and /metrics answer 503")
            return nil
        }
        do {
            let opened = try await repository.open()
            let maximumProofAge = try proof.seconds()
            let directory = URL(fileURLWithPath: repository.catalogPath ?? CatalogLocation.defaultPath).deletingLastPathComponent()
            let connectors = PlatformConnectors.all(catalogDirectory: directory, repositoryArguments: try repository.childArguments())
            return { try await PlatformStatus.read(catalog: catalog, repository: opened, connectors: connectors, maximumProofAge: maximumProofAge) }
        } catch {
            let reason = (error as? CommandFailure)?.message ?? "\(error)"
            printError("lifeboat: the repository cannot be opened (\(reason)): /v1/platform/backup/status and /metrics answer 503")
            return { throw CommandFailure(.failure, reason) }
        }
    }

    /// The token from --token-file, else $LIFEBOAT_API_TOKEN; never printed.
    func bearerToken() throws -> String? {
        if let tokenFile {
            guard let text = try? String(contentsOfFile: tokenFile, encoding: .utf8) else {
                throw CommandFailure(.usage, "cannot read the token file \(tokenFile)")
            }
            let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !token.isEmpty else { throw CommandFailure(.usage, "the token file \(tokenFile) is empty") }
            return token
        }
        if let token = ProcessInfo.processInfo.environment["LIFEBOAT_API_TOKEN"]?.trimmingCharacters(in: .whitespacesAndNewlines), !token.isEmpty {
            return token
        }
        return nil
    }
}
