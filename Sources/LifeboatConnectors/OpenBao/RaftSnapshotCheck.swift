import CZlib
import Crypto
import Foundation
import LifeboatRepository

/// What a raft snapshot archive says about itself once its own checksums have been verified.
public struct RaftSnapshotFacts: Sendable, Hashable {
    /// The raft log index and term the snapshot was taken at (`meta.json`).
    public var index: UInt64
    public var term: UInt64
    /// Size of the FSM (`state.bin`), in bytes.
    public var stateSize: Int64
    /// SHA-256 of `state.bin`, as listed in and verified against `SHA256SUMS`.
    public var stateSHA256: String
    /// `SHA256SUMS` itself; under a transit seal `sealedSums` is its Transit ciphertext.
    public var sums: Data
    /// The Transit ciphertext (`vault:vN:…`) inside `SHA256SUMS.sealed`, when the source was transit-sealed.
    public var transitCiphertext: String?

    /// The Transit key version that sealed the snapshot (`vault:v2:…` → 2).
    public var transitKeyVersion: Int? {
        guard let transitCiphertext, transitCiphertext.hasPrefix("vault:v") else { return nil }
        return Int(transitCiphertext.dropFirst("vault:v".count).prefix { $0 != ":" })
    }
}

/// Checks an OpenBao raft snapshot — a gzip tar holding `meta.json`, `state.bin`, `SHA256SUMS` and
/// `SHA256SUMS.sealed` — as its bytes stream past, offline and without keys: every file `SHA256SUMS`
/// lists must be present and hash to the listed value, and `meta.json` and `state.bin` must be listed.
/// Feed it with `consume` in order, then call `finish`. Memory stays small: `state.bin` is only hashed.
public final class RaftSnapshotCheck {
    private let inflater: GzipInflater
    private var tar = TarReader()
    /// The first failure seen, if any.
    public private(set) var failure: OpenBaoError?
    private let object: String
    private var facts: RaftSnapshotFacts?

    /// `object` names the archive in errors (`snapshot of openbao`, `snapshot 3fa2…`).
    public init(object: String) {
        self.object = object
        inflater = GzipInflater()
    }

    /// The next compressed bytes. After the first failure every call throws it again.
    public func consume(_ compressed: Data) throws(OpenBaoError) {
        if let failure { throw failure }
        do {
            try inflater.inflate(compressed) { plain in try tar.consume(plain) }
        } catch let error as ArchiveFailure {
            failure = OpenBaoError(.tamperedSnapshot, object: object, error.reason)
            throw failure!
        } catch {
            failure = OpenBaoError(.tamperedSnapshot, object: object, "\(error)")
            throw failure!
        }
    }

    /// Checks what was read: a complete archive whose files match `SHA256SUMS`. Idempotent.
    public func finish() throws(OpenBaoError) -> RaftSnapshotFacts {
        if let failure { throw failure }
        if let facts { return facts }
        do {
            guard inflater.ended else { throw ArchiveFailure("the gzip stream is truncated") }
            facts = try tar.facts()
            return facts!
        } catch let error as ArchiveFailure {
            failure = OpenBaoError(.tamperedSnapshot, object: object, error.reason)
        } catch {
            failure = OpenBaoError(.tamperedSnapshot, object: object, "\(error)")
        }
        throw failure!
    }
}

struct ArchiveFailure: Error {
    var reason: String
    init(_ reason: String) { self.reason = reason }
}

/// zlib's inflate over a stream of blocks, gzip framing (concatenated members allowed, as Go reads them).
final class GzipInflater {
    private let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
    private var output = [UInt8](repeating: 0, count: 1 << 16)
    private(set) var ended = false
    private var initialized = false

