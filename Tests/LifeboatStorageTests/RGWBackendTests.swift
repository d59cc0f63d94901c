import Foundation
import LifeboatTesting
import Testing
@testable import LifeboatStorage

/// Where Ceph RGW 16 differs from S3 in ways that matter to a backup tool, each pinned against the
/// real server and each paired with what the backend does about it (docs/s3.md, "RGW vs S3").
@Suite(.rgw) struct RGWBackendTests {
    typealias Helpers = S3BackendTests

    /// A backend on a fresh RGW bucket with RGW's compatibility settings, under a prefix with a `/`.
    func backend(objectLock: Bool = false, _ change: (inout S3Configuration) -> Void = { _ in }) async throws -> S3Backend {
        var configuration = try await RGWScope.require().freshBucket(objectLock ? "rgwlocked" : "rgwtests", objectLock: objectLock, prefix: "lifeboat/repo")
        change(&configuration)
        return try S3Backend(configuration: configuration)
    }

    func head(_ backend: S3Backend, _ name: String) async throws -> S3Response {
        try await backend.client.send(S3Request(method: "HEAD", bucket: backend.configuration.bucket, key: backend.key(name)))
    }

    /// One raw multipart upload of `body` (a single part) with `If-None-Match: *` on complete.
    func rawConditionalMultipart(_ backend: S3Backend, key: String, body: Data) async throws -> S3Response {
        let s3 = backend.client, bucket = backend.configuration.bucket
        let started = try await s3.send(S3Request(method: "POST", bucket: bucket, key: key, query: [("uploads", "")]))
        let uploadID = try #require(S3XML.parse(started.body)?.child("UploadId")?.text)
        let part = try await s3.send(S3Request(method: "PUT", bucket: bucket, key: key,
                                               query: [("partNumber", "1"), ("uploadId", uploadID)], body: body))
        let etag = try #require(part.header("etag"))
        return try await s3.send(S3Request(method: "POST", bucket: bucket, key: key, query: [("uploadId", uploadID)],
                                           headers: [("if-none-match", "*")], body: S3XML.completeMultipartUpload([(1, etag)]),
                                           errorMayArriveWith200: true))
    }

    // MARK: If-None-Match on CompleteMultipartUpload

    @Test func rgwIgnoresIfNoneMatchOnCompleteMultipartUpload() async throws {
        // The server's difference itself. If this fails, RGW enforces the condition now and
        // `createOnceWithoutMultipart` may go (docs/s3.md).
        let backend = try await backend()
        let key = backend.key("snapshots/raw")
        #expect(try await rawConditionalMultipart(backend, key: key, body: Data("first".utf8)).status == 200)
        let second = try await rawConditionalMultipart(backend, key: key, body: Data("second".utf8))
        #expect(second.status == 200, "RGW 16 answered the second conditional complete with \(second.status)")
        #expect(try await backend.load("snapshots/raw") == Data("second".utf8), "the second upload replaced the first")
        // The same condition on a plain PUT is enforced.
        let put = try await backend.client.send(S3Request(method: "PUT", bucket: backend.configuration.bucket, key: key,
                                                          headers: [("if-none-match", "*")], body: Data("third".utf8)))
        #expect(put.status == 412)
    }

