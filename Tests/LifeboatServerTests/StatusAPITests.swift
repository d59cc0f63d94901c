import Foundation
import Hummingbird
import HummingbirdTesting
import LifeboatCore
import Logging
import Testing
@testable import LifeboatServer

/// Status and metrics over live HTTP, from a status computed from known snapshots and drills.
@Suite struct StatusAPITests {
    static let now = Date(timeIntervalSince1970: 1_795_000_000)

    static func status() throws -> PlatformStatus {
        let yaml = """
        version: 1
        platform: "acme \\"prod\\""
        stores:
          - {name: openbao, kind: openbao, method: raft, cadence: 1h, priority: P0, rpo: 1h, rto: 10m, verify: [{read: secret/data/a}], connection: {address: "http://127.0.0.1:8200"}}
          - {name: postgres, kind: postgres, method: pg_dumpall, cadence: 1h, priority: P0, depends_on: [openbao], rpo: 30m, verify: [{sql: "SELECT 1", expect: "1"}], connection: {host: 127.0.0.1}}
        """
        let catalog = try CatalogLoader.load(yaml: yaml, file: "t.yaml").catalog
        let drill = DrillReport(
            id: "d1", platform: catalog.platform!, point: "p1", hostname: "h", started: now.addingTimeInterval(-600), finished: now.addingTimeInterval(-540),
            steps: [DrillReport.Step(order: 1, store: "openbao", kind: "openbao", action: "restore", snapshot: "s1", dataTime: now.addingTimeInterval(-700),
                                     consistency: nil, target: "x", started: now.addingTimeInterval(-600), finished: now.addingTimeInterval(-570),
                                     outcome: .passed, checks: [], reason: nil, rpoTarget: 3600, rtoTarget: 600, measuredRPO: 100, measuredRTO: 30)])
        let failedPoint = RecoveryPoint(id: "p2", platform: catalog.platform!, started: now, finished: now,
                                        members: [.init(store: "postgres", kind: "postgres", error: "connection refused")])
        return PlatformStatus.compute(
            catalog: catalog,
            snapshots: [("openbao", "openbao", now.addingTimeInterval(-700), now.addingTimeInterval(-720), 2048, "s1"),
                        ("postgres", "postgres", now.addingTimeInterval(-7200), now.addingTimeInterval(-7200), 4096, "s2")],
            points: [failedPoint], drills: [drill], now: now, maximumProofAge: 86_400)
    }

    static func app(status: PlatformStatus?) throws -> some ApplicationProtocol {
        let yaml = "version: 1\nstores:\n  - {name: a, kind: external, method: git, priority: P1, connection: {url: \"https://x\"}}\n"
        let documents = try PlatformDocuments(catalog: try CatalogLoader.load(yaml: yaml, file: "t.yaml").catalog,
                                              status: status.map { value in { @Sendable in value } })
        return try buildApplication(documents: documents, settings: ServerSettings(host: "127.0.0.1", port: 0), logger: Logger(label: "test"))
    }

    @Test func statusReportsExposureAndProofPerStore() async throws {
        try await Self.app(status: Self.status()).test(.live) { client in
            try await client.execute(uri: "/v1/platform/backup/status", method: .get) { response in
                #expect(response.status == .ok)
                let body = try #require(JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any])
                let stores = try #require(body["stores"] as? [[String: Any]])
                let openbao = try #require(stores.first { $0["store"] as? String == "openbao" })
                #expect(openbao["rpoExposure"] as? Double == 720)
                #expect(openbao["rpoMet"] as? Bool == true)
                #expect(openbao["proofStale"] as? Bool == false)
                #expect(openbao["lastVerifiedRestore"] as? String == "2026-11-18T10:57:10Z")
                let postgres = try #require(stores.first { $0["store"] as? String == "postgres" })
                #expect(postgres["rpoMet"] as? Bool == false)
                #expect(postgres["proofStale"] as? Bool == true)
                #expect(postgres["backupFailures"] as? Int == 1)
            }
        }
    }