    init() {
        stream.initialize(to: z_stream())
        // 15 + 16: gzip framing only (a zlib or raw deflate stream is not a raft snapshot).
        initialized = inflateInit2_(stream, 15 + 16, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK
    }

    deinit {
        if initialized { inflateEnd(stream) }
        stream.deinitialize(count: 1)
        stream.deallocate()
    }

    func inflate(_ input: Data, into sink: (UnsafeBufferPointer<UInt8>) throws -> Void) throws {
        guard initialized else { throw ArchiveFailure("zlib could not be initialised") }
        guard !input.isEmpty else { return }
        var input = input
        try input.withUnsafeMutableBytes { (raw: UnsafeMutableRawBufferPointer) in
            var offset = 0
            while offset < raw.count {
                if ended {
                    // Another gzip member follows the one that ended.
                    guard inflateReset(stream) == Z_OK else { throw ArchiveFailure("zlib could not be reset") }
                    ended = false
                }
                stream.pointee.next_in = raw.baseAddress!.advanced(by: offset).assumingMemoryBound(to: Bytef.self)
                stream.pointee.avail_in = uInt(raw.count - offset)
                repeat {
                    let produced: Int = try output.withUnsafeMutableBufferPointer { buffer in
                        stream.pointee.next_out = buffer.baseAddress
                        stream.pointee.avail_out = uInt(buffer.count)
                        let status = CZlib.inflate(stream, Z_NO_FLUSH)
                        switch status {
                        case Z_OK, Z_BUF_ERROR: break
                        case Z_STREAM_END: ended = true
                        default:
                            let detail = stream.pointee.msg.map { String(cString: $0) } ?? "status \(status)"
                            throw ArchiveFailure("not a valid gzip stream (\(detail))")
                        }
                        return buffer.count - Int(stream.pointee.avail_out)
                    }
                    if produced > 0 { try output.withUnsafeBufferPointer { try sink(UnsafeBufferPointer(rebasing: $0[0..<produced])) } }
                    if ended { break }
                    if produced == 0 && stream.pointee.avail_in == 0 { break }
                } while stream.pointee.avail_out == 0 || stream.pointee.avail_in > 0
                offset = raw.count - Int(stream.pointee.avail_in)
            }
        }
    }
}

/// A streaming reader of the ustar archives Go's archive/tar writes: 512-byte headers, contents
/// padded to 512 bytes, two zero blocks at the end. Hashes every file; keeps the small ones.
struct TarReader {
    private enum State {
        case header
        case content(name: String, remaining: Int64, padding: Int)
        case padding(Int)
        case ended
    }

    private var state = State.header
    private var pending: [UInt8] = []
    private var zeroBlocks = 0
    private var hasher = SHA256()
    private var kept = Data()
    private var sizes: [String: Int64] = [:]
    private var digests: [String: String] = [:]
    private var contents: [String: Data] = [:]
    private var order: [String] = []

    /// Files kept whole to be parsed; anything else is only hashed.
    static let keptFiles: Set<String> = ["meta.json", "SHA256SUMS", "SHA256SUMS.sealed"]
    static let maximumKeptSize: Int64 = 1 << 20

    mutating func consume(_ bytes: UnsafeBufferPointer<UInt8>) throws {
        var index = 0
        while index < bytes.count {
            switch state {
            case .ended:
                // Go pads the archive to its record size with zeros; anything else after the end is suspect.
                guard bytes[index...].allSatisfy({ $0 == 0 }) else { throw ArchiveFailure("data follows the end of the tar archive") }
                return
            case .header:
                let take = min(512 - pending.count, bytes.count - index)
                pending.append(contentsOf: bytes[index..<index + take])
                index += take
                if pending.count == 512 {
                    try readHeader(pending)
                    pending.removeAll(keepingCapacity: true)
                }
            case .content(let name, let remaining, let padding):
                let take = Int(min(remaining, Int64(bytes.count - index)))
                let slice = UnsafeBufferPointer(rebasing: bytes[index..<index + take])
                hasher.update(bufferPointer: UnsafeRawBufferPointer(slice))
                if Self.keptFiles.contains(name) { kept.append(contentsOf: slice) }
                index += take
                let left = remaining - Int64(take)
                if left == 0 {
                    digests[name] = Data(hasher.finalize()).hexString
                    if Self.keptFiles.contains(name) { contents[name] = kept }
                    state = padding > 0 ? .padding(padding) : .header
                } else {
                    state = .content(name: name, remaining: left, padding: padding)
                }
            case .padding(let left):
                let take = min(left, bytes.count - index)
                index += take
                state = left - take > 0 ? .padding(left - take) : .header
            }
        }
    }

