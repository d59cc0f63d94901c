import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A Prometheus server (Debian's `prometheus` package) on a free loopback port, scraping the
/// targets it is given and evaluating rule files every `evaluationInterval`: the end-to-end check
/// that alert rules fire on what `lifeboat serve` exposes. Started by PID, stopped by PID; its
/// configuration, TSDB and log live in a directory of its own.
public final class LocalPrometheus: Sendable {
    /// One scrape job.
    public struct Scrape: Sendable {
        public var job: String
        /// `host:port` of each target.
        public var targets: [String]
        public var metricsPath: String
        public var bearerToken: String?
        /// Keeps the target's own `job` label on its series (Lifeboat's scheduler metrics carry one).
        public var honorLabels: Bool

        public init(job: String, targets: [String], metricsPath: String = "/metrics", bearerToken: String? = nil, honorLabels: Bool = true) {
            self.job = job
            self.targets = targets
            self.metricsPath = metricsPath
            self.bearerToken = bearerToken
            self.honorLabels = honorLabels
        }
    }

    /// An alert as `/api/v1/alerts` lists it.
    public struct Alert: Decodable, Sendable, Equatable {
        public var labels: [String: String]
        public var annotations: [String: String]
        /// `pending` or `firing` (resolved alerts are not listed).
        public var state: String
        public var value: String?

        public var name: String { labels["alertname"] ?? "" }
    }

    public let port: Int
    public let directory: URL
    public let process: ServerProcess
    public var url: URL { URL(string: "http://127.0.0.1:\(port)")! }
    public var logFile: URL { directory.appendingPathComponent("prometheus.log") }

    private init(port: Int, directory: URL, process: ServerProcess) {
        self.port = port
        self.directory = directory
        self.process = process
    }

    /// Writes the configuration (rule files are copied beside it), starts Prometheus and waits
    /// until it answers `/-/ready`. `promtool check config` runs first, so a bad configuration
    /// fails with promtool's reason rather than a server that exits.
    public static func start(
        scrapes: [Scrape], ruleFiles: [URL] = [], scrapeInterval: Duration = .seconds(1), evaluationInterval: Duration = .seconds(1),
        in parent: URL? = nil
    ) async throws -> LocalPrometheus {
        let prometheus = try ExternalTool.locate("prometheus")
        let port = try freeLoopbackPort()
        let directory = (parent ?? FileManager.default.temporaryDirectory).appendingPathComponent("lifeboat-prometheus-\(port)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var ruleNames: [String] = []
        for (index, file) in ruleFiles.enumerated() {
            let name = "rules-\(index)-\(file.lastPathComponent)"
            try FileManager.default.copyItem(at: file, to: directory.appendingPathComponent(name))
            ruleNames.append(name)
        }
        for (index, scrape) in scrapes.enumerated() where scrape.bearerToken != nil {
            let tokenFile = directory.appendingPathComponent("token-\(index)")
            try Data(scrape.bearerToken!.utf8).write(to: tokenFile)
            guard chmod(tokenFile.path, 0o600) == 0 else { throw ServerStartError(message: "cannot make \(tokenFile.path) private") }
        }
        let configuration = directory.appendingPathComponent("prometheus.yml")
        try Data(Self.configuration(scrapes: scrapes, ruleFiles: ruleNames, scrapeInterval: scrapeInterval, evaluationInterval: evaluationInterval).utf8)
            .write(to: configuration)
        let promtool = try ExternalTool.locate("promtool")
        let check = try await promtool.run(["check", "config", configuration.path])
        guard check.status == 0 else {
            throw ServerStartError(message: "promtool check config refused \(configuration.path): \(check.output)\(check.stderr)")
        }
        let logFile = directory.appendingPathComponent("prometheus.log")
        let process = try ServerProcess(
            name: "prometheus", executable: prometheus.path,
            arguments: [
                "--config.file=\(configuration.path)",
                "--storage.tsdb.path=\(directory.appendingPathComponent("data").path)",
                "--web.listen-address=127.0.0.1:\(port)",
                "--web.console.templates=\(directory.path)", "--web.console.libraries=\(directory.path)",
                "--log.level=warn",
            ],
            logFile: logFile)
        let server = LocalPrometheus(port: port, directory: directory, process: process)
        do {
            try await awaitLoopbackPort(port, timeout: 60, process: process)
            try await server.waitUntilReady(timeout: 60)
            return server
        } catch {
            process.stop()
            let log = (try? String(contentsOf: logFile, encoding: .utf8)).map { String($0.suffix(2000)) } ?? ""
            throw ServerStartError(message: "prometheus did not start: \(error)\n\(log)")
        }
    }

    /// The prometheus.yml for these scrapes (relative rule file names: they sit beside it).
    static func configuration(scrapes: [Scrape], ruleFiles: [String], scrapeInterval: Duration, evaluationInterval: Duration) -> String {
        func seconds(_ duration: Duration) -> String {
            let milliseconds = duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
            return "\(max(milliseconds, 1))ms"
        }
        // Prometheus needs a scrape timeout no longer than the interval.
        var text = """
        global:
          scrape_interval: \(seconds(scrapeInterval))
          scrape_timeout: \(seconds(scrapeInterval))
          evaluation_interval: \(seconds(evaluationInterval))

        """
        if !ruleFiles.isEmpty {
            text += "rule_files:\n" + ruleFiles.map { "  - \(quoted($0))\n" }.joined()
        }
        text += "scrape_configs:\n"
        for (index, scrape) in scrapes.enumerated() {
            text += """
              - job_name: \(quoted(scrape.job))
                metrics_path: \(quoted(scrape.metricsPath))
                honor_labels: \(scrape.honorLabels)

            """
            if scrape.bearerToken != nil {
                text += "    authorization:\n      credentials_file: \(quoted("token-\(index)"))\n"
            }
            text += "    static_configs:\n      - targets: [\(scrape.targets.map(quoted).joined(separator: ", "))]\n"
        }
        return text
    }

    /// A YAML double-quoted scalar.
    static func quoted(_ text: String) -> String {
        "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    // MARK: the HTTP API

    struct Envelope<Payload: Decodable>: Decodable {
        var status: String
        var data: Payload?
        var error: String?
    }

    func get<Payload: Decodable>(_ path: String, query: [URLQueryItem] = [], as type: Payload.Type) async throws -> Payload {
        var components = URLComponents(url: url.appendingPathComponent(path), resolvingAgainstBaseURL: false)!
        if !query.isEmpty { components.queryItems = query }
        let (data, response) = try await URLSession.shared.data(from: components.url!)
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        let envelope: Envelope<Payload>
        do {
            envelope = try JSONDecoder().decode(Envelope<Payload>.self, from: data)
        } catch {
            throw PrometheusAPIError(message: "\(path) answered HTTP \(status) with no API envelope: \(String(decoding: data.prefix(500), as: UTF8.self))")
        }
        guard envelope.status == "success", let payload = envelope.data else {
            throw PrometheusAPIError(message: "\(path) answered HTTP \(status): \(envelope.error ?? envelope.status)")
        }
        return payload
    }

    func waitUntilReady(timeout: TimeInterval) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let (_, response) = try? await URLSession.shared.data(from: url.appendingPathComponent("-/ready")),
               (response as? HTTPURLResponse)?.statusCode == 200 { return }
            guard Date() < deadline else { throw PrometheusAPIError(message: "/-/ready did not answer 200 within \(Int(timeout)) s") }
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    /// The alerts now pending or firing (`GET /api/v1/alerts`).
    public func alerts() async throws -> [Alert] {
        struct Alerts: Decodable { var alerts: [Alert] }
        return try await get("api/v1/alerts", as: Alerts.self).alerts
    }

    /// One sample of an instant vector.
    public struct Sample: Decodable, Sendable {
        public var metric: [String: String]
        public var value: Double

        enum CodingKeys: String, CodingKey { case metric, value }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            metric = try container.decode([String: String].self, forKey: .metric)
            var pair = try container.nestedUnkeyedContainer(forKey: .value)
            _ = try pair.decode(Double.self)
            let text = try pair.decode(String.self)
            guard let value = Double(text) else {
                throw DecodingError.dataCorruptedError(in: pair, debugDescription: "sample value \(text) is not a number")
            }
            self.value = value
        }
    }

    /// Evaluates an instant-vector PromQL expression now (`GET /api/v1/query`).
    public func query(_ expression: String) async throws -> [Sample] {
        struct Result: Decodable {
            var resultType: String
            var result: [Sample]
        }
        let result = try await get("api/v1/query", query: [URLQueryItem(name: "query", value: expression)], as: Result.self)
        guard result.resultType == "vector" else {
            throw PrometheusAPIError(message: "\(expression) is a \(result.resultType), not an instant vector")
        }
        return result.result
    }

    /// Polls `/api/v1/alerts` until `condition` holds for the listed alerts; returns them.
    /// Throws naming what was last seen when `timeout` passes first.
    @discardableResult
    public func waitForAlerts(
        timeout: TimeInterval, poll: Duration = .milliseconds(500), _ description: String,
        until condition: ([Alert]) -> Bool
    ) async throws -> [Alert] {
        let deadline = Date().addingTimeInterval(timeout)
        var last: [Alert] = []
        while true {
            last = try await alerts()
            if condition(last) { return last }
            guard Date() < deadline else {
                let seen = last.map { "\($0.name)\($0.labels.filter { $0.key != "alertname" }.sorted { $0.key < $1.key }) \($0.state)" }
                throw PrometheusAPIError(message: "not within \(Int(timeout)) s: \(description); alerts were \(seen)")
            }
            try await Task.sleep(for: poll)
        }
    }

    /// Stops Prometheus by PID (idempotent) and removes its directory.
    public func stop() {
        process.stop()
        try? FileManager.default.removeItem(at: directory)
    }
}

public struct PrometheusAPIError: Error, CustomStringConvertible {
    public var message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}
