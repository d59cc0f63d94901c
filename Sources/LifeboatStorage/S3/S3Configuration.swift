import Foundation

/// Where and how an `S3Backend` stores objects: endpoint, bucket, prefix, credentials, encryption,
/// Object Lock, multipart sizes and retries. Validated once by `S3Backend.init`, then trusted.
public struct S3Configuration: Sendable, Hashable, CustomStringConvertible {
    /// `https://s3.eu-west-1.amazonaws.com`, `http://127.0.0.1:9000`, … (scheme, host, optional port; no path).
    public var endpoint: URL
    public var region: String
    public var bucket: String
    /// Objects live under `prefix/` in the bucket; empty means the bucket root. No leading or trailing `/`.
    public var prefix: String
    public var addressing: S3AddressingStyle
    public var credentials: S3Credentials
    public var serverSideEncryption: S3ServerSideEncryption?
    /// Retention applied to every object written; the bucket must have Object Lock enabled.
    public var objectLock: S3ObjectLockRetention?
    /// S3 storage class for every object written (`x-amz-storage-class`): `STANDARD_IA`, `GLACIER_IR`,
    /// or a placement class the server defines (Ceph RGW). Nil leaves it to the bucket (STANDARD).
    public var storageClass: String?
    /// Objects larger than this are sent as a multipart upload.
    public var multipartThreshold: Int
    /// Size of each multipart part (at least 5 MiB, S3's minimum for all but the last part).
    public var partSize: Int
    /// Parts sent at once during a multipart upload.
    public var partConcurrency: Int
    public var retry: S3RetryPolicy
    public var compatibility: S3Compatibility
    /// Connect to this host and port instead of the one the endpoint (or virtual host) names, while
    /// `Host` and the signature still name the endpoint — like curl's `--connect-to`. For pinning an
    /// address, or for testing virtual-host addressing against a local emulator.
    public var connectTo: S3ConnectTarget?

    public static let minimumPartSize = 5 * 1024 * 1024
    public static let maximumParts = 10_000
    public static let maximumSinglePut = 5 * 1024 * 1024 * 1024

    public init(
        endpoint: URL, region: String, bucket: String, prefix: String = "",
        addressing: S3AddressingStyle = .path, credentials: S3Credentials,
        serverSideEncryption: S3ServerSideEncryption? = nil, objectLock: S3ObjectLockRetention? = nil,
        storageClass: String? = nil, multipartThreshold: Int = 64 * 1024 * 1024, partSize: Int = 16 * 1024 * 1024, partConcurrency: Int = 4,
        retry: S3RetryPolicy = S3RetryPolicy(), compatibility: S3Compatibility = S3Compatibility(), connectTo: S3ConnectTarget? = nil
    ) {
        self.endpoint = endpoint
        self.region = region
        self.bucket = bucket
        self.prefix = prefix
        self.addressing = addressing
        self.credentials = credentials
        self.serverSideEncryption = serverSideEncryption
        self.objectLock = objectLock
        self.storageClass = storageClass
        self.multipartThreshold = multipartThreshold
        self.partSize = partSize
        self.partConcurrency = partConcurrency
        self.retry = retry
        self.compatibility = compatibility
        self.connectTo = connectTo
    }

    /// `s3://bucket/prefix`; never holds credentials.
    public var location: String {
        prefix.isEmpty ? "s3://\(bucket)" : "s3://\(bucket)/\(prefix)"
    }

    public var description: String {
        "\(location) at \(endpoint.absoluteString) (\(region), \(addressing.rawValue) addressing, access key \(credentials.accessKeyID))"
    }

