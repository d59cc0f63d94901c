import ArgumentParser
import Foundation
import LifeboatRepository
import LifeboatStorage

/// `--repo` and `--password-file`, with `$LIFEBOAT_REPOSITORY` and `$LIFEBOAT_PASSWORD` as fallbacks.
struct RepositoryOptions: ParsableArguments {
    @Option(name: [.customShort("r"), .customLong("repo")], help: ArgumentHelp("The repository: a directory, or s3://bucket/prefix (default: $LIFEBOAT_REPOSITORY).", valueName: "location"))
    var repository: String?

    @Option(help: ArgumentHelp("File holding the repository passphrase (default: $LIFEBOAT_PASSWORD).", valueName: "path"))
    var passwordFile: String?

    func location() throws -> String {
        guard let location = repository ?? ProcessInfo.processInfo.environment["LIFEBOAT_REPOSITORY"], !location.isEmpty else {
            throw CommandFailure(.usage, "no repository given: pass --repo or set LIFEBOAT_REPOSITORY")
        }
        return location
    }

    @OptionGroup var s3: S3Options

    func backend() throws -> any Backend {
        try makeBackend(location: try location(), s3: s3)
    }

    func passphrase() throws -> String {
        try readSecret(file: passwordFile, environment: "LIFEBOAT_PASSWORD", prompt: "repository passphrase: ", what: "the repository passphrase",
                       flag: "--password-file")
    }

    func open() async throws -> Repository {
        try await Repository.open(backend: try backend(), passphrase: try passphrase())
    }
}

/// A secret from a file, an environment variable, or (only on a terminal) a prompt. Never echoed.
func readSecret(file: String?, environment: String, prompt: String, what: String, flag: String) throws -> String {
    if let file {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
            throw CommandFailure(.usage, "cannot read \(what) from \(file)")
        }
        // A trailing newline is an editor's, not part of the secret.
        let secret = text.hasSuffix("\r\n") ? String(text.dropLast(2)) : text.hasSuffix("\n") ? String(text.dropLast()) : text
        guard !secret.isEmpty else { throw CommandFailure(.usage, "\(file) is empty; it should hold \(what)") }
        return secret
    }
    if let value = ProcessInfo.processInfo.environment[environment], !value.isEmpty { return value }
    if isatty(STDIN_FILENO) == 1, let typed = getpass(prompt), typed.pointee != 0 {
        return String(cString: typed)
    }
    throw CommandFailure(.usage, "\(what) is needed: pass \(flag) or set \(environment)")
}

/// How to reach an `s3://bucket/prefix` repository. Credentials come only from the standard
/// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN environment variables.
struct S3Options: ParsableArguments {
    @Option(help: ArgumentHelp("S3 endpoint URL for S3-compatible stores (default: $LIFEBOAT_S3_ENDPOINT, else AWS).", valueName: "url"))
    var endpoint: String?

    @Option(help: "S3 region (default: $AWS_REGION or $AWS_DEFAULT_REGION, else us-east-1).")
    var region: String?

    @Option(help: "S3 addressing: path or virtual (default: path with --endpoint, virtual on AWS).")
    var s3Addressing: S3AddressingStyle?

    @Option(help: "Server-side encryption on every object: s3 (AES256) or kms.")
    var sse: String?

    @Option(help: "KMS key id with --sse kms (default: the bucket's key).")
    var sseKmsKeyId: String?

    @Option(help: "Object Lock mode on every object written: governance or compliance (the bucket must have Object Lock enabled).")
    var objectLock: S3ObjectLockRetention.Mode?

    @Option(help: "Object Lock retention in days, with --object-lock.")
    var objectLockDays = 30

    @Flag(help: .hidden)
    var s3MotoCompatibility = false

    func configuration(bucket: String, prefix: String) throws -> S3Configuration {
        let environment = ProcessInfo.processInfo.environment
        let region = region ?? S3Configuration.regionFromEnvironment() ?? "us-east-1"
        let endpointText = endpoint ?? environment["LIFEBOAT_S3_ENDPOINT"] ?? "https://s3.\(region).amazonaws.com"
        guard let endpointURL = URL(string: endpointText), endpointURL.scheme == "http" || endpointURL.scheme == "https" else {
            throw CommandFailure(.usage, "--endpoint must be an http(s) URL")
        }
        let custom = endpoint != nil || environment["LIFEBOAT_S3_ENDPOINT"] != nil
        var sseSetting: S3ServerSideEncryption?
        switch sse {
        case nil: sseSetting = nil
        case "s3", "AES256": sseSetting = .s3
        case "kms", "aws:kms": sseSetting = .kms(keyID: sseKmsKeyId)
        case let other?: throw CommandFailure(.usage, "--sse takes s3 or kms, not \(other)")
        }
        return S3Configuration(
            endpoint: endpointURL, region: region, bucket: bucket, prefix: prefix,
            addressing: s3Addressing ?? (custom ? .path : .virtualHost), credentials: try S3Credentials.fromEnvironment(),
            serverSideEncryption: sseSetting,
            objectLock: objectLock.map { S3ObjectLockRetention(mode: $0, duration: TimeInterval(objectLockDays) * 86_400) },
            compatibility: S3Compatibility(listWithoutSlashInQuery: s3MotoCompatibility, retentionAfterMultipartComplete: s3MotoCompatibility))
    }
}

extension S3AddressingStyle: ExpressibleByArgument {}
extension S3ObjectLockRetention.Mode: ExpressibleByArgument {
    public init?(argument: String) { self.init(rawValue: argument.uppercased()) }
}

/// A directory path, or `s3://bucket/prefix`.
func makeBackend(location: String, s3: S3Options) throws -> any Backend {
    guard location.hasPrefix("s3://") else { return LocalDirectoryBackend(root: URL(fileURLWithPath: location)) }
    let path = location.dropFirst("s3://".count)
    let bucket = String(path.prefix { $0 != "/" })
    let prefix = String(path.dropFirst(bucket.count).drop { $0 == "/" }).trimmingCharacters(in: CharacterSet(charactersIn: "/"))
    guard !bucket.isEmpty else { throw CommandFailure(.usage, "\(location): an S3 location is s3://bucket or s3://bucket/prefix") }
    return try S3Backend(configuration: try s3.configuration(bucket: bucket, prefix: prefix))
}
