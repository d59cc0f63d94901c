import AsyncHTTPClient
import Crypto
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import LifeboatErrors

/// One request to an S3 endpoint: a bucket (or the endpoint itself), an optional key, query, headers, body.
public struct S3Request: Sendable {
    public var method: String
    public var bucket: String?
    /// The full object key, prefix included; not encoded.
    public var key: String?
    /// Decoded names and values.
    public var query: [(String, String)]
    /// Extra headers; all of them are signed.
    public var headers: [(String, String)]
    public var body: Data
    /// The SigV4 service name; `s3` except for moto's IAM set-up.
    public var service: String
    /// Retry 409 `ConditionalRequestConflict` (a single conditional PUT; S3 asks the caller to retry).
    public var retryConditionalConflict: Bool
    /// CompleteMultipartUpload can answer 200 with an `<Error>` body; treat that as the error it holds.
    public var errorMayArriveWith200: Bool

    public init(method: String, bucket: String? = nil, key: String? = nil, query: [(String, String)] = [],
                headers: [(String, String)] = [], body: Data = Data(), service: String = "s3",
                retryConditionalConflict: Bool = false, errorMayArriveWith200: Bool = false) {
        self.method = method
        self.bucket = bucket
        self.key = key
        self.query = query
        self.headers = headers
        self.body = body
        self.service = service
        self.retryConditionalConflict = retryConditionalConflict
        self.errorMayArriveWith200 = errorMayArriveWith200
    }
}

/// What the server answered, after retries.
public struct S3Response: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: Data
    /// An earlier attempt failed in a way that leaves its effect unknown (a 5xx or a lost connection
    /// after sending), so a later 412 may be the echo of our own write.
    public var earlierAttemptMayHaveApplied: Bool
    /// Attempts made, the successful one included.
    public var attempts: Int

    public func header(_ name: String) -> String? {
        headers.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
    }

    /// `Code` and `Message` of an S3 `<Error>` body; nil for success or a body-less error (HEAD).
    public var error: (code: String, message: String)? {
        guard !body.isEmpty, let root = S3XML.parse(body), root.name == "Error" else { return nil }
        return (root.child("Code")?.text ?? "", root.child("Message")?.text ?? "")
    }

    public var isSuccess: Bool { (200..<300).contains(status) }
}

/// Sending failed without an HTTP answer (refused, reset, timed out, DNS) on every attempt.
public struct S3TransportError: Error, Sendable, CustomStringConvertible {
    /// The endpoint (scheme, host, port) that could not be reached.
    public var endpoint: String
    public var attempts: Int
    /// The last failure, described without headers or signatures.
    public var reason: String
    /// The caller cancelled; no retry was made.
    public var cancelled: Bool

    public var description: String {
        cancelled ? "the request to \(endpoint) was cancelled" : "cannot reach \(endpoint) after \(attempts) attempt\(attempts == 1 ? "" : "s"): \(reason)"
    }
}

/// Sends SigV4-signed requests to one S3 endpoint, retrying with backoff what is worth retrying.
public struct S3Client: Sendable {
    public let endpoint: URL
    public let region: String
    public let addressing: S3AddressingStyle
    public let retry: S3RetryPolicy
    public let connectTo: S3ConnectTarget?
    let credentials: S3Credentials
    let httpClient: HTTPClient
    let logger: Logger

    public init(endpoint: URL, region: String, credentials: S3Credentials, addressing: S3AddressingStyle = .path,
                retry: S3RetryPolicy = S3RetryPolicy(), connectTo: S3ConnectTarget? = nil,
                httpClient: HTTPClient? = nil, logger: Logger = Logger(label: "lifeboat.s3")) {
        self.endpoint = endpoint
        self.region = region
        self.credentials = credentials
        self.addressing = addressing
        self.retry = retry
        self.connectTo = connectTo
        self.httpClient = httpClient ?? Self.sharedHTTPClient
        self.logger = logger
    }

    public init(configuration: S3Configuration, httpClient: HTTPClient? = nil, logger: Logger = Logger(label: "lifeboat.s3")) {
        self.init(endpoint: configuration.endpoint, region: configuration.region, credentials: configuration.credentials,
                  addressing: configuration.addressing, retry: configuration.retry, connectTo: configuration.connectTo,
                  httpClient: httpClient, logger: logger)
    }

    /// One client for the process: redirects are not followed (a redirect from S3 means a wrong
    /// region, which must surface, and following it would resend a signature for the wrong host),
    /// bodies are never decompressed (that would break byte ranges), and a failed connect fails the
    /// attempt at once — the pool's own reconnect loop would otherwise hold every attempt at a
    /// refused port until its deadline, while `S3RetryPolicy` already retries with backoff.
    static let sharedHTTPClient: HTTPClient = {
        var pool = HTTPClient.Configuration.ConnectionPool()
        pool.retryConnectionEstablishment = false
        let configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow, timeout: .init(connect: .seconds(10)), connectionPool: pool, decompression: .disabled)
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()

