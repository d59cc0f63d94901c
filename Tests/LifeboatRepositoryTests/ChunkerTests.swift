import Foundation
import LifeboatTesting
import Testing
@testable import LifeboatRepository

func randomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var generator = SeededGenerator(seed: seed)
    var bytes = [UInt8]()
    bytes.reserveCapacity(count + 8)
    while bytes.count < count { withUnsafeBytes(of: generator.next()) { bytes.append(contentsOf: $0) } }
    return Array(bytes.prefix(count))
}

@Suite struct ChunkerTests {
    /// Small sizes keep the tests fast; the algorithm is the same at 512 KiB / 1 MiB / 8 MiB.
    static let small = ChunkerParameters(minimumSize: 2 << 10, averageSize: 8 << 10, maximumSize: 64 << 10)
    static let gear = RepositoryKeys(masterSecret: .init(data: [UInt8](repeating: 7, count: 32)), repositoryID: "test").gearTable

    static func chunks(of data: [UInt8], blockSize: Int, parameters: ChunkerParameters = small) -> [[UInt8]] {
        var chunker = Chunker(parameters: parameters, gear: gear)
        var result: [[UInt8]] = []
        var offset = 0
        while offset < data.count {
            chunker.append(data[offset..<min(offset + blockSize, data.count)])
            offset += blockSize
            while let chunk = chunker.nextChunk() { result.append(chunk) }
        }
        while let chunk = chunker.finish() { result.append(chunk) }
        return result
    }

    @Test func chunksRebuildTheInputWithinBounds() {
        for seed in UInt64(0)..<20 {
            let data = randomBytes(Int.random(in: 0...600_000, using: &SeededGeneratorBox.shared.generator), seed: seed)
            let result = Self.chunks(of: data, blockSize: 4096)
            #expect(Array(result.joined()) == data, "seed \(seed)")
            for (index, chunk) in result.enumerated() {
                #expect(chunk.count <= Self.small.maximumSize)
                if index < result.count - 1 { #expect(chunk.count >= Self.small.minimumSize, "seed \(seed) chunk \(index)") }
            }
        }
    }

    @Test func boundariesDoNotDependOnHowTheInputArrives() {
        let data = randomBytes(400_000, seed: 42)
        let reference = Self.chunks(of: data, blockSize: 1 << 20)
        for blockSize in [1, 7, 512, 4096, 65_536, 100_003] where blockSize > 1 || data.count < 100_000 {
            #expect(Self.chunks(of: data, blockSize: blockSize) == reference, "block size \(blockSize)")
        }
        #expect(Self.chunks(of: Array(data.prefix(50_000)), blockSize: 1) == Self.chunks(of: Array(data.prefix(50_000)), blockSize: 50_000))
    }

    @Test func anInsertionOnlyDisturbsTheChunksAroundIt() {
        let data = randomBytes(1_000_000, seed: 9)
        var edited = data
        edited.insert(contentsOf: randomBytes(100, seed: 10), at: 300_000)
        let before = Set(Self.chunks(of: data, blockSize: 65_536))
        let after = Self.chunks(of: edited, blockSize: 65_536)
        let reused = after.filter { before.contains($0) }.reduce(0) { $0 + $1.count }
        // Everything but the chunk(s) around the insertion is found again.
        #expect(Double(reused) / Double(edited.count) > 0.85, "reused \(reused) of \(edited.count) bytes")
    }

    @Test func averageSizeIsNearTheTarget() {
        let result = Self.chunks(of: randomBytes(4_000_000, seed: 3), blockSize: 1 << 20)
        let mean = 4_000_000 / result.count
        #expect((6 << 10)...(14 << 10) ~= mean, "mean chunk \(mean) bytes for a target of 8 KiB")
    }

    @Test func emptyAndTinyInputs() {
        #expect(Self.chunks(of: [], blockSize: 10).isEmpty)
        #expect(Self.chunks(of: [1], blockSize: 10) == [[1]])
        let exactlyMinimum = randomBytes(Self.small.minimumSize, seed: 5)
        #expect(Self.chunks(of: exactlyMinimum, blockSize: 100) == [exactlyMinimum])
        // Input that never hits a cut point is split at the maximum.
        let zeros = [UInt8](repeating: 0, count: Self.small.maximumSize * 2 + 1)
        #expect(Self.chunks(of: zeros, blockSize: 10_000).map(\.count) == [Self.small.maximumSize, Self.small.maximumSize, 1])
    }

    @Test func theKeyDecidesTheBoundaries() {
        let data = randomBytes(300_000, seed: 11)
        let otherGear = RepositoryKeys(masterSecret: .init(data: [UInt8](repeating: 8, count: 32)), repositoryID: "test").gearTable
        var chunker = Chunker(parameters: Self.small, gear: otherGear)
        chunker.append(data)
        var other: [[UInt8]] = []
        while let chunk = chunker.nextChunk() { other.append(chunk) }
        while let chunk = chunker.finish() { other.append(chunk) }
        #expect(other.map(\.count) != Self.chunks(of: data, blockSize: 300_000).map(\.count))
    }
}

/// A shared seeded generator for picking input sizes.
final class SeededGeneratorBox: @unchecked Sendable {
    static let shared = SeededGeneratorBox()
    var generator = SeededGenerator(seed: 1)
}
