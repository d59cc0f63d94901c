import Foundation
import LifeboatStorage

/// A moto_server (https://github.com/getmoto/moto) on a free loopback port with SigV4 checking on,
/// an IAM user with an admin policy, and that user's access key — so requests are really signed.
/// The suites' S3 emulator beside Ceph RGW, and the S3 server `lifeboat demo` runs its bucket on.
///
/// moto checks nothing by default (wrong secrets and unsigned requests succeed). With
/// `INITIAL_NO_AUTH_ACTION_COUNT=N` it lets the first N actions through unchecked and verifies every
/// later request against the IAM users it knows. The launcher spends exactly those N actions on
/// CreateUser, PutUserPolicy and CreateAccessKey, then proves a wrong secret is refused.
public final class MotoServer: Sendable {
    public let endpoint: URL
    public let port: Int
    public let region = "us-east-1"
    /// The IAM user's key; every request after set-up must be signed with it.
    public let credentials: S3Credentials
    public let process: ServerProcess
    public let logFile: URL

    /// The IAM actions set-up performs before authentication switches on.
    static let setupActionCount = 3

    private init(endpoint: URL, port: Int, credentials: S3Credentials, process: ServerProcess, logFile: URL) {
        self.endpoint = endpoint
        self.port = port
        self.credentials = credentials
        self.process = process
        self.logFile = logFile
    }

    /// Starts moto, sets up the IAM user and key, and checks that signatures are enforced.
    ///
    /// With a `directory`, moto's log goes there and moto runs through a link to `moto_server` inside
    /// it, so that its command line names the directory: `ProcessSweep` then finds it like every
    /// other server started there (the demo's Ctrl-C handler stops them all that way).
    public static func start(in directory: URL? = nil) async throws -> MotoServer {
        var (executable, arguments) = try await locateMoto(preferModule: directory != nil)
        let port = try freeLoopbackPort()
        var logFile = FileManager.default.temporaryDirectory.appendingPathComponent("lifeboat-moto-\(port).log")
        if let directory {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            logFile = directory.appendingPathComponent("moto.log")
            if arguments.isEmpty {
                let link = directory.appendingPathComponent("moto_server")
                try FileManager.default.createSymbolicLink(atPath: link.path, withDestinationPath: executable)
                executable = link.path
            } else {
                // `python3 -m moto.server`: a bytecode cache inside the directory names it.
                arguments = ["-X", "pycache_prefix=\(directory.appendingPathComponent("pycache").path)"] + arguments
            }
        }
        let process = try ServerProcess(
            name: "moto_server", executable: executable, arguments: arguments + ["-H", "127.0.0.1", "-p", String(port)],
            environment: ["INITIAL_NO_AUTH_ACTION_COUNT": String(setupActionCount), "PYTHONUNBUFFERED": "1"],
            logFile: logFile)
        do {
            try await awaitLoopbackPort(port, timeout: 60, process: process)
            let endpoint = URL(string: "http://127.0.0.1:\(port)")!
            let credentials = try await createAdminKey(endpoint: endpoint)
            let server = MotoServer(endpoint: endpoint, port: port, credentials: credentials, process: process, logFile: logFile)
            try await server.requireSignatureChecking()
            return server
        } catch {
            process.stop()
            let log = (try? String(contentsOf: logFile, encoding: .utf8)).map { String($0.suffix(2000)) } ?? ""
            throw ServerStartError(message: "moto_server did not start with authentication on: \(error)\n\(log)")
        }
    }

    /// `moto_server` on PATH, else `python3 -m moto.server` when the module imports; with
    /// `preferModule` the other way round. A `moto_server` found on PATH may be a wrapper (pyenv's
    /// shim) that execs the interpreter with the script's own path, and so loses a command line
    /// that names the work directory; `python3 -X pycache_prefix=<dir> -m moto.server` keeps it.
    static func locateMoto(preferModule: Bool = false) async throws -> (executable: String, arguments: [String]) {
        func module() async -> (String, [String])? {
            guard let python = findOnPath("python3"),
                  let probe = try? await ExternalTool(name: "python3", path: python).run(["-c", "import moto.server"]),
                  probe.status == 0 else { return nil }
            return (python, ["-m", "moto.server"])
        }
        if preferModule, let found = await module() { return found }
        if let server = findOnPath("moto_server") { return (server, []) }
        if !preferModule, let found = await module() { return found }
        throw ServerStartError(message: "moto_server is not installed: run scripts/setup (it runs `pip install \"moto[server]\"`)")
    }

