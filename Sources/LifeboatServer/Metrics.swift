import Foundation
import LifeboatCore

/// The platform status in the Prometheus text exposition format (version 0.0.4).
public enum PrometheusText {
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    public static func render(_ status: PlatformStatus) -> String {
        var text = ""
        func family(_ name: String, _ type: String, _ help: String, _ value: (PlatformStatus.StoreStatus) -> Double?) {
            let samples = status.stores.compactMap { store in value(store).map { (store.store, $0) } }
            text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for (store, value) in samples { text += "\(name){store=\"\(escape(store))\"} \(format(value))\n" }
        }
        family("lifeboat_last_backup_timestamp_seconds", "gauge", "Unix time the last good backup of the store finished.") { $0.lastBackup?.timeIntervalSince1970 }
        family("lifeboat_last_backup_size_bytes", "gauge", "Size of the last good backup of the store.") { $0.lastBackupSize.map(Double.init) }
        family("lifeboat_last_verified_restore_timestamp_seconds", "gauge", "Unix time a drill last restored the store and its verify gate passed.") { $0.lastVerifiedRestore?.timeIntervalSince1970 }
        family("lifeboat_rpo_exposure_seconds", "gauge", "Age of the data in the last good backup: what a disaster now would lose.") { $0.rpoExposure }
        family("lifeboat_effective_rpo_exposure_seconds", "gauge", "What a platform restore now would lose of the store: the largest exposure along its dependencies (it comes back no newer than them).") { $0.effectiveExposure }
        family("lifeboat_rpo_target_seconds", "gauge", "The catalog's RPO target for the store.") { $0.rpoTarget }
        family("lifeboat_backup_failures_total", "counter", "Backups of the store that failed in recovery points.") { Double($0.backupFailures) }
        family("lifeboat_drill_step_duration_seconds", "gauge", "How long the store's step took in the last drill, when it passed (a failed step proves no restore time).") { $0.lastDrillStepDuration }
        family("lifeboat_drill_last_passed", "gauge", "1 when the store's step in its last drill or production restore passed its gate, 0 when it failed (skipped steps count neither way).") { $0.lastDrillPassed.map { $0 ? 1 : 0 } }
        family("lifeboat_restore_proof_stale", "gauge", "1 when the store's last drill did not pass, or its last passed drill is older than the maximum proof age.") { $0.proofStale ? 1 : 0 }
        family("lifeboat_wal_last_archived_timestamp_seconds", "gauge", "Unix time the newest WAL file of a continuously archived store reached the repository.") { $0.lastArchivedWAL?.timeIntervalSince1970 }
        family("lifeboat_wal_archive_failures_total", "counter", "WAL files the store's server failed to archive (pg_stat_archiver.failed_count).") { $0.archiver?.failedCount.map(Double.init) }
        family("lifeboat_wal_archiving_failing", "gauge", "1 when the server's newest archive attempt failed (pg_stat_archiver), 0 when it succeeded.") { store in store.archiver.flatMap { $0.error == nil ? ($0.failing ? 1 : 0) : nil } }
        family("lifeboat_wal_archive_lag_seconds", "gauge", "Age of the newest archived WAL file of a continuously archived store.") { $0.archiveLag }
        family("lifeboat_coverage_problems", "gauge", "Ways the live store differs from the coverage the catalog describes (archiving off or elsewhere, members not the catalog's, raft unhealthy).") { $0.coverageProblems.map { Double($0.count) } }
        text += "# HELP lifeboat_repository_damaged_objects Repository objects (manifests, recovery points, drill reports) that could not be read: a store's newest backup or proof may be among them.\n# TYPE lifeboat_repository_damaged_objects gauge\nlifeboat_repository_damaged_objects \(status.damaged.count)\n"
        return text
    }

    static func escape(_ label: String) -> String {
        label.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
    }

    static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(format: "%.3f", value)
    }
}

/// Computes the status at most once per `lifetime`: a scrape every few seconds must not list the
/// whole repository each time.
actor StatusCache {
    private let compute: @Sendable () async throws -> PlatformStatus
    private let lifetime: TimeInterval
    private var cached: (status: PlatformStatus, at: Date)?

    init(lifetime: TimeInterval, compute: @escaping @Sendable () async throws -> PlatformStatus) {
        self.lifetime = lifetime
        self.compute = compute
    }

    func status() async throws -> PlatformStatus {
        if let cached, Date().timeIntervalSince(cached.at) < lifetime { return cached.status }
        let status = try await compute()
        cached = (status, Date())
        return status
    }
}
