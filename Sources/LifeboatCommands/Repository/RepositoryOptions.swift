import ArgumentParser
import Foundation
import LifeboatCore
import LifeboatRepository
import LifeboatStorage

/// `--repo` and `--password-file`, with `$LIFEBOAT_REPOSITORY` and `$LIFEBOAT_PASSWORD` as fallbacks,
/// then the catalog's `repository:` section (its `url`, `password`, `endpoint`, `region` and S3 credential references).
///
/// Precedence, for the location and the passphrase alike: a flag (`--repo`, `--password-file`), then
/// a catalog named with `--catalog`, then the `LIFEBOAT_*` variable, then a catalog found through
/// `$LIFEBOAT_CATALOG`. What the command line names beats what the environment happens to hold (a
/// PostgreSQL `archive_command` given `--catalog` must not pick up a variable its server inherited);
/// when two sources disagree, a warning names the one used.
struct RepositoryOptions: ParsableArguments {
    @Option(name: [.customShort("r"), .customLong("repo")], help: ArgumentHelp("The repository: a directory, or s3://bucket/prefix (default: $LIFEBOAT_REPOSITORY).", valueName: "location"))
    var repository: String?

    @Option(help: ArgumentHelp("File holding the repository passphrase (default: $LIFEBOAT_PASSWORD).", valueName: "path"))
    var passwordFile: String?

    @Option(name: [.customShort("c"), .long], help: ArgumentHelp("A catalog whose `repository:` section says where and how (default: $LIFEBOAT_CATALOG, else ./lifeboat.yaml when it exists); prune and mirror also take each store's retention from it.", valueName: "path"))
    var catalog: String?

    @OptionGroup var s3: S3Options

    var catalogPath: String? { CatalogLocation.resolve(catalog) }

    /// The catalog's repository section, with relative paths resolved against the catalog's directory.
    func catalogRepository() throws -> CatalogRepository? {
        guard let catalogPath else { return nil }
        guard let settings = try CatalogLoader.load(contentsOf: catalogPath).catalog.repository else { return nil }
        return CatalogRepository(settings: settings, directory: URL(fileURLWithPath: catalogPath).deletingLastPathComponent())
    }

    func location() throws -> String {
        if let repository, !repository.isEmpty { return repository }
        let fromCatalog = try catalogRepository()
        let variable = ProcessInfo.processInfo.environment["LIFEBOAT_REPOSITORY"].flatMap { $0.isEmpty ? nil : $0 }
        switch (fromCatalog?.location, variable) {
        case (let url?, let variable?) where url != variable:
            let used = catalog != nil ? "--catalog's repository.url" : "LIFEBOAT_REPOSITORY"
            printError("lifeboat: warning: LIFEBOAT_REPOSITORY and the catalog's repository.url name different repositories; using \(used)")
            return catalog != nil ? url : variable
        case (let url?, _): return url
        case (nil, let variable?): return variable
        case (nil, nil):
            throw CommandFailure(.usage, "no repository given: pass --repo, set LIFEBOAT_REPOSITORY, or give a catalog with a repository section")
        }
    }

    func backend() throws -> any Backend {
        try makeBackend(location: try location(), s3: s3, catalog: try catalogRepository())
    }

    func passphrase() throws -> String {
        let fromCatalog = try catalogRepository()
        if passwordFile == nil, let reference = fromCatalog?.settings.password,
           let variable = ProcessInfo.processInfo.environment["LIFEBOAT_PASSWORD"], !variable.isEmpty {
            // Both a catalog password and the variable: the command line's catalog wins over the environment.
            let fromFile = try resolve(reference, relativeTo: fromCatalog?.directory)
            guard fromFile != variable else { return variable }
            let used = catalog != nil ? "--catalog's repository.password" : "LIFEBOAT_PASSWORD"
            printError("lifeboat: warning: LIFEBOAT_PASSWORD and the catalog's repository.password differ; using \(used)")
            return catalog != nil ? fromFile : variable
        }
        return try readSecret(file: passwordFile, environment: "LIFEBOAT_PASSWORD", prompt: "repository passphrase: ", what: "the repository passphrase",
                              flag: "--password-file", reference: fromCatalog?.settings.password, relativeTo: fromCatalog?.directory)
    }

    /// Opens the repository; warns on stderr about each damaged key file (another key opened it).
    func open() async throws -> Repository {
        let repository = try await Repository.open(backend: try backend(), passphrase: try passphrase())
        for damaged in repository.damagedKeyFiles {
            printError("lifeboat: warning: \(damaged); add a new key with `lifeboat key add` and remove this one with `lifeboat key remove`")
        }
        return repository
    }
}

/// `--skip-damaged`, for every command that chooses the newest snapshot or recovery point.
struct DamagedChoiceOptions: ParsableArguments {
    @Flag(help: "When a snapshot manifest or recovery point is damaged, choose among the readable ones (each one skipped is named on stderr). Without it, a damaged one refuses the choice (exit 3): it may be the newest.")
    var skipDamaged = false

    /// `repository`, skipping damaged snapshots and points when asked to; each is warned about once.
    func applied(to repository: Repository) -> Repository {
        guard skipDamaged else { return repository }
        let warned = WarnedObjects()
        return repository.skippingDamaged { error in
            if warned.isFirst(error.object ?? error.message) { printError("lifeboat: warning: skipped, damaged: \(error)") }
        }
    }
}

