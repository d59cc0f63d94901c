import Crypto
import Foundation
import Testing
@testable import LifeboatConnectors

/// The gateway's snapshot framing and etcd's SHA-256 trailer, byte by byte.
@Suite struct EtcdSnapshotFormatTests {
    /// A stand-in bolt file (two 512-byte pages) with etcd's trailer appended.
    static func snapshotBytes(seed: UInt8 = 1) -> Data {
        let body = Data((0..<1024).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ Int(seed)) })
        return body + Data(SHA256.hash(data: body))
    }

    /// The gateway's reply for `bytes`: blobs of `blobSize`, the trailer as its own last blob.
    /// etcd 3.5 writes `remaining_bytes` before `blob`; `blobFirst` tries the other order.
    static func gatewayReply(_ bytes: Data, blobSize: Int = 300, blobFirst: Bool = false) -> Data {
        var blobs: [Data] = []
        var offset = 0
        let content = bytes.count - 32
        while offset < content {
            blobs.append(bytes[offset..<min(offset + blobSize, content)])
            offset += blobSize
        }
        blobs.append(bytes.suffix(32))
        var remaining = bytes.count
        var reply = ""
        for blob in blobs {
            remaining -= blob.count
            let blobField = #""blob":"\#(blob.base64EncodedString())""#
            let remainingField = remaining > 0 ? #""remaining_bytes":"\#(remaining)""# : nil
            let fields = blobFirst ? [blobField, remainingField] : [remainingField, blobField]
            reply += #"{"result":{"# + fields.compactMap { $0 }.joined(separator: ",") + "}}\n"
        }
        return Data(reply.utf8)
    }

    static func decode(_ reply: Data, feed: Int) throws -> (Data, EtcdSnapshotTrailer) {
        var lines = EtcdSnapshotLines()
        var trailer = EtcdSnapshotTrailer()
        var output = Data()
        var offset = 0
        while offset < reply.count {
            lines.append(reply[offset..<min(offset + feed, reply.count)])
            offset += feed
            while let blob = try lines.next() { output.append(blob); trailer.update(blob) }
        }
        while let blob = try lines.finish() { output.append(blob); trailer.update(blob) }
        return (output, trailer)
    }

    @Test(arguments: [1, 7, 64, 100_000], [false, true])
    func linesDecodeWhateverTheNetworkSplits(feed: Int, blobFirst: Bool) throws {
        let bytes = Self.snapshotBytes()
        let (output, trailer) = try Self.decode(Self.gatewayReply(bytes, blobFirst: blobFirst), feed: feed)
        #expect(output == bytes)
        #expect(throws: Never.self) { try trailer.verify("test") }
        #expect(trailer.trailerHex == bytes.suffix(32).map { String(format: "%02x", $0) }.joined())
    }

    @Test func aChangedByteFailsTheTrailer() throws {
        var bytes = Self.snapshotBytes()
        bytes[500] ^= 0x10
        let (_, trailer) = try Self.decode(Self.gatewayReply(bytes), feed: 1000)
        let error = #expect(throws: EtcdError.self) { try trailer.verify("test") }
        #expect(error?.code == .damagedSnapshot)
    }

    @Test func aMissingTrailerOrAWrongSizeIsRefused() {
        var trailer = EtcdSnapshotTrailer()
        trailer.update(Self.snapshotBytes().prefix(1024))
        let error = #expect(throws: EtcdError.self) { try trailer.verify("raw db") }
        #expect(error?.message.contains("multiple of 512 plus 32") == true)
    }

    @Test func aStreamThatStopsEarlyIsRefused() throws {
        let reply = Self.gatewayReply(Self.snapshotBytes())
        let lines = reply.split(separator: UInt8(ascii: "\n"))
        let cut = Data(lines.dropLast(2).joined(separator: [UInt8(ascii: "\n")])) + Data("\n".utf8)
        let error = #expect(throws: EtcdError.self) { _ = try Self.decode(cut, feed: 4096) }
        #expect(error?.code == .damagedSnapshot)
        #expect(error?.message.contains("still to come") == true)
        #expect(throws: EtcdError.self) { _ = try Self.decode(Data(), feed: 10) }
    }

    @Test func anErrorLineIsEtcdsFailureAndAStrangeLineIsDamage() {
        let failed = Data(#"{"result":{"blob":"AAAA","remaining_bytes":"10"}}"#.utf8) + Data("\n".utf8)
            + Data(#"{"error":{"grpc_code":2,"http_code":500,"message":"auth: user name is empty","http_status":"Internal Server Error"}}"#.utf8)
        let error = #expect(throws: EtcdError.self) { _ = try Self.decode(failed, feed: 50) }
        #expect(error?.code == .server)
        #expect(error?.message.contains("user name is empty") == true)
        let strange = #expect(throws: EtcdError.self) { _ = try Self.decode(Data((#"{"result":{}}"# + "\n").utf8), feed: 50) }
        #expect(strange?.code == .damagedSnapshot)
    }

    @Test func prefixRangesIncrementTheLastByte() {
        #expect(EtcdSession.range(nil) == ("AA==", "AA=="))
        #expect(EtcdSession.range(Data("/app/".utf8)) == (Data("/app/".utf8).base64EncodedString(), Data("/app0".utf8).base64EncodedString()))
        #expect(EtcdSession.range(Data([0x61, 0xff])) == (Data([0x61, 0xff]).base64EncodedString(), Data([0x62]).base64EncodedString()))
    }
}

/// The bounded read-ahead between the snapshot stream and the repository.
@Suite struct ReadAheadTests {
    static func numbered(_ count: Int) -> AsyncStream<Data> {
        AsyncStream { continuation in
            for index in 0..<count { continuation.yield(Data("\(index)".utf8)) }
            continuation.finish()
        }
    }

    @Test func yieldsEveryBlockInOrder() async throws {
        let seen = try await withReadAhead(Self.numbered(500), limit: 3) { blocks in
            var seen: [String] = []
            for try await block in blocks { seen.append(String(decoding: block, as: UTF8.self)) }
            return seen
        }
        #expect(seen == (0..<500).map(String.init))
    }

    @Test func aConsumerThatStopsEarlyReleasesTheReader() async throws {
        struct Stop: Error {}
        await #expect(throws: Stop.self) {
            try await withReadAhead(Self.numbered(10_000), limit: 2) { blocks in
                var iterator = blocks.makeAsyncIterator()
                _ = try await iterator.next()
                throw Stop()
            }
        }
    }

    @Test func aReaderErrorReachesTheConsumer() async throws {
        let failing = AsyncThrowingStream<Data, any Error> { continuation in
            continuation.yield(Data("a".utf8))
            continuation.finish(throwing: EtcdError(.unreachable, "cut"))
        }
        let error = await #expect(throws: EtcdError.self) {
            try await withReadAhead(failing, limit: 4) { blocks in
                for try await _ in blocks {}
            }
        }
        #expect(error?.message == "cut")
    }
}