    @Test func metricsAreValidPrometheusText() async throws {
        try await Self.app(status: Self.status()).test(.live) { client in
            try await client.execute(uri: "/metrics", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == PrometheusText.contentType)
                let text = String(buffer: response.body)
                #expect(text.contains("# TYPE lifeboat_backup_failures_total counter\n"))
                #expect(text.contains("lifeboat_rpo_exposure_seconds{store=\"openbao\"} 720\n"))
                #expect(text.contains("lifeboat_rpo_exposure_seconds{store=\"postgres\"} 7200\n"))
                #expect(text.contains("lifeboat_last_backup_timestamp_seconds{store=\"openbao\"} 1794999300\n"))
                #expect(text.contains("lifeboat_last_verified_restore_timestamp_seconds{store=\"openbao\"} 1794999430\n"))
                #expect(!text.contains("lifeboat_last_verified_restore_timestamp_seconds{store=\"postgres\"}"))
                #expect(text.contains("lifeboat_drill_step_duration_seconds{store=\"openbao\"} 30\n"))
                #expect(text.contains("lifeboat_backup_failures_total{store=\"postgres\"} 1\n"))
                // Every sample line is `name{store="…"} value`, but the repository-wide ones, unlabelled.
                for line in text.split(separator: "\n") where !line.hasPrefix("#") {
                    #expect(line.wholeMatch(of: /lifeboat_[a-z_]+(\{store="[^"]*"\})? -?[0-9.]+/) != nil, "\(line)")
                }
                #expect(text.contains("lifeboat_repository_damaged_objects 0\n"))
            }
        }
    }

    @Test func withoutARepositoryStatusIsAProblem() async throws {
        try await Self.app(status: nil).test(.live) { client in
            for path in ["/v1/platform/backup/status", "/metrics"] {
                try await client.execute(uri: path, method: .get) { response in
                    #expect(response.status == .serviceUnavailable)
                    #expect(response.headers[.contentType] == "application/problem+json")
                    #expect(String(buffer: response.body).contains("\"code\":\"no_repository\""))
                }
            }
        }
    }

    @Test func labelValuesAreEscaped() {
        #expect(PrometheusText.escape("a\"b\\c\nd") == "a\\\"b\\\\c\\nd")
    }
}

@Suite struct PlatformStatusComputeTests {
    @Test func aStoreBackedUpWithPutUnderItsNameCountsAsBackedUp() throws {
        let yaml = """
        version: 1
        stores:
          - {name: media, kind: s3, method: copy, cadence: 1d, priority: P2, rpo: 2d, connection: {buckets: [media]}}
          - {name: docs, kind: files, method: copy, cadence: 1d, priority: P3, connection: {paths: [/srv/docs]}}
        """
        let catalog = try CatalogLoader.load(yaml: yaml, file: "t.yaml").catalog
        let now = Date(timeIntervalSince1970: 1_795_000_000)
        let status = PlatformStatus.compute(
            catalog: catalog, snapshots: [("media", "artefact", now.addingTimeInterval(-3600), now.addingTimeInterval(-3600), 10, "m1")],
            points: [], drills: [], now: now, maximumProofAge: 86_400)
        let media = try #require(status.stores.first { $0.store == "media" })
        #expect(media.lastBackupSnapshot == "m1" && media.rpoExposure == 3600 && media.rpoMet == true)
        #expect(status.stores.first { $0.store == "docs" }?.lastBackup == nil)
    }

    static func step(_ store: String, _ outcome: DrillReport.Outcome, at start: Date, seconds: Double, checks: [CheckResult] = []) -> DrillReport.Step {
        DrillReport.Step(order: 1, store: store, kind: "postgres", action: "restore", snapshot: "s1", dataTime: start, consistency: nil, target: "x",
                         started: start, finished: start.addingTimeInterval(seconds), outcome: outcome, checks: checks,
                         reason: outcome == .passed ? nil : "restore failed: recovery ended early", rpoTarget: nil, rtoTarget: nil,
                         measuredRPO: nil, measuredRTO: nil)
    }