    /// `scheme://host[:port]` of the endpoint, for messages.
    public var endpointDescription: String {
        var text = "\(endpoint.scheme ?? "https")://\(endpoint.host ?? "")"
        if let port = endpoint.port { text += ":\(port)" }
        return text
    }

    /// Where a request goes: the URL to connect to, the `Host` header, and the encoded path.
    struct Address: Equatable {
        var url: String
        var host: String
        var path: String
    }

    func address(bucket: String?, key: String?, query: [(String, String)]) -> Address {
        let scheme = endpoint.scheme?.lowercased() ?? "https"
        let defaultPort = scheme == "https" ? 443 : 80
        var host = endpoint.host ?? ""
        if host.contains(":"), !host.hasPrefix("[") { host = "[\(host)]" } // IPv6 literal
        var path = ""
        switch (addressing, bucket) {
        case (_, nil):
            path = "/"
        case (.path, let bucket?):
            path = "/" + SigV4Signer.uriEncode(bucket, encodeSlash: true)
            if let key { path += "/" + SigV4Signer.uriEncode(key, encodeSlash: false) }
        case (.virtualHost, let bucket?):
            host = "\(bucket).\(host)"
            path = "/" + (key.map { SigV4Signer.uriEncode($0, encodeSlash: false) } ?? "")
        }
        let port = endpoint.port ?? defaultPort
        let hostHeader = port == defaultPort ? host : "\(host):\(port)"
        var connectHost = connectTo?.host ?? host
        if connectHost.contains(":"), !connectHost.hasPrefix("[") { connectHost = "[\(connectHost)]" }
        let connectPort = connectTo?.port ?? port
        var url = "\(scheme)://\(connectHost):\(connectPort)\(path)"
        if !query.isEmpty { url += "?" + SigV4Signer.canonicalQuery(query) }
        return Address(url: url, host: hostHeader, path: path)
    }

    /// CreateBucket, optionally with Object Lock (which also switches versioning on); outside
    /// us-east-1 the region goes in the body as S3 requires.
    public func createBucket(_ name: String, objectLockEnabled: Bool = false) async throws(S3TransportError) -> S3Response {
        try await send(S3Request(
            method: "PUT", bucket: name, headers: objectLockEnabled ? [("x-amz-bucket-object-lock-enabled", "true")] : [],
            body: region == "us-east-1" ? Data() : S3XML.createBucketConfiguration(region: region)))
    }

    /// Sends `request`, retrying 5xx, 429, `SlowDown`, `RequestTimeout`, timeouts and lost connections
    /// (and 409 `ConditionalRequestConflict` when asked) with backoff. Any HTTP answer that is not
    /// retried, or the last one, is returned for the caller to interpret.
    public func send(_ request: S3Request) async throws(S3TransportError) -> S3Response {
        let payloadHash = SigV4Signer.sha256Hex(request.body)
        let contentMD5: String? = request.method == "PUT" || request.method == "POST" ? S3Digest.contentMD5(request.body) : nil
        var mayHaveApplied = false
        var attempt = 0
        while true {
            attempt += 1
            let outcome = await attemptOnce(request, payloadHash: payloadHash, contentMD5: contentMD5)
            let reasonToRetry: String
            switch outcome {
            case .success(var response):
                guard let reason = retryReason(response, request) else {
                    response.earlierAttemptMayHaveApplied = mayHaveApplied
                    response.attempts = attempt
                    return response
                }
                if attempt >= retry.maxAttempts {
                    response.earlierAttemptMayHaveApplied = mayHaveApplied
                    response.attempts = attempt
                    return response
                }
                // A 409 conflict was refused before it took effect; a 5xx or 429 may have been applied.
                if response.status != 409 { mayHaveApplied = true }
                reasonToRetry = reason
            case .failure(let failure):
                if failure.cancelled || !failure.retryable || attempt >= retry.maxAttempts {
                    throw S3TransportError(endpoint: endpointDescription, attempts: attempt, reason: failure.reason, cancelled: failure.cancelled)
                }
                mayHaveApplied = true
                reasonToRetry = failure.reason
            }
            let delay = retry.delay(beforeRetry: attempt - 1)
            logger.debug("retrying S3 request", metadata: [
                "method": .string(request.method), "bucket": .string(request.bucket ?? ""), "key": .string(request.key ?? ""),
                "attempt": .stringConvertible(attempt), "reason": .string(reasonToRetry), "delay": .string("\(delay)"),
            ])
            do {
                try await Task.sleep(for: delay)
            } catch {
                throw S3TransportError(endpoint: endpointDescription, attempts: attempt, reason: "cancelled while waiting to retry", cancelled: true)
            }
        }
    }

    /// Why this answer deserves another attempt, or nil.
    func retryReason(_ response: S3Response, _ request: S3Request) -> String? {
        // A success's body is the object or the answer, never an error to retry: not parsed.
        guard !response.isSuccess else { return nil }
        let code = response.error?.code ?? ""
        switch response.status {
        case 500...599, 429:
            return "HTTP \(response.status)\(code.isEmpty ? "" : " \(code)")"
        case 400 where code == "RequestTimeout":
            // S3's idle-socket timeout; the AWS SDKs retry it.
            return "HTTP 400 RequestTimeout"
        case 409 where code == "ConditionalRequestConflict" && request.retryConditionalConflict:
            return "HTTP 409 ConditionalRequestConflict"
        default:
            return nil
        }
    }

