import Crypto
import Foundation

/// The integrity trailer etcd appends to a snapshot: its last 32 bytes are the SHA-256 of everything
/// before them (etcd-io/etcd `server/etcdserver/api/v3rpc/maintenance.go`). Fed in order, it keeps
/// the last 32 bytes back so it never needs the whole file.
public struct EtcdSnapshotTrailer: Sendable {
    private var digest = SHA256()
    private var tail = Data()
    public private(set) var size: Int64 = 0

    public init() {}

    public mutating func update(_ block: Data) {
        size += Int64(block.count)
        tail.append(block)
        guard tail.count > 32 else { return }
        digest.update(data: tail[tail.startIndex..<(tail.endIndex - 32)])
        tail = Data(tail.suffix(32))
    }

    /// The trailer's hex value once everything has been fed (for reports; not a secret).
    public var trailerHex: String { tail.map { String(format: "%02x", $0) }.joined() }

    /// Throws unless the bytes fed are an etcd snapshot with a matching trailer: a bolt database is
    /// whole pages, so a snapshot with a hash is `size % 512 == 32` (etcdutl's own test).
    public func verify(_ what: String) throws(EtcdError) {
        guard size >= 32 + 512, size % 512 == 32 else {
            throw EtcdError(.damagedSnapshot, object: what, "\(size) bytes is not an etcd snapshot with its SHA-256 trailer (the size of one is a multiple of 512 plus 32)")
        }
        guard Data(digest.finalize()) == tail else {
            throw EtcdError(.damagedSnapshot, object: what, "the snapshot's SHA-256 trailer does not match its content: it was altered or truncated")
        }
    }
}

/// Splits the gateway's snapshot reply — newline-delimited `{"result":{"blob":"<base64>","remaining_bytes":"N"}}`
/// objects — into decoded blobs as bytes arrive. A line without `result.blob` is etcd reporting a failure.
struct EtcdSnapshotLines {
    private var buffer: [UInt8] = []
    private var start = 0
    /// `remaining_bytes` of the last blob: etcd leaves it out on the final one, so 0 means complete.
    private(set) var remaining: Int64 = -1
    private(set) var lines = 0

    mutating func append<Bytes: Collection<UInt8>>(_ bytes: Bytes) {
        if start > 0, start >= buffer.count / 2 {
            buffer.removeFirst(start)
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// The next complete line's blob, or nil when no complete line is buffered.
    mutating func next() throws(EtcdError) -> Data? {
        while let newline = Self.newline(in: buffer, from: start) {
            let line = buffer[start..<newline]
            start = newline + 1
            if line.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\r") }) { continue }
            return try decode(line)
        }
        return nil
    }

    /// memchr: lines are ~43 KB of base64, and a byte-by-byte search showed up in profiles.
    private static func newline(in buffer: [UInt8], from start: Int) -> Int? {
        guard start < buffer.count else { return nil }
        return buffer.withUnsafeBufferPointer { bytes in
            guard let base = bytes.baseAddress, let found = memchr(base + start, 0x0A, bytes.count - start) else { return nil }
            return base.distance(to: found.assumingMemoryBound(to: UInt8.self))
        }
    }

    /// At the end of the stream: the last line when it had no newline, then a check that nothing is missing.
    mutating func finish() throws(EtcdError) -> Data? {
        if let blob = try next() { return blob }
        if start < buffer.count {
            let line = buffer[start...]
            start = buffer.count
            if !line.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\r") || $0 == UInt8(ascii: "\n") }) {
                return try decode(line)
            }
        }
        guard lines > 0 else { throw EtcdError(.damagedSnapshot, "the snapshot stream was empty") }
        guard remaining == 0 else {
            throw EtcdError(.damagedSnapshot, "the snapshot stream ended with \(remaining) bytes still to come")
        }
        return nil
    }

    private static let resultPrefix = Array(#"{"result":{"#.utf8)
    private static let blobKey = Array(#""blob":""#.utf8)
    private static let remainingKey = Array(#""remaining_bytes":""#.utf8)

    private mutating func decode(_ line: ArraySlice<UInt8>) throws(EtcdError) -> Data {
        lines += 1
        // Fast path for etcd's flat `result` object (3.5 writes remaining_bytes first, then blob);
        // anything else goes through JSONSerialization.
        if line.starts(with: Self.resultPrefix), let key = line.firstRange(of: Self.blobKey),
           let valueEnd = line[key.upperBound...].firstIndex(of: UInt8(ascii: "\"")),
           let blob = Data(base64Encoded: Data(line[key.upperBound..<valueEnd])) {
            remaining = Self.remainingBytes(in: line) ?? 0
            return blob
        }
        let object = (try? JSONSerialization.jsonObject(with: Data(line))) as? [String: Any]
        if let result = object?["result"] as? [String: Any], let text = result["blob"] as? String,
           let blob = Data(base64Encoded: text) {
            remaining = (result["remaining_bytes"] as? String).flatMap { Int64($0) } ?? (result["remaining_bytes"] as? Int64) ?? 0
            return blob
        }
        if let error = object?["error"] {
            let message = ((error as? [String: Any])?["message"] as? String) ?? "\(error)"
            throw EtcdError(.server, "etcd stopped the snapshot: \(message)")
        }
        throw EtcdError(.damagedSnapshot, "line \(lines) of the snapshot stream has no result.blob: \(String(decoding: line.prefix(120), as: UTF8.self))")
    }

    private static func remainingBytes(in rest: ArraySlice<UInt8>) -> Int64? {
        guard let found = rest.firstRange(of: remainingKey) else { return nil }
        let digits = rest[found.upperBound...].prefix { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
        return Int64(String(decoding: digits, as: UTF8.self))
    }
}
