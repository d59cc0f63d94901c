import Foundation
import Testing
@testable import LifeboatStorage

/// The signer against the worked examples in AWS's "Signature Calculations for the Authorization
/// Header: Transferring Payload in a Single Chunk" (sig-v4-header-based-auth.html): access key
/// AKIAIOSFODNN7EXAMPLE, bucket examplebucket, 20130524T000000Z, us-east-1.
@Suite struct SigV4Tests {
    static let credentials = S3Credentials(accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    static let signer = SigV4Signer(credentials: credentials, region: "us-east-1")
    static let date = Date(timeIntervalSince1970: 1_369_353_600) // 2013-05-24T00:00:00Z
    static let host = ("host", "examplebucket.s3.amazonaws.com")

    @Test func getObjectWithRange() {
        let signed = Self.signer.sign(method: "GET", path: "/test.txt", query: [], headers: [Self.host, ("Range", "bytes=0-9")],
                                      payloadHash: SigV4Signer.emptyPayloadHash, date: Self.date)
        #expect(signed.canonicalRequest == """
            GET
            /test.txt

            host:examplebucket.s3.amazonaws.com
            range:bytes=0-9
            x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
            x-amz-date:20130524T000000Z

            host;range;x-amz-content-sha256;x-amz-date
            e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
            """)
        #expect(signed.stringToSign == """
            AWS4-HMAC-SHA256
            20130524T000000Z
            20130524/us-east-1/s3/aws4_request
            7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972
            """)
        #expect(signed.signature == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
        let authorization = signed.headers.first { $0.name == "authorization" }?.value
        #expect(authorization == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
        #expect(signed.headers.first { $0.name == "x-amz-date" }?.value == "20130524T000000Z")
        #expect(signed.headers.first { $0.name == "x-amz-content-sha256" }?.value == SigV4Signer.emptyPayloadHash)
    }

    @Test func putObjectWithSignedPayload() throws {
        let body = Data("Welcome to Amazon S3.".utf8)
        let hash = SigV4Signer.sha256Hex(body)
        #expect(hash == "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072")
        // The key `test$file.text` goes on the wire, and into the canonical URI, as `test%24file.text`.
        let client = S3Client(endpoint: try #require(URL(string: "https://s3.amazonaws.com")), region: "us-east-1",
                              credentials: Self.credentials, addressing: .virtualHost)
        let address = client.address(bucket: "examplebucket", key: "test$file.text", query: [])
        #expect(address.path == "/test%24file.text")
        #expect(address.host == "examplebucket.s3.amazonaws.com")
        let signed = Self.signer.sign(
            method: "PUT", path: address.path, query: [],
            headers: [("host", address.host), ("Date", "Fri, 24 May 2013 00:00:00 GMT"), ("x-amz-storage-class", "REDUCED_REDUNDANCY")],
            payloadHash: hash, date: Self.date)
        #expect(signed.signedHeaders == "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class")
        #expect(signed.signature == "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd")
    }

    @Test func bucketLifecycleQueryWithoutValue() {
        let signed = Self.signer.sign(method: "GET", path: "/", query: [("lifecycle", "")], headers: [Self.host],
                                      payloadHash: SigV4Signer.emptyPayloadHash, date: Self.date)
        #expect(signed.canonicalRequest.split(separator: "\n", omittingEmptySubsequences: false)[2] == "lifecycle=")
        #expect(signed.signature == "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543")
    }

    @Test func listObjectsQueryIsSorted() {
        // Given out of order: the canonical query must sort it.
        let signed = Self.signer.sign(method: "GET", path: "/", query: [("prefix", "J"), ("max-keys", "2")], headers: [Self.host],
                                      payloadHash: SigV4Signer.emptyPayloadHash, date: Self.date)
        #expect(signed.canonicalRequest.split(separator: "\n", omittingEmptySubsequences: false)[2] == "max-keys=2&prefix=J")
        #expect(signed.signature == "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7")
    }

    @Test func queryEncodingFollowsRFC3986() {
        #expect(SigV4Signer.canonicalQuery([("prefix", "repo/data/a b+c~"), ("list-type", "2"), ("uploads", "")])
            == "list-type=2&prefix=repo%2Fdata%2Fa%20b%2Bc~&uploads=")
        #expect(SigV4Signer.canonicalQuery([("b", "2"), ("a", "z"), ("a", "y")]) == "a=y&a=z&b=2")
        #expect(SigV4Signer.uriEncode("data/ab/é=", encodeSlash: false) == "data/ab/%C3%A9%3D")
        #expect(SigV4Signer.uriEncode("data/ab", encodeSlash: true) == "data%2Fab")
    }

    @Test func headerValuesAreTrimmedAndNamesLowercased() {
        let headers = SigV4Signer.canonicalHeaders([("X-Amz-Meta-A", "  one   two  "), ("host", "h"), ("x-amz-meta-a", "three")])
        #expect(headers.map(\.name) == ["host", "x-amz-meta-a"])
        #expect(headers[1].value == "one two,three")
    }

    @Test func sessionTokenIsSentAndSigned() {
        var credentials = Self.credentials
        credentials.sessionToken = "FwoGZXIvYXdzEXAMPLETOKEN"
        let signed = SigV4Signer(credentials: credentials, region: "us-east-1")
            .sign(method: "GET", path: "/", query: [], headers: [Self.host], payloadHash: SigV4Signer.emptyPayloadHash, date: Self.date)
        #expect(signed.headers.contains { $0.name == "x-amz-security-token" && $0.value == "FwoGZXIvYXdzEXAMPLETOKEN" })
        #expect(signed.signedHeaders == "host;x-amz-content-sha256;x-amz-date;x-amz-security-token")
    }

    @Test func nothingSentOrShownHoldsTheSecret() {
        let signed = Self.signer.sign(method: "GET", path: "/", query: [], headers: [Self.host],
                                      payloadHash: SigV4Signer.emptyPayloadHash, date: Self.date)
        let secret = Self.credentials.secretAccessKey
        #expect(!signed.headers.contains { $0.value.contains(secret) })
        #expect(!signed.canonicalRequest.contains(secret) && !signed.stringToSign.contains(secret))
        #expect(!"\(Self.credentials)".contains(secret))
        #expect(!String(reflecting: Self.credentials).contains(secret))
        // dump() walks mirrors all the way down, through the backend to its credentials.
        var dumped = ""
        var configuration = S3Configuration(endpoint: URL(string: "https://s3.amazonaws.com")!, region: "us-east-1",
                                            bucket: "examplebucket", credentials: Self.credentials)
        configuration.credentials.sessionToken = "session-token-value"
        dump(try? S3Backend(configuration: configuration), to: &dumped)
        #expect(dumped.contains("AKIAIOSFODNN7EXAMPLE"))
        #expect(!dumped.contains(secret) && !dumped.contains("session-token-value"))
    }
}

/// URL and Host construction, configuration checks and retry decisions: no server needed.
@Suite struct S3UnitTests {
    static let credentials = S3Credentials(accessKeyID: "AKID", secretAccessKey: "not-a-real-secret")

    @Test func pathStyleNamesTheBucketInThePath() throws {
        let client = S3Client(endpoint: try #require(URL(string: "http://127.0.0.1:9000")), region: "us-east-1", credentials: Self.credentials)
        let address = client.address(bucket: "backups", key: "team/data/ab/abc", query: [("uploadId", "x/y")])
        #expect(address.url == "http://127.0.0.1:9000/backups/team/data/ab/abc?uploadId=x%2Fy")
        #expect(address.host == "127.0.0.1:9000")
        #expect(address.path == "/backups/team/data/ab/abc")
        #expect(client.address(bucket: "backups", key: nil, query: []).path == "/backups")
    }

    @Test func virtualHostNamesTheBucketInTheHost() throws {
        let client = S3Client(endpoint: try #require(URL(string: "https://s3.eu-west-1.amazonaws.com")), region: "eu-west-1",
                              credentials: Self.credentials, addressing: .virtualHost)
        let address = client.address(bucket: "backups", key: "team/config", query: [])
        #expect(address.url == "https://backups.s3.eu-west-1.amazonaws.com:443/team/config")
        #expect(address.host == "backups.s3.eu-west-1.amazonaws.com")
        #expect(address.path == "/team/config")
        #expect(client.address(bucket: "backups", key: nil, query: [("list-type", "2")]).path == "/")
    }

    @Test func ipv6EndpointsAreBracketed() throws {
        let client = S3Client(endpoint: try #require(URL(string: "http://[::1]:9000")), region: "us-east-1", credentials: Self.credentials)
        let address = client.address(bucket: "backups", key: "config", query: [])
        #expect(address.url == "http://[::1]:9000/backups/config")
        #expect(address.host == "[::1]:9000")
    }

    @Test func connectToKeepsHostAndSignatureOnTheEndpoint() throws {
        let client = S3Client(endpoint: try #require(URL(string: "http://s3.amazonaws.com")), region: "us-east-1",
                              credentials: Self.credentials, addressing: .virtualHost, connectTo: S3ConnectTarget(host: "127.0.0.1", port: 5000))
        let address = client.address(bucket: "backups", key: "config", query: [])
        #expect(address.url == "http://127.0.0.1:5000/config")
        #expect(address.host == "backups.s3.amazonaws.com")
    }

    func configuration(_ change: (inout S3Configuration) -> Void = { _ in }) throws -> S3Configuration {
        var configuration = S3Configuration(endpoint: try #require(URL(string: "https://s3.amazonaws.com")), region: "us-east-1",
                                            bucket: "backups", prefix: "team/repo", credentials: Self.credentials)
        change(&configuration)
        return configuration
    }

    @Test func locationNamesBucketAndPrefixButNoCredentials() throws {
        let backend = try S3Backend(configuration: configuration())
        #expect(backend.location == "s3://backups/team/repo")
        #expect(try S3Backend(configuration: configuration { $0.prefix = "" }).location == "s3://backups")
        #expect(!"\(try configuration())".contains("not-a-real-secret"))
        #expect(backend.key("data/ab/abc") == "team/repo/data/ab/abc")
    }

    @Test(arguments: [
        ("Bad_Bucket", "valid bucket name"), ("ab", "valid bucket name"), ("-bucket", "valid bucket name"),
    ])
    func invalidBucketNamesAreRefused(bucket: String, expected: String) throws {
        let error = try #require(throws: BackendError.self) { try S3Backend(configuration: configuration { $0.bucket = bucket }) }
        #expect(error.detail.contains(expected))
    }

    @Test func invalidSettingsAreRefusedWithTheReason() throws {
        let cases: [(String, (inout S3Configuration) -> Void)] = [
            ("prefix", { $0.prefix = "team/" }),
            ("prefix", { $0.prefix = "/team" }),
            ("minimum part size", { $0.partSize = 1024 }),
            ("5 GiB", { $0.multipartThreshold = 6 * 1024 * 1024 * 1024 }),
            ("path or query", { $0.endpoint = URL(string: "https://s3.amazonaws.com/backups")! }),
            ("http:// or https://", { $0.endpoint = URL(string: "ftp://s3.amazonaws.com")! }),
            ("region", { $0.region = "" }),
            ("retention", { $0.objectLock = S3ObjectLockRetention(mode: .compliance, duration: 0) }),
            ("TLS", { $0.bucket = "my.backups"; $0.addressing = .virtualHost }),
            ("retry", { $0.retry.maxAttempts = 0 }),
            ("DNS name", { $0.endpoint = URL(string: "http://127.0.0.1:9000")!; $0.addressing = .virtualHost }),
            ("http:// endpoints only", { $0.connectTo = S3ConnectTarget(host: "127.0.0.1", port: 9000) }),
        ]
        for (expected, change) in cases {
            let error = try #require(throws: BackendError.self) { try S3Backend(configuration: configuration(change)) }
            #expect(error.detail.contains(expected), "\(error)")
        }
    }

    @Test func credentialsAndRegionComeFromTheStandardVariables() throws {
        let credentials = try S3Credentials.fromEnvironment(["AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "s3cr3t", "AWS_SESSION_TOKEN": "tok"])
        #expect(credentials == S3Credentials(accessKeyID: "AKID", secretAccessKey: "s3cr3t", sessionToken: "tok"))
        #expect(try S3Credentials.fromEnvironment(["AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "s3cr3t"]).sessionToken == nil)
        let error = try #require(throws: BackendError.self) { try S3Credentials.fromEnvironment(["AWS_ACCESS_KEY_ID": "AKID"]) }
        #expect(error.detail.contains("AWS_SECRET_ACCESS_KEY"))
        #expect(S3Configuration.regionFromEnvironment(["AWS_DEFAULT_REGION": "eu-west-1"]) == "eu-west-1")
        #expect(S3Configuration.regionFromEnvironment(["AWS_REGION": "us-west-2", "AWS_DEFAULT_REGION": "eu-west-1"]) == "us-west-2")
        #expect(S3Configuration.regionFromEnvironment([:]) == nil)
    }

    @Test func objectLockHeadersCarryModeAndRetainUntilDate() {
        let now = Date(timeIntervalSince1970: 1_700_000_000) // 2023-11-14T22:13:20Z
        let headers = S3ObjectLockRetention(mode: .compliance, duration: 86_400).headers(now: now)
        #expect(headers.map(\.0) == ["x-amz-object-lock-mode", "x-amz-object-lock-retain-until-date"])
        #expect(headers.map(\.1) == ["COMPLIANCE", "2023-11-15T22:13:20Z"])
    }

    @Test func encryptionHeaders() {
        #expect(S3ServerSideEncryption.s3.headers.map(\.1) == ["AES256"])
        #expect(S3ServerSideEncryption.kms(keyID: "arn:aws:kms:k").headers.map(\.0)
            == ["x-amz-server-side-encryption", "x-amz-server-side-encryption-aws-kms-key-id"])
        #expect(S3ServerSideEncryption.kms(keyID: nil).headers.count == 1)
    }

    @Test func backoffIsJitteredAndCapped() {
        let policy = S3RetryPolicy(maxAttempts: 10, baseDelay: .milliseconds(100), maxDelay: .seconds(1))
        for retry in 0..<10 {
            let cap = min(Duration.milliseconds(100) * (1 << retry), .seconds(1))
            let delays = (0..<50).map { _ in policy.delay(beforeRetry: retry) }
            #expect(delays.allSatisfy { $0 >= .zero && $0 <= cap })
        }
        // Full jitter: repeated waits differ, so clients that failed together spread out.
        #expect(Set((0..<20).map { _ in policy.delay(beforeRetry: 5) }).count > 1)
    }

    @Test func onlyTransientAnswersAreRetried() throws {
        let client = S3Client(endpoint: try #require(URL(string: "http://127.0.0.1:1")), region: "us-east-1", credentials: Self.credentials)
        func answer(_ status: Int, _ code: String = "") -> S3Response {
            let body = code.isEmpty ? Data() : Data("<Error><Code>\(code)</Code><Message>m</Message></Error>".utf8)
            return S3Response(status: status, headers: [], body: body, earlierAttemptMayHaveApplied: false, attempts: 1)
        }
        let plain = S3Request(method: "GET")
        let conditional = S3Request(method: "PUT", retryConditionalConflict: true)
        for retried in [answer(500, "InternalError"), answer(503, "SlowDown"), answer(502), answer(429), answer(400, "RequestTimeout")] {
            #expect(client.retryReason(retried, plain) != nil, "\(retried.status)")
        }
        for final in [answer(400, "InvalidArgument"), answer(403, "AccessDenied"), answer(404, "NoSuchKey"), answer(412, "PreconditionFailed"),
                      answer(409, "ConditionalRequestConflict"), answer(200)] {
            #expect(client.retryReason(final, plain) == nil, "\(final.status)")
        }
        #expect(client.retryReason(answer(409, "ConditionalRequestConflict"), conditional) != nil)
        #expect(client.retryReason(answer(409, "BucketNotEmpty"), conditional) == nil)
    }

    /// An object's bytes reached the XML parser once (every answer's body was searched for an S3
    /// error) and Foundation's parser trapped on them, killing a bucket backup of random objects.
    /// Binary bodies, those starting with "<" included, are not XML: nil, never a crash.
    @Test func binaryBodiesAreNotXMLAndNeverReachTheParsersTraps() {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> UInt8 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: state >> 56)
        }
        for _ in 0..<3000 {
            let body = Data([UInt8(ascii: "<")] + (0..<512).map { _ in next() })
            #expect(S3XML.parse(body) == nil)
            let response = S3Response(status: 200, headers: [], body: body, earlierAttemptMayHaveApplied: false, attempts: 1)
            #expect(response.error == nil)
        }
        // An object whose bytes are an S3 error document is still the object: a 200 is never retried.
        let client = S3Client(endpoint: URL(string: "http://127.0.0.1:1")!, region: "us-east-1",
                              credentials: S3Credentials(accessKeyID: "a", secretAccessKey: "s"))
        let lookalike = Data("<Error><Code>InternalError</Code><Message>m</Message></Error>".utf8)
        let ok = S3Response(status: 200, headers: [], body: lookalike, earlierAttemptMayHaveApplied: false, attempts: 1)
        #expect(client.retryReason(ok, S3Request(method: "GET", bucket: "b", key: "k")) == nil)
        let failed = S3Response(status: 500, headers: [], body: lookalike, earlierAttemptMayHaveApplied: false, attempts: 1)
        #expect(client.retryReason(failed, S3Request(method: "GET", bucket: "b", key: "k")) == "HTTP 500 InternalError")
    }

    @Test func listingPagesAreParsed() throws {
        let xml = """
            <?xml version="1.0" encoding="UTF-8"?>
            <ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>p</Prefix><KeyCount>2</KeyCount>
            <MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated><NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
            <Contents><Key>p/data/a&amp;b</Key><LastModified>2009-10-12T17:50:30.000Z</LastModified><ETag>"e"</ETag><Size>434234</Size></Contents>
            <Contents><Key>p/config</Key><LastModified>2009-10-12T17:50:31Z</LastModified><Size>0</Size></Contents>
            </ListBucketResult>
            """
        let page = try #require(S3XML.listPage(Data(xml.utf8)))
        #expect(page.isTruncated)
        #expect(page.nextContinuationToken == "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=")
        #expect(page.objects.map(\.key) == ["p/data/a&b", "p/config"])
        #expect(page.objects.map(\.size) == [434_234, 0])
        #expect(page.objects[0].modified == Date(timeIntervalSince1970: 1_255_369_830))
        #expect(page.objects[1].modified == Date(timeIntervalSince1970: 1_255_369_831))
        #expect(S3XML.listPage(Data("<Error><Code>NoSuchBucket</Code></Error>".utf8)) == nil)
    }

    @Test func completeBodyListsPartsInAscendingOrder() {
        let body = String(decoding: S3XML.completeMultipartUpload([(3, "\"c\""), (1, "\"a\""), (2, "\"b\"")]), as: UTF8.self)
        let numbers = body.components(separatedBy: "<PartNumber>").dropFirst().map { $0.prefix { $0 != "<" } }
        #expect(numbers == ["1", "2", "3"])
        #expect(body.contains("<ETag>&quot;a&quot;</ETag>"))
    }

    @Test func contentRangeTotal() {
        #expect(S3Backend.totalSize(contentRange: "bytes 990-999/1000") == 1000)
        #expect(S3Backend.totalSize(contentRange: "bytes */1000") == 1000)
        #expect(S3Backend.totalSize(contentRange: nil) == nil)
    }
}
