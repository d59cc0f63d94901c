import AsyncHTTPClient
import Foundation
import Logging

/// A repository in an S3 bucket (AWS, or an S3-compatible store such as MinIO or moto), under a prefix.
///
/// Write-once objects use `If-None-Match: *` on PutObject, or on CompleteMultipartUpload for objects
/// above the multipart threshold, so two writers racing for one name get exactly one winner and the
/// loser `.alreadyExists`. Servers that ignore the condition on CompleteMultipartUpload (Ceph RGW 16)
/// get every create-once object in one PutObject instead (`S3Compatibility.createOnceWithoutMultipart`),
/// and a multipart create first checks that the key is free, so a second create fails closed even
/// there. Every write carries Content-MD5, the configured server-side encryption, storage class and,
/// when configured, Object Lock retention; a write whose answer does not confirm the encryption asked
/// for is not reported as done.
public struct S3Backend: Backend {
    public let configuration: S3Configuration
    public let client: S3Client
    let logger: Logger
    /// Remembers that the bucket exists (so a body-less 404 from HEAD means "no such object") and
    /// that its Object Lock was checked.
    let bucketCheck = BucketCheck()
    /// Keys per ListObjectsV2 page (S3's maximum is 1,000); smaller in tests to exercise paging.
    var listPageSize = 1000

    /// Validates `configuration`; makes no request.
    public init(configuration: S3Configuration, httpClient: HTTPClient? = nil, logger: Logger = Logger(label: "lifeboat.s3")) throws(BackendError) {
        try configuration.validate()
        self.configuration = configuration
        self.client = S3Client(configuration: configuration, httpClient: httpClient, logger: logger)
        self.logger = logger
    }

    public var location: String { configuration.location }

    /// The bucket key for an object name.
    func key(_ name: String) -> String {
        configuration.prefix.isEmpty ? name : "\(configuration.prefix)/\(name)"
    }

    var keyPrefix: String { configuration.prefix.isEmpty ? "" : "\(configuration.prefix)/" }

    // MARK: Backend

    public func create(_ name: String, data: Data) async throws(BackendError) {
        try validateObjectName(name)
        try await requireObjectLockBeforeFirstWrite()
        if data.count > configuration.multipartThreshold {
            if !configuration.compatibility.createOnceWithoutMultipart {
                try await createMultipart(name, data: data)
                return
            }
            guard data.count <= S3Configuration.maximumSinglePut else {
                throw BackendError(.io, object: name,
                                   "\(data.count) bytes is above S3's 5 GiB single-PUT limit, and this server ignores If-None-Match on CompleteMultipartUpload (as Ceph RGW 16 does), so a multipart upload could silently overwrite an existing object: Lifeboat will not write a create-once object this way")
            }
        }
        let response = try await send(name, S3Request(
            method: "PUT", bucket: configuration.bucket, key: key(name),
            headers: writeHeaders() + [("if-none-match", "*")], body: data, retryConditionalConflict: true))
        if response.isSuccess {
            try await requireEncryption(response, name: name, action: "write")
            return
        }
        if response.status == 412 {
            try await throwAlreadyExistsUnlessOurs(name, data: data, response: response)
            return
        }
        throw failure(response, object: name, action: "write")
    }

    public func replace(_ name: String, data: Data) async throws(BackendError) {
        try validateObjectName(name)
        try await requireObjectLockBeforeFirstWrite()
        let response = try await send(name, S3Request(
            method: "PUT", bucket: configuration.bucket, key: key(name), headers: writeHeaders(), body: data))
        guard response.isSuccess else { throw failure(response, object: name, action: "write") }
        try await requireEncryption(response, name: name, action: "write")
    }

