import Foundation

/// Per store: the last good backup, the last proven restore (from drill evidence), and how both
/// compare with the catalog's targets. Served as `GET /v1/platform/backup/status` and as metrics.
public struct PlatformStatus: Codable, Sendable, Hashable {
    public var platform: String
    public var generated: Date
    /// A proof older than this is flagged stale.
    public var maximumProofAge: Double
    public var stores: [StoreStatus]
    public var lastDrill: DrillSummary?
    /// Repository objects the status could not read (snapshot manifests, recovery points, drill
    /// evidence), by name. While any is listed, a store's "last backup" may be older than its real
    /// newest one: the status says so instead of presenting older data as the latest.
    public var damaged: [String] = []

    public struct StoreStatus: Codable, Sendable, Hashable {
        public var store: String
        public var kind: String
        public var priority: String
        public var lastBackup: Date?
        public var lastBackupSize: Int64?
        public var lastBackupSnapshot: String?
        /// Data time of the last good backup.
        public var lastBackupDataTime: Date?
        /// Backups of this store that failed in recovery points, in all.
        public var backupFailures: Int
        public var rpoTarget: Double?
        /// Now − data time of the last good backup: what a disaster now would lose.
        public var rpoExposure: Double?
        public var rpoMet: Bool?
        /// When a drill last restored this store and its gate passed.
        public var lastVerifiedRestore: Date?
        public var lastDrill: String?
        public var lastDrillOutcome: String?
        public var lastDrillStepDuration: Double?
        public var rtoTarget: Double?
        /// No passed drill, the store's step in its last drill did not pass, or the last passed one
        /// is older than `maximumProofAge`: only a passed gate in the latest drill is proof.
        public var proofStale: Bool
        /// When the newest WAL file of a continuously archived store reached the repository.
        public var lastArchivedWAL: Date?
        /// Now − `lastArchivedWAL`.
        public var archiveLag: Double?
        /// What the RPO exposure is measured from: `backup` (the last snapshot's data) or `wal` (the
        /// newest archived WAL, for a store with a `continuous` cadence and a base backup).
        public var exposureFrom: String?
        /// What the store's own server says of its WAL archiving (`pg_stat_archiver`), when asked.
        public var archiver: ArchiverHealth?
        /// How the live store differs from the coverage the catalog describes, checked at each
        /// status read (empty: as described; nil: not checked for this kind, or no server asked).
        public var coverageProblems: [String]?
        /// What a platform restore now would lose of this store: it comes back no newer than the
        /// stores it depends on, so its exposure is the largest along its dependencies.
        public var effectiveExposure: Double?
        /// The dependency that sets `effectiveExposure`, when it is not the store itself.
        public var effectiveExposureFrom: String?

        public init(store: String, kind: String, priority: String, lastBackup: Date?, lastBackupSize: Int64?, lastBackupSnapshot: String?,
                    lastBackupDataTime: Date?, backupFailures: Int, rpoTarget: Double?, rpoExposure: Double?, rpoMet: Bool?,
                    lastVerifiedRestore: Date?, lastDrill: String?, lastDrillOutcome: String?, lastDrillStepDuration: Double?,
                    rtoTarget: Double?, proofStale: Bool) {
            self.store = store
            self.kind = kind
            self.priority = priority
            self.lastBackup = lastBackup
            self.lastBackupSize = lastBackupSize
            self.lastBackupSnapshot = lastBackupSnapshot
            self.lastBackupDataTime = lastBackupDataTime
            self.backupFailures = backupFailures
            self.rpoTarget = rpoTarget
            self.rpoExposure = rpoExposure
            self.rpoMet = rpoMet
            self.lastVerifiedRestore = lastVerifiedRestore
            self.lastDrill = lastDrill
            self.lastDrillOutcome = lastDrillOutcome
            self.lastDrillStepDuration = lastDrillStepDuration
            self.rtoTarget = rtoTarget
            self.proofStale = proofStale
        }

        /// The last drill's step for this store passed its gate.
        public var lastDrillPassed: Bool? { lastDrillOutcome.map { $0 == DrillReport.Outcome.passed.rawValue } }
    }

    /// A server's own account of its WAL archiving (PostgreSQL's `pg_stat_archiver`).
    public struct ArchiverHealth: Codable, Sendable, Hashable {
        public var archivedCount: Int?
        public var lastArchivedWAL: String?
        public var lastArchivedTime: Date?
        public var failedCount: Int?
        public var lastFailedWAL: String?
        public var lastFailedTime: Date?
        /// Why the server could not be asked (unreachable, refused); nothing else is known then.
        public var error: String?

        public init(archivedCount: Int? = nil, lastArchivedWAL: String? = nil, lastArchivedTime: Date? = nil, failedCount: Int? = nil,
                    lastFailedWAL: String? = nil, lastFailedTime: Date? = nil, error: String? = nil) {
            self.archivedCount = archivedCount
            self.lastArchivedWAL = lastArchivedWAL
            self.lastArchivedTime = lastArchivedTime
            self.failedCount = failedCount
            self.lastFailedWAL = lastFailedWAL
            self.lastFailedTime = lastFailedTime
            self.error = error
        }

        /// The newest attempt failed: WAL is piling up on the server, not reaching the repository.
        public var failing: Bool {
            guard let failed = lastFailedTime else { return false }
            return lastArchivedTime.map { failed > $0 } ?? true
        }
    }

    /// The newest drill, in brief.
    public struct DrillSummary: Codable, Sendable, Hashable {
        public var id: String
        public var point: String
        public var started: Date
        public var duration: Double
        public var passed: Bool
        public var missedTargets: [String]
        /// `drill` or `production`.
        public var kind: String = DrillReport.Kind.drill.rawValue

