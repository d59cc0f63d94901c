import Foundation

/// One object as a bucket listing shows it.
public struct S3ObjectSummary: Sendable, Hashable {
    /// The full key, unencoded.
    public var key: String
    public var size: Int64
    /// As S3 sends it, quotes included (`"9b2c…"`; `"…-3"` for a multipart upload).
    public var etag: String
    public var lastModified: Date
    public var storageClass: String?

    public init(key: String, size: Int64, etag: String, lastModified: Date, storageClass: String?) {
        self.key = key
        self.size = size
        self.etag = etag
        self.lastModified = lastModified
        self.storageClass = storageClass
    }
}

/// One version (or delete marker) as ListObjectVersions shows it.
public struct S3ObjectVersion: Sendable, Hashable {
    public var key: String
    public var versionID: String
    public var isLatest: Bool
    public var isDeleteMarker: Bool
    public var size: Int64
    public var etag: String
    public var lastModified: Date
    public var storageClass: String?
}

/// Object Lock state of one object version, as HEAD reports it.
public struct S3ObjectLockState: Sendable, Hashable, Codable {
    /// `GOVERNANCE` or `COMPLIANCE`; nil without retention.
    public var mode: String?
    public var retainUntil: Date?
    public var legalHold: Bool

    public init(mode: String?, retainUntil: Date?, legalHold: Bool) {
        self.mode = mode
        self.retainUntil = retainUntil
        self.legalHold = legalHold
    }

    enum CodingKeys: String, CodingKey { case mode, retainUntil = "retain_until", legalHold = "legal_hold" }
}

/// What S3 says of an object besides its bytes: the answer headers of HEAD or GET.
public struct S3ObjectAttributes: Sendable, Hashable {
    public var size: Int64
    public var etag: String
    public var lastModified: Date?
    public var contentType: String?
    /// `x-amz-meta-*` without the prefix, names lowercased (as S3 returns them).
    public var userMetadata: [String: String]
    /// Content-Encoding, Content-Disposition, Content-Language, Cache-Control, Expires: restored as sent.
    public var standardHeaders: [String: String]
    public var versionID: String?
    public var storageClass: String?
    public var lock: S3ObjectLockState?

    /// The standard headers an object keeps (besides Content-Type).
    public static let keptHeaders = ["content-encoding", "content-disposition", "content-language", "cache-control", "expires"]

    /// Attributes to write an object with (a restore's), before any answer exists.
    public init(size: Int64, etag: String) {
        self.size = size
        self.etag = etag
        self.userMetadata = [:]
        self.standardHeaders = [:]
    }

    init(_ response: S3Response) {
        size = response.header("content-range").flatMap(S3Backend.totalSize(contentRange:)).map(Int64.init)
            ?? response.header("content-length").flatMap(Int64.init) ?? 0
        etag = response.header("etag") ?? ""
        lastModified = response.header("last-modified").flatMap(S3Time.parseHTTPDate)
        contentType = response.header("content-type")
        var metadata: [String: String] = [:]
        var standard: [String: String] = [:]
        for (name, value) in response.headers {
            let lower = name.lowercased()
            if lower.hasPrefix("x-amz-meta-") {
                metadata[String(lower.dropFirst("x-amz-meta-".count))] = value
            } else if Self.keptHeaders.contains(lower) {
                standard[lower] = value
            }
        }
        userMetadata = metadata
        standardHeaders = standard
        versionID = response.header("x-amz-version-id").flatMap { $0 == "null" ? nil : $0 }
        storageClass = response.header("x-amz-storage-class")
        let mode = response.header("x-amz-object-lock-mode")
        let until = response.header("x-amz-object-lock-retain-until-date").flatMap(S3Time.parseISO8601)
        let hold = response.header("x-amz-object-lock-legal-hold")?.uppercased() == "ON"
        lock = mode != nil || until != nil || hold ? S3ObjectLockState(mode: mode, retainUntil: until, legalHold: hold) : nil
    }
}

/// Object-level calls on arbitrary keys of the configured bucket, for the bucket connector (which
/// backs up a bucket's own objects rather than a repository's). Nothing restricts the keys'
/// alphabet; use them with a configuration without prefix (keys are the bucket's full keys).
extension S3Backend {
    /// Every current object whose key starts with `prefix`, in key order.
    public func listObjects(prefix: String = "") async throws(BackendError) -> [S3ObjectSummary] {
        try await listEntries(wanted: prefix, object: prefix.isEmpty ? location : "\(location)/\(prefix)").map {
            S3ObjectSummary(key: $0.key, size: Int64($0.size), etag: $0.etag, lastModified: $0.modified, storageClass: $0.storageClass)
        }
    }

