import Foundation
import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOPosix

/// etcd's own snapshot RPC (`etcdserverpb.Maintenance/Snapshot`) over plaintext HTTP/2, the way
/// `etcdctl snapshot save` reads it. The JSON gateway carries the same bytes base64-encoded inside
/// JSON lines, which costs etcd and Lifeboat a CPU-second per 100 MB; this path does not.
///
/// Only what the snapshot needs is implemented: one server-streaming call, gRPC's length-prefixed
/// messages, and the two fields of `SnapshotResponse` that matter (3 `blob`, 2 `remaining_bytes`).
/// TLS endpoints keep using the gateway.
enum EtcdGRPCSnapshot {
    /// Runs `body` with the snapshot's blobs, in order, as etcd streams them; the sequence throws
    /// instead of ending when the call fails, the stream stops early, or the SHA-256 trailer does not
    /// match. The stream is read as `body` consumes it (HTTP/2 flow control holds etcd back).
    static func withSnapshot<T: Sendable>(
        endpoint: String, token: String?, _ body: (Blobs) async throws -> T
    ) async throws -> T {
        guard let url = URL(string: endpoint), url.scheme == "http", let host = url.host else {
            throw EtcdError(.invalidTarget, object: endpoint, "the snapshot RPC is read over plaintext HTTP/2 only")
        }
        let port = url.port ?? 2379
        var configuration = NIOHTTP2Handler.Configuration()
        // A wide window: etcd sends 32 KiB messages and should never wait for a window update on loopback.
        configuration.connection.initialSettings = [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: 4),
            HTTP2Setting(parameter: .initialWindowSize, value: 4 << 20),
            HTTP2Setting(parameter: .maxHeaderListSize, value: 1 << 16),
        ]
        configuration.connection.targetWindowSize = 8 << 20
        configuration.stream.targetWindowSize = 4 << 20
        let connection: Channel, multiplexer: NIOHTTP2Handler.AsyncStreamMultiplexer<Void>
        do {
            (connection, multiplexer) = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.seconds(5))
                .connect(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        // A stalled stream fails after two minutes without a byte, as the gateway's read timeout does.
                        try channel.pipeline.syncOperations.addHandlers([IdleStateHandler(readTimeout: .seconds(120)), CloseWhenIdle()])
                        return (channel, try channel.pipeline.syncOperations.configureAsyncHTTP2Pipeline(mode: .client, configuration: configuration) { stream in
                            stream.eventLoop.makeSucceededVoidFuture()
                        })
                    }
                }
        } catch {
            throw EtcdError(.unreachable, object: endpoint, "cannot open an HTTP/2 connection: \(error)")
        }
        let stream: NIOAsyncChannel<HTTP2Frame.FramePayload, HTTP2Frame.FramePayload>
        do {
            stream = try await multiplexer.openStream { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<HTTP2Frame.FramePayload, HTTP2Frame.FramePayload>(wrappingChannelSynchronously: channel)
                }
            }
        } catch {
            connection.close(promise: nil)
            throw EtcdError(.unreachable, object: endpoint, "cannot open the snapshot call: \(error)")
        }
        defer { connection.close(promise: nil) }
        do {
            return try await call(stream, host: host, port: port, token: token, endpoint: endpoint) { blobs in
                do { return try await body(blobs) } catch { throw BodyFailure(error: error) }
            }
        } catch let failure as BodyFailure {
            throw failure.error
        } catch let error as EtcdError {
            throw error
        } catch {
            // The transport failed (the peer does not speak HTTP/2, closed the connection, …).
            throw EtcdError(.unreachable, object: endpoint, "the snapshot call failed: \(error)")
        }
    }

    /// Closes the connection when `IdleStateHandler` reports no read for its timeout: the stream's
    /// reader then fails instead of waiting forever.
    final class CloseWhenIdle: ChannelInboundHandler, Sendable {
        typealias InboundIn = NIOAny
        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if event is IdleStateHandler.IdleStateEvent { context.close(promise: nil) } else { context.fireUserInboundEventTriggered(event) }
        }
    }

    /// What `body` threw, carried out untouched past the transport's own error mapping.
    struct BodyFailure: Error {
        let error: any Error
    }

    static func call<T: Sendable>(
        _ stream: NIOAsyncChannel<HTTP2Frame.FramePayload, HTTP2Frame.FramePayload>, host: String, port: Int, token: String?, endpoint: String,
        _ body: (Blobs) async throws -> T
    ) async throws -> T {
        try await stream.executeThenClose { inbound, outbound in
            var headers: HPACKHeaders = [
                ":method": "POST", ":scheme": "http", ":path": "/etcdserverpb.Maintenance/Snapshot",
                ":authority": host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)", "content-type": "application/grpc", "te": "trailers",
            ]
            // etcd reads the auth token from the call's metadata, under this name.
            if let token { headers.add(name: "token", value: token) }
            try await outbound.write(.headers(.init(headers: headers)))
            // An empty SnapshotRequest: no compression flag, zero length.
            try await outbound.write(.data(.init(data: .byteBuffer(ByteBuffer(bytes: [0, 0, 0, 0, 0])), endStream: true)))
            return try await body(Blobs(frames: inbound, endpoint: endpoint))
        }
    }

    /// The blobs of a snapshot call, decoded from its HTTP/2 frames.
    struct Blobs: AsyncSequence {
        typealias Element = Data
        let frames: NIOAsyncChannelInboundStream<HTTP2Frame.FramePayload>
        let endpoint: String

        func makeAsyncIterator() -> Iterator { Iterator(frames: frames.makeAsyncIterator(), endpoint: endpoint) }

        struct Iterator: AsyncIteratorProtocol {
            var frames: NIOAsyncChannelInboundStream<HTTP2Frame.FramePayload>.AsyncIterator
            let endpoint: String
            var messages = GRPCMessages()
            var trailer = EtcdSnapshotTrailer()
            var remaining: UInt64?
            var status: String?
            var done = false

            mutating func next() async throws -> Data? {
                while !done {
                    if let message = try messages.next() {
                        let response = try SnapshotResponse(message)
                        remaining = response.remainingBytes
                        guard let blob = response.blob, !blob.isEmpty else { continue }
                        trailer.update(blob)
                        return blob
                    }
                    let frame: HTTP2Frame.FramePayload?
                    do { frame = try await frames.next() } catch {
                        throw EtcdError(.unreachable, object: endpoint, "the snapshot stream broke after \(trailer.size) bytes: \(error)")
                    }
                    switch frame {
                    case .data(let data)?:
                        guard case .byteBuffer(let buffer) = data.data else { continue }
                        messages.append(buffer)
                    case .headers(let headers)?:
                        if let code = headers.headers.first(name: ":status"), code != "200" {
                            throw EtcdError(.server, object: endpoint, "the snapshot call answered HTTP \(code)")
                        }
                        // Trailers (or a trailers-only reply) carry the call's outcome.
                        if let grpcStatus = headers.headers.first(name: "grpc-status") {
                            status = grpcStatus
                            guard grpcStatus == "0" else {
                                let message = headers.headers.first(name: "grpc-message")?.removingPercentEncoding ?? ""
                                throw EtcdError(grpcStatus == "16" ? .authentication : .server, object: endpoint,
                                                "the snapshot call failed (gRPC status \(grpcStatus)): \(message)")
                            }
                        }
                        if headers.endStream { done = true }
                    case .rstStream(let reset)?:
                        throw EtcdError(.unreachable, object: endpoint, "etcd reset the snapshot stream (\(reset)) after \(trailer.size) bytes")
                    case nil:
                        done = true
                    default:
                        continue
                    }
                }
                if let message = try messages.next() {
                    let response = try SnapshotResponse(message)
                    if let blob = response.blob, !blob.isEmpty {
                        trailer.update(blob)
                        return blob
                    }
                }
                guard status == "0" else {
                    throw EtcdError(.unreachable, object: endpoint, "the snapshot stream ended after \(trailer.size) bytes without the call's status")
                }
                if let remaining, remaining != 0 {
                    throw EtcdError(.damagedSnapshot, object: endpoint, "the snapshot stream ended after \(trailer.size) bytes with \(remaining) still to come")
                }
                guard messages.isEmpty else {
                    throw EtcdError(.damagedSnapshot, object: endpoint, "the snapshot stream ended inside a message")
                }
                try trailer.verify("snapshot from \(endpoint)")
                return nil
            }
        }
    }
}

