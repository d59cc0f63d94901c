import Foundation
import Testing
import LifeboatStorage

/// `readBlock` is how `put` and the PostgreSQL streams read their input (Foundation's own read
/// makes a system call per 4 KiB): whole blocks, a short one only at the end, nil after it.
@Suite struct BlockReadingTests {
    @Test func aFileComesBackInWholeBlocksThenTheRestThenNil() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("blocks-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: url) }
        let bytes = Data((0..<(3 * 65_536 + 1_234)).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        try bytes.write(to: url)
        let handle = try FileHandle(forReadingFrom: url)
        defer { try? handle.close() }
        var blocks: [Data] = []
        while let block = try handle.readBlock(upToCount: 65_536) { blocks.append(block) }
        #expect(blocks.map(\.count) == [65_536, 65_536, 65_536, 1_234])
        #expect(blocks.reduce(Data(), +) == bytes)
        #expect(try handle.readBlock(upToCount: 65_536) == nil)
    }

    /// A pipe delivers what was written so far; a block still fills up until the writer closes.
    @Test func aPipeFillsEachBlockAcrossSmallWrites() async throws {
        let pipe = Pipe()
        let writer = pipe.fileHandleForWriting
        let written = Data((0..<10_000).map { UInt8(truncatingIfNeeded: $0) })
        let feeding = Thread {
            for start in stride(from: 0, to: written.count, by: 999) {
                writer.write(written[start..<min(start + 999, written.count)])
                usleep(1_000)
            }
            try? writer.close()
        }
        feeding.start()
        var blocks: [Data] = []
        while let block = try pipe.fileHandleForReading.readBlock(upToCount: 4_096) { blocks.append(block) }
        #expect(blocks.map(\.count) == [4_096, 4_096, 1_808])
        #expect(blocks.reduce(Data(), +) == written)
    }
}
