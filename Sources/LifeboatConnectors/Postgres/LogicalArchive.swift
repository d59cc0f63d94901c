import Foundation

/// The artefact of a logical backup: the cluster's globals (`pg_dumpall --globals-only`) and one
/// `pg_dump -Fc -Z0` per database, in one stream (format `lifeboat-pglogical/1`):
///
///     "LBPGLOG1"                               8 bytes
///     per member:  u32 n, n bytes of JSON      the member header (LogicalMember)
///                  frames: u32 len, len bytes  len = 1 MiB except the last; len 0 ends the member
///     u32 0                                    end of archive
///
/// Frames are a fixed 1 MiB so the same dump frames the same way every night (chunks deduplicate);
/// pg_dump runs uncompressed because the repository compresses with zstd. All integers big-endian.
enum LogicalArchive {
    static let magic = Data("LBPGLOG1".utf8)
    static let frameSize = 1 << 20
    static let format = "lifeboat-pglogical/1"
    static let maximumHeader = 1 << 20

    static func uint32(_ value: Int) -> Data {
        withUnsafeBytes(of: UInt32(value).bigEndian) { Data($0) }
    }
}

/// One member's header.
struct LogicalMember: Codable, Sendable, Hashable {
    /// `globals` (SQL for psql) or `database` (pg_dump custom format for pg_restore).
    var type: String
    var database: String?
    /// When and at which LSN the member's snapshot was taken (databases only).
    var snapshotTime: String?
    var snapshotLSN: String?

    enum CodingKeys: String, CodingKey {
        case type, database, snapshotTime = "snapshot_time", snapshotLSN = "snapshot_lsn"
    }
}

/// Parses the archive as it streams out of the repository and hands each member's bytes on.
struct LogicalArchiveReader {
    enum Event {
        case begin(LogicalMember)
        case data(Data)
        case end
        case finished
    }

    private var buffer = Data()
    private var state = State.magic
    private enum State { case magic, headerLength, header(Int), frameLength, frame(Int), finished }

    /// Feeds bytes; returns the events they complete, in order.
    mutating func consume(_ data: Data) throws -> [Event] {
        buffer.append(data)
        var events: [Event] = []
        var offset = buffer.startIndex
        func available() -> Int { buffer.endIndex - offset }
        func take(_ count: Int) -> Data {
            defer { offset += count }
            return buffer[offset..<(offset + count)]
        }
        func length() -> Int {
            let bytes = take(4)
            return bytes.reduce(0) { $0 << 8 | Int($1) }
        }
        loop: while true {
            switch state {
            case .magic:
                guard available() >= 8 else { break loop }
                guard take(8) == LogicalArchive.magic else {
                    throw PostgresError(.wrongSnapshot, "logical backup", "not a \(LogicalArchive.format) archive (bad magic bytes)")
                }
                state = .headerLength
            case .headerLength:
                guard available() >= 4 else { break loop }
                let count = length()
                guard count <= LogicalArchive.maximumHeader else {
                    throw PostgresError(.wrongSnapshot, "logical backup", "a member header claims \(count) bytes")
                }
                if count == 0 {
                    state = .finished
                    events.append(.finished)
                } else {
                    state = .header(count)
                }
            case .header(let count):
                guard available() >= count else { break loop }
                guard let member = try? JSONDecoder().decode(LogicalMember.self, from: take(count)) else {
                    throw PostgresError(.wrongSnapshot, "logical backup", "a member header is not valid JSON")
                }
                events.append(.begin(member))
                state = .frameLength
            case .frameLength:
                guard available() >= 4 else { break loop }
                let count = length()
                guard count <= LogicalArchive.frameSize else {
                    throw PostgresError(.wrongSnapshot, "logical backup", "a frame claims \(count) bytes")
                }
                if count == 0 {
                    events.append(.end)
                    state = .headerLength
                } else {
                    state = .frame(count)
                }
            case .frame(let count):
                guard available() >= count else { break loop }
                events.append(.data(Data(take(count))))
                state = .frameLength
            case .finished:
                guard available() == 0 else {
                    throw PostgresError(.wrongSnapshot, "logical backup", "bytes after the end of the archive")
                }
                break loop
            }
        }
        buffer = Data(buffer[offset...])
        return events
    }

    var isFinished: Bool {
        if case .finished = state { return true }
        return false
    }
}