    /// Every version and delete marker whose key starts with `prefix` (ListObjectVersions, paged).
    public func listObjectVersions(prefix: String = "") async throws(BackendError) -> [S3ObjectVersion] {
        var found: [S3ObjectVersion] = []
        var marker: (key: String, version: String)?
        repeat {
            var query = [("versions", ""), ("max-keys", "1000")]
            if !prefix.isEmpty { query.append(("prefix", prefix)) }
            if let marker { query += [("key-marker", marker.key), ("version-id-marker", marker.version)] }
            let response = try await send(location, S3Request(method: "GET", bucket: configuration.bucket, query: query))
            guard response.isSuccess else { throw failure(response, object: location, action: "list the versions of") }
            guard let root = S3XML.parse(response.body), root.name == "ListVersionsResult" else {
                throw BackendError(.io, object: location, "S3 answered ListObjectVersions with a body that is not a ListVersionsResult")
            }
            for element in root.children where element.name == "Version" || element.name == "DeleteMarker" {
                func text(_ name: String) -> String? { element.child(name)?.text.trimmingCharacters(in: .whitespaces) }
                guard let key = element.child("Key")?.text, let version = text("VersionId"),
                      let modified = text("LastModified").flatMap(S3Time.parseISO8601) else {
                    throw BackendError(.io, object: location, "S3 listed a version without a key, version id or time")
                }
                found.append(S3ObjectVersion(key: key, versionID: version, isLatest: text("IsLatest")?.lowercased() == "true",
                                             isDeleteMarker: element.name == "DeleteMarker", size: text("Size").flatMap(Int64.init) ?? 0,
                                             etag: element.child("ETag")?.text ?? "", lastModified: modified, storageClass: text("StorageClass")))
            }
            guard root.child("IsTruncated")?.text.trimmingCharacters(in: .whitespaces).lowercased() == "true" else { break }
            guard let key = root.child("NextKeyMarker")?.text, let version = root.child("NextVersionIdMarker")?.text,
                  marker.map({ $0.key != key || $0.version != version }) ?? true else {
                throw BackendError(.io, object: location, "S3 said the version listing is truncated but gave no new marker")
            }
            marker = (key, version)
        } while true
        return found.filter { $0.key.hasPrefix(prefix) }
    }

    /// Whether the bucket holds no object at all (one key asked for).
    public func bucketIsEmpty() async throws(BackendError) -> Bool {
        let response = try await send(location, S3Request(method: "GET", bucket: configuration.bucket, query: [("list-type", "2"), ("max-keys", "1")]))
        guard response.isSuccess else { throw failure(response, object: location, action: "list") }
        guard let page = S3XML.listPage(response.body) else {
            throw BackendError(.io, object: location, "S3 answered ListObjectsV2 with a body that is not a ListBucketResult")
        }
        return page.objects.isEmpty
    }

    /// Whether versioning is enabled on the bucket (GetBucketVersioning).
    public func versioningEnabled() async throws(BackendError) -> Bool {
        let response = try await send(location, S3Request(method: "GET", bucket: configuration.bucket, query: [("versioning", "")]))
        guard response.isSuccess else { throw failure(response, object: location, action: "read the versioning of") }
        return S3XML.parse(response.body)?.child("Status")?.text.trimmingCharacters(in: .whitespaces) == "Enabled"
    }

    /// HEAD of one object; nil when it does not exist.
    public func headObject(_ key: String) async throws(BackendError) -> S3ObjectAttributes? {
        let response = try await send(key, S3Request(method: "HEAD", bucket: configuration.bucket, key: key))
        switch response.status {
        case 200: return S3ObjectAttributes(response)
        case 404:
            try await requireBucket(object: key)
            return nil
        default: throw failure(response, object: key, action: "read")
        }
    }

    /// One byte range of an object (the whole object when `range` is nil), only while its ETag is
    /// still `ifMatch`: nil when it is not (the object was replaced), so ranges of two different
    /// objects are never stitched together.
    public func getObject(_ key: String, versionID: String? = nil, range: Range<Int64>? = nil, ifMatch etag: String? = nil) async throws(BackendError) -> (data: Data, attributes: S3ObjectAttributes)? {
        var headers: [(String, String)] = []
        if let range { headers.append(("range", "bytes=\(range.lowerBound)-\(range.upperBound - 1)")) }
        if let etag { headers.append(("if-match", etag)) }
        let query = versionID.map { [("versionId", $0)] } ?? []
        let response = try await send(key, S3Request(method: "GET", bucket: configuration.bucket, key: key, query: query, headers: headers))
        switch response.status {
        case 200, 206:
            if let range, response.status == 200 {
                // A server that ignores Range sends the whole object.
                guard range.upperBound <= response.body.count else { throw Self.outside(Int(range.lowerBound)..<Int(range.upperBound), size: response.body.count, name: key) }
                return (response.body.subdata(in: Int(range.lowerBound)..<Int(range.upperBound)), S3ObjectAttributes(response))
            }
            return (response.body, S3ObjectAttributes(response))
        case 412:
            return nil
        case 404 where response.error?.code != "NoSuchBucket":
            throw BackendError(.notFound, object: "\(configuration.bucket)/\(key)", "not found in \(location)")
        default:
            throw failure(response, object: key, action: "read")
        }
    }

