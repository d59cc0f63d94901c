import Crypto
import Foundation
import NIOCore
import NIOHPACK
import NIOHTTP2
import Testing
@testable import LifeboatConnectors

/// The snapshot RPC's decoding, frame by frame: gRPC's message framing split anywhere by HTTP/2,
/// protobuf's fields, the call's status in the trailers, and etcd's SHA-256 trailer at the end.
@Suite struct EtcdGRPCSnapshotTests {
    /// One `SnapshotResponse` on the wire: a header (skipped), remaining_bytes, the blob, a version.
    static func message(blob: Data, remaining: UInt64) -> [UInt8] {
        func varint(_ value: UInt64) -> [UInt8] {
            var value = value, bytes: [UInt8] = []
            repeat {
                let low = UInt8(value & 0x7F)
                value >>= 7
                bytes.append(value == 0 ? low : low | 0x80)
            } while value != 0
            return bytes
        }
        let header: [UInt8] = [0x08, 0x96, 0x01, 0x10, 0x05]   // cluster_id, member_id varints
        var body: [UInt8] = [0x0A] + varint(UInt64(header.count)) + header
        body += [0x10] + varint(remaining)
        body += [0x1A] + varint(UInt64(blob.count)) + Array(blob)
        body += [0x22, 0x05] + Array("3.5.1".utf8)
        return [0] + withUnsafeBytes(of: UInt32(body.count).bigEndian, Array.init) + body
    }

    /// The frames of a whole call for `snapshot`, cut into DATA frames of `frameSize` bytes.
    static func frames(_ snapshot: Data, blobSize: Int = 300, frameSize: Int, status: String? = "0") -> [HTTP2Frame.FramePayload] {
        var wire: [UInt8] = []
        var offset = 0
        while offset < snapshot.count {
            let end = min(offset + blobSize, snapshot.count)
            wire += message(blob: snapshot[offset..<end], remaining: UInt64(snapshot.count - end))
            offset = end
        }
        var frames: [HTTP2Frame.FramePayload] = [.headers(.init(headers: [":status": "200", "content-type": "application/grpc"]))]
        for start in stride(from: 0, to: wire.count, by: frameSize) {
            frames.append(.data(.init(data: .byteBuffer(ByteBuffer(bytes: wire[start..<min(start + frameSize, wire.count)])))))
        }
        if let status { frames.append(.headers(.init(headers: ["grpc-status": status, "grpc-message": "etcdserver:%20user%20name%20is%20empty"], endStream: true))) }
        return frames
    }

    static func read(_ frames: [HTTP2Frame.FramePayload]) async throws -> Data {
        let (stream, source) = NIOAsyncChannelInboundStream<HTTP2Frame.FramePayload>.makeTestingStream()
        for frame in frames { source.yield(frame) }
        source.finish()
        var received = Data()
        for try await blob in EtcdGRPCSnapshot.Blobs(frames: stream, endpoint: "http://etcd:2379") { received += blob }
        return received
    }

    @Test(arguments: [1, 7, 64, 333, 5000])
    func blobsComeBackWhateverTheFramesSplit(frameSize: Int) async throws {
        let snapshot = EtcdSnapshotFormatTests.snapshotBytes()
        #expect(try await Self.read(Self.frames(snapshot, frameSize: frameSize)) == snapshot)
    }

    @Test func aChangedByteFailsTheTrailer() async throws {
        var snapshot = EtcdSnapshotFormatTests.snapshotBytes()
        snapshot[700] ^= 0x01
        let error = await #expect(throws: EtcdError.self) { try await Self.read(Self.frames(snapshot, frameSize: 100)) }
        #expect(error?.code == .damagedSnapshot && error?.message.contains("does not match") == true, "\(String(describing: error))")
    }

    @Test func aCallWithoutItsStatusIsCutOffNotComplete() async throws {
        let snapshot = EtcdSnapshotFormatTests.snapshotBytes()
        let error = await #expect(throws: EtcdError.self) { try await Self.read(Self.frames(snapshot, frameSize: 100, status: nil)) }
        #expect(error?.code == .unreachable && error?.message.contains("without the call's status") == true, "\(String(describing: error))")
    }