    static func findOnPath(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// The three unchecked actions. moto routes a request to IAM by the service in the credential
    /// scope, so they are signed (with a throwaway key, since nothing checks them yet) as `iam`.
    static func createAdminKey(endpoint: URL) async throws -> S3Credentials {
        let bootstrap = S3Client(endpoint: endpoint, region: "us-east-1",
                                 credentials: S3Credentials(accessKeyID: "AKIDSETUP", secretAccessKey: "unchecked"),
                                 retry: S3RetryPolicy(maxAttempts: 1, requestTimeout: .seconds(30)))
        let user = "lifeboat-tests"
        let policy = #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#
        _ = try await iamAction(bootstrap, ["Action": "CreateUser", "UserName": user])
        _ = try await iamAction(bootstrap, ["Action": "PutUserPolicy", "UserName": user, "PolicyName": "admin", "PolicyDocument": policy])
        let answer = try await iamAction(bootstrap, ["Action": "CreateAccessKey", "UserName": user])
        guard let keyID = element("AccessKeyId", in: answer), let secret = element("SecretAccessKey", in: answer) else {
            throw ServerStartError(message: "moto's CreateAccessKey answer holds no AccessKeyId and SecretAccessKey")
        }
        return S3Credentials(accessKeyID: keyID, secretAccessKey: secret)
    }

    /// Temporary credentials (access key, secret, session token) from STS AssumeRole on a role the
    /// test user may assume, with the same admin policy. moto checks the token on every request.
    public func temporaryCredentials() async throws -> S3Credentials {
        let iam = client()
        let role = "lifeboat-tests-\(UUID().uuidString.prefix(8).lowercased())"
        let trust = #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}"#
        let policy = #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#
        let created = try await Self.iamAction(iam, ["Action": "CreateRole", "RoleName": role, "AssumeRolePolicyDocument": trust])
        guard let arn = Self.element("Arn", in: created) else {
            throw ServerStartError(message: "moto's CreateRole answer holds no Arn")
        }
        _ = try await Self.iamAction(iam, ["Action": "PutRolePolicy", "RoleName": role, "PolicyName": "admin", "PolicyDocument": policy])
        let assumed = try await Self.iamAction(iam, ["Action": "AssumeRole", "RoleArn": arn, "RoleSessionName": "lifeboat"],
                                               service: "sts", version: "2011-06-15")
        guard let keyID = Self.element("AccessKeyId", in: assumed), let secret = Self.element("SecretAccessKey", in: assumed),
              let token = Self.element("SessionToken", in: assumed) else {
            throw ServerStartError(message: "moto's AssumeRole answer holds no complete credentials")
        }
        return S3Credentials(accessKeyID: keyID, secretAccessKey: secret, sessionToken: token)
    }

    static func iamAction(_ client: S3Client, _ parameters: [String: String], service: String = "iam", version: String = "2010-05-08") async throws -> String {
        var fields = parameters
        fields["Version"] = version
        let form = fields.sorted { $0.key < $1.key }
            .map { "\(SigV4Signer.uriEncode($0.key, encodeSlash: true))=\(SigV4Signer.uriEncode($0.value, encodeSlash: true))" }
            .joined(separator: "&")
        let response = try await client.send(S3Request(
            method: "POST", headers: [("content-type", "application/x-www-form-urlencoded; charset=utf-8")],
            body: Data(form.utf8), service: service))
        let text = String(decoding: response.body, as: UTF8.self)
        guard response.isSuccess else {
            throw ServerStartError(message: "moto's \(service.uppercased()) \(parameters["Action"] ?? "") answered HTTP \(response.status): \(text.prefix(500))")
        }
        return text
    }

    static func element(_ name: String, in xml: String) -> String? {
        guard let start = xml.range(of: "<\(name)>"), let end = xml.range(of: "</\(name)>", range: start.upperBound..<xml.endIndex) else { return nil }
        return String(xml[start.upperBound..<end.lowerBound])
    }

    /// Without this, a moto that ignored INITIAL_NO_AUTH_ACTION_COUNT would let every test pass
    /// without checking a single signature.
    func requireSignatureChecking() async throws {
        try await Self.requireWrongSecretRefused(client: client, credentials: credentials, name: "moto")
    }

    /// Throws unless a request signed with a wrong secret is refused (403): a server that checks
    /// no signature would let every test pass without testing one.
    public static func requireWrongSecretRefused(client: (S3Credentials?, S3RetryPolicy) -> S3Client,
                                                 credentials: S3Credentials, name: String) async throws {
        var wrong = credentials
        wrong.secretAccessKey += "-wrong"
        let response = try await client(wrong, S3RetryPolicy(maxAttempts: 1)).send(S3Request(method: "GET"))
        guard response.status == 403 else {
            throw ServerStartError(message: "\(name) accepted a request signed with a wrong secret (HTTP \(response.status)); signature checking is off")
        }
    }

    /// A client for this server (path-style unless asked otherwise).
    public func client(credentials: S3Credentials? = nil, retry: S3RetryPolicy = S3RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(50))) -> S3Client {
        S3Client(endpoint: endpoint, region: region, credentials: credentials ?? self.credentials, retry: retry)
    }

    /// A backend configuration for `bucket` on this server, with moto's compatibility flags.
    public func configuration(bucket: String, prefix: String = "") -> S3Configuration {
        S3Configuration(endpoint: endpoint, region: region, bucket: bucket, prefix: prefix, credentials: credentials,
                        retry: S3RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(50), requestTimeout: .seconds(60)),
                        compatibility: .moto)
    }

    public func stop() { process.stop() }
}
