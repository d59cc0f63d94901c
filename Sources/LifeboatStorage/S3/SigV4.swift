import Crypto
import Foundation

/// AWS Signature Version 4 for header-based authentication, written against
/// https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html
/// (no AWS SDK exists for Swift on this platform).
///
/// The signer never stores or returns the secret; the `Authorization` header it produces holds only
/// the access key id, the scope, the signed header names and the signature.
public struct SigV4Signer: Sendable {
    public var credentials: S3Credentials
    public var region: String
    /// `s3` for every storage request; moto's IAM set-up also signs `iam` requests.
    public var service: String

    public init(credentials: S3Credentials, region: String, service: String = "s3") {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    /// The hash S3 expects for a request without a body (SHA-256 of nothing).
    public static let emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    /// Sent instead of a hash when the body is streamed and not hashed up front.
    public static let unsignedPayload = "UNSIGNED-PAYLOAD"

    /// What signing adds to a request, plus the intermediate strings (for tests and debugging; they hold no secret).
    public struct Signature: Sendable {
        /// Headers to send in addition to the ones that were signed: `authorization`, `x-amz-date`,
        /// `x-amz-content-sha256` and, with a session token, `x-amz-security-token`.
        public var headers: [(name: String, value: String)]
        public var canonicalRequest: String
        public var stringToSign: String
        public var signature: String
        public var signedHeaders: String
    }

    /// Signs one request.
    /// - Parameters:
    ///   - path: the request path as it goes on the wire, already URI-encoded (`/bucket/a%20b`).
    ///     S3 does not normalise paths, so it is used as the canonical URI unchanged.
    ///   - query: decoded query parameters; each name and value is encoded here (`/` → `%2F`).
    ///   - headers: every header to sign; must include `host`. Names are case-insensitive.
    ///   - payloadHash: hex SHA-256 of the body, or `UNSIGNED-PAYLOAD`.
    public func sign(
        method: String, path: String, query: [(String, String)], headers: [(String, String)],
        payloadHash: String, date: Date
    ) -> Signature {
        let stamp = Self.timestamp(date)
        let day = String(stamp.prefix(8))
        var allHeaders = headers
        allHeaders.append(("x-amz-date", stamp))
        allHeaders.append(("x-amz-content-sha256", payloadHash))
        if let token = credentials.sessionToken {
            allHeaders.append(("x-amz-security-token", token))
        }
        let canonicalHeaders = Self.canonicalHeaders(allHeaders)
        let signedHeaders = canonicalHeaders.map(\.name).joined(separator: ";")
        let canonicalRequest = [
            method,
            path.isEmpty ? "/" : path,
            Self.canonicalQuery(query),
            canonicalHeaders.map { "\($0.name):\($0.value)\n" }.joined(),
            signedHeaders,
            payloadHash,
        ].joined(separator: "\n")
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let stringToSign = [
            "AWS4-HMAC-SHA256",
            stamp,
            scope,
            Self.hex(SHA256.hash(data: Data(canonicalRequest.utf8))),
        ].joined(separator: "\n")
        let key = signingKey(day: day)
        let signature = Self.hex(HMAC<SHA256>.authenticationCode(for: Data(stringToSign.utf8), using: key))
        var added: [(name: String, value: String)] = [
            ("authorization", "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope), SignedHeaders=\(signedHeaders), Signature=\(signature)"),
            ("x-amz-date", stamp),
            ("x-amz-content-sha256", payloadHash),
        ]
        if let token = credentials.sessionToken { added.append(("x-amz-security-token", token)) }
        return Signature(headers: added, canonicalRequest: canonicalRequest, stringToSign: stringToSign,
                         signature: signature, signedHeaders: signedHeaders)
    }

    /// HMAC chain "AWS4"+secret → date → region → service → "aws4_request".
    func signingKey(day: String) -> SymmetricKey {
        var key = SymmetricKey(data: Data("AWS4\(credentials.secretAccessKey)".utf8))
        for part in [day, region, service, "aws4_request"] {
            key = SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Data(part.utf8), using: key)))
        }
        return key
    }

    // MARK: canonical forms

    /// Lowercase names, values trimmed with inner runs of spaces collapsed, sorted by name;
    /// repeated names are joined with commas.
    static func canonicalHeaders(_ headers: [(String, String)]) -> [(name: String, value: String)] {
        var merged: [String: [String]] = [:]
        for (name, value) in headers {
            let trimmed = value.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
            merged[name.lowercased(), default: []].append(trimmed)
        }
        return merged.keys.sorted().map { ($0, merged[$0]!.joined(separator: ",")) }
    }

    /// Each name and value RFC 3986-encoded (`/` too), sorted by encoded name then value, `k=` for empty values.
    public static func canonicalQuery(_ query: [(String, String)]) -> String {
        let encoded: [(name: String, value: String)] = query.map { pair in
            (uriEncode(pair.0, encodeSlash: true), uriEncode(pair.1, encodeSlash: true))
        }
        let sorted = encoded.sorted { left, right in
            left.name == right.name ? left.value < right.value : left.name < right.name
        }
        return sorted.map { "\($0.name)=\($0.value)" }.joined(separator: "&")
    }

    /// RFC 3986 encoding as S3 wants it: unreserved characters stay, every other byte becomes `%XX`
    /// (upper-case hex); `/` stays only in paths.
    public static func uriEncode(_ text: String, encodeSlash: Bool) -> String {
        var encoded = ""
        encoded.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            if isUnreserved(byte) || (byte == slash && !encodeSlash) {
                encoded.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                encoded.append("%")
                encoded.append(upperHexDigits[Int(byte >> 4)])
                encoded.append(upperHexDigits[Int(byte & 0x0F)])
            }
        }
        return encoded
    }

    private static let slash = UInt8(ascii: "/")
    private static let upperHexDigits = Array("0123456789ABCDEF")

    /// RFC 3986 unreserved: letters, digits, `-`, `_`, `.`, `~`.
    static func isUnreserved(_ byte: UInt8) -> Bool {
        if byte >= 0x41 && byte <= 0x5A { return true } // A-Z
        if byte >= 0x61 && byte <= 0x7A { return true } // a-z
        if byte >= 0x30 && byte <= 0x39 { return true } // 0-9
        return byte == 0x2D || byte == 0x5F || byte == 0x2E || byte == 0x7E // - _ . ~
    }

    /// `20130524T000000Z` in UTC.
    public static func timestamp(_ date: Date) -> String {
        let components = Calendar.utc.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        return String(format: "%04d%02d%02dT%02d%02d%02dZ", components.year!, components.month!, components.day!,
                      components.hour!, components.minute!, components.second!)
    }

    public static func sha256Hex(_ data: Data) -> String {
        hex(SHA256.hash(data: data))
    }

    static func hex<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var text = [UInt8]()
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}

extension Calendar {
    static let utc: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }()
}