    public func load(_ name: String, range: Range<Int>?) async throws(BackendError) -> Data {
        try validateObjectName(name)
        if let range, range.lowerBound < 0 {
            throw BackendError(.io, object: name, "range \(range) starts before the object")
        }
        if let range, range.isEmpty {
            // HTTP cannot ask for zero bytes; check the object exists and is long enough instead.
            guard let info = try await stat(name) else { throw BackendError(.notFound, object: name, "not found in \(location)") }
            guard range.upperBound <= info.size else { throw Self.outside(range, size: info.size, name: name) }
            return Data()
        }
        var headers: [(String, String)] = []
        if let range { headers.append(("range", "bytes=\(range.lowerBound)-\(range.upperBound - 1)")) }
        let response = try await send(name, S3Request(method: "GET", bucket: configuration.bucket, key: key(name), headers: headers))
        switch response.status {
        case 200:
            guard let range else { return response.body }
            // A server that ignores Range sends the whole object.
            guard range.upperBound <= response.body.count else { throw Self.outside(range, size: response.body.count, name: name) }
            return response.body.subdata(in: range)
        case 206:
            guard let range else { return response.body }
            // S3 cuts a range that runs past the end short instead of refusing it.
            guard response.body.count == range.count else {
                let size = Self.totalSize(contentRange: response.header("content-range")) ?? (range.lowerBound + response.body.count)
                throw Self.outside(range, size: size, name: name)
            }
            return response.body
        case 416:
            let size = Self.totalSize(contentRange: response.header("content-range"))
            throw BackendError(.io, object: name, "range \(range.map { "\($0)" } ?? "") is outside the object\(size.map { "'s \($0) bytes" } ?? "")")
        case 404 where response.error?.code != "NoSuchBucket":
            throw BackendError(.notFound, object: name, "not found in \(location)")
        default:
            throw failure(response, object: name, action: "read")
        }
    }

    public func stat(_ name: String) async throws(BackendError) -> ObjectInfo? {
        try validateObjectName(name)
        let response = try await send(name, S3Request(method: "HEAD", bucket: configuration.bucket, key: key(name)))
        switch response.status {
        case 200:
            guard let size = response.header("content-length").flatMap(Int.init),
                  let modified = response.header("last-modified").flatMap(S3Time.parseHTTPDate) else {
                throw BackendError(.io, object: name, "S3 answered HEAD without a usable Content-Length or Last-Modified")
            }
            return ObjectInfo(name: name, size: size, modified: modified)
        case 404:
            // HEAD answers carry no body, so a missing bucket looks like a missing object; ask once.
            try await requireBucket(object: name)
            return nil
        default:
            throw failure(response, object: name, action: "read")
        }
    }

    public func list(prefix: String) async throws(BackendError) -> [ObjectInfo] {
        var found: [ObjectInfo] = []
        for entry in try await listEntries(wanted: keyPrefix + prefix, object: prefix.isEmpty ? location : prefix) {
            let name = String(entry.key.dropFirst(keyPrefix.count))
            // Keys no backend could have written (console "folders" ending in `/`, odd characters) are not objects of ours.
            guard (try? validateObjectName(name)) != nil else { continue }
            found.append(ObjectInfo(name: name, size: entry.size, modified: entry.modified))
        }
        return found
    }

    /// Every key of the bucket starting with `wanted`, as the listing shows it.
    func listEntries(wanted: String, object: String) async throws(BackendError) -> [S3XML.ListedObject] {
        let withoutSlash = configuration.compatibility.listWithoutSlashInQuery ? true : await bucketCheck.listsWithoutSlashInQuery
        if withoutSlash {
            // Without `/` in the query a mismatch is never taken for moto's: it is reported as a credential error.
            return try await listPages(wanted: wanted, object: object, withoutSlashInQuery: true).listed ?? []
        }
        switch try await listPages(wanted: wanted, object: object, withoutSlashInQuery: false) {
        case .listed(let found):
            return found
        case .slashSignatureMismatch:
            // moto 5.2.1 answers SignatureDoesNotMatch to any correctly signed query value holding `/`
            // (see S3Compatibility). Ask once more without one: if that is accepted the credentials are
            // right and the server is such a one, so keep listing that way; if not, report what it says.
            let found: [S3XML.ListedObject]
            do throws(BackendError) {
                found = try await listPages(wanted: wanted, object: object, withoutSlashInQuery: true).listed ?? []
            } catch {
                throw BackendError(error.code, object: object,
                                   "S3 refused the signature of a listing whose query holds '/' (SignatureDoesNotMatch, as moto_server does even for right credentials); the same listing without '/' failed too: \(error.detail)")
            }
            await bucketCheck.markListsWithoutSlashInQuery()
            logger.notice("the S3 server refuses signed query values holding '/' (as moto_server does); listing without them from now on",
                          metadata: ["endpoint": .string(client.endpointDescription)])
            return found
        }
    }

    /// What one listing attempt ended with.
    enum ListOutcome {
        case listed([S3XML.ListedObject])
        /// SignatureDoesNotMatch on a request whose query holds `/`: the credentials may be right (moto).
        case slashSignatureMismatch

        var listed: [S3XML.ListedObject]? {
            if case .listed(let found) = self { return found }
            return nil
        }
    }

    /// Every key starting with `wanted`, page by page. `withoutSlashInQuery` asks for the longest
    /// `/`-free start of `wanted` instead and filters the answer here.
    func listPages(wanted: String, object: String, withoutSlashInQuery: Bool) async throws(BackendError) -> ListOutcome {
        var requested = wanted
        if withoutSlashInQuery, let slash = wanted.firstIndex(of: "/") {
            requested = String(wanted[..<slash])
        }
        var found: [S3XML.ListedObject] = []
        var token: String?
        repeat {
            var query = [("list-type", "2"), ("max-keys", String(listPageSize))]
            if !requested.isEmpty { query.append(("prefix", requested)) }
            if let token { query.append(("continuation-token", token)) }
            let response = try await send(object, S3Request(method: "GET", bucket: configuration.bucket, query: query))
            if !response.isSuccess, !withoutSlashInQuery, response.error?.code == "SignatureDoesNotMatch",
               query.contains(where: { $0.1.contains("/") }) {
                return .slashSignatureMismatch
            }
            guard response.isSuccess else { throw failure(response, object: object, action: "list") }
            guard let page = S3XML.listPage(response.body) else {
                throw BackendError(.io, object: object, "S3 answered ListObjectsV2 with a body that is not a ListBucketResult")
            }
            found += page.objects.filter { $0.key.hasPrefix(wanted) }
            guard page.isTruncated else { break }
            guard let next = page.nextContinuationToken, next != token else {
                throw BackendError(.io, object: object, "S3 said the listing is truncated but gave no new continuation token")
            }
            token = next
        } while true
        return .listed(found)
    }

    public func delete(_ name: String) async throws(BackendError) {
        try validateObjectName(name)
        let response = try await send(name, S3Request(method: "DELETE", bucket: configuration.bucket, key: key(name)))
        if response.isSuccess { return }
        if response.status == 404, response.error?.code != "NoSuchBucket" { return }
        throw failure(response, object: name, action: "delete")
    }

    // MARK: Object Lock

    /// Checks that the bucket has Object Lock enabled, for a clear error before the first write
    /// (the first write would fail too: S3 and moto refuse lock headers on a bucket without lock).
    public func checkObjectLock() async throws(BackendError) {
        let response = try await send(location, S3Request(method: "GET", bucket: configuration.bucket, query: [("object-lock", "")]))
        if response.isSuccess,
           S3XML.parse(response.body)?.child("ObjectLockEnabled")?.text.trimmingCharacters(in: .whitespaces) == "Enabled" {
            await bucketCheck.markObjectLockEnabled()
            return
        }
        if response.isSuccess || response.error?.code == "ObjectLockConfigurationNotFoundError" {
            throw objectLockMissing()
        }
        throw failure(response, object: location, action: "read the Object Lock configuration of")
    }

    /// With retention configured, the first write of this backend checks the bucket once. S3 would
    /// refuse the lock headers on its own, but moto ignores them on CreateMultipartUpload, and an
    /// early, uniform error beats a half-finished upload.
    func requireObjectLockBeforeFirstWrite() async throws(BackendError) {
        guard configuration.objectLock != nil, await !bucketCheck.objectLockEnabled else { return }
        try await checkObjectLock()
    }

    func objectLockMissing() -> BackendError {
        BackendError(.io, object: location,
                     "bucket \"\(configuration.bucket)\" does not have Object Lock enabled, so objects cannot be written with \(configuration.objectLock?.mode.rawValue ?? "a") retention: use a bucket created with Object Lock enabled, or remove objectLock from the configuration")
    }

    // MARK: multipart

    /// Initiate, upload parts (a few at once), complete with `If-None-Match: *` in ascending part
    /// order; abort on any failure so no unfinished upload is left billing — including a refused
    /// conditional complete, which leaves the upload open.
    func createMultipart(_ name: String, data: Data) async throws(BackendError) {
        // Fails closed where the server ignores the condition on complete (Ceph RGW 16): an existing
        // object is never overwritten by a later create. Only a race between two writers of one
        // name remains, which `createOnceWithoutMultipart` closes on such servers.
        if try await stat(name) != nil {
            throw BackendError(.alreadyExists, object: name, "already exists in \(location)")
        }
        // S3 allows 10,000 parts; grow the part size for objects that would need more.
        let partSize = max(configuration.partSize, (data.count + S3Configuration.maximumParts - 1) / S3Configuration.maximumParts)
        let ranges = stride(from: 0, to: data.count, by: partSize).map { $0..<min($0 + partSize, data.count) }
        // A 409 ConditionalRequestConflict on complete means another writer raced us; S3 asks to start over.
        let rounds = 3
        for round in 1...rounds {
            let now = Date()
            let uploadID = try await initiateMultipart(name, now: now)
            let response: S3Response
            do throws(BackendError) {
                let parts = try await uploadParts(name, uploadID: uploadID, data: data, ranges: ranges)
                response = try await send(name, S3Request(
                    method: "POST", bucket: configuration.bucket, key: key(name), query: [("uploadId", uploadID)],
                    headers: [("if-none-match", "*")], body: S3XML.completeMultipartUpload(parts), errorMayArriveWith200: true))
            } catch {
                await abortMultipart(name, uploadID: uploadID)
                throw error
            }
            if response.isSuccess {
                try await applyRetentionAfterMultipart(name, now: now)
                try await requireEncryption(response, name: name, action: "complete the multipart upload of")
                return
            }
            // A refused complete leaves the upload open on moto (S3's docs do not say), so abort it
            // before deciding what the refusal means.
            await abortMultipart(name, uploadID: uploadID)
            if response.status == 412 {
                try await throwAlreadyExistsUnlessOurs(name, data: data, response: response)
                return
            }
            if response.status == 409, response.error?.code == "ConditionalRequestConflict", round < rounds {
                logger.debug("conditional multipart complete conflicted; starting over", metadata: ["key": .string(key(name))])
                continue
            }
            throw failure(response, object: name, action: "complete the multipart upload of")
        }
        throw BackendError(.io, object: name, "the multipart upload kept conflicting with another writer; try again")
    }

    func initiateMultipart(_ name: String, now: Date) async throws(BackendError) -> String {
        let response = try await send(name, S3Request(
            method: "POST", bucket: configuration.bucket, key: key(name), query: [("uploads", "")], headers: writeHeaders(now: now)))
        guard response.isSuccess else { throw failure(response, object: name, action: "start a multipart upload of") }
        guard let uploadID = S3XML.parse(response.body)?.child("UploadId")?.text, !uploadID.isEmpty else {
            throw BackendError(.io, object: name, "S3 started a multipart upload but sent no UploadId")
        }
        return uploadID
    }

    func uploadParts(_ name: String, uploadID: String, data: Data, ranges: [Range<Int>]) async throws(BackendError) -> [(number: Int, etag: String)] {
        let results = await withTaskGroup(of: Result<(number: Int, etag: String), BackendError>.self) { group in
            var next = 0
            var parts: [(number: Int, etag: String)] = []
            func addPart() {
                let number = next + 1
                let range = ranges[next]
                next += 1
                group.addTask {
                    do throws(BackendError) {
                        return .success(try await uploadPart(name, uploadID: uploadID, number: number, body: data.subdata(in: range)))
                    } catch {
                        return .failure(error)
                    }
                }
            }
            while next < min(configuration.partConcurrency, ranges.count) { addPart() }
            while let result = await group.next() {
                switch result {
                case .success(let part):
                    parts.append(part)
                    if next < ranges.count { addPart() }
                case .failure(let error):
                    group.cancelAll()
                    return Result<[(number: Int, etag: String)], BackendError>.failure(error)
                }
            }
            return .success(parts)
        }
        return try results.get()
    }

    func uploadPart(_ name: String, uploadID: String, number: Int, body: Data) async throws(BackendError) -> (number: Int, etag: String) {
        let response = try await send(name, S3Request(
            method: "PUT", bucket: configuration.bucket, key: key(name),
            query: [("partNumber", String(number)), ("uploadId", uploadID)], body: body))
        guard response.isSuccess else { throw failure(response, object: name, action: "upload part \(number) of") }
        guard let etag = response.header("etag"), !etag.isEmpty else {
            throw BackendError(.io, object: name, "S3 accepted part \(number) but sent no ETag")
        }
        return (number, etag)
    }

    /// For servers that drop Object Lock headers on CreateMultipartUpload (moto): set the same
    /// retention with PutObjectRetention once the object exists. Needs `s3:PutObjectRetention`.
    func applyRetentionAfterMultipart(_ name: String, now: Date) async throws(BackendError) {
        guard let lock = configuration.objectLock, configuration.compatibility.retentionAfterMultipartComplete else { return }
        let until = S3Time.iso8601(now.addingTimeInterval(lock.duration))
        let body = #"<?xml version="1.0" encoding="UTF-8"?><Retention xmlns="http://s3.amazonaws.com/doc/2006-03-01/">"#
            + "<Mode>\(lock.mode.rawValue)</Mode><RetainUntilDate>\(until)</RetainUntilDate></Retention>"
        let response = try await send(name, S3Request(
            method: "PUT", bucket: configuration.bucket, key: key(name), query: [("retention", "")], body: Data(body.utf8)))
        guard response.isSuccess else {
            throw failure(response, object: name, action: "set the Object Lock retention (after the multipart upload) of")
        }
    }

    /// Best effort: the caller is already failing with the error that matters. A left-over upload
    /// is logged with its id (and is what a bucket lifecycle rule for incomplete uploads cleans up).
    func abortMultipart(_ name: String, uploadID: String) async {
        let request = S3Request(method: "DELETE", bucket: configuration.bucket, key: key(name), query: [("uploadId", uploadID)])
        // In a task of its own: when the upload failed because the caller was cancelled, the
        // cleanup must still go out rather than be cancelled with it.
        let client = client
        let outcome = await Task { () -> Result<S3Response, S3TransportError> in
            do throws(S3TransportError) {
                return .success(try await client.send(request))
            } catch {
                return .failure(error)
            }
        }.value
        switch outcome {
        case .success(let response) where response.isSuccess || response.status == 404:
            return
        case .success(let response):
            logger.warning("could not abort multipart upload", metadata: [
                "key": .string(key(name)), "uploadId": .string(uploadID), "status": .stringConvertible(response.status),
                "code": .string(response.error?.code ?? ""),
            ])
        case .failure(let error):
            logger.warning("could not abort multipart upload", metadata: [
                "key": .string(key(name)), "uploadId": .string(uploadID), "reason": .string(error.description),
            ])
        }
    }

    // MARK: helpers

    /// Encryption, storage class and Object Lock headers for PutObject and CreateMultipartUpload.
    func writeHeaders(now: Date = Date()) -> [(String, String)] {
        var headers = configuration.serverSideEncryption?.headers ?? []
        if let storageClass = configuration.storageClass { headers.append(("x-amz-storage-class", storageClass)) }
        if let lock = configuration.objectLock { headers += lock.headers(now: now) }
        return headers
    }

    /// S3 names the encryption it applied in the answer to every encrypted write (PutObject and
    /// CompleteMultipartUpload). A server that does not mention it did not encrypt: Ceph RGW 16
    /// answers 200 to SSE-S3 and stores the bytes in plain. Such an object is deleted again (best
    /// effort) and the write fails, so nothing reports as encrypted what is not.
    func requireEncryption(_ response: S3Response, name: String, action: String) async throws(BackendError) {
        guard let wanted = configuration.serverSideEncryption else { return }
        let applied = response.header("x-amz-server-side-encryption")
        if applied?.lowercased() == wanted.algorithm.lowercased() { return }
        let removal = S3Request(method: "DELETE", bucket: configuration.bucket, key: key(name))
        let removed = (try? await client.send(removal))?.isSuccess ?? false
        let said = applied.map { "\"\($0)\"" } ?? "no x-amz-server-side-encryption header"
        throw BackendError(.encryptionNotApplied, object: name,
                           "the S3 server at \(client.endpointDescription) accepted the \(action) of \(name) with \(wanted.algorithm) server-side encryption requested, but its answer carried \(said): it stored the object unencrypted (Ceph RGW 16 silently ignores SSE-S3). "
                           + (removed ? "The object was deleted again (a versioned bucket keeps the unencrypted version until it is removed). " : "Deleting it again failed too: remove it by hand. ")
                           + "Enable encryption on the server (RGW: a KMS or rgw crypt default encryption key), or drop server-side encryption from the configuration and rely on Lifeboat's own client-side encryption")
    }

    /// A 412 after an attempt whose outcome is unknown may be our own write answering back: if the
    /// object holds exactly our bytes, the create succeeded.
    func throwAlreadyExistsUnlessOurs(_ name: String, data: Data, response: S3Response) async throws(BackendError) {
        if response.earlierAttemptMayHaveApplied, (try? await load(name, range: nil)) == data {
            return
        }
        throw BackendError(.alreadyExists, object: name, "already exists in \(location)")
    }

    /// Sends with retries; a transport failure becomes `.unreachable` naming the endpoint.
    func send(_ object: String, _ request: S3Request) async throws(BackendError) -> S3Response {
        do {
            return try await client.send(request)
        } catch {
            if error.cancelled { throw BackendError(.io, object: object, "cancelled") }
            throw BackendError(.unreachable, object: object,
                               "\(error.description); check the endpoint URL (\(client.endpointDescription)) and that the S3 service is running and reachable")
        }
    }

    func requireBucket(object: String) async throws(BackendError) {
        if await bucketCheck.exists { return }
        let response = try await send(object, S3Request(method: "HEAD", bucket: configuration.bucket))
        if response.isSuccess {
            await bucketCheck.markExists()
            return
        }
        if response.status == 404 { throw noSuchBucket() }
        throw failure(response, object: object, action: "read")
    }

    func noSuchBucket() -> BackendError {
        BackendError(.io, object: location,
                     "bucket \"\(configuration.bucket)\" does not exist at \(client.endpointDescription) (region \(configuration.region)): create it, or check the bucket name, endpoint and region")
    }

    /// Maps an S3 error answer to an actionable `BackendError`. Only the error's Code and Message are
    /// used: S3's SignatureDoesNotMatch body also echoes the string to sign and the signature.
    func failure(_ response: S3Response, object: String, action: String) -> BackendError {
        let error = response.error
        let code = error?.code ?? ""
        let message = error?.message ?? ""
        let said = code.isEmpty ? "HTTP \(response.status)" : "HTTP \(response.status) \(code)\(message.isEmpty ? "" : ": \(message)")"
        let after = response.attempts > 1 ? " after \(response.attempts) attempts" : ""
        let accessKey = configuration.credentials.accessKeyID
        switch code {
        case "NoSuchBucket":
            return noSuchBucket()
        case "SignatureDoesNotMatch", "InvalidAccessKeyId":
            return BackendError(.permissionDenied, object: object,
                                "S3 refused the credentials for access key \(accessKey) (\(code)): check the access key and secret")
        case "InvalidToken", "ExpiredToken", "TokenRefreshRequired":
            return BackendError(.permissionDenied, object: object,
                                "S3 refused the session token for access key \(accessKey) (\(code)): refresh the temporary credentials")
        case "AccessDenied", "AllAccessDisabled", "AccountProblem":
            return BackendError(.permissionDenied, object: object,
                                "S3 denied access key \(accessKey) permission to \(action) \(object) in bucket \"\(configuration.bucket)\" (\(code)): check the key's IAM policy and the bucket policy")
        case "RequestTimeTooSkewed":
            return BackendError(.permissionDenied, object: object,
                                "S3 refused the request because this machine's clock is more than 15 minutes off (RequestTimeTooSkewed): synchronise the clock")
        case "AuthorizationHeaderMalformed", "PermanentRedirect", "IllegalLocationConstraintException":
            let region = response.header("x-amz-bucket-region").map { " (S3 says it is in \($0))" } ?? ""
            return BackendError(.io, object: object,
                                "bucket \"\(configuration.bucket)\" is not in region \(configuration.region)\(region): set the region to the bucket's (\(said))")
        case "InvalidRequest" where configuration.objectLock != nil && message.lowercased().contains("lock"):
            return objectLockMissing()
        case _ where configuration.serverSideEncryption?.algorithm == "aws:kms"
            && (code.hasPrefix("KMS") || (code == "InvalidArgument" && message.lowercased().contains("key"))):
            // Ceph RGW without a KMS: 400 InvalidArgument "Failed to retrieve the actual key, kms-keyid: …".
            return BackendError(.io, object: object,
                                "the S3 server could not use the KMS key for server-side encryption (\(said)): check that the key id exists and the server has a KMS configured (Ceph RGW needs rgw crypt s3 kms backend), or choose SSE-S3 or no server-side encryption")
        case "InvalidStorageClass":
            return BackendError(.io, object: object, "the S3 server does not know storage class \"\(configuration.storageClass ?? "")\" (\(said)): use one it supports")
        case "InvalidArgument" where configuration.storageClass != nil && response.status == 400 && message.isEmpty:
            // Ceph RGW answers an unknown storage class with a bare 400 InvalidArgument.
            return BackendError(.io, object: object,
                                "the S3 server refused to \(action) \(object) (\(said)); storage class \"\(configuration.storageClass!)\" is set: Ceph RGW answers this way to a class its zone's placement does not define (radosgw-admin zonegroup/zone placement add --storage-class)")
        default:
            break
        }
        switch response.status {
        case 403:
            return BackendError(.permissionDenied, object: object,
                                "S3 refused to let access key \(accessKey) \(action) \(object) (\(said)): check the access key, secret and the key's permissions")
        case 301, 307:
            let region = response.header("x-amz-bucket-region").map { " (S3 says it is in \($0))" } ?? ""
            return BackendError(.io, object: object,
                                "S3 redirected the request for bucket \"\(configuration.bucket)\"\(region): check the region and endpoint")
        case 500...599, 429, 400 where code == "RequestTimeout":
            return BackendError(.unavailable, object: object, "S3 could not \(action) \(object)\(after) (\(said)); try again later")
        case 409 where code == "ConditionalRequestConflict":
            return BackendError(.unavailable, object: object, "another writer kept changing \(object) at the same time\(after) (\(said)); try again")
        default:
            return BackendError(.io, object: object, "S3 could not \(action) \(object) (\(said))")
        }
    }

    static func outside(_ range: Range<Int>, size: Int, name: String) -> BackendError {
        BackendError(.io, object: name, "range \(range) is outside the object's \(size) bytes")
    }

    /// The total from `Content-Range: bytes 0-9/1000` (or `bytes */1000`).
    static func totalSize(contentRange: String?) -> Int? {
        guard let contentRange, let slash = contentRange.lastIndex(of: "/") else { return nil }
        return Int(contentRange[contentRange.index(after: slash)...].trimmingCharacters(in: .whitespaces))
    }
}

/// What has been verified about the bucket and learned about the server; shared by copies of one backend.
actor BucketCheck {
    private(set) var exists = false
    private(set) var objectLockEnabled = false
    /// The server refused a correctly signed listing with `/` in its query and accepted one without.
    private(set) var listsWithoutSlashInQuery = false
    func markExists() { exists = true }
    func markListsWithoutSlashInQuery() { listsWithoutSlashInQuery = true }
    func markObjectLockEnabled() {
        exists = true
        objectLockEnabled = true
    }
}
