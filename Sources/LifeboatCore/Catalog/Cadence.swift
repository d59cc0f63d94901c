import Foundation

/// How often a store is backed up: an interval (`4h`), a cron schedule (`0 2 * * *`, `@daily`),
/// or `continuous` for streams such as PostgreSQL WAL archiving.
public enum Cadence: Sendable, Hashable {
    case interval(TimeSpan)
    case cron(CronSchedule)
    case continuous

    public init(parsing text: String) throws(TimeSpan.ParseError) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed == "continuous" { self = .continuous; return }
        if trimmed.hasPrefix("@") || trimmed.contains(" ") {
            self = .cron(try CronSchedule(parsing: trimmed))
            return
        }
        let span: TimeSpan
        do { span = try TimeSpan(parsing: trimmed) } catch {
            throw TimeSpan.ParseError(message: "'\(trimmed)' is neither an interval (e.g. 15m, 4h) nor a cron expression (e.g. '0 2 * * *', @daily), nor 'continuous'")
        }
        guard span.seconds > 0 else {
            throw TimeSpan.ParseError(message: "an interval cadence must be longer than 0s")
        }
        self = .interval(span)
    }

    /// The longest time between two runs, when it is known exactly (used to check a cadence against the RPO).
    public var longestGap: TimeSpan? {
        switch self {
        case .interval(let span): span
        case .cron(let schedule): schedule.longestGap
        case .continuous: nil
        }
    }

    /// The schedule in catalog syntax, canonicalised (`4h`, `0 2 * * *`, `continuous`).
    public var expression: String {
        switch self {
        case .interval(let span): span.description
        case .cron(let schedule): schedule.expression
        case .continuous: "continuous"
        }
    }

    /// A sentence for people: `every 4h`, `daily at 02:00`, `continuous`.
    public var summary: String {
        switch self {
        case .interval(let span): "every \(span)"
        case .cron(let schedule): schedule.summary
        case .continuous: "continuous"
        }
    }
}

/// A five-field cron schedule (minute hour day-of-month month day-of-week), as in crontab(5).
public struct CronSchedule: Sendable, Hashable {
    public var expression: String
    public var minutes: Set<Int>
    public var hours: Set<Int>
    public var daysOfMonth: Set<Int>
    public var months: Set<Int>
    /// 0 = Sunday … 6 = Saturday (7 is folded into 0).
    public var daysOfWeek: Set<Int>
    /// Whether the day fields were `*`; crontab ORs the two day fields only when both are restricted.
    public var everyDayOfMonth: Bool
    public var everyDayOfWeek: Bool

    static let macros: [String: String] = [
        "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
        "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
    ]
    static let monthNames = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    static let dayNames = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]

    public init(parsing text: String) throws(TimeSpan.ParseError) {
        let expanded: String
        if text.hasPrefix("@") {
            guard let macro = Self.macros[text.lowercased()] else {
                throw TimeSpan.ParseError(message: "'\(text)' is not a cron macro; use one of \(Self.macros.keys.sorted().joined(separator: ", "))")
            }
            expanded = macro
        } else {
            expanded = text
        }
        let fields = expanded.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        guard fields.count == 5 else {
            throw TimeSpan.ParseError(message: "cron expression '\(text)' has \(fields.count) fields; it needs 5: minute hour day-of-month month day-of-week")
        }
        expression = text
        minutes = try Self.parseField(fields[0], name: "minute", range: 0...59, names: [])
        hours = try Self.parseField(fields[1], name: "hour", range: 0...23, names: [])
        daysOfMonth = try Self.parseField(fields[2], name: "day-of-month", range: 1...31, names: [])
        months = try Self.parseField(fields[3], name: "month", range: 1...12, names: Self.monthNames, firstNameValue: 1)
        let weekdays = try Self.parseField(fields[4], name: "day-of-week", range: 0...7, names: Self.dayNames)
        daysOfWeek = Set(weekdays.map { $0 % 7 })
        everyDayOfMonth = fields[2] == "*"
        everyDayOfWeek = fields[4] == "*"
    }

    private static func parseField(
        _ field: String, name: String, range: ClosedRange<Int>, names: [String], firstNameValue: Int = 0
    ) throws(TimeSpan.ParseError) -> Set<Int> {
        func value(_ token: Substring) throws(TimeSpan.ParseError) -> Int {
            if let number = Int(token) {
                guard range.contains(number) else {
                    throw TimeSpan.ParseError(message: "cron \(name) field: \(number) is out of range \(range.lowerBound)-\(range.upperBound)")
                }
                return number
            }
            if let index = names.firstIndex(of: token.lowercased()) { return index + firstNameValue }
            throw TimeSpan.ParseError(message: "cron \(name) field: '\(token)' is not a number in \(range.lowerBound)-\(range.upperBound)")
        }
        var result = Set<Int>()
        for item in field.split(separator: ",", omittingEmptySubsequences: false) {
            let parts = item.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
            var step = 1
            if parts.count == 2 {
                guard let parsed = Int(parts[1]), parsed > 0 else {
                    throw TimeSpan.ParseError(message: "cron \(name) field: step '\(parts[1])' must be a positive number")
                }
                step = parsed
            }
            let base = parts[0]
            let lower: Int
            let upper: Int
            if base == "*" {
                (lower, upper) = (range.lowerBound, range.upperBound)
            } else if let dash = base.firstIndex(of: "-") {
                lower = try value(base[..<dash])
                upper = try value(base[base.index(after: dash)...])
                guard lower <= upper else {
                    throw TimeSpan.ParseError(message: "cron \(name) field: range '\(base)' runs backwards")
                }
            } else {
                guard !base.isEmpty else {
                    throw TimeSpan.ParseError(message: "cron \(name) field '\(field)' has an empty item")
                }
                lower = try value(base)
                upper = parts.count == 2 ? range.upperBound : lower
            }
            result.formUnion(stride(from: lower, through: upper, by: step))
        }
        return result
    }

    /// Minutes after midnight at which the schedule fires, when it fires the same way every day;
    /// nil when the day or month fields restrict it, because then gaps depend on the calendar.
    private var dailyFirings: [Int]? {
        guard everyDayOfMonth, everyDayOfWeek, months.count == 12 else { return nil }
        return hours.sorted().flatMap { hour in minutes.sorted().map { hour * 60 + $0 } }
    }

    /// Gaps in minutes between consecutive firings over one day, wrapping past midnight.
    private var dailyGaps: [Int]? {
        guard let firings = dailyFirings, let first = firings.first, let last = firings.last else { return nil }
        return zip(firings, firings.dropFirst()).map { $1 - $0 } + [first + 24 * 60 - last]
    }

    /// The longest gap between runs for schedules that fire every day; nil otherwise.
    public var longestGap: TimeSpan? {
        dailyGaps?.max().map { TimeSpan(seconds: Int64($0) * 60) }
    }

    /// A short human description where one is obvious; the expression itself otherwise.
    public var summary: String {
        guard let firings = dailyFirings, let gaps = dailyGaps, let first = firings.first else {
            return "cron '\(expression)'"
        }
        if firings.count == 1 {
            return "daily at " + String(format: "%02d:%02d", first / 60, first % 60)
        }
        guard Set(gaps).count == 1, let gap = gaps.first else { return "cron '\(expression)'" }
        if gap == 60 { return "hourly at :" + String(format: "%02d", first % 60) }
        return "every \(TimeSpan(seconds: Int64(gap) * 60))"
    }
}