    /// The README's pattern: rpo 5m, WAL continuous, a nightly base backup. Exposure is the age of the
    /// newest archived WAL; a failed drill after a passed one is no proof, and its duration is not shown.
    @Test func aContinuouslyArchivedStoreIsExposedByItsArchiveAndAFailedDrillIsNoProof() throws {
        let yaml = """
        version: 1
        platform: p
        stores:
          - {name: postgres, kind: postgres, method: wal, cadence: [continuous, "0 2 * * *"], priority: P0, rpo: 5m, verify: [{sql: "SELECT 1", expect: "1"}], connection: {host: 127.0.0.1}}
          - {name: logical, kind: postgres, method: pg_dumpall, cadence: 1h, priority: P1, rpo: 5m, connection: {host: 127.0.0.1}}
        """
        let catalog = try CatalogLoader.load(yaml: yaml, file: "t.yaml").catalog
        let now = Date(timeIntervalSince1970: 1_795_000_000)
        let snapshots: [(store: String, kind: String, finished: Date, dataTime: Date, size: Int64, id: String)] = [
            ("postgres", "postgres", now.addingTimeInterval(-7200), now.addingTimeInterval(-7200), 10, "base"),
            ("logical", "postgres", now.addingTimeInterval(-7200), now.addingTimeInterval(-7200), 10, "dump"),
        ]
        let passed = DrillReport(id: "d1", platform: "p", point: "p1", hostname: "h", started: now.addingTimeInterval(-3600), finished: now.addingTimeInterval(-3500),
                                 steps: [Self.step("postgres", .passed, at: now.addingTimeInterval(-3600), seconds: 40)])
        // Healthy archiving: a segment 30 s ago; a WAL archive means nothing for a store without `continuous`.
        let healthy = PlatformStatus.compute(catalog: catalog, snapshots: snapshots, points: [], drills: [passed],
                                             archivedWAL: ["postgres": now.addingTimeInterval(-30), "logical": now.addingTimeInterval(-30)],
                                             now: now, maximumProofAge: 86_400)
        let postgres = try #require(healthy.stores.first { $0.store == "postgres" })
        #expect(postgres.rpoExposure == 30 && postgres.rpoMet == true && postgres.exposureFrom == "wal" && postgres.archiveLag == 30)
        #expect(postgres.proofStale == false && postgres.lastDrillPassed == true && postgres.lastDrillStepDuration == 40)
        let logical = try #require(healthy.stores.first { $0.store == "logical" })
        #expect(logical.rpoExposure == 7200 && logical.rpoMet == false && logical.archiveLag == nil)
        let metrics = PrometheusText.render(healthy)
        #expect(metrics.contains("lifeboat_wal_archive_lag_seconds{store=\"postgres\"} 30\n"))
        #expect(metrics.contains("lifeboat_rpo_exposure_seconds{store=\"postgres\"} 30\n"))

        // archive_command starts failing: nothing new arrives, and the exposure grows past the RPO.
        let stalled = PlatformStatus.compute(catalog: catalog, snapshots: snapshots, points: [], drills: [passed],
                                             archivedWAL: ["postgres": now.addingTimeInterval(-900)], now: now, maximumProofAge: 86_400)
        #expect(stalled.stores.first { $0.store == "postgres" }?.rpoMet == false)
        #expect(PrometheusText.render(stalled).contains("lifeboat_wal_archive_lag_seconds{store=\"postgres\"} 900\n"))

        // A later drill fails: the older pass is no longer proof, and no step duration is exported.
        let failed = DrillReport(id: "d2", platform: "p", point: "p2", hostname: "h", started: now.addingTimeInterval(-600), finished: now.addingTimeInterval(-500),
                                 steps: [Self.step("postgres", .failed, at: now.addingTimeInterval(-600), seconds: 12)])
        let afterFailure = PlatformStatus.compute(catalog: catalog, snapshots: snapshots, points: [], drills: [passed, failed],
                                                  archivedWAL: ["postgres": now.addingTimeInterval(-30)], now: now, maximumProofAge: 86_400)
        let disproven = try #require(afterFailure.stores.first { $0.store == "postgres" })
        #expect(disproven.proofStale == true && disproven.lastDrillPassed == false && disproven.lastDrillStepDuration == nil)
        #expect(disproven.lastVerifiedRestore == passed.steps[0].finished, "when it was last proven stays visible")
        let text = PrometheusText.render(afterFailure)
        #expect(text.contains("lifeboat_restore_proof_stale{store=\"postgres\"} 1\n"))
        #expect(text.contains("lifeboat_drill_last_passed{store=\"postgres\"} 0\n"))
        #expect(!text.contains("lifeboat_drill_step_duration_seconds{store=\"postgres\"}"))
    }

    @Test func theEffectiveExposureIsTheWorstAlongTheDependencies() throws {
        let yaml = """
        version: 1
        platform: p
        stores:
          - {name: openbao, kind: openbao, method: raft, cadence: 4h, priority: P0, rpo: 4h, connection: {address: "http://127.0.0.1:8200"}}
          - {name: postgres, kind: postgres, method: wal, cadence: [continuous, "0 2 * * *"], priority: P0, rpo: 5m, depends_on: [openbao], connection: {host: 127.0.0.1}}
          - {name: etcd, kind: etcd, method: snapshot, cadence: 15m, priority: P1, rpo: 15m, connection: {endpoints: ["http://127.0.0.1:2379"]}}
        """
        let catalog = try CatalogLoader.load(yaml: yaml, file: "t.yaml").catalog
        let now = Date(timeIntervalSince1970: 1_795_000_000)
        let status = PlatformStatus.compute(
            catalog: catalog,
            snapshots: [("openbao", "openbao", now.addingTimeInterval(-3 * 3600), now.addingTimeInterval(-3 * 3600), 1, "o"),
                        ("postgres", "postgres", now.addingTimeInterval(-7200), now.addingTimeInterval(-7200), 1, "p"),
                        ("etcd", "etcd", now.addingTimeInterval(-60), now.addingTimeInterval(-60), 1, "e")],
            points: [], drills: [], archivedWAL: ["postgres": now.addingTimeInterval(-30)], now: now, maximumProofAge: 86_400)
        let postgres = try #require(status.stores.first { $0.store == "postgres" })
        #expect(postgres.rpoExposure == 30 && postgres.rpoMet == true)
        #expect(postgres.effectiveExposure == 3 * 3600 && postgres.effectiveExposureFrom == "openbao")
        let etcd = try #require(status.stores.first { $0.store == "etcd" })
        #expect(etcd.effectiveExposure == 60 && etcd.effectiveExposureFrom == nil)
        #expect(PrometheusText.render(status).contains("lifeboat_effective_rpo_exposure_seconds{store=\"postgres\"} 10800\n"))
    }
}
