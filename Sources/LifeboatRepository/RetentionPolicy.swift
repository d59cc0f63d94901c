import Foundation

/// Which snapshots of one store to keep (`prune`), with restic's semantics:
/// `keepLast` the n newest; `keepWithin` those taken within that span of the newest one;
/// `keepHourly/Daily/…` the newest snapshot of each of the n most recent hours/days/… that have one.
/// A snapshot kept by any rule is kept; the newest snapshot is always kept.
public struct RetentionPolicy: Sendable, Hashable {
    public var keepLast: Int?
    public var keepWithin: TimeInterval?
    public var keepHourly: Int?
    public var keepDaily: Int?
    public var keepWeekly: Int?
    public var keepMonthly: Int?
    public var keepYearly: Int?

    public init(keepLast: Int? = nil, keepWithin: TimeInterval? = nil, keepHourly: Int? = nil, keepDaily: Int? = nil,
                keepWeekly: Int? = nil, keepMonthly: Int? = nil, keepYearly: Int? = nil) {
        self.keepLast = keepLast
        self.keepWithin = keepWithin
        self.keepHourly = keepHourly
        self.keepDaily = keepDaily
        self.keepWeekly = keepWeekly
        self.keepMonthly = keepMonthly
        self.keepYearly = keepYearly
    }

    /// True when no rule is set: such a policy keeps everything rather than nothing.
    public var isEmpty: Bool {
        keepLast == nil && keepWithin == nil && keepHourly == nil && keepDaily == nil && keepWeekly == nil && keepMonthly == nil && keepYearly == nil
    }

    /// Why each kept snapshot is kept (by id), for `prune --dry-run`.
    public func reasons(for snapshots: [SnapshotManifest], calendar: Calendar = .utc) -> [String: [String]] {
        let newestFirst = snapshots.sorted { ($0.finished, $0.id) > ($1.finished, $1.id) }
        guard let newest = newestFirst.first else { return [:] }
        var reasons: [String: [String]] = [:]
        guard !isEmpty else {
            for snapshot in newestFirst { reasons[snapshot.id] = ["no retention policy: everything is kept"] }
            return reasons
        }
        reasons[newest.id, default: []].append("newest snapshot of \(newest.store)")
        if let keepLast {
            for snapshot in newestFirst.prefix(keepLast) { reasons[snapshot.id, default: []].append("last \(keepLast)") }
        }
        if let keepWithin {
            for snapshot in newestFirst where newest.finished.timeIntervalSince(snapshot.finished) <= keepWithin {
                reasons[snapshot.id, default: []].append("within \(Int(keepWithin))s of the newest")
            }
        }
        let buckets: [(Int?, String, (Date) -> [Int])] = [
            (keepHourly, "hourly", { calendar.dateComponents([.year, .month, .day, .hour], from: $0).values }),
            (keepDaily, "daily", { calendar.dateComponents([.year, .month, .day], from: $0).values }),
            (keepWeekly, "weekly", { calendar.dateComponents([.yearForWeekOfYear, .weekOfYear], from: $0).values }),
            (keepMonthly, "monthly", { calendar.dateComponents([.year, .month], from: $0).values }),
            (keepYearly, "yearly", { calendar.dateComponents([.year], from: $0).values }),
        ]
        for (count, label, bucket) in buckets {
            guard let count else { continue }
            var seen: [[Int]] = []
            for snapshot in newestFirst {
                let key = bucket(snapshot.finished)
                guard seen.last != key else { continue } // newest first: one bucket's snapshots are adjacent
                guard seen.count < count else { break }
                seen.append(key)
                reasons[snapshot.id, default: []].append("\(label) \(seen.count)/\(count)")
            }
        }
        return reasons
    }
}

extension Calendar {
    /// Gregorian in UTC, so retention buckets do not move with the machine's time zone.
    public static var utc: Calendar {
        var calendar = Calendar(identifier: .iso8601)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }
}

private extension DateComponents {
    var values: [Int] { [yearForWeekOfYear, year, month, weekOfYear, day, hour].compactMap { $0 } }
}
