import Foundation

/// A sorted, duplicate-free run of raw 32-byte chunk ids in one contiguous buffer: the body of an
/// index object (repository-format.md §16) and of its cached copy. Lookups are a binary search over
/// the buffer, so a run memory-mapped from the cache is searched without being read whole: a put
/// touches about log2(n) pages per chunk, whatever the repository's size.
public struct ChunkIDSet: Sendable, Equatable {
    public static let idSize = 32
    /// n × 32 bytes, strictly ascending (memcmp order).
    let bytes: Data

    public var count: Int { bytes.count / Self.idSize }
    public var isEmpty: Bool { bytes.isEmpty }

    public static let empty = ChunkIDSet(checkedBytes: Data())

    /// Takes `bytes` as they are: the caller has proven them sorted and duplicate-free.
    init(checkedBytes bytes: Data) { self.bytes = bytes }

    /// Validates a buffer claimed to be a run; nil when its length or order is wrong.
    init?(validating bytes: Data) {
        guard bytes.count % Self.idSize == 0 else { return nil }
        let ascending = bytes.withUnsafeBytes { buffer -> Bool in
            guard let base = buffer.baseAddress else { return true }
            let n = buffer.count / Self.idSize
            for i in stride(from: 1, to: n, by: 1) where memcmp(base + (i - 1) * Self.idSize, base + i * Self.idSize, Self.idSize) >= 0 {
                return false
            }
            return true
        }
        guard ascending else { return nil }
        self.bytes = bytes
    }

    /// From hex chunk ids in any order, with duplicates; ids that are not 64 lowercase hex digits
    /// are skipped (a listing may hold foreign objects, which a reader ignores).
    public init<S: Sequence>(hexIDs: S) where S.Element: StringProtocol {
        var keys: [Key] = []
        for hex in hexIDs {
            if let key = Key(hex: hex) { keys.append(key) }
        }
        self.init(unsorted: keys)
    }

    /// Sorts and de-duplicates; 10^6 ids take a fraction of a second (four-word keys, not byte arrays).
    init(unsorted keys: [Key]) {
        var keys = keys
        keys.sort()
        var data = Data(count: keys.count * Self.idSize)
        var n = 0
        data.withUnsafeMutableBytes { (buffer: UnsafeMutableRawBufferPointer) in
            var previous: Key?
            for key in keys where key != previous {
                key.store(to: buffer.baseAddress! + n * Self.idSize)
                previous = key
                n += 1
            }
        }
        self.bytes = data.prefix(n * Self.idSize)
    }

    /// The ids as four big-endian words each: their order is the bytes' order.
    var keys: [Key] {
        bytes.withUnsafeBytes { (buffer: UnsafeRawBufferPointer) in
            (0..<(buffer.count / Self.idSize)).map { Key(loading: buffer.baseAddress! + $0 * Self.idSize) }
        }
    }

    /// A chunk id as four big-endian 64-bit words: compares as its 32 bytes do, and sorts fast.
    struct Key: Comparable, Hashable {
        var a: UInt64, b: UInt64, c: UInt64, d: UInt64

        init?<S: StringProtocol>(hex: S) {
            // One call through the generic view, then a tight loop over contiguous UTF-8 (a
            // character-by-character walk through StringProtocol is ~100× slower unspecialised).
            if let parsed = hex.utf8.withContiguousStorageIfAvailable({ Key(utf8: $0) }) {
                guard let key = parsed else { return nil }
                self = key
            } else {
                guard let key = Array(hex.utf8).withUnsafeBufferPointer({ Key(utf8: $0) }) else { return nil }
                self = key
            }
        }

        init?(utf8: UnsafeBufferPointer<UInt8>) {
            guard utf8.count == 64 else { return nil }
            var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
            for word in 0..<4 {
                var value: UInt64 = 0
                for i in (word * 16)..<(word * 16 + 16) {
                    guard let nibble = ChunkIDSet.nibble(utf8[i]) else { return nil }
                    value = value << 4 | UInt64(nibble)
                }
                switch word {
                case 0: words.0 = value
                case 1: words.1 = value
                case 2: words.2 = value
                default: words.3 = value
                }
            }
            (a, b, c, d) = words
        }

        init(loading pointer: UnsafeRawPointer) {
            a = UInt64(bigEndian: pointer.loadUnaligned(as: UInt64.self))
            b = UInt64(bigEndian: pointer.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
            c = UInt64(bigEndian: pointer.loadUnaligned(fromByteOffset: 16, as: UInt64.self))
            d = UInt64(bigEndian: pointer.loadUnaligned(fromByteOffset: 24, as: UInt64.self))
        }

        func store(to pointer: UnsafeMutableRawPointer) {
            pointer.storeBytes(of: a.bigEndian, as: UInt64.self)
            pointer.storeBytes(of: b.bigEndian, toByteOffset: 8, as: UInt64.self)
            pointer.storeBytes(of: c.bigEndian, toByteOffset: 16, as: UInt64.self)
            pointer.storeBytes(of: d.bigEndian, toByteOffset: 24, as: UInt64.self)
        }

        static func < (l: Key, r: Key) -> Bool { (l.a, l.b, l.c, l.d) < (r.a, r.b, r.c, r.d) }
    }

    /// The 32 bytes of a 64-hex-digit chunk id, or nil.
    static func raw<S: StringProtocol>(_ hex: S) -> [UInt8]? {
        let utf8 = Array(hex.utf8)
        guard utf8.count == Self.idSize * 2 else { return nil }
        var out = [UInt8](repeating: 0, count: Self.idSize)
        for i in 0..<Self.idSize {
            guard let high = nibble(utf8[2 * i]), let low = nibble(utf8[2 * i + 1]) else { return nil }
            out[i] = high << 4 | low
        }
        return out
    }

