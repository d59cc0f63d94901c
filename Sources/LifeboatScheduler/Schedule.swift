import Foundation
import LifeboatCore

/// When a job is due, from the catalog's cadences: pure, so every instance computes the same slots.
///
/// Intervals count from the last run's start (`4h` = at most 4 h between two starts); cron entries
/// fire at their wall-clock minutes in `timeZone` (UTC unless the catalog names another). With
/// several cadences the earliest next time wins. `continuous` has no slots: it is a stream the
/// server keeps itself (PostgreSQL WAL archiving), not something the scheduler runs.
public struct Schedule: Sendable, Hashable {
    public var cadences: [Cadence]
    public var timeZone: TimeZone

    public init(_ cadences: [Cadence], timeZone: TimeZone = .utc) {
        self.cadences = cadences.filter { $0 != .continuous }
        self.timeZone = timeZone
    }

    /// True when no cadence gives slots (only `continuous`, or none).
    public var isEmpty: Bool { cadences.isEmpty }

    /// The next time the job is due after a run that started at `lastStart`; nil when it never is.
    /// Without a previous run the job is due at once (`now`): nothing proves it ever ran.
    public func nextDue(after lastStart: Date?, now: Date) -> Date? {
        guard let lastStart else { return isEmpty ? nil : now }
        return cadences.compactMap { $0.next(after: lastStart, timeZone: timeZone) }.min()
    }

    /// `every 4h`, `daily at 02:00`, joined with `+`.
    public var summary: String { cadences.map(\.summary).joined(separator: " + ") }
}

extension TimeZone {
    public static let utc = TimeZone(identifier: "UTC")!
}

extension Cadence {
    /// The first time strictly after `instant` this cadence fires; for an interval, `instant` + the
    /// interval; nil for `continuous` and for a cron expression that never fires (`0 0 30 2 *`).
    public func next(after instant: Date, timeZone: TimeZone = .utc) -> Date? {
        switch self {
        case .interval(let span): instant.addingTimeInterval(TimeInterval(span.seconds))
        case .cron(let schedule): schedule.next(after: instant, timeZone: timeZone)
        case .continuous: nil
        }
    }
}

extension CronSchedule {
    /// crontab(5)'s day rule: when both day fields are restricted a day matches either; otherwise
    /// the restricted one (or any day) decides.
    public func matchesDay(dayOfMonth: Int, dayOfWeek: Int) -> Bool {
        let byMonthDay = daysOfMonth.contains(dayOfMonth)
        let byWeekDay = daysOfWeek.contains(dayOfWeek % 7)
        switch (everyDayOfMonth, everyDayOfWeek) {
        case (true, true): return true
        case (true, false): return byWeekDay
        case (false, true): return byMonthDay
        case (false, false): return byMonthDay || byWeekDay
        }
    }

    /// The first minute strictly after `instant` that matches, in `timeZone`.
    ///
    /// Walks whole days (at most 8 years, enough for a `29 2` entry to come round), trying the
    /// matching hours and minutes of each matching day. A local time that a daylight-saving change
    /// skips does not fire that day; a time that occurs twice fires at its first occurrence.
    public func next(after instant: Date, timeZone: TimeZone = .utc) -> Date? {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let hours = self.hours.sorted()
        let minutes = self.minutes.sorted()
        guard var day = calendar.dateInterval(of: .day, for: instant)?.start else { return nil }
        for _ in 0..<(366 * 8 + 2) {
            let parts = calendar.dateComponents([.year, .month, .day, .weekday], from: day)
            if let year = parts.year, let month = parts.month, let dayOfMonth = parts.day, let weekday = parts.weekday,
               months.contains(month), matchesDay(dayOfMonth: dayOfMonth, dayOfWeek: weekday - 1) {
                for hour in hours {
                    for minute in minutes {
                        let wanted = DateComponents(year: year, month: month, day: dayOfMonth, hour: hour, minute: minute)
                        guard let candidate = calendar.date(from: wanted), candidate > instant else { continue }
                        // A skipped local time comes back shifted; it is not this entry's minute.
                        let back = calendar.dateComponents([.year, .month, .day, .hour, .minute], from: candidate)
                        guard back.hour == hour, back.minute == minute, back.day == dayOfMonth else { continue }
                        return candidate
                    }
                }
            }
            guard let following = calendar.date(byAdding: .day, value: 1, to: day) else { return nil }
            day = following
        }
        return nil
    }
}
