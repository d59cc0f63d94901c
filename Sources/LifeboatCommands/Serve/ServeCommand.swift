import ArgumentParser
import Foundation
import LifeboatCore
import LifeboatServer
import Logging

/// `lifeboat serve`: the read-only HTTP API.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the read-only API: the catalog, the restore plan and a health check.",
        discussion: """
        GET /v1/platform/backup/catalog       the coverage matrix
        GET /v1/platform/backup/restore-plan  the ordered restore plan
        GET /healthz                          liveness (never needs a token)

        The catalog is read once at start; restart to pick up changes. With a token (--token-file or $LIFEBOAT_API_TOKEN) every API path needs Authorization: Bearer <token>. Errors are application/problem+json (RFC 9457). SIGTERM or SIGINT shuts down gracefully.

        Example:
          LIFEBOAT_API_TOKEN=$(cat /run/secrets/lifeboat-api) lifeboat serve -c lifeboat.yaml --port 8080
        """)

    @OptionGroup var catalog: CatalogOptions

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
        let loaded = try catalog.load()
        let documents = try PlatformDocuments(catalog: loaded.catalog)
        let token = try bearerToken()
        var logger = Logger(label: "lifeboat.serve")
        logger.logLevel = .info
        let catalogPath = catalog.path
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