    @Test func aFailedCallSaysWhyAndAnUnauthenticatedOneIsAnAuthenticationError() async throws {
        let snapshot = EtcdSnapshotFormatTests.snapshotBytes()
        let error = await #expect(throws: EtcdError.self) { try await Self.read(Self.frames(snapshot, frameSize: 100, status: "16")) }
        #expect(error?.code == .authentication && error?.message.contains("user name is empty") == true, "\(String(describing: error))")
        let other = await #expect(throws: EtcdError.self) { try await Self.read(Self.frames(snapshot, frameSize: 100, status: "14")) }
        #expect(other?.code == .server && other?.message.contains("gRPC status 14") == true)
    }

    @Test func protobufThatRunsPastItsMessageIsDamage() {
        #expect(throws: EtcdError.self) { try SnapshotResponse(Data([0x1A, 0x10, 0x01])) }
        #expect(throws: EtcdError.self) { try SnapshotResponse(Data([0x10, 0xFF])) }
        #expect(throws: EtcdError.self) { try SnapshotResponse(Data([0x0B])) }   // wire type 3: not in etcd's messages
    }
}

/// The same decoder against what a broken or foreign peer sends.
@Suite struct EtcdGRPCSnapshotDamageTests {
    typealias Frames = EtcdGRPCSnapshotTests

    static func expectFailure(_ frames: [HTTP2Frame.FramePayload], code: EtcdError.Code, _ text: String,
                              sourceLocation: SourceLocation = #_sourceLocation) async {
        let error = await #expect(throws: EtcdError.self, sourceLocation: sourceLocation) { try await Frames.read(frames) }
        #expect(error?.code == code && error?.message.contains(text) == true, "\(String(describing: error))", sourceLocation: sourceLocation)
    }

    @Test func aStreamEndingInsideAMessageIsDamage() async {
        var frames = Frames.frames(EtcdSnapshotFormatTests.snapshotBytes(), frameSize: 5000, status: nil)
        // Half a message after the last whole one, then a successful status.
        frames.append(.data(.init(data: .byteBuffer(ByteBuffer(bytes: [0, 0, 0, 0, 40, 0x1A, 0x26])))))
        frames.append(.headers(.init(headers: ["grpc-status": "0"], endStream: true)))
        await Self.expectFailure(frames, code: .damagedSnapshot, "ended inside a message")
    }

    @Test func bytesStillToComeAtTheEndAreDamage() async {
        // A call that says it succeeded, but whose last message announced more.
        let snapshot = EtcdSnapshotFormatTests.snapshotBytes()
        var frames: [HTTP2Frame.FramePayload] = [.headers(.init(headers: [":status": "200"]))]
        frames.append(.data(.init(data: .byteBuffer(ByteBuffer(bytes: Frames.message(blob: snapshot, remaining: 4096))))))
        frames.append(.headers(.init(headers: ["grpc-status": "0"], endStream: true)))
        await Self.expectFailure(frames, code: .damagedSnapshot, "4096 still to come")
    }

    @Test func aResetStreamAHTTPErrorAndForeignFramingAreRefused() async {
        let snapshot = EtcdSnapshotFormatTests.snapshotBytes()
        var reset = Array(Frames.frames(snapshot, frameSize: 200, status: nil).prefix(3))
        reset.append(.rstStream(.cancel))
        await Self.expectFailure(reset, code: .unreachable, "reset the snapshot stream")
        await Self.expectFailure([.headers(.init(headers: [":status": "415"]))], code: .server, "HTTP 415")
        let compressed: [HTTP2Frame.FramePayload] = [.data(.init(data: .byteBuffer(ByteBuffer(bytes: [1, 0, 0, 0, 1, 0]))))]
        await Self.expectFailure(compressed, code: .server, "compressed")
        let huge: [HTTP2Frame.FramePayload] = [.data(.init(data: .byteBuffer(ByteBuffer(bytes: [0, 0x7F, 0xFF, 0xFF, 0xFF]))))]
        await Self.expectFailure(huge, code: .damagedSnapshot, "not etcd's snapshot stream")
    }
}