    /// The region from `AWS_REGION`, else `AWS_DEFAULT_REGION` (what the AWS CLI reads).
    public static func regionFromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        for name in ["AWS_REGION", "AWS_DEFAULT_REGION"] {
            if let value = environment[name], !value.isEmpty { return value }
        }
        return nil
    }

    /// Checks everything that can be checked without a request.
    public func validate() throws(BackendError) {
        func invalid(_ detail: String) -> BackendError { BackendError(.io, object: location, "invalid S3 configuration: \(detail)") }
        guard let scheme = endpoint.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = endpoint.host, !host.isEmpty else {
            throw invalid("endpoint \(endpoint.absoluteString) must be an http:// or https:// URL with a host")
        }
        guard endpoint.path.isEmpty || endpoint.path == "/", endpoint.query == nil else {
            throw invalid("endpoint \(endpoint.absoluteString) must not have a path or query; put the bucket in `bucket` and folders in `prefix`")
        }
        guard !region.isEmpty else { throw invalid("the region is empty; set it, or AWS_REGION") }
        guard Self.isValidBucketName(bucket) else {
            throw invalid("\"\(bucket)\" is not a valid bucket name (3–63 characters: lowercase letters, digits, '.' and '-')")
        }
        if !prefix.isEmpty {
            do { try validateObjectName(prefix) } catch {
                throw invalid("prefix \"\(prefix)\" must be a relative path of letters, digits, '-', '_', '.' and '/' without a leading or trailing '/'")
            }
        }
        guard partSize >= Self.minimumPartSize else {
            throw invalid("partSize \(partSize) is below S3's minimum part size of \(Self.minimumPartSize) bytes")
        }
        guard multipartThreshold >= 1, partConcurrency >= 1 else {
            throw invalid("multipartThreshold and partConcurrency must be positive")
        }
        guard multipartThreshold <= Self.maximumSinglePut else {
            throw invalid("multipartThreshold \(multipartThreshold) is above 5 GiB, the largest object S3 accepts in one PUT")
        }
        if addressing == .virtualHost, Self.isAddressLiteral(host) {
            throw invalid("virtual-host addressing needs a DNS name for the endpoint, not \(host): use path addressing (or connectTo to reach a local server)")
        }
        if connectTo != nil, scheme == "https" {
            // TLS would check the certificate against the address connected to, not the endpoint's name.
            throw invalid("connectTo works with http:// endpoints only")
        }
        if addressing == .virtualHost, bucket.contains("."), scheme == "https" {
            // The wildcard certificate *.s3.amazonaws.com does not match `a.b.s3.amazonaws.com`.
            throw invalid("bucket \"\(bucket)\" contains '.', which breaks TLS with virtual-host addressing; use path addressing")
        }
        if case .kms(let keyID)? = serverSideEncryption, keyID?.isEmpty == true {
            throw invalid("the KMS key id is empty; leave it out to use the bucket's default key")
        }
        if let storageClass, !Self.isValidStorageClass(storageClass) {
            throw invalid("storage class \"\(storageClass)\" must be 1–64 uppercase letters, digits, '_' or '-' (STANDARD_IA, GLACIER_IR, or a class the server defines)")
        }
        if let objectLock, objectLock.duration <= 0 {
            throw invalid("the Object Lock retention must be longer than zero (got \(objectLock.duration) s)")
        }
        try retry.validate(location: location)
    }

    /// S3's names (`STANDARD_IA`, `GLACIER_IR`) and RGW's placement classes share this shape.
    public static func isValidStorageClass(_ name: String) -> Bool {
        (1...64).contains(name.utf8.count)
            && name.utf8.allSatisfy { ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F || $0 == 0x2D }
    }

    /// An IPv4 or IPv6 literal, or localhost: names a bucket cannot be a subdomain of.
    static func isAddressLiteral(_ host: String) -> Bool {
        host == "localhost" || host.contains(":") || host.split(separator: ".").allSatisfy { !$0.isEmpty && $0.allSatisfy(\.isNumber) }
    }

    static func isValidBucketName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (3...63).contains(bytes.count) else { return false }
        let allowed = bytes.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2E || $0 == 0x2D }
        let isAlphanumeric: (UInt8) -> Bool = { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) }
        return allowed && isAlphanumeric(bytes.first!) && isAlphanumeric(bytes.last!) && !name.contains("..")
    }
}

/// How the bucket is named in a request.
public enum S3AddressingStyle: String, Sendable, Hashable, Codable {
    /// `endpoint/bucket/key`: MinIO, moto, most S3-compatible stores.
    case path
    /// `bucket.endpoint/key`: AWS's preferred style.
    case virtualHost = "virtual-host"
}