    @Test func createOnceAboveTheMultipartThresholdStaysCreateOnce() async throws {
        let backend = try await backend(Helpers.smallParts)
        #expect(backend.configuration.compatibility.createOnceWithoutMultipart)
        let first = Helpers.randomBytes(12 * 1024 * 1024)
        try await backend.create("snapshots/big", data: first)
        // One PUT, not a multipart upload (whose ETag would end in "-<parts>").
        let etag = try #require(try await head(backend, "snapshots/big").header("etag"))
        #expect(!etag.contains("-"), "\(etag)")
        let refused = try await #require(throws: BackendError.self) {
            try await backend.create("snapshots/big", data: Helpers.randomBytes(12 * 1024 * 1024))
        }
        #expect(refused.code == .alreadyExists)
        #expect(try await backend.load("snapshots/big") == first, "the first object is unchanged")
    }

    @Test func withoutTheFlagASecondMultipartCreateStillFailsClosed() async throws {
        // A configuration that does not know it talks to RGW still sends multipart uploads; the
        // key is checked before each, so a later create never overwrites an existing object.
        let backend = try await backend {
            Helpers.smallParts(&$0)
            $0.compatibility = S3Compatibility()
        }
        let first = Helpers.randomBytes(12 * 1024 * 1024)
        try await backend.create("snapshots/big", data: first)
        #expect(try await head(backend, "snapshots/big").header("etag")?.hasSuffix("-3\"") == true, "went up in 3 parts")
        let refused = try await #require(throws: BackendError.self) {
            try await backend.create("snapshots/big", data: Helpers.randomBytes(12 * 1024 * 1024))
        }
        #expect(refused.code == .alreadyExists)
        #expect(try await backend.load("snapshots/big") == first)
    }

    @Test func concurrentCreatesAboveTheThresholdHaveExactlyOneWinner() async throws {
        let backend = try await backend(Helpers.smallParts)
        let bodies = (0..<4).map { _ in Helpers.randomBytes(9 * 1024 * 1024) }
        let winners = await withTaskGroup(of: Int?.self) { group in
            for writer in bodies.indices {
                group.addTask {
                    do {
                        try await backend.create("snapshots/race", data: bodies[writer])
                        return writer
                    } catch {
                        return nil
                    }
                }
            }
            return await group.reduce(into: [Int]()) { if let writer = $1 { $0.append(writer) } }
        }
        #expect(winners.count == 1)
        if let winner = winners.first {
            #expect(try await backend.load("snapshots/race") == bodies[winner])
        }
    }

    // MARK: server-side encryption

    @Test func rgwSilentlyIgnoresSSES3() async throws {
        // The server's difference: 200, and no x-amz-server-side-encryption in the answer.
        let backend = try await backend()
        let response = try await backend.client.send(S3Request(
            method: "PUT", bucket: backend.configuration.bucket, key: backend.key("plain"),
            headers: [("x-amz-server-side-encryption", "AES256")], body: Data("x".utf8)))
        #expect(response.status == 200)
        #expect(response.header("x-amz-server-side-encryption") == nil)
        #expect(try await head(backend, "plain").header("x-amz-server-side-encryption") == nil)
    }

    @Test func anObjectTheServerDidNotEncryptIsNotReportedAsWritten() async throws {
        let backend = try await backend { $0.serverSideEncryption = .s3 }
        for write in ["create", "replace"] {
            let name = "snapshots/\(write)"
            let refused = try await #require(throws: BackendError.self) {
                if write == "create" {
                    try await backend.create(name, data: Data("secret".utf8))
                } else {
                    try await backend.replace(name, data: Data("secret".utf8))
                }
            }
            #expect(refused.code == .encryptionNotApplied, "\(write)")
            #expect(refused.object == name)
            #expect(refused.detail.contains("unencrypted") && refused.detail.contains("RGW"), "\(refused.detail)")
            #expect(refused.detail.contains("was deleted again"), "\(refused.detail)")
            #expect(try await backend.stat(name) == nil, "the unencrypted object is gone")
        }
    }

    @Test func sseKMSWithoutAKMSIsAClearError() async throws {
        for keyID in ["lifeboat-test-key", nil] {
            let backend = try await backend { $0.serverSideEncryption = .kms(keyID: keyID) }
            let refused = try await #require(throws: BackendError.self) { try await backend.create("config", data: Data("x".utf8)) }
            #expect(refused.code == .io)
            #expect(refused.detail.contains("KMS") && refused.detail.contains("HTTP 400"), "\(refused.detail)")
            #expect(try await backend.stat("config") == nil)
        }
    }

    // MARK: storage classes

    @Test func storageClassIsSentOnEveryWriteAndShownByHead() async throws {
        let server = try RGWScope.require()
        #expect(server.storageClasses.contains("COLD"))
        let backend = try await backend {
            Helpers.smallParts(&$0)
            $0.storageClass = "COLD"
            $0.compatibility = S3Compatibility() // multipart too
        }
        try await backend.create("snapshots/small", data: Data("small".utf8))
        try await backend.create("snapshots/big", data: Helpers.randomBytes(9 * 1024 * 1024))
        try await backend.replace("locks/l1", data: Data("lock".utf8))
        for name in ["snapshots/small", "snapshots/big", "locks/l1"] {
            #expect(try await head(backend, name).header("x-amz-storage-class") == "COLD", "\(name)")
        }
        #expect(try await backend.load("snapshots/small") == Data("small".utf8))
        let standard = try await self.backend { $0.storageClass = "STANDARD" }
        try await standard.create("config", data: Data("x".utf8))
        #expect(try await head(standard, "config").header("x-amz-storage-class") == "STANDARD")
    }

    @Test func aStorageClassTheServerDoesNotDefineIsAClearError() async throws {
        let backend = try await backend { $0.storageClass = "GLACIER" }
        let refused = try await #require(throws: BackendError.self) { try await backend.create("config", data: Data("x".utf8)) }
        #expect(refused.detail.contains("storage class \"GLACIER\""), "\(refused.detail)")
        #expect(try await backend.stat("config") == nil)
        #expect(throws: BackendError.self) {
            var configuration = backend.configuration
            configuration.storageClass = "cold storage"
            try configuration.validate()
        }
    }

    // MARK: Object Lock

    @Test(arguments: [S3ObjectLockRetention.Mode.governance, .compliance])
    func objectLockProtectsEveryVersionWritten(mode: S3ObjectLockRetention.Mode) async throws {
        let backend = try await backend(objectLock: true) { $0.objectLock = S3ObjectLockRetention(mode: mode, duration: 3600) }
        try await backend.create("snapshots/s1", data: Data("snapshot".utf8))
        let response = try await head(backend, "snapshots/s1")
        #expect(response.header("x-amz-object-lock-mode") == mode.rawValue)
        let version = try #require(response.header("x-amz-version-id"))
        // A plain delete only adds a delete marker; deleting the version is refused, with bypass too for COMPLIANCE.
        try await backend.delete("snapshots/s1")
        #expect(try await backend.stat("snapshots/s1") == nil)
        let request = S3Request(method: "DELETE", bucket: backend.configuration.bucket, key: backend.key("snapshots/s1"), query: [("versionId", version)])
        #expect(try await backend.client.send(request).status == 403)
        var bypass = request
        bypass.headers.append(("x-amz-bypass-governance-retention", "true"))
        #expect(try await backend.client.send(bypass).status == (mode == .governance ? 204 : 403))
    }
}
