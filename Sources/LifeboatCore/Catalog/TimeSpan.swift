import Foundation
import LifeboatErrors

/// A non-negative length of time written the way operators write it: `90s`, `15m`, `4h`, `1d`, `2w`, `1h30m`.
///
/// Used for RPO/RTO targets, retention windows and interval cadences. Months and years are
/// deliberately absent: their length varies, and a target must mean one exact number of seconds.
public struct TimeSpan: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public var seconds: Int64

    public init(seconds: Int64) {
        precondition(seconds >= 0, "a TimeSpan is never negative")
        self.seconds = seconds
    }

    public static func < (lhs: TimeSpan, rhs: TimeSpan) -> Bool { lhs.seconds < rhs.seconds }

    static let units: [(suffix: Character, seconds: Int64)] = [
        ("w", 604_800), ("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1),
    ]

    /// Why a text is not a duration; the message is shown to the user as is.
    public struct ParseError: Error, Sendable, Equatable {
        public var message: String
    }

    /// Parses `1h30m`-style text. Each unit may appear once, largest first.
    public init(parsing text: String) throws(ParseError) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed == "0" { self.init(seconds: 0); return }
        guard !trimmed.isEmpty else {
            throw ParseError(message: "empty duration; write a number and a unit, e.g. 15m, 4h, 1d")
        }
        var total: Int64 = 0
        var digits = ""
        var lastUnitIndex = -1
        for character in trimmed {
            if character.isASCII, character.isNumber {
                digits.append(character)
                continue
            }
            guard let unitIndex = Self.units.firstIndex(where: { $0.suffix == character }) else {
                throw ParseError(message: "'\(character)' is not a duration unit; use s, m, h, d or w (e.g. 15m, 4h, 1d)")
            }
            guard let value = Int64(digits) else {
                throw ParseError(message: "'\(trimmed)' has a unit without a number before it; write e.g. 15m or 1h30m")
            }
            guard unitIndex > lastUnitIndex else {
                throw ParseError(message: "'\(trimmed)' repeats a unit or puts a smaller one first; write the largest unit first, e.g. 1h30m")
            }
            let (product, overflow) = value.multipliedReportingOverflow(by: Self.units[unitIndex].seconds)
            guard !overflow, total <= Int64.max - product else {
                throw ParseError(message: "'\(trimmed)' is too long a duration")
            }
            total += product
            lastUnitIndex = unitIndex
            digits = ""
        }
        guard digits.isEmpty else {
            throw ParseError(message: "'\(trimmed)' ends in a number without a unit; add s, m, h, d or w (e.g. \(digits)m)")
        }
        self.init(seconds: total)
    }

    /// Canonical text, largest units first: 5400 s → `1h30m`, 0 → `0s`, 400 days → `400d`.
    public var description: String {
        guard seconds > 0 else { return "0s" }
        var rest = seconds
        var text = ""
        // Weeks only when exact: 400d reads better than 57w1d.
        let units = seconds % 604_800 == 0 ? Self.units : Array(Self.units.dropFirst())
        for unit in units where rest >= unit.seconds {
            text += "\(rest / unit.seconds)\(unit.suffix)"
            rest %= unit.seconds
        }
        return text
    }

    /// A measured duration for reports: sub-minute values keep one decimal (`4.2s`), longer ones
    /// use the canonical text (`1h30m`).
    public static func describe(seconds: Double) -> String {
        if seconds < 60 { return String(format: "%.1fs", max(0, seconds)) }
        return TimeSpan(seconds: Int64(seconds.rounded())).description
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do { try self.init(parsing: text) } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.message))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

extension TimeSpan.ParseError: LifeboatError {
    public var errorCode: String { "catalog.invalid_duration" }
    public var errorObject: String? { nil }
    public var errorMessage: String { message }
    public var description: String { message }
    public var exitStatus: ExitStatus { .usage }
}