/// Access key, secret and optional session token. `description` shows the access key id only.
public struct S3Credentials: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var accessKeyID: String
    public var secretAccessKey: String
    public var sessionToken: String?

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }

    public var description: String { "access key \(accessKeyID)" }
    /// `dump()` and debuggers walk the mirror; keep the secret and token out of it.
    public var customMirror: Mirror {
        Mirror(self, children: ["accessKeyID": accessKeyID, "secretAccessKey": "<redacted>",
                                "sessionToken": sessionToken == nil ? "nil" : "<redacted>"])
    }
    public var debugDescription: String { "S3Credentials(accessKeyID: \(accessKeyID), secret: <redacted>\(sessionToken == nil ? "" : ", session token: <redacted>"))" }

    /// Reads `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and the optional `AWS_SESSION_TOKEN`.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws(BackendError) -> S3Credentials {
        let missing = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"].filter { environment[$0]?.isEmpty ?? true }
        guard missing.isEmpty else {
            throw BackendError(.permissionDenied, object: "environment",
                               "\(missing.joined(separator: " and ")) \(missing.count == 1 ? "is" : "are") not set; export the S3 access key and secret")
        }
        let token = environment["AWS_SESSION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        return S3Credentials(accessKeyID: environment["AWS_ACCESS_KEY_ID"]!, secretAccessKey: environment["AWS_SECRET_ACCESS_KEY"]!, sessionToken: token)
    }
}

/// Server-side encryption requested on every object written.
public enum S3ServerSideEncryption: Sendable, Hashable {
    /// SSE-S3: `x-amz-server-side-encryption: AES256`.
    case s3
    /// SSE-KMS with the given key, or the bucket's default key when nil.
    case kms(keyID: String?)

    /// The value S3 echoes in `x-amz-server-side-encryption` when it applied this encryption.
    var algorithm: String {
        switch self {
        case .s3: return "AES256"
        case .kms: return "aws:kms"
        }
    }

    var headers: [(String, String)] {
        switch self {
        case .s3:
            return [("x-amz-server-side-encryption", "AES256")]
        case .kms(let keyID):
            var headers = [("x-amz-server-side-encryption", "aws:kms")]
            if let keyID { headers.append(("x-amz-server-side-encryption-aws-kms-key-id", keyID)) }
            return headers
        }
    }
}

/// Object Lock retention stamped on every object written: mode plus how long from the write.
public struct S3ObjectLockRetention: Sendable, Hashable {
    public enum Mode: String, Sendable, Hashable, Codable {
        /// Can be shortened or bypassed by users holding `s3:BypassGovernanceRetention`.
        case governance = "GOVERNANCE"
        /// Nobody, root included, can delete the version or shorten the retention until it expires.
        case compliance = "COMPLIANCE"
    }

    public var mode: Mode
    /// Seconds from the time of the write.
    public var duration: TimeInterval

    public init(mode: Mode, duration: TimeInterval) {
        self.mode = mode
        self.duration = duration
    }

    /// The headers for an object written at `now`: mode and an ISO 8601 retain-until date in UTC.
    func headers(now: Date) -> [(String, String)] {
        [("x-amz-object-lock-mode", mode.rawValue),
         ("x-amz-object-lock-retain-until-date", S3Time.iso8601(now.addingTimeInterval(duration)))]
    }
}

/// When a request fails in a way worth retrying (5xx, 429, SlowDown, timeouts, resets), how often
/// and how long to wait: exponential backoff with full jitter, capped.
public struct S3RetryPolicy: Sendable, Hashable {
    /// Attempts in total, the first one included.
    public var maxAttempts: Int
    public var baseDelay: Duration
    public var maxDelay: Duration
    /// Deadline for one attempt: connecting (at most 10 s of it), sending and receiving.
    public var requestTimeout: Duration

    public init(maxAttempts: Int = 6, baseDelay: Duration = .milliseconds(200), maxDelay: Duration = .seconds(20),
                requestTimeout: Duration = .seconds(120)) {
        self.maxAttempts = maxAttempts
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.requestTimeout = requestTimeout
    }

