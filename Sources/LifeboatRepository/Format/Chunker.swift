/// Content-defined chunking, FastCDC style (Xia et al., USENIX ATC 2016), with normalized chunking.
///
/// A cut point is where the rolling gear hash has its top bits all zero. Because cuts depend only
/// on the bytes near them, an insertion early in a file moves the cut points around it and leaves
/// the rest of the chunks — and their deduplicated copies — unchanged.
///
/// The gear table comes from the repository's key, so chunk boundaries (and thus chunk sizes)
/// reveal nothing that would let someone recognise known plaintext across repositories.
public struct ChunkerParameters: Sendable, Hashable, Codable {
    public var minimumSize: Int
    public var averageSize: Int
    public var maximumSize: Int

    /// 512 KiB / 1 MiB / 8 MiB, as restic uses.
    public static let standard = ChunkerParameters(minimumSize: 512 << 10, averageSize: 1 << 20, maximumSize: 8 << 20)

    public init(minimumSize: Int, averageSize: Int, maximumSize: Int) {
        precondition(0 < minimumSize && minimumSize <= averageSize && averageSize <= maximumSize)
        precondition(averageSize.nonzeroBitCount == 1, "the average chunk size must be a power of two")
        self.minimumSize = minimumSize
        self.averageSize = averageSize
        self.maximumSize = maximumSize
    }

    enum CodingKeys: String, CodingKey { case minimumSize = "min", averageSize = "avg", maximumSize = "max" }
}

/// Splits a byte stream into chunks. Feed it with `append`, take chunks with `nextChunk`, and
/// call `finish` at the end of the stream for the last one.
public struct Chunker: Sendable {
    public let parameters: ChunkerParameters
    let gear: [UInt64]
    /// Stricter mask below the average size, looser above it ("normalized chunking", level 2),
    /// which narrows the spread of chunk sizes around the average.
    let strictMask: UInt64
    let looseMask: UInt64

    var buffer: [UInt8] = []
    /// Bytes of `buffer` already scanned without finding a cut, and the hash state there.
    var scanned = 0
    var hash: UInt64 = 0

    /// `gear` must hold 256 values derived from the repository key (`RepositoryKeys.gearTable`).
    public init(parameters: ChunkerParameters, gear: [UInt64]) {
        precondition(gear.count == 256)
        self.parameters = parameters
        self.gear = gear
        let bits = parameters.averageSize.trailingZeroBitCount
        // Top bits: in a gear hash, bit k depends on the last k+1 bytes, so the high bits see the widest window.
        strictMask = UInt64.max << UInt64(64 - (bits + 2))
        looseMask = UInt64.max << UInt64(64 - (bits - 2))
    }

    public mutating func append(_ bytes: some Sequence<UInt8>) {
        buffer.append(contentsOf: bytes)
    }

    /// The next complete chunk, or nil when more input is needed to find one.
    public mutating func nextChunk() -> [UInt8]? {
        guard let cut = findCut(final: false) else { return nil }
        return take(cut)
    }

    /// At the end of the stream: the next chunk, including a short last one; nil when nothing is left.
    public mutating func finish() -> [UInt8]? {
        guard !buffer.isEmpty else { return nil }
        return take(findCut(final: true) ?? buffer.count)
    }

    private mutating func take(_ count: Int) -> [UInt8] {
        let chunk = Array(buffer[..<count])
        buffer.removeFirst(count)
        scanned = 0
        hash = 0
        return chunk
    }

    private mutating func findCut(final: Bool) -> Int? {
        let minimum = parameters.minimumSize, average = parameters.averageSize, maximum = parameters.maximumSize
        let available = buffer.count
        guard available > minimum else { return nil }
        let limit = min(available, maximum)
        var position = max(scanned, minimum)
        var fingerprint = hash
        let found: Int? = buffer.withUnsafeBufferPointer { bytes in
            gear.withUnsafeBufferPointer { table in
                let normal = min(average, limit)
                while position < normal {
                    fingerprint = (fingerprint << 1) &+ table[Int(bytes[position])]
                    position += 1
                    if fingerprint & strictMask == 0 { return position }
                }
                while position < limit {
                    fingerprint = (fingerprint << 1) &+ table[Int(bytes[position])]
                    position += 1
                    if fingerprint & looseMask == 0 { return position }
                }
                return nil
            }
        }
        if let found { return found }
        if limit == maximum { return maximum }
        scanned = position
        hash = fingerprint
        return nil
    }
}