/// gRPC's framing: each message is a compressed flag byte, a 4-byte big-endian length, the message.
struct GRPCMessages {
    private var buffer = ByteBuffer()

    var isEmpty: Bool { buffer.readableBytes == 0 }

    mutating func append(_ bytes: ByteBuffer) {
        var bytes = bytes
        buffer.discardReadBytes()
        buffer.writeBuffer(&bytes)
    }

    /// The next complete message, or nil when more bytes are needed.
    mutating func next() throws(EtcdError) -> Data? {
        guard buffer.readableBytes >= 5,
              let flag = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self),
              let length = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt32.self) else { return nil }
        guard flag == 0 else { throw EtcdError(.server, "etcd sent a compressed gRPC message, which was not asked for") }
        // gRPC's default receive limit; etcd's snapshot messages are 32 KiB.
        guard length <= 4 << 20 else { throw EtcdError(.damagedSnapshot, "a gRPC message of \(length) bytes: not etcd's snapshot stream") }
        guard buffer.readableBytes >= 5 + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: 5)
        return Data(buffer.readBytes(length: Int(length)) ?? [])
    }
}

/// The fields of `etcdserverpb.SnapshotResponse` Lifeboat reads, from protobuf's wire format:
/// `remaining_bytes` (2, varint) and `blob` (3, bytes). The header (1) and version (4) are skipped.
struct SnapshotResponse {
    var remainingBytes: UInt64?
    var blob: Data?

