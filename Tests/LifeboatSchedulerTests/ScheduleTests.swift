import Foundation
import LifeboatCore
import LifeboatTesting
import Testing
@testable import LifeboatScheduler

func utc(_ text: String) -> Date {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime]
    return formatter.date(from: text)!
}

func cron(_ text: String) -> CronSchedule { try! CronSchedule(parsing: text) }

/// The next-due computation, against examples and against a minute-by-minute search.
@Suite struct ScheduleTests {
    static let cases = 300

    /// Whether `date` is a minute `schedule` fires at, in UTC, computed from the epoch seconds
    /// directly (civil-from-days), independent of the code under test and fast enough to search.
    static func matches(_ schedule: CronSchedule, _ date: Date) -> Bool {
        let seconds = date.timeIntervalSince1970
        guard seconds == seconds.rounded(.down), Int64(seconds) % 60 == 0 else { return false }
        let total = Int64(seconds)
        let days = total >= 0 ? total / 86_400 : (total - 86_399) / 86_400
        let secondOfDay = total - days * 86_400
        let (hour, minute) = (Int(secondOfDay / 3600), Int(secondOfDay % 3600 / 60))
        let weekday = Int(((days % 7) + 7 + 4) % 7)  // 1970-01-01 was a Thursday
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = Int(doy - (153 * mp + 2) / 5 + 1)
        let month = Int(mp < 10 ? mp + 3 : mp - 9)
        return schedule.minutes.contains(minute) && schedule.hours.contains(hour) && schedule.months.contains(month)
            && schedule.matchesDay(dayOfMonth: day, dayOfWeek: weekday)
    }

    /// A random field: `*`, a value, a list, a range or a step, within `range`.
    static func field(_ range: ClosedRange<Int>, dense: Bool, using generator: inout SeededGenerator) -> String {
        switch Int.random(in: 0..<(dense ? 3 : 5), using: &generator) {
        case 0: return "*"
        case 1: return "*/\(Int.random(in: 1...max(1, (range.upperBound - range.lowerBound) / 2), using: &generator))"
        case 2:
            let count = Int.random(in: 1...4, using: &generator)
            return Set((0..<count).map { _ in Int.random(in: range, using: &generator) }).sorted().map(String.init).joined(separator: ",")
        case 3:
            let low = Int.random(in: range, using: &generator)
            return "\(low)-\(Int.random(in: low...range.upperBound, using: &generator))"
        default:
            return String(Int.random(in: range, using: &generator))
        }
    }

    static func randomCron(dense: Bool, using generator: inout SeededGenerator) -> CronSchedule {
        let text = [field(0...59, dense: false, using: &generator), field(0...23, dense: dense, using: &generator),
                    field(1...31, dense: dense, using: &generator), dense ? "*" : field(1...12, dense: false, using: &generator),
                    field(0...6, dense: dense, using: &generator)].joined(separator: " ")
        return cron(text)
    }

    @Test func cronNextIsTheFirstMatchingMinuteAfter() {
        var generator = SeededGenerator(seed: 14)
        for index in 0..<Self.cases {
            let schedule = Self.randomCron(dense: true, using: &generator)
            let instant = Date(timeIntervalSince1970: Double(Int.random(in: 1_600_000_000...1_900_000_000, using: &generator))
                               + Double(Int.random(in: 0..<1000, using: &generator)) / 1024)
            guard let next = schedule.next(after: instant) else {
                Issue.record("\(schedule.expression) never fires after \(instant) (case \(index))")
                continue
            }
            #expect(next > instant, "\(schedule.expression) after \(instant)")
            #expect(Self.matches(schedule, next), "\(schedule.expression): \(next) is not one of its minutes")
            // No minute in between fires (searched minute by minute; dense schedules keep it short).
            var minute = Date(timeIntervalSince1970: (instant.timeIntervalSince1970 / 60).rounded(.down) * 60 + 60)
            var searched = 0
            while minute < next, searched < 60 * 24 * 8 {
                #expect(!Self.matches(schedule, minute), "\(schedule.expression) fires at \(minute), before \(next)")
                minute += 60
                searched += 1
            }
        }
    }