/// The objects already warned about (a choice may list the snapshots more than once).
final class WarnedObjects: @unchecked Sendable {
    private let lock = NSLock()
    private var seen: Set<String> = []

    func isFirst(_ object: String) -> Bool {
        lock.withLock { seen.insert(object).inserted }
    }
}

/// The repository section of a catalog and the directory its relative paths start from.
struct CatalogRepository {
    var settings: RepositorySettings
    var directory: URL

    var location: String {
        settings.url.hasPrefix("s3://") || settings.url.hasPrefix("/") ? settings.url : directory.appendingPathComponent(settings.url).path
    }
}

/// The value a catalog secret reference points at: an environment variable, or a file's contents
/// (without a trailing newline; relative paths from the catalog's directory).
func resolve(_ reference: SecretReference, relativeTo directory: URL?) throws -> String {
    switch reference {
    case .environment(let name):
        guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else {
            throw CommandFailure(.usage, "the catalog refers to $\(name), which is not set")
        }
        return value
    case .file(let path):
        let resolved = path.hasPrefix("/") || directory == nil ? path : directory!.appendingPathComponent(path).path
        return try readSecretFile(resolved, what: "the secret the catalog refers to (\(reference))")
    }
}

/// A secret from a file, an environment variable, a catalog reference, or (only on a terminal) a prompt. Never echoed.
func readSecret(
    file: String?, environment: String, prompt: String, what: String, flag: String,
    reference: SecretReference? = nil, relativeTo directory: URL? = nil
) throws -> String {
    if let file { return try readSecretFile(file, what: what) }
    if let value = ProcessInfo.processInfo.environment[environment], !value.isEmpty { return value }
    if let reference { return try resolve(reference, relativeTo: directory) }
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

    /// Flags first, then the catalog's repository section, then the environment.
    func configuration(bucket: String, prefix: String, catalog: CatalogRepository? = nil) throws -> S3Configuration {
        let environment = ProcessInfo.processInfo.environment
        let region = region ?? catalog?.settings.region ?? S3Configuration.regionFromEnvironment() ?? "us-east-1"
        let endpoint = endpoint ?? catalog?.settings.endpoint ?? environment["LIFEBOAT_S3_ENDPOINT"]
        let endpointText = endpoint ?? "https://s3.\(region).amazonaws.com"
        guard let endpointURL = URL(string: endpointText), endpointURL.scheme == "http" || endpointURL.scheme == "https" else {
            throw CommandFailure(.usage, "--endpoint must be an http(s) URL")
        }
        let custom = endpoint != nil
        var sseSetting: S3ServerSideEncryption?
        switch sse {
        case nil: sseSetting = nil
        case "s3", "AES256": sseSetting = .s3
        case "kms", "aws:kms": sseSetting = .kms(keyID: sseKmsKeyId)
        case let other?: throw CommandFailure(.usage, "--sse takes s3 or kms, not \(other)")
        }
        return S3Configuration(
            endpoint: endpointURL, region: region, bucket: bucket, prefix: prefix,
            addressing: s3Addressing ?? (custom ? .path : .virtualHost), credentials: try credentials(catalog),
            serverSideEncryption: sseSetting,
            objectLock: objectLock.map { S3ObjectLockRetention(mode: $0, duration: TimeInterval(objectLockDays) * 86_400) },
            compatibility: S3Compatibility(listWithoutSlashInQuery: s3MotoCompatibility, retentionAfterMultipartComplete: s3MotoCompatibility))
    }

    /// The catalog's credential references when it names them, else the standard AWS_* variables.
    func credentials(_ catalog: CatalogRepository?) throws -> S3Credentials {
        if let settings = catalog?.settings, let keyID = settings.accessKeyID, let secret = settings.secretAccessKey {
            return S3Credentials(accessKeyID: try resolve(keyID, relativeTo: catalog?.directory),
                                 secretAccessKey: try resolve(secret, relativeTo: catalog?.directory))
        }
        return try S3Credentials.fromEnvironment()
    }
}

extension S3AddressingStyle: ExpressibleByArgument {}
extension S3ObjectLockRetention.Mode: ExpressibleByArgument {
    public init?(argument: String) { self.init(rawValue: argument.uppercased()) }
}

/// A directory path, or `s3://bucket/prefix`.
func makeBackend(location: String, s3: S3Options, catalog: CatalogRepository? = nil) throws -> any Backend {
    guard location.hasPrefix("s3://") else { return LocalDirectoryBackend(root: URL(fileURLWithPath: location)) }
    let path = location.dropFirst("s3://".count)
    let bucket = String(path.prefix { $0 != "/" })
    let prefix = String(path.dropFirst(bucket.count).drop { $0 == "/" }).trimmingCharacters(in: CharacterSet(charactersIn: "/"))
    guard !bucket.isEmpty else { throw CommandFailure(.usage, "\(location): an S3 location is s3://bucket or s3://bucket/prefix") }
    return try S3Backend(configuration: try s3.configuration(bucket: bucket, prefix: prefix, catalog: catalog))
}

/// A secret held in a file; a trailing newline is an editor's, not part of the secret.
func readSecretFile(_ path: String, what: String) throws -> String {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
        throw CommandFailure(.usage, "cannot read \(what) from \(path)")
    }
    let secret = text.hasSuffix("\r\n") ? String(text.dropLast(2)) : text.hasSuffix("\n") ? String(text.dropLast()) : text
    guard !secret.isEmpty else { throw CommandFailure(.usage, "\(path) is empty; it should hold \(what)") }
    return secret
}
