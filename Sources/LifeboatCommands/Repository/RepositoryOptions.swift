import ArgumentParser
import Foundation
import LifeboatCore
import LifeboatPlatform
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

    /// The catalog named by `--catalog`, `$LIFEBOAT_CATALOG` or ./lifeboat.yaml, loaded once: a
    /// command loads it here and hands it on (nil: no catalog). `showWarnings`: its warnings on stderr.
    func storeResolver(showWarnings: Bool = true) throws -> StoreResolver? {
        guard let catalogPath else { return nil }
        let (resolver, warnings) = try StoreResolver.load(path: catalogPath)
        if showWarnings { for warning in warnings { printError(warning.description) } }
        return resolver
    }

    /// The catalog's repository section, with relative paths resolved against the catalog's directory.
    func catalogRepository(_ resolver: StoreResolver?) -> CatalogRepository? {
        guard let resolver, let settings = resolver.catalog.repository else { return nil }
        return CatalogRepository(settings: settings, directory: resolver.directory)
    }

    func location(_ fromCatalog: CatalogRepository? = nil) throws -> String {
        if let repository, !repository.isEmpty { return repository }
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

    func backend(_ fromCatalog: CatalogRepository?) throws -> any Backend {
        try makeBackend(location: try location(fromCatalog), s3: s3, catalog: fromCatalog)
    }

    func passphrase(_ fromCatalog: CatalogRepository?) throws -> String {
        if passwordFile == nil, let reference = fromCatalog?.settings.password,
           let variable = ProcessInfo.processInfo.environment["LIFEBOAT_PASSWORD"], !variable.isEmpty {
            // Both a catalog password and the variable: the command line's catalog wins over the environment.
            let fromFile = try resolveSecret(reference, relativeTo: fromCatalog?.directory)
            guard fromFile != variable else { return variable }
            let used = catalog != nil ? "--catalog's repository.password" : "LIFEBOAT_PASSWORD"
            printError("lifeboat: warning: LIFEBOAT_PASSWORD and the catalog's repository.password differ; using \(used)")
            return catalog != nil ? fromFile : variable
        }
        return try readSecret(file: passwordFile, environment: "LIFEBOAT_PASSWORD", prompt: "repository passphrase: ", what: "the repository passphrase",
                              flag: "--password-file", reference: fromCatalog?.settings.password, relativeTo: fromCatalog?.directory)
    }

    /// Opens the repository (the catalog read once); warns on stderr about each damaged key file (another key opened it).
    func open() async throws -> Repository {
        try await open(resolver: try storeResolver(showWarnings: false))
    }

    /// Opens the repository with the catalog already loaded.
    func open(resolver: StoreResolver?) async throws -> Repository {
        let fromCatalog = catalogRepository(resolver)
        let repository = try await Repository.open(backend: try backend(fromCatalog), passphrase: try passphrase(fromCatalog))
        for damaged in repository.damagedKeyFiles {
            printError("lifeboat: warning: \(damaged); add a new key with `lifeboat key add` and remove this one with `lifeboat key remove`")
        }
        return repository
    }

    /// The catalog's store `name` of `kind` (nil name: its only store of that kind), and the resolver it came from.
    func catalogStore(_ name: String?, kind: StoreKind) throws -> (store: Store, resolver: StoreResolver) {
        guard let resolver = try storeResolver(showWarnings: false) else {
            throw CommandFailure(.usage, "the store's connection comes from the catalog: pass --catalog or set LIFEBOAT_CATALOG")
        }
        return (try resolver.store(named: name, kind: kind), resolver)
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

/// A secret from a file, an environment variable, a catalog reference, or (only on a terminal) a prompt. Never echoed.
func readSecret(
    file: String?, environment: String, prompt: String, what: String, flag: String,
    reference: SecretReference? = nil, relativeTo directory: URL? = nil
) throws -> String {
    if let file { return try readSecretFile(file, what: what) }
    if let value = ProcessInfo.processInfo.environment[environment], !value.isEmpty { return value }
    if let reference { return try resolveSecret(reference, relativeTo: directory) }
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

    @Option(help: "S3 addressing: path or virtual-host (default: path with --endpoint, virtual on AWS).")
    var s3Addressing: S3AddressingStyle?

    @Option(help: "Server-side encryption on every object: s3 (AES256) or kms.")
    var sse: String?

    @Option(help: "KMS key id with --sse kms (default: the bucket's key).")
    var sseKmsKeyId: String?

    @Option(help: "Object Lock mode on every object written: governance or compliance (the bucket must have Object Lock enabled).")
    var objectLock: S3ObjectLockRetention.Mode?

    @Option(help: "Object Lock retention in days, with --object-lock.")
    var objectLockDays = 30

    @Option(help: ArgumentHelp("S3 storage class for every object written: STANDARD_IA, GLACIER_IR, … or a placement class the server defines (Ceph RGW).", valueName: "class"))
    var storageClass: String?

    @Flag(help: "The S3 server is Ceph RGW: send create-once objects in one conditional PUT, never as multipart uploads (RGW 16 ignores If-None-Match on CompleteMultipartUpload).")
    var s3RgwCompatibility = false

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
            storageClass: storageClass,
            compatibility: S3Compatibility(listWithoutSlashInQuery: s3MotoCompatibility, retentionAfterMultipartComplete: s3MotoCompatibility,
                                           createOnceWithoutMultipart: s3RgwCompatibility))
    }

    /// The catalog's credential references when it names them, else the standard AWS_* variables.
    func credentials(_ catalog: CatalogRepository?) throws -> S3Credentials {
        if let settings = catalog?.settings, let keyID = settings.accessKeyID, let secret = settings.secretAccessKey {
            return S3Credentials(accessKeyID: try resolveSecret(keyID, relativeTo: catalog?.directory),
                                 secretAccessKey: try resolveSecret(secret, relativeTo: catalog?.directory))
        }
        return try S3Credentials.fromEnvironment()
    }
}

extension S3AddressingStyle: ExpressibleByArgument {}
extension S3ObjectLockRetention.Mode: ExpressibleByArgument {
    public init?(argument: String) { self.init(rawValue: argument.uppercased()) }
}

/// A directory path, or `s3://bucket/prefix` (`BackendLocation`, the one factory).
func makeBackend(location: String, s3: S3Options, catalog: CatalogRepository? = nil) throws -> any Backend {
    guard let parsed = BackendLocation(location) else { throw CommandFailure(.usage, "\(location): an S3 location is s3://bucket or s3://bucket/prefix") }
    return try parsed.backend { bucket, prefix in try s3.configuration(bucket: bucket, prefix: prefix, catalog: catalog) }
}