    @Test func cronNextIsStableUntilTheSlotComes() {
        var generator = SeededGenerator(seed: 41)
        for _ in 0..<Self.cases {
            let schedule = Self.randomCron(dense: false, using: &generator)
            let instant = Date(timeIntervalSince1970: Double(Int.random(in: 1_600_000_000...1_900_000_000, using: &generator)))
            guard let next = schedule.next(after: instant) else { continue }
            #expect(Self.matches(schedule, next), "\(schedule.expression)")
            // Asking again from any moment before the slot gives the same slot; from the slot, a later one.
            let between = instant.addingTimeInterval(Double.random(in: 0..<1, using: &generator) * next.timeIntervalSince(instant))
            #expect(schedule.next(after: between) == next, "\(schedule.expression) from \(between)")
            if let after = schedule.next(after: next) { #expect(after > next) }
        }
    }

    @Test func cronExamples() {
        #expect(cron("0 2 * * *").next(after: utc("2026-01-01T02:00:00Z")) == utc("2026-01-02T02:00:00Z"))
        #expect(cron("0 2 * * *").next(after: utc("2026-01-01T01:59:59Z")) == utc("2026-01-01T02:00:00Z"))
        #expect(cron("@monthly").next(after: utc("2026-01-31T12:00:00Z")) == utc("2026-02-01T00:00:00Z"))
        #expect(cron("*/15 * * * *").next(after: utc("2026-03-01T10:07:00Z")) == utc("2026-03-01T10:15:00Z"))
        // 29 February comes round in the next leap year; 30 February never.
        #expect(cron("0 0 29 2 *").next(after: utc("2026-03-01T00:00:00Z")) == utc("2028-02-29T00:00:00Z"))
        #expect(cron("0 0 30 2 *").next(after: utc("2026-03-01T00:00:00Z")) == nil)
        // Both day fields restricted: either matches (1 June 2026 is a Monday; 2 June is not the 1st).
        #expect(cron("0 0 1 * tue").next(after: utc("2026-05-31T12:00:00Z")) == utc("2026-06-01T00:00:00Z"))
        #expect(cron("0 0 1 * tue").next(after: utc("2026-06-01T00:00:00Z")) == utc("2026-06-02T00:00:00Z"))
        // Only the day of week restricted: the day of month does not matter.
        #expect(cron("0 3 * * sun").next(after: utc("2026-06-01T00:00:00Z")) == utc("2026-06-07T03:00:00Z"))
    }

    @Test func cronInATimeZoneAcrossDaylightSaving() {
        let berlin = TimeZone(identifier: "Europe/Berlin")!
        // 29 March 2026: 02:00 → 03:00 in Berlin, so 02:30 does not exist that day and does not fire.
        #expect(cron("30 2 * * *").next(after: utc("2026-03-28T02:00:00Z"), timeZone: berlin) == utc("2026-03-30T00:30:00Z"))
        // 25 October 2026: 02:30 happens twice; it fires once, at the first (CEST, 00:30 UTC).
        let first = cron("30 2 * * *").next(after: utc("2026-10-24T12:00:00Z"), timeZone: berlin)
        #expect(first == utc("2026-10-25T00:30:00Z"))
        #expect(cron("30 2 * * *").next(after: first!, timeZone: berlin) == utc("2026-10-26T01:30:00Z"))
        // A plain daily entry is at local time: 02:00 Berlin is 01:00 UTC in winter.
        #expect(cron("0 2 * * *").next(after: utc("2026-01-10T00:00:00Z"), timeZone: berlin) == utc("2026-01-10T01:00:00Z"))
    }

    @Test func scheduleFromCadences() throws {
        let now = utc("2026-05-05T10:00:00Z")
        // Never ran: due at once. An interval counts from the last start.
        let fourHours = Schedule([.interval(TimeSpan(seconds: 4 * 3600))])
        #expect(fourHours.nextDue(after: nil, now: now) == now)
        #expect(fourHours.nextDue(after: utc("2026-05-05T09:00:00Z"), now: now) == utc("2026-05-05T13:00:00Z"))
        // Continuous gives no slot, alone or beside a base backup's cron entry (which then decides).
        #expect(Schedule([.continuous]).isEmpty)
        #expect(Schedule([.continuous]).nextDue(after: nil, now: now) == nil)
        let base = Schedule([.continuous, try Cadence(parsing: "0 2 * * *")])
        #expect(base.nextDue(after: utc("2026-05-05T02:00:00Z"), now: now) == utc("2026-05-06T02:00:00Z"))
        // Several cadences: the earliest wins.
        let both = Schedule([try Cadence(parsing: "0 2 * * *"), .interval(TimeSpan(seconds: 3600))])
        #expect(both.nextDue(after: utc("2026-05-05T01:30:00Z"), now: now) == utc("2026-05-05T02:00:00Z"))
        #expect(both.nextDue(after: utc("2026-05-05T02:00:00Z"), now: now) == utc("2026-05-05T03:00:00Z"))
    }

    @Test func intervalsAndListsAgreeWithTheirParts() {
        var generator = SeededGenerator(seed: 7)
        for _ in 0..<Self.cases {
            let span = TimeSpan(seconds: Int64.random(in: 1...200_000, using: &generator))
            let schedule = Self.randomCron(dense: false, using: &generator)
            let last = Date(timeIntervalSince1970: Double(Int.random(in: 1_600_000_000...1_900_000_000, using: &generator)))
            let combined = Schedule([.interval(span), .cron(schedule)])
            let expected = [last.addingTimeInterval(TimeInterval(span.seconds)), schedule.next(after: last)].compactMap { $0 }.min()
            #expect(combined.nextDue(after: last, now: last) == expected)
            #expect(combined.nextDue(after: last, now: last)! > last)
        }
    }
}