    static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: c - 0x30
        case 0x61...0x66: c - 0x61 + 10
        default: nil // ids are lowercase hex (repository-format.md §1)
        }
    }

    public func contains(hexID: String) -> Bool {
        guard let raw = Self.raw(hexID) else { return false }
        return contains(raw: raw)
    }

    func contains(raw key: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { (buffer: UnsafeRawBufferPointer) -> Bool in
            guard let base = buffer.baseAddress else { return false }
            var low = 0
            var high = buffer.count / Self.idSize
            return key.withUnsafeBytes { (key: UnsafeRawBufferPointer) -> Bool in
                while low < high {
                    let middle = (low + high) / 2
                    let order = memcmp(base + middle * Self.idSize, key.baseAddress!, Self.idSize)
                    if order == 0 { return true }
                    if order < 0 { low = middle + 1 } else { high = middle }
                }
                return false
            }
        }
    }

    /// The ids as lowercase hex, ascending.
    public var hexIDs: [String] {
        (0..<count).map { i in
            bytes[(bytes.startIndex + i * Self.idSize)..<(bytes.startIndex + (i + 1) * Self.idSize)].hexString
        }
    }

    /// The union of runs, sorted and duplicate-free.
    public static func union(_ runs: [ChunkIDSet]) -> ChunkIDSet {
        let nonEmpty = runs.filter { !$0.isEmpty }
        if nonEmpty.count <= 1 { return nonEmpty.first ?? .empty }
        return ChunkIDSet(unsorted: nonEmpty.flatMap(\.keys))
    }

    /// The ids of `self` that `other` lacks: one pass over both sorted runs.
    public func subtracting(_ other: ChunkIDSet) -> ChunkIDSet {
        let mine = keys
        let theirs = other.keys
        var kept: [Key] = []
        var j = 0
        for key in mine {
            while j < theirs.count, theirs[j] < key { j += 1 }
            if j < theirs.count, theirs[j] == key { continue }
            kept.append(key)
        }
        return ChunkIDSet(unsorted: kept)
    }

    /// Consecutive pieces of at most `size` ids each (index objects have a maximum size).
    func split(every size: Int) -> [ChunkIDSet] {
        guard count > size else { return [self] }
        return stride(from: 0, to: count, by: size).map { start in
            let end = Swift.min(start + size, count)
            return ChunkIDSet(checkedBytes: bytes[(bytes.startIndex + start * Self.idSize)..<(bytes.startIndex + end * Self.idSize)])
        }
    }

    public static func == (lhs: ChunkIDSet, rhs: ChunkIDSet) -> Bool { lhs.bytes == rhs.bytes }
}

/// The plaintext of an index object `index/<id>` (repository-format.md §16):
///
///     bytes 0…3    magic "LBIX"
///     byte 4       index format version (1)
///     bytes 5…7    zero
///     bytes 8…11   n, the number of chunk ids (UInt32, big-endian)
///     then         n chunk ids, 32 raw bytes each, strictly ascending
enum IndexObject {
    static let magic = Data("LBIX".utf8)
    static let version: UInt8 = 1
    static let headerSize = 12
    /// Writers put at most this many ids in one object (32 MiB); larger sets span several objects.
    static let maximumEntries = 1 << 20
    static let maximumPlaintext = headerSize + maximumEntries * ChunkIDSet.idSize

    enum DecodeFailure: Error, Equatable, CustomStringConvertible {
        case notAnIndex
        case unknownVersion(UInt8)
        case wrongLength(declared: Int, actual: Int)
        case notSorted

        var description: String {
            switch self {
            case .notAnIndex: "not an index (no LBIX header)"
            case .unknownVersion(let v): "index format version \(v) is newer than this Lifeboat reads (1)"
            case .wrongLength(let declared, let actual): "declares \(declared) chunk ids but holds \(actual) bytes of them"
            case .notSorted: "its chunk ids are not strictly ascending"
            }
        }
    }

    static func encode(_ ids: ChunkIDSet) -> Data {
        var out = magic
        out.append(contentsOf: [version, 0, 0, 0])
        let n = UInt32(ids.count)
        out.append(contentsOf: [UInt8(n >> 24), UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF)])
        out.append(ids.bytes)
        return out
    }

    /// Decodes and checks a plaintext; the ids share `plaintext`'s storage (no copy of a mapped file).
    /// `checkOrder: false` skips the pass over every id (the local cache, whose files were checked
    /// when written: reading a large one whole would defeat mapping it). A cache file out of order
    /// can only make lookups miss, which costs speed, never data (§16.4).
    static func decode(_ plaintext: Data, checkOrder: Bool = true) throws(DecodeFailure) -> ChunkIDSet {
        let start = plaintext.startIndex
        guard plaintext.count >= headerSize, plaintext[start..<(start + 4)] == magic else { throw .notAnIndex }
        guard plaintext[start + 4] == version else { throw .unknownVersion(plaintext[start + 4]) }
        let n = plaintext[(start + 8)..<(start + 12)].reduce(0) { $0 << 8 | Int($1) }
        let body = plaintext[(start + headerSize)...]
        guard body.count == n * ChunkIDSet.idSize else { throw .wrongLength(declared: n, actual: body.count) }
        guard checkOrder else { return ChunkIDSet(checkedBytes: body) }
        guard let ids = ChunkIDSet(validating: body) else { throw .notSorted }
        return ids
    }
}