        public init(id: String, point: String, started: Date, duration: Double, passed: Bool, missedTargets: [String]) {
            self.id = id
            self.point = point
            self.started = started
            self.duration = duration
            self.passed = passed
            self.missedTargets = missedTargets
        }
    }

    public init(platform: String, generated: Date, maximumProofAge: Double, stores: [StoreStatus], lastDrill: DrillSummary?) {
        self.platform = platform
        self.generated = generated
        self.maximumProofAge = maximumProofAge
        self.stores = stores
        self.lastDrill = lastDrill
    }

    /// Builds the status from what the repository holds. Pure: the caller reads the repository.
    /// `archivedWAL` is, per store, when its newest WAL file was archived; `archivers`, what the
    /// stores' servers said of their archiving.
    public static func compute(
        catalog: Catalog, snapshots: [(store: String, kind: String, finished: Date, dataTime: Date, size: Int64, id: String)],
        points: [RecoveryPoint], drills: [DrillReport], archivedWAL: [String: Date] = [:], archivers: [String: ArchiverHealth] = [:],
        now: Date, maximumProofAge: Double
    ) -> PlatformStatus {
        let platform = catalog.platform ?? ""
        let drills = drills.filter { $0.platform == platform }.sorted { $0.started > $1.started }
        let stores = catalog.stores.filter { !$0.kind.isManual }.map { store -> StoreStatus in
            // By store name, whatever the kind: an S3 or files store backed up with `lifeboat put`
            // under its own name counts as backed up.
            let last = snapshots.filter { $0.store == store.name }.max { $0.finished < $1.finished }
            let failures = points.filter { $0.platform == platform }.flatMap(\.members).filter { $0.store == store.name && $0.snapshot == nil }.count
            // A continuously archived store loses, in a disaster now, what was written after its
            // newest archived WAL file, provided a base backup exists to replay that WAL onto.
            let archived = store.cadences.contains(.continuous) && last != nil ? archivedWAL[store.name] : nil
            let dataTime = [last?.dataTime, archived].compactMap { $0 }.max()
            let exposure = dataTime.map { now.timeIntervalSince($0) }
            let rpo = store.rpo.map { Double($0.seconds) }
            let proven = drills.lazy.compactMap { drill in drill.steps.first { $0.store == store.name && $0.outcome == .passed }.map { (drill, $0) } }.first
            // The newest drill or production restore that tried this store (a step skipped by a
            // resumed restore, or after an earlier failure, neither proves nor disproves it).
            let latest = drills.lazy.compactMap { drill in
                drill.steps.first { $0.store == store.name && ($0.outcome == .passed || $0.outcome == .failed) }.map { (drill, $0) }
            }.first
            var status = StoreStatus(
                store: store.name, kind: store.kind.rawValue, priority: store.priority.description,
                lastBackup: last?.finished, lastBackupSize: last?.size, lastBackupSnapshot: last?.id, lastBackupDataTime: last?.dataTime,
                backupFailures: failures, rpoTarget: rpo, rpoExposure: exposure,
                rpoMet: exposure.flatMap { exposure in rpo.map { exposure <= $0 } },
                lastVerifiedRestore: proven?.1.finished, lastDrill: latest?.0.id, lastDrillOutcome: latest?.1.outcome.rawValue,
                lastDrillStepDuration: latest.flatMap { $0.1.outcome == .passed ? $0.1.duration : nil }, rtoTarget: store.rto.map { Double($0.seconds) },
                proofStale: latest?.1.outcome != .passed || (proven.map { now.timeIntervalSince($0.1.finished) > maximumProofAge } ?? true))
            status.lastArchivedWAL = archived
            status.archiver = archivers[store.name]
            status.archiveLag = archived.map { now.timeIntervalSince($0) }
            status.exposureFrom = dataTime == nil ? nil : (archived.map { $0 > (last?.dataTime ?? .distantPast) } == true ? "wal" : "backup")
            return status
        }
        // Effective exposure: the worst along each store's dependencies (a dependency never backed
        // up leaves the store nothing consistent to come back to: no effective exposure).
        let byName = Dictionary(stores.map { ($0.store, $0) }, uniquingKeysWith: { first, _ in first })
        let withEffective = stores.map { status -> StoreStatus in
            var status = status
            var seen: Set<String> = []
            var worst: (exposure: Double, from: String)? = status.rpoExposure.map { ($0, status.store) }
            var unknown = status.rpoExposure == nil
            func visit(_ name: String) {
                guard seen.insert(name).inserted, let store = catalog.stores.first(where: { $0.name == name }) else { return }
                for dependency in store.dependsOn {
                    guard let other = byName[dependency] else { continue }  // manual steps have no status
                    if let exposure = other.rpoExposure {
                        if exposure > (worst?.exposure ?? -1) { worst = (exposure, dependency) }
                    } else {
                        unknown = true
                    }
                    visit(dependency)
                }
            }
            visit(status.store)
            status.effectiveExposure = unknown ? nil : worst?.exposure
            status.effectiveExposureFrom = unknown || worst?.from == status.store ? nil : worst?.from
            return status
        }
        let summary = drills.first.map {
            var summary = DrillSummary(id: $0.id, point: $0.point, started: $0.started, duration: $0.duration, passed: $0.passed, missedTargets: $0.missedTargets)
            summary.kind = ($0.kind ?? .drill).rawValue
            return summary
        }
        return PlatformStatus(platform: platform, generated: now, maximumProofAge: maximumProofAge, stores: withEffective, lastDrill: summary)
    }
}