    /// Full jitter (https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/): a random
    /// wait between zero and the capped exponential, so clients that failed together do not retry together.
    func delay(beforeRetry retry: Int) -> Duration {
        let exponential = baseDelay * (1 << min(retry, 30))
        let cap = min(exponential, maxDelay)
        let capNanoseconds = cap.components.seconds * 1_000_000_000 + cap.components.attoseconds / 1_000_000_000
        guard capNanoseconds > 0 else { return .zero }
        return .nanoseconds(Int64.random(in: 0...capNanoseconds))
    }

    func validate(location: String) throws(BackendError) {
        guard maxAttempts >= 1, baseDelay >= .zero, maxDelay >= baseDelay, requestTimeout > .zero else {
            throw BackendError(.io, object: location, "invalid S3 configuration: the retry policy needs at least one attempt, non-negative delays with maxDelay ≥ baseDelay, and a positive request timeout")
        }
    }
}

/// Workarounds for S3-compatible servers that differ from S3. All off by default; each keeps the
/// requests valid for real S3, so turning one on against S3 costs efficiency, never correctness.
public struct S3Compatibility: Sendable, Hashable {
    /// moto_server 5.2.1 with authentication on answers `SignatureDoesNotMatch` to any request whose
    /// query holds a value with `/` (`prefix=repo/data/`), even from aws-cli: its web layer turns `%2F`
    /// back into `/` before it recomputes the signature, while S3 signs `%2F`. No signature satisfies
    /// both, so with this flag `list` asks for the longest `/`-free start of the key prefix
    /// (`repo` for `repo/data/`) and filters the answer itself — more keys on the wire, same result.
    public var listWithoutSlashInQuery: Bool
    /// moto_server 5.2.1 ignores the Object Lock headers on CreateMultipartUpload (S3 applies them to
    /// the completed object), so multipart objects end up unprotected. With this flag, a multipart
    /// create that has retention configured also sends PutObjectRetention with the same mode and
    /// date after completing. Harmless on S3, but needs the `s3:PutObjectRetention` permission.
    public var retentionAfterMultipartComplete: Bool
    /// Ceph RGW 16 ignores `If-None-Match: *` on CompleteMultipartUpload: a second multipart upload
    /// of a key silently replaces the first, so a multipart create-once write could overwrite a
    /// manifest or a key. With this flag, create-once objects are always sent in one conditional
    /// PutObject (which RGW does enforce), up to S3's 5 GiB single-PUT limit, and larger ones are
    /// refused rather than written unsafely. On S3 this only costs the parallel parts of objects
    /// above the multipart threshold.
    public var createOnceWithoutMultipart: Bool

    public init(listWithoutSlashInQuery: Bool = false, retentionAfterMultipartComplete: Bool = false,
                createOnceWithoutMultipart: Bool = false) {
        self.listWithoutSlashInQuery = listWithoutSlashInQuery
        self.retentionAfterMultipartComplete = retentionAfterMultipartComplete
        self.createOnceWithoutMultipart = createOnceWithoutMultipart
    }

    /// What moto_server needs.
    public static let moto = S3Compatibility(listWithoutSlashInQuery: true, retentionAfterMultipartComplete: true)
    /// What Ceph RGW 16 needs.
    public static let rgw = S3Compatibility(createOnceWithoutMultipart: true)
}

/// A host and port to connect to in place of the endpoint's.
public struct S3ConnectTarget: Sendable, Hashable {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }
}

/// S3's two time formats.
enum S3Time {
    /// `2026-01-02T03:04:05Z`, for Object Lock retain-until dates.
    static func iso8601(_ date: Date) -> String {
        let components = Calendar.utc.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02dZ", components.year!, components.month!, components.day!,
                      components.hour!, components.minute!, components.second!)
    }

    /// ISO 8601 with or without fractional seconds (`LastModified` in listings: `2009-10-12T17:50:30.000Z`).
    static func parseISO8601(_ text: String) -> Date? {
        let plain = ISO8601DateFormatter()
        if let date = plain.date(from: text) { return date }
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return fractional.date(from: text)
    }

    /// RFC 7231 dates (`Last-Modified: Wed, 21 Oct 2015 07:28:00 GMT`).
    static func parseHTTPDate(_ text: String) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return formatter.date(from: text)
    }
}
