import Foundation

/// The evidence a drill leaves: which snapshots were restored into which scratch instances, how
/// long each step took (the measured RTO), how old the restored data was (the measured RPO), and
/// what every verify gate found. Stored in the repository; `catalog`, `status` and the API read it.
public struct DrillReport: Codable, Sendable, Hashable {
    public var version: Int
    public var id: String
    public var platform: String
    public var point: String
    public var hostname: String
    public var started: Date
    public var finished: Date
    public var steps: [Step]
    /// What produced the evidence: a drill into scratch instances, or a production restore into the
    /// catalog's own targets (absent in reports written before production restores were recorded: a drill).
    public var kind: Kind?

    public enum Kind: String, Codable, Sendable, Hashable {
        case drill
        case production
    }

    /// One restore step of the drill.
    public struct Step: Codable, Sendable, Hashable {
        public var order: Int
        public var store: String
        public var kind: String
        public var action: String
        public var snapshot: String?
        /// The time the restored data reflects.
        public var dataTime: Date?
        /// Set when the step was restored to an earlier time than its snapshot to stay consistent
        /// with a dependency (PostgreSQL rewound to its OpenBao snapshot's time), and why.
        public var consistency: String?
        public var target: String?
        public var started: Date
        public var finished: Date
        public var outcome: Outcome
        public var checks: [CheckResult]
        /// Why the step failed or was skipped.
        public var reason: String?
        /// Targets from the catalog, seconds.
        public var rpoTarget: Double?
        public var rtoTarget: Double?
        /// Drill start − data time: the data a disaster at drill time would have lost.
        public var measuredRPO: Double?
        /// Drill start → this step's end: how long until this store was back.
        public var measuredRTO: Double?

        public var duration: Double { finished.timeIntervalSince(started) }
        public var rpoMet: Bool? { zip(measuredRPO, rpoTarget).map { $0 <= $1 } }
        public var rtoMet: Bool? { zip(measuredRTO, rtoTarget).map { $0 <= $1 } }

        public init(order: Int, store: String, kind: String, action: String, snapshot: String?, dataTime: Date?, consistency: String?,
                    target: String?, started: Date, finished: Date, outcome: Outcome, checks: [CheckResult], reason: String?,
                    rpoTarget: Double?, rtoTarget: Double?, measuredRPO: Double?, measuredRTO: Double?) {
            self.order = order
            self.store = store
            self.kind = kind
            self.action = action
            self.snapshot = snapshot
            self.dataTime = dataTime
            self.consistency = consistency
            self.target = target
            self.started = started
            self.finished = finished
            self.outcome = outcome
            self.checks = checks
            self.reason = reason
            self.rpoTarget = rpoTarget
            self.rtoTarget = rtoTarget
            self.measuredRPO = measuredRPO
            self.measuredRTO = measuredRTO
        }
    }

    /// How a step ended.
    public enum Outcome: String, Codable, Sendable, Hashable {
        /// Restored and every gate check passed.
        case passed
        /// The restore or a gate check failed: the run stopped here.
        case failed
        /// Not run because an earlier step failed.
        case skipped
        /// A step a person performs (external stores); the drill cannot prove it.
        case manual
    }

    public init(id: String, platform: String, point: String, hostname: String, started: Date, finished: Date, steps: [Step],
                kind: Kind = .drill) {
        version = 1
        self.kind = kind
        self.id = id
        self.platform = platform
        self.point = point
        self.hostname = hostname
        self.started = started
        self.finished = finished
        self.steps = steps
    }

    /// Every automated step restored and passed its gate, and every target was met.
    public var passed: Bool { gatesPassed && missedTargets.isEmpty }
    /// No step failed. A step is skipped only after a failed one or, in a production restore
    /// resumed with `--from-step`, because an earlier run did it: neither counts against the gates.
    public var gatesPassed: Bool { !steps.contains { $0.outcome == .failed } && steps.contains { $0.outcome == .passed || $0.outcome == .manual } }
    /// "store: RPO 2h > 1h"-style lines for every missed target.
    public var missedTargets: [String] {
        steps.flatMap { step -> [String] in
            var missed: [String] = []
            if step.rpoMet == false, let measured = step.measuredRPO, let target = step.rpoTarget {
                missed.append("\(step.store): data age \(TimeSpan.describe(seconds: measured)) exceeds RPO \(TimeSpan.describe(seconds: target))")
            }
            if step.rtoMet == false, let measured = step.measuredRTO, let target = step.rtoTarget {
                missed.append("\(step.store): back after \(TimeSpan.describe(seconds: measured)), RTO is \(TimeSpan.describe(seconds: target))")
            }
            return missed
        }
    }
    public var duration: Double { finished.timeIntervalSince(started) }
}

private func zip<A, B>(_ a: A?, _ b: B?) -> (A, B)? {
    guard let a, let b else { return nil }
    return (a, b)
}