    init(_ message: Data) throws(EtcdError) {
        var reader = ProtobufReader(bytes: message)
        while let (field, wireType) = try reader.key() {
            switch (field, wireType) {
            case (2, 0): remainingBytes = try reader.varint()
            case (3, 2): blob = try reader.lengthDelimited()
            default: try reader.skip(wireType)
            }
        }
    }
}

/// Just enough of protobuf's wire format to walk a message's fields.
struct ProtobufReader {
    let bytes: Data
    var position: Data.Index

    init(bytes: Data) {
        self.bytes = bytes
        position = bytes.startIndex
    }

    mutating func key() throws(EtcdError) -> (field: UInt64, wireType: UInt64)? {
        guard position < bytes.endIndex else { return nil }
        let key = try varint()
        return (key >> 3, key & 7)
    }

    mutating func varint() throws(EtcdError) -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while position < bytes.endIndex, shift < 64 {
            let byte = bytes[position]
            position += 1
            value |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
        }
        throw EtcdError(.damagedSnapshot, "a protobuf varint runs past its message")
    }

    mutating func lengthDelimited() throws(EtcdError) -> Data {
        let length = try varint()
        guard length <= UInt64(bytes.endIndex - position) else { throw EtcdError(.damagedSnapshot, "a protobuf field runs past its message") }
        let field = bytes[position..<(position + Int(length))]
        position += Int(length)
        return Data(field)
    }

    mutating func skip(_ wireType: UInt64) throws(EtcdError) {
        switch wireType {
        case 0: _ = try varint()
        case 1: try advance(8)
        case 2: _ = try lengthDelimited()
        case 5: try advance(4)
        default: throw EtcdError(.damagedSnapshot, "protobuf wire type \(wireType) is not in etcd's messages")
        }
    }

    private mutating func advance(_ count: Int) throws(EtcdError) {
        guard bytes.endIndex - position >= count else { throw EtcdError(.damagedSnapshot, "a protobuf field runs past its message") }
        position += count
    }
}