    private mutating func readHeader(_ block: [UInt8]) throws {
        if block.allSatisfy({ $0 == 0 }) {
            zeroBlocks += 1
            if zeroBlocks == 2 { state = .ended }
            return
        }
        guard zeroBlocks == 0 else { throw ArchiveFailure("a tar header follows an end-of-archive block") }
        let stored = octal(block[148..<156])
        let computed = block.enumerated().reduce(0) { $0 + Int64((148..<156).contains($1.offset) ? 32 : $1.element) }
        guard stored == computed else { throw ArchiveFailure("a tar header's checksum is wrong: the archive is damaged") }
        let name = string(block[0..<100])
        guard let size = octal(block[124..<136]), size >= 0 else { throw ArchiveFailure("the tar entry \(name) has no valid size") }
        let type = block[156]
        let padding = Int((512 - size % 512) % 512)
        // Only regular files ('0' or NUL) carry snapshot data; PAX and other records are skipped whole.
        guard type == UInt8(ascii: "0") || type == 0 else {
            state = size > 0 ? .content(name: "\u{0}skipped", remaining: size, padding: padding) : .header
            return
        }
        guard sizes[name] == nil else { throw ArchiveFailure("the archive holds \(name) twice") }
        if Self.keptFiles.contains(name), size > Self.maximumKeptSize {
            throw ArchiveFailure("\(name) is \(size) bytes: far larger than a raft snapshot's")
        }
        sizes[name] = size
        order.append(name)
        hasher = SHA256()
        kept = Data()
        if size == 0 {
            digests[name] = Data(hasher.finalize()).hexString
            if Self.keptFiles.contains(name) { contents[name] = Data() }
            state = .header
        } else {
            state = .content(name: name, remaining: size, padding: padding)
        }
    }

    /// Checks the archive read so far against its `SHA256SUMS` and returns its facts.
    func facts() throws -> RaftSnapshotFacts {
        switch state {
        case .header where pending.isEmpty && zeroBlocks == 0: break  // Some writers omit the end blocks.
        case .ended: break
        default: throw ArchiveFailure("the tar archive is truncated")
        }
        guard let sums = contents["SHA256SUMS"] else { throw ArchiveFailure("the archive has no SHA256SUMS: it is not an OpenBao raft snapshot") }
        var listed: [String: String] = [:]
        for line in String(decoding: sums, as: UTF8.self).split(whereSeparator: \.isNewline) {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            guard parts.count == 2, parts[0].count == 64 else { throw ArchiveFailure("SHA256SUMS has a malformed line") }
            listed[String(parts[1]).trimmingCharacters(in: CharacterSet(charactersIn: "*"))] = parts[0].lowercased()
        }
        for required in ["meta.json", "state.bin"] {
            guard listed[required] != nil else { throw ArchiveFailure("SHA256SUMS does not list \(required)") }
        }
        for (name, expected) in listed.sorted(by: { $0.key < $1.key }) {
            guard let actual = digests[name] else { throw ArchiveFailure("\(name) is listed in SHA256SUMS but missing from the archive") }
            guard actual == expected else { throw ArchiveFailure("\(name) does not match its SHA-256 in SHA256SUMS: the snapshot was altered or damaged") }
        }
        guard let metaData = contents["meta.json"],
              let meta = try? JSONSerialization.jsonObject(with: metaData) as? [String: Any],
              let index = (meta["Index"] as? NSNumber)?.uint64Value, let term = (meta["Term"] as? NSNumber)?.uint64Value else {
            throw ArchiveFailure("meta.json has no raft Index and Term")
        }
        let stateSize = sizes["state.bin"] ?? 0
        if let declared = (meta["Size"] as? NSNumber)?.int64Value, declared != stateSize {
            throw ArchiveFailure("meta.json says state.bin is \(declared) bytes; the archive holds \(stateSize)")
        }
        var ciphertext: String?
        if let sealed = contents["SHA256SUMS.sealed"] {
            ciphertext = Self.transitCiphertext(in: sealed)
        }
        return RaftSnapshotFacts(index: index, term: term, stateSize: stateSize, stateSHA256: listed["state.bin"]!,
                                 sums: sums, transitCiphertext: ciphertext)
    }

    /// A Transit ciphertext (`vault:vN:<base64>`) inside the sealed sums' protobuf wrapper, if any.
    static func transitCiphertext(in sealed: Data) -> String? {
        let bytes = [UInt8](sealed)
        let marker = Array("vault:v".utf8)
        guard bytes.count > marker.count else { return nil }
        for start in 0...(bytes.count - marker.count) where Array(bytes[start..<start + marker.count]) == marker {
            var end = start + marker.count
            let allowed = Set("0123456789:ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz+/=".utf8)
            while end < bytes.count, allowed.contains(bytes[end]) { end += 1 }
            let text = String(decoding: bytes[start..<end], as: UTF8.self)
            // vault:v<digits>:<base64>
            let parts = text.split(separator: ":", maxSplits: 2)
            if parts.count == 3, parts[1].dropFirst().allSatisfy(\.isNumber), parts[2].count >= 16 { return text }
        }
        return nil
    }

    private func string(_ bytes: ArraySlice<UInt8>) -> String {
        String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }

    private func octal(_ bytes: ArraySlice<UInt8>) -> Int64? {
        let text = string(bytes).trimmingCharacters(in: .whitespaces)
        guard !text.isEmpty else { return nil }
        return Int64(text, radix: 8)
    }
}