    /// PutObject with the given headers (content type, metadata, lock); returns the answer's ETag.
    @discardableResult
    public func putObject(_ key: String, data: Data, headers: [(String, String)]) async throws(BackendError) -> String {
        let response = try await send(key, S3Request(method: "PUT", bucket: configuration.bucket, key: key, headers: headers, body: data))
        guard response.isSuccess else { throw failure(response, object: key, action: "write") }
        return response.header("etag") ?? ""
    }

    /// A multipart upload whose parts `produce` hands to the `upload` function it is given, in
    /// order (each at least 5 MiB but the last), so an object of any size goes up in bounded
    /// memory. `headers` go on the initiation (content type, metadata, lock). Aborted on any failure.
    @discardableResult
    public func putObjectMultipart(
        _ key: String, headers: [(String, String)], produce: (_ upload: (Data) async throws -> Void) async throws -> Void
    ) async throws -> String {
        let response = try await send(key, S3Request(
            method: "POST", bucket: configuration.bucket, key: key, query: [("uploads", "")], headers: headers))
        guard response.isSuccess else { throw failure(response, object: key, action: "start a multipart upload of") }
        guard let uploadID = S3XML.parse(response.body)?.child("UploadId")?.text, !uploadID.isEmpty else {
            throw BackendError(.io, object: key, "S3 started a multipart upload but sent no UploadId")
        }
        do {
            var parts: [(number: Int, etag: String)] = []
            try await produce { body in
                guard parts.count < S3Configuration.maximumParts else {
                    throw BackendError(.io, object: key, "the object needs more than \(S3Configuration.maximumParts) parts")
                }
                parts.append(try await uploadPart(key, uploadID: uploadID, number: parts.count + 1, body: body))
            }
            let complete = try await send(key, S3Request(
                method: "POST", bucket: configuration.bucket, key: key, query: [("uploadId", uploadID)],
                body: S3XML.completeMultipartUpload(parts), errorMayArriveWith200: true))
            guard complete.isSuccess else { throw failure(complete, object: key, action: "complete the multipart upload of") }
            return S3XML.parse(complete.body)?.child("ETag")?.text ?? ""
        } catch {
            await abortMultipart(key, uploadID: uploadID)
            throw error
        }
    }

    /// Deletes the bucket itself (it must be empty).
    public func deleteBucket() async throws(BackendError) {
        let response = try await send(location, S3Request(method: "DELETE", bucket: configuration.bucket))
        guard response.isSuccess || response.status == 404 else { throw failure(response, object: location, action: "delete the bucket") }
    }

    /// PutObjectRetention for one object (moto drops the lock headers of a multipart initiation).
    public func putObjectRetention(_ key: String, mode: String, until: Date) async throws(BackendError) {
        let body = #"<?xml version="1.0" encoding="UTF-8"?><Retention xmlns="http://s3.amazonaws.com/doc/2006-03-01/">"#
            + "<Mode>\(S3XML.escape(mode))</Mode><RetainUntilDate>\(S3Time.iso8601(until))</RetainUntilDate></Retention>"
        let response = try await send(key, S3Request(
            method: "PUT", bucket: configuration.bucket, key: key, query: [("retention", "")], body: Data(body.utf8)))
        guard response.isSuccess else { throw failure(response, object: key, action: "set the Object Lock retention of") }
    }

    /// DeleteObject (a delete marker in a versioned bucket); a missing object is not an error.
    public func deleteObject(_ key: String) async throws(BackendError) {
        let response = try await send(key, S3Request(method: "DELETE", bucket: configuration.bucket, key: key))
        if response.isSuccess || (response.status == 404 && response.error?.code != "NoSuchBucket") { return }
        throw failure(response, object: key, action: "delete")
    }

    /// Whether the bucket has Object Lock enabled (false when it has no lock configuration).
    public func objectLockEnabled() async throws(BackendError) -> Bool {
        do throws(BackendError) {
            try await checkObjectLock()
            return true
        } catch where error.detail.contains("does not have Object Lock enabled") {
            return false
        }
    }

    /// `Headers` for writing an object with these attributes: content type, user metadata, the
    /// standard headers, and (when `lock` is given) its Object Lock retention and legal hold.
    public static func writeHeaders(for attributes: S3ObjectAttributes, lock: S3ObjectLockState?) -> [(String, String)] {
        var headers: [(String, String)] = []
        if let contentType = attributes.contentType { headers.append(("content-type", contentType)) }
        for (name, value) in attributes.standardHeaders.sorted(by: { $0.key < $1.key }) { headers.append((name, value)) }
        for (name, value) in attributes.userMetadata.sorted(by: { $0.key < $1.key }) { headers.append(("x-amz-meta-\(name)", value)) }
        if let lock {
            if let mode = lock.mode, let until = lock.retainUntil {
                headers.append(("x-amz-object-lock-mode", mode))
                headers.append(("x-amz-object-lock-retain-until-date", S3Time.iso8601(until)))
            }
            if lock.legalHold { headers.append(("x-amz-object-lock-legal-hold", "ON")) }
        }
        return headers
    }
}
