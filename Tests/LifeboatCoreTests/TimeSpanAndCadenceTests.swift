import LifeboatTesting
import Testing
@testable import LifeboatCore

@Suite struct TimeSpanTests {
    @Test(arguments: [("90s", 90), ("15m", 900), ("4h", 14_400), ("1d", 86_400), ("2w", 1_209_600), ("1h30m", 5_400), ("0", 0), (" 10m ", 600)])
    func parsesOperatorDurations(text: String, seconds: Int64) throws {
        #expect(try TimeSpan(parsing: text).seconds == seconds)
    }

    @Test(arguments: [
        ("", "empty duration"), ("4x", "'x' is not a duration unit"), ("h", "without a number"),
        ("30m1h", "largest unit first"), ("15", "ends in a number without a unit"), ("1h1h", "repeats a unit"),
        ("-5m", "'-' is not a duration unit"),
    ])
    func refusesMalformedDurations(text: String, reason: String) {
        #expect {
            try TimeSpan(parsing: text)
        } throws: { error in
            (error as? TimeSpan.ParseError)?.message.contains(reason) == true
        }
    }

    @Test func canonicalTextRoundTrips() throws {
        var generator = SeededGenerator(seed: 7)
        for _ in 0..<2_000 {
            let seconds = Int64.random(in: 0...(400 * 86_400), using: &generator)
            let text = TimeSpan(seconds: seconds).description
            #expect(try TimeSpan(parsing: text).seconds == seconds, "\(seconds) → \(text)")
        }
        #expect(TimeSpan(seconds: 400 * 86_400).description == "400d")
        #expect(TimeSpan(seconds: 14 * 86_400).description == "2w")
        #expect(TimeSpan(seconds: 5_400).description == "1h30m")
    }
}

@Suite struct CadenceTests {
    @Test func intervalsContinuousAndCron() throws {
        #expect(try Cadence(parsing: "4h") == .interval(TimeSpan(seconds: 14_400)))
        #expect(try Cadence(parsing: "continuous") == .continuous)
        #expect(try Cadence(parsing: "4h").summary == "every 4h")
        #expect(try Cadence(parsing: "@daily").summary == "daily at 00:00")
        #expect(try Cadence(parsing: "0 2 * * *").summary == "daily at 02:00")
        #expect(try Cadence(parsing: "*/15 * * * *").summary == "every 15m")
        #expect(try Cadence(parsing: "0 */4 * * *").summary == "every 4h")
        #expect(try Cadence(parsing: "5 * * * *").summary == "hourly at :05")
        #expect(try Cadence(parsing: "0 2 * * mon-fri").summary == "cron '0 2 * * mon-fri'")
    }

    @Test func longestGapDrivesTheRPOCheck() throws {
        #expect(try Cadence(parsing: "*/15 * * * *").longestGap == TimeSpan(seconds: 900))
        #expect(try Cadence(parsing: "0 2,14 * * *").longestGap == TimeSpan(seconds: 12 * 3600))
        #expect(try Cadence(parsing: "0 1,2 * * *").longestGap == TimeSpan(seconds: 23 * 3600))
        // Weekday-restricted schedules depend on the calendar: no exact gap is claimed.
        #expect(try Cadence(parsing: "0 2 * * 1-5").longestGap == nil)
        #expect(try Cadence(parsing: "continuous").longestGap == nil)
    }

    @Test func cronFieldsParseNamesRangesAndSteps() throws {
        let schedule = try CronSchedule(parsing: "0,30 9-17/2 1 jan,jul sun,7")
        #expect(schedule.minutes == [0, 30])
        #expect(schedule.hours == [9, 11, 13, 15, 17])
        #expect(schedule.daysOfMonth == [1])
        #expect(schedule.months == [1, 7])
        #expect(schedule.daysOfWeek == [0])
    }

    @Test(arguments: [
        ("0 25 * * *", "hour field: 25 is out of range 0-23"), ("* * *", "has 3 fields; it needs 5"),
        ("@fortnightly", "not a cron macro"), ("0 2 * * fri-mon", "runs backwards"),
        ("*/0 * * * *", "step '0' must be a positive number"), ("0 2 * smarch *", "'smarch' is not a number"),
        ("4x", "neither an interval"), ("0s", "longer than 0s"), ("0 2 ,1 * *", "empty item"),
    ])
    func refusesBadCadences(text: String, reason: String) {
        #expect {
            try Cadence(parsing: text)
        } throws: { error in
            (error as? TimeSpan.ParseError)?.message.contains(reason) == true
        }
    }
}

