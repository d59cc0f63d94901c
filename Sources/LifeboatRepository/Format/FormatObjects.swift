import Foundation

/// `config`: the one plaintext object, readable without a key. Written once at `repo init`.
public struct RepositoryConfig: Codable, Sendable, Hashable {
    public var version: Int
    /// 32 random hex digits; also the HKDF salt of every derived key.
    public var id: String
    public var created: Date
    public var chunker: ChunkerParameters
    /// zstd level for chunks and manifests; chunks that do not shrink are stored uncompressed.
    public var compressionLevel: Int
    /// Truncated HMAC of a fixed label under the master secret: proves a recovered secret is this repository's.
    public var keyCheck: String

    enum CodingKeys: String, CodingKey {
        case version, id, created, chunker, compressionLevel = "compression_level", keyCheck = "key_check"
    }
}

/// `keys/<id>`: the master secret wrapped under a key derived from a passphrase with scrypt.
public struct KeyFile: Codable, Sendable, Hashable {
    public var version: Int
    public var kdf: String
    public var scrypt: ScryptParameters
    /// Base64.
    public var salt: String
    /// Base64 of nonce ‖ ciphertext ‖ tag (AES-256-GCM, associated data `lifeboat/v1 key <id>`).
    public var wrapped: String
    public var created: Date
    /// Who or what this key is for ("ops on-call", "ci"); shown by `key list`.
    public var label: String
    public var hostname: String

    public struct ScryptParameters: Codable, Sendable, Hashable {
        /// CPU/memory cost, a power of two. 2^15 with r 8 uses 32 MiB and about 0.1 s.
        public var n: Int
        public var r: Int
        public var p: Int
        public static let standard = ScryptParameters(n: 1 << 15, r: 8, p: 1)
    }
}

/// `snapshots/<id>` (sealed): one artefact or store backup, and the chunks that rebuild it.
public struct SnapshotManifest: Codable, Sendable, Hashable {
    public var version: Int
    public var id: String
    /// The store (or artefact name for `put`) this snapshot belongs to.
    public var store: String
    /// `postgres`, `openbao`, `etcd`, `s3`, `files`, or `artefact` for `put`.
    public var kind: String
    public var tags: [String]
    public var hostname: String
    public var started: Date
    public var finished: Date
    /// Facts about the source at backup time (LSN, raft index, etcd revision…), kind-specific.
    public var source: [String: String]
    /// Plaintext size and SHA-256 of the whole artefact.
    public var size: Int64
    public var sha256: String
    public var chunks: [ChunkReference]
    /// The recovery point this snapshot was taken in, when it belongs to one.
    public var point: String?
    /// Version 2 (a snapshot of many items: a bucket's objects, a tree's files): every chunk the
    /// items reference, each id once. The stream above (`chunks`, `size`, `sha256`) is then the
    /// snapshot's index, which names each item's own chunks; these keep them alive for prune and
    /// mirror. Absent in version 1 (one artefact whose stream is the data).
    public var contentChunks: [ChunkReference]?

    /// Every chunk the snapshot needs: its stream's and, for a many-item snapshot, its items'.
    public var allChunks: [ChunkReference] { chunks + (contentChunks ?? []) }

    /// The newest manifest version this Lifeboat reads.
    public static let newestVersion = 2

    enum CodingKeys: String, CodingKey {
        case version, id, store, kind, tags, hostname, started, finished, source, size, sha256, chunks, point
        case contentChunks = "content_chunks"
    }

    public struct ChunkReference: Codable, Sendable, Hashable {
        public var id: String
        public var size: Int
    }
}

/// Where each kind of object lives, by name.
/// Every object name and prefix of the repository, in one place (docs/repository-format.md §3).
public enum ObjectPath {
    public static let config = "config"
    public static let keys = "keys/"
    public static let data = "data/"
    public static let snapshots = "snapshots/"
    public static let locks = "locks/"
    public static let wal = "wal/"
    /// Recovery points.
    public static let points = DocumentNamespace.points.prefix
    /// Drill and production-restore reports.
    public static let evidence = DocumentNamespace.evidence.prefix
    /// Records of restores in progress that must survive a crash (OpenBao's temporary initialisation).
    public static let restores = "restores/"
    /// Chunk index objects (§16): hints naming chunks that exist, never trusted over `data/`.
    public static let index = "index/"

    public static func key(_ id: String) -> String { keys + id }
    public static func chunk(_ id: String) -> String { "\(data)\(id.prefix(2))/\(id)" }
    public static func snapshot(_ id: String) -> String { snapshots + id }
    public static func lock(_ id: String) -> String { locks + id }
    public static func wal(store: String) -> String { "\(wal)\(store)/" }
    public static func wal(store: String, name: String) -> String { wal(store: store) + name }
    public static func document(_ namespace: DocumentNamespace, id: String) -> String { namespace.prefix + id }
}

func randomID(bytes: Int = 16) -> String {
    Data((0..<bytes).map { _ in UInt8.random(in: 0...255) }).hexString
}

extension JSONEncoder {
    static var repository: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(RepositoryTime.format(date))
        }
        return encoder
    }
}

extension JSONDecoder {
    static var repository: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            guard let date = RepositoryTime.parse(text) else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not an RFC 3339 time: \(text)"))
            }
            return date
        }
        return decoder
    }
}

/// RFC 3339 times in UTC with millisecond precision (`2026-11-22T22:50:11.598Z`).
///
/// Milliseconds are formatted and parsed as integers: going through the system formatter's
/// floating-point fractions can drop a millisecond, and a manifest must equal itself after a round trip.
enum RepositoryTime {
    /// Now, at the millisecond precision the format stores.
    static func now() -> Date { fromMilliseconds(Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))) }

    static func fromMilliseconds(_ milliseconds: Int64) -> Date {
        Date(timeIntervalSince1970: Double(milliseconds) / 1000)
    }

    static func format(_ date: Date) -> String {
        let milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded())
        let seconds = milliseconds.quotientAndRemainder(dividingBy: 1000)
        let (whole, fraction) = seconds.remainder < 0 ? (seconds.quotient - 1, seconds.remainder + 1000) : seconds
        let text = Date(timeIntervalSince1970: Double(whole)).formatted(Date.ISO8601FormatStyle())
        return String(text.dropLast()) + "." + String(format: "%03lld", fraction) + "Z"
    }

    static func parse(_ text: String) -> Date? {
        guard text.hasSuffix("Z") else { return nil }
        var body = String(text.dropLast())
        var milliseconds: Int64 = 0
        if let dot = body.firstIndex(of: ".") {
            let digits = body[body.index(after: dot)...]
            guard !digits.isEmpty, digits.allSatisfy(\.isASCII), let value = Int64(String(digits.prefix(3)).padding(toLength: 3, withPad: "0", startingAt: 0)) else { return nil }
            milliseconds = value
            body = String(body[..<dot])
        }
        guard let whole = try? Date.ISO8601FormatStyle().parse(body + "Z") else { return nil }
        return fromMilliseconds(Int64(whole.timeIntervalSince1970) * 1000 + milliseconds)
    }
}