    struct AttemptFailure: Error {
        var reason: String
        var retryable: Bool
        var cancelled: Bool = false
    }

    func attemptOnce(_ request: S3Request, payloadHash: String, contentMD5: String?) async -> Result<S3Response, AttemptFailure> {
        let address = address(bucket: request.bucket, key: request.key, query: request.query)
        var signedHeaders = request.headers
        signedHeaders.append(("host", address.host))
        if let contentMD5 { signedHeaders.append(("content-md5", contentMD5)) }
        let signer = SigV4Signer(credentials: credentials, region: region, service: request.service)
        let signature = signer.sign(method: request.method, path: address.path, query: request.query,
                                    headers: signedHeaders, payloadHash: payloadHash, date: Date())
        var httpRequest = HTTPClientRequest(url: address.url)
        httpRequest.method = HTTPMethod(rawValue: request.method)
        for (name, value) in signedHeaders { httpRequest.headers.add(name: name, value: value) }
        for (name, value) in signature.headers { httpRequest.headers.add(name: name, value: value) }
        if request.method == "PUT" || request.method == "POST" {
            httpRequest.body = .bytes(ByteBuffer(bytes: request.body))
        }
        let timeout = TimeAmount.nanoseconds(Int64(retry.requestTimeout.components.seconds) * 1_000_000_000
            + Int64(retry.requestTimeout.components.attoseconds / 1_000_000_000))
        do {
            let response = try await httpClient.execute(httpRequest, timeout: timeout, logger: nil)
            var body = Data()
            if let length = response.headers.first(name: "content-length").flatMap(Int.init), request.method != "HEAD" {
                body.reserveCapacity(length)
            }
            for try await chunk in response.body {
                body.append(contentsOf: chunk.readableBytesView)
            }
            var result = S3Response(status: Int(response.status.code), headers: response.headers.map { ($0.name, $0.value) },
                                    body: body, earlierAttemptMayHaveApplied: false, attempts: 1)
            if request.errorMayArriveWith200, result.status == 200, let error = result.error {
                // https://docs.aws.amazon.com/AmazonS3/latest/API/API_CompleteMultipartUpload.html: "a 200 OK
                // response can contain either a success or an error". Give it the status its code implies.
                result.status = error.code == "SlowDown" ? 503 : error.code == "InternalError" ? 500 : 400
            }
            return .success(result)
        } catch {
            return .failure(Self.classify(error))
        }
    }

    /// Transport errors: everything is worth retrying except a malformed request and cancellation.
    static func classify(_ error: any Error) -> AttemptFailure {
        if error is CancellationError {
            return AttemptFailure(reason: "cancelled", retryable: false, cancelled: true)
        }
        if let error = error as? HTTPClientError {
            if error == .cancelled {
                return AttemptFailure(reason: "cancelled", retryable: false, cancelled: true)
            }
            if [HTTPClientError.invalidURL, .emptyHost, .emptyScheme, .alreadyShutdown].contains(error) {
                return AttemptFailure(reason: "\(error)", retryable: false)
            }
            if [HTTPClientError.deadlineExceeded, .readTimeout, .writeTimeout, .connectTimeout].contains(error) {
                return AttemptFailure(reason: "timed out (\(error))", retryable: true)
            }
            if error == .remoteConnectionClosed {
                return AttemptFailure(reason: "the connection was closed by the server", retryable: true)
            }
            return AttemptFailure(reason: "\(error)", retryable: true)
        }
        if let error = error as? IOError {
            switch error.errnoCode {
            case ECONNREFUSED: return AttemptFailure(reason: "connection refused", retryable: true)
            case ECONNRESET: return AttemptFailure(reason: "connection reset", retryable: true)
            case ETIMEDOUT: return AttemptFailure(reason: "timed out", retryable: true)
            default: return AttemptFailure(reason: "\(error)", retryable: true)
            }
        }
        let text = "\(error)"
        if text.contains("connectionRefused") || text.contains("ECONNREFUSED") || text.contains("Connection refused") {
            return AttemptFailure(reason: "connection refused", retryable: true)
        }
        return AttemptFailure(reason: text, retryable: true)
    }
}

/// Digests S3 asks for.
enum S3Digest {
    /// Base64 MD5 of the body. S3 requires it on writes that carry Object Lock headers, and it lets
    /// the server reject a body damaged on the way.
    static func contentMD5(_ data: Data) -> String {
        Data(Insecure.MD5.hash(data: data)).base64EncodedString()
    }
}

extension S3TransportError: LifeboatError {
    public var errorCode: String { cancelled ? "s3.cancelled" : "s3.unreachable" }
    public var errorObject: String? { endpoint }
    public var errorMessage: String { description }
    public var exitStatus: ExitStatus { cancelled ? .interrupted : .unavailable }
}
