import Foundation

/// A WAL location, `X/Y` in PostgreSQL's notation.
public struct LSN: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var value: UInt64
    public init(_ value: UInt64) { self.value = value }

    public init?(_ text: String) {
        let parts = text.split(separator: "/")
        guard parts.count == 2, let high = UInt64(parts[0], radix: 16), let low = UInt64(parts[1], radix: 16),
              high <= UInt32.max, low <= UInt32.max else { return nil }
        value = high << 32 | low
    }

    public var description: String { String(value >> 32, radix: 16, uppercase: true) + "/" + String(value & 0xFFFF_FFFF, radix: 16, uppercase: true) }
    public static func < (lhs: LSN, rhs: LSN) -> Bool { lhs.value < rhs.value }
}

/// One WAL segment file: a timeline and a segment number, named as PostgreSQL names it.
public struct WALSegment: Sendable, Hashable, CustomStringConvertible {
    public var timeline: UInt32
    /// The absolute segment number (LSN / segment size).
    public var number: UInt64
    public var segmentSize: UInt64

    public init(timeline: UInt32, number: UInt64, segmentSize: UInt64) {
        self.timeline = timeline
        self.number = number
        self.segmentSize = segmentSize
    }

    /// The segment holding `lsn` (as `pg_walfile_name`: `0/4006808` on timeline 1 is `000000010000000000000004`).
    public init(timeline: UInt32, containing lsn: LSN, segmentSize: UInt64) {
        self.init(timeline: timeline, number: lsn.value / segmentSize, segmentSize: segmentSize)
    }

    public init?(name: String, segmentSize: UInt64) {
        guard name.count == 24, let timeline = UInt32(name.prefix(8), radix: 16),
              let log = UInt64(name.dropFirst(8).prefix(8), radix: 16), let seg = UInt64(name.suffix(8), radix: 16) else { return nil }
        self.init(timeline: timeline, number: log * (0x1_0000_0000 / segmentSize) + seg, segmentSize: segmentSize)
    }

    public var name: String {
        let perLog = 0x1_0000_0000 / segmentSize
        return hex8(UInt64(timeline)) + hex8(number / perLog) + hex8(number % perLog)
    }

    public var description: String { name }
    public var startLSN: LSN { LSN(number * segmentSize) }
}

func hex8(_ value: UInt64) -> String {
    let text = String(value, radix: 16, uppercase: true)
    return String(repeating: "0", count: max(0, 8 - text.count)) + text
}

/// A timeline's ancestry, from its `<timeline>.history` file: each line is
/// `<parent timeline> <switch point LSN> <reason>`.
public struct TimelineHistory: Sendable, Hashable {
    /// Where each timeline of the ancestry begins, oldest first; the last entry is the timeline itself.
    public var timelines: [(timeline: UInt32, begins: LSN)] {
        var result: [(UInt32, LSN)] = []
        var begins = LSN(0)
        for entry in entries {
            result.append((entry.parent, begins))
            begins = entry.switchPoint
        }
        result.append((timeline, begins))
        return result
    }

    public var timeline: UInt32
    public var entries: [(parent: UInt32, switchPoint: LSN)]

    public static func == (lhs: TimelineHistory, rhs: TimelineHistory) -> Bool {
        lhs.timeline == rhs.timeline && lhs.entries.map(\.parent) == rhs.entries.map(\.parent)
            && lhs.entries.map(\.switchPoint) == rhs.entries.map(\.switchPoint)
    }
    public func hash(into hasher: inout Hasher) { hasher.combine(timeline) }

    /// A timeline without a history file: timeline 1, or one whose history was not archived.
    public init(timeline: UInt32) {
        self.timeline = timeline
        entries = []
    }

    public init?(timeline: UInt32, text: String) {
        self.timeline = timeline
        entries = []
        for line in text.split(separator: "\n") {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            let fields = trimmed.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 2, let parent = UInt32(fields[0]), let lsn = LSN(String(fields[1])) else { return nil }
            entries.append((parent, lsn))
        }
    }

    /// Whether `timeline` is in this ancestry and was still current at `lsn`.
    public func contains(timeline other: UInt32, at lsn: LSN) -> Bool {
        let list = timelines
        guard let index = list.firstIndex(where: { $0.timeline == other }) else { return false }
        let ends = index + 1 < list.count ? list[index + 1].begins : LSN(UInt64.max)
        return lsn < ends
    }

    /// The timeline recovery reads segment `number` from: the newest one that had begun by then
    /// (PostgreSQL reads the switch segment from the new timeline).
    public func timeline(forSegment number: UInt64, segmentSize: UInt64) -> UInt32 {
        timelines.last { $0.begins.value / segmentSize <= number }?.timeline ?? timeline
    }
}

/// The archived WAL a base backup can replay, without gaps.
public struct WALChain: Sendable, Hashable {
    /// The first segment recovery needs (where the base backup started).
    public var first: WALSegment
    /// The last segment of the unbroken run (nil when not even the first one is available).
    public var last: WALSegment?
    /// The first segment recovery would need next and that is not archived (nil: none is known
    /// to be missing because nothing newer is archived either).
    public var missing: WALSegment?
    /// The timeline recovery follows (`recovery_target_timeline = latest`).
    public var history: TimelineHistory

    /// Walks the archive from the base backup's start segment. Segments inside the base backup's
    /// own WAL range (`includedThrough`) count as present: the backup carries them. A gap is a
    /// missing segment only when something newer exists after it (otherwise the chain simply ends).
    /// This form follows the newest timeline that descends from the base backup's, as
    /// `recovery_target_timeline = 'latest'` would.
    public static func walk(
        archived names: Set<String>, histories: [TimelineHistory], baseTimeline: UInt32, start: LSN,
        includedThrough: LSN?, segmentSize: UInt64
    ) -> WALChain {
        let history = histories.sorted { $0.timeline > $1.timeline }.first { $0.contains(timeline: baseTimeline, at: start) }
            ?? TimelineHistory(timeline: baseTimeline)
        return walk(archived: names, history: history, start: start, includedThrough: includedThrough, segmentSize: segmentSize)
    }

    /// The chain along one timeline's ancestry (`recovery_target_timeline = '<its id>'`).
    public static func walk(
        archived names: Set<String>, history: TimelineHistory, start: LSN, includedThrough: LSN?, segmentSize: UInt64
    ) -> WALChain {
        let firstNumber = start.value / segmentSize
        let includedLast = includedThrough.map { $0.value / segmentSize }
        let segments = names.compactMap { WALSegment(name: $0, segmentSize: segmentSize) }
        let newest = segments.filter { history.contains(timeline: $0.timeline, at: $0.startLSN) || $0.timeline == history.timeline }
            .map(\.number).max()
        func segment(_ number: UInt64) -> WALSegment {
            WALSegment(timeline: history.timeline(forSegment: number, segmentSize: segmentSize), number: number, segmentSize: segmentSize)
        }
        var number = firstNumber
        var last: WALSegment?
        while true {
            let candidate = segment(number)
            let carried = includedLast.map { number <= $0 } ?? false
            if names.contains(candidate.name) || carried {
                last = candidate
                number += 1
                continue
            }
            let somethingLater = (newest ?? 0) > number
            return WALChain(first: segment(firstNumber), last: last, missing: somethingLater ? candidate : nil, history: history)
        }
    }
}

extension LSN: Codable {
    /// As PostgreSQL writes it: `0/3000148`.
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let lsn = LSN(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not an LSN: \(text)"))
        }
        self = lsn
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
