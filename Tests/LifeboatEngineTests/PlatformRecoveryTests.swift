import Foundation
import LifeboatCore
import LifeboatStorage
import Testing
@testable import LifeboatEngine
@testable import LifeboatRepository

/// Three `files` stores: `vault` (P0), `database` (P0, depends on vault), `cache` (P2), and a manual
/// `git` step. Each store's directory holds `data` and the data's `time`.
struct Platform {
    let root: URL
    let catalog: Catalog
    let repository: Repository
    var connector = DirectoryConnector()

    init(cacheVerify: String = "[{file: c1}]") async throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("lifeboat-engine-\(UUID().uuidString)")
        for store in ["vault", "database", "cache"] {
            try FileManager.default.createDirectory(at: root.appendingPathComponent(store), withIntermediateDirectories: true)
        }
        let yaml = """
        version: 1
        platform: test
        stores:
          - {name: vault, kind: files, method: copy, cadence: 1h, priority: P0, rpo: 1h, rto: 10m, verify: [{file: v1}], connection: {paths: [\(root.path)/vault]}}
          - {name: database, kind: files, method: copy, cadence: 1h, priority: P0, depends_on: [vault], rpo: 1h, verify: [{file: d1}], connection: {paths: [\(root.path)/database]}}
          - {name: cache, kind: files, method: copy, cadence: 1h, priority: P2, verify: \(cacheVerify), connection: {paths: [\(root.path)/cache]}}
          - {name: git, kind: external, method: git, priority: P1, connection: {url: "https://example.com/repo.git"}}
        """
        catalog = try CatalogLoader.load(yaml: yaml, file: "test.yaml").catalog
        repository = try await Repository.initialize(
            backend: MemoryBackend(), passphrase: "p", chunker: ChunkerParameters(minimumSize: 16 << 10, averageSize: 64 << 10, maximumSize: 256 << 10),
            scrypt: KeyFile.ScryptParameters(n: 1 << 10, r: 8, p: 1))
        try write(vault: "v1", database: "d1", cache: "c1", at: Date())
    }

    func write(vault: String? = nil, database: String? = nil, cache: String? = nil, at time: Date) throws {
        for (store, value) in [("vault", vault), ("database", database), ("cache", cache)] {
            guard let value else { continue }
            try Data(value.utf8).write(to: root.appendingPathComponent("\(store)/data"))
            try Data(SourceTime.format(time).utf8).write(to: root.appendingPathComponent("\(store)/time"))
        }
    }

    var connectors: [StoreKind: any StoreConnector] { [.files: connector] }
    func backup(tags: [String] = []) async throws -> RecoveryPoint {
        try await PlatformBackup(catalog: catalog, repository: repository, connectors: connectors).run(tags: tags)
    }
    func preparation() throws -> RestorePreparation { try RestorePreparation(catalog: catalog, repository: repository, connectors: connectors) }
    func drill(_ selection: RestoreSelection = .latest, overrides: [String: String] = [:]) async throws -> DrillReport {
        try await Drill(preparation: try preparation()).run(selection, overrides: overrides, workDirectory: root.appendingPathComponent("scratch"))
    }
    func cleanUp() { try? FileManager.default.removeItem(at: root) }
}

@Suite struct PlatformBackupTests {
    @Test func aBackupIsOneRecoveryPointTakenDependentsFirst() async throws {
        let platform = try await Platform()
        defer { platform.cleanUp() }
        var order: [String] = []
        let point = try await PlatformBackup(catalog: platform.catalog, repository: platform.repository, connectors: platform.connectors)
            .run { if case .started(let store) = $0 { order.append(store.name) } }
        #expect(point.isComplete)
        #expect(Set(point.members.map(\.store)) == ["vault", "database", "cache"])
        // database depends on vault: it is backed up first, so vault's snapshot is the newer one.
        #expect(order.firstIndex(of: "database")! < order.firstIndex(of: "vault")!)
        let stored = try await platform.repository.loadDocument(RecoveryPoint.self, in: .points, id: point.id)
        #expect(stored == point)
        let manifests = try await platform.repository.snapshots().manifests
        #expect(Set(manifests.map(\.point)) == [point.id])
    }

    @Test func aFailedStoreMakesThePointPartialWithoutStoppingTheOthers() async throws {
        let platform = try await Platform()
        defer { platform.cleanUp() }
        try FileManager.default.removeItem(at: platform.root.appendingPathComponent("cache/data"))
        let point = try await platform.backup()
        #expect(!point.isComplete)
        #expect(point.failedStores == ["cache"])
        #expect(point.member("cache")?.error?.isEmpty == false)
        #expect(point.member("vault")?.snapshot != nil && point.member("database")?.snapshot != nil)
    }

    @Test func unknownAndUnsupportedStoresAreRefusedBeforeAnythingIsWritten() async throws {
        let platform = try await Platform()
        defer { platform.cleanUp() }
        let backup = PlatformBackup(catalog: platform.catalog, repository: platform.repository, connectors: platform.connectors)
        await #expect { try await backup.run(stores: ["nope"]) } throws: { ($0 as? EngineError)?.code == .unknownStore }
        await #expect { try await backup.run(stores: ["git"]) } throws: { ($0 as? EngineError)?.code == .unsupportedStore }
        #expect(try await platform.repository.snapshots().manifests.isEmpty)
    }
}

@Suite struct DrillTests {
    @Test func aDrillRestoresEveryStoreInPlanOrderAndStoresItsEvidence() async throws {
        let platform = try await Platform()
        defer { platform.cleanUp() }
        _ = try await platform.backup()
        let report = try await platform.drill()
        #expect(report.point == "latest", "a drill of the newest state of every store, not of one point")
        #expect(report.passed, "\(report.steps.map { "\($0.store) \($0.outcome) \($0.reason ?? "")" })")
        let plan = try RestorePlan(catalog: platform.catalog)
        #expect(report.steps.map(\.store) == plan.steps.map(\.store))
        #expect(report.steps.first { $0.store == "git" }?.outcome == .manual)
        let vault = try #require(report.steps.first { $0.store == "vault" })
        #expect(vault.checks == [CheckResult(check: "file v1 exists", passed: true, detail: "read v1")])
        #expect(vault.measuredRPO != nil && vault.measuredRTO != nil && vault.rpoMet == true && vault.rtoMet == true)
        // Restores happened in plan order.
        let restored = await platform.connector.restores.entries.map(\.store)
        #expect(restored == plan.steps.filter { !$0.isManual }.map(\.store))
        // Evidence: the report reads back from the repository; scratch instances are gone.
        let evidence = try await platform.repository.documents(DrillReport.self, in: .evidence).documents
        #expect(evidence == [report])
        #expect(!FileManager.default.fileExists(atPath: platform.root.appendingPathComponent("scratch/vault/data").path))
    }

    @Test func aFailedGateStopsTheRunAndLeavesLaterStoresUntouched() async throws {
        let platform = try await Platform()
        defer { platform.cleanUp() }
        try platform.write(vault: "tampered", at: Date())
        _ = try await platform.backup()
        let report = try await platform.drill()
        #expect(!report.passed)
        let vault = try #require(report.steps.first { $0.store == "vault" })
        #expect(vault.outcome == .failed)
        #expect(vault.reason?.contains("gate failed: file v1 exists") == true)
        for step in report.steps where step.order > vault.order { #expect(step.outcome == .skipped) }
        #expect(await platform.connector.restores.entries.map(\.store) == ["vault"])
    }

    @Test func aStepWithoutAutomatedChecksIsNotAProof() async throws {
        let platform = try await Platform(cacheVerify: "[{manual: look at the cache}]")
        defer { platform.cleanUp() }
        _ = try await platform.backup()
        let report = try await platform.drill()
        let cache = try #require(report.steps.first { $0.store == "cache" })
        #expect(cache.outcome == .manual && cache.checks.isEmpty)
        #expect(cache.reason?.contains("no automated check") == true)
        let status = try await PlatformStatus.read(catalog: platform.catalog, repository: platform.repository, maximumProofAge: 86400)
        #expect(status.stores.first { $0.store == "cache" }?.lastVerifiedRestore == nil)
        #expect(status.stores.first { $0.store == "vault" }?.lastVerifiedRestore != nil)
    }

    @Test func aRestoreThatThrowsFailsItsStep() async throws {
        let platform = try await Platform()
        defer { platform.cleanUp() }
        try platform.write(database: "unrestorable", at: Date().addingTimeInterval(-5))
        _ = try await platform.backup()
        let report = try await platform.drill()
        let database = try #require(report.steps.first { $0.store == "database" })
        #expect(database.outcome == .failed && database.reason?.hasPrefix("restore failed") == true)
    }

    @Test func aStoreMissingFromAPartialPointFailsItsStepByName() async throws {
        let platform = try await Platform()
        defer { platform.cleanUp() }
        try FileManager.default.removeItem(at: platform.root.appendingPathComponent("vault/data"))
        let point = try await platform.backup()
        let report = try await platform.drill(.point(String(point.id.prefix(8))))
        let vault = try #require(report.steps.first { $0.store == "vault" })
        #expect(vault.outcome == .failed)
        #expect(vault.reason?.contains("the backup of vault failed in recovery point \(point.id.prefix(8))") == true)
    }

    @Test func missedTargetsFailTheDrillEvenWhenEveryGatePasses() async throws {
        let platform = try await Platform()
        defer { platform.cleanUp() }
        try platform.write(vault: "v1", database: "d1", at: Date().addingTimeInterval(-7200))
        _ = try await platform.backup()
        let report = try await platform.drill()
        #expect(report.gatesPassed)
        #expect(!report.passed)
        #expect(report.missedTargets.contains { $0.hasPrefix("vault: data age 2h") && $0.hasSuffix("exceeds RPO 1h") })
    }
}

@Suite struct ConsistencyTests {
    /// Two points: vault and database at t1 (v1/d1), then at t2 (v2/d2).
    func twoPoints(_ platform: Platform, t1: Date, t2: Date) async throws -> (RecoveryPoint, RecoveryPoint) {
        try platform.write(vault: "v1", database: "d1", at: t1)
        let first = try await platform.backup()
        try platform.write(vault: "v2", database: "d2", at: t2)
        return (first, try await platform.backup())
    }

    @Test func anOlderVaultPullsTheDatabaseBackToAnOlderSnapshot() async throws {
        let platform = try await Platform()
        defer { platform.cleanUp() }
        let t1 = Date().addingTimeInterval(-600), t2 = Date().addingTimeInterval(-60)
        let (first, _) = try await twoPoints(platform, t1: t1, t2: t2)
        let vaultSnapshot = try #require(first.member("vault")?.snapshot)
        let (_, steps) = try await platform.preparation().prepare(.latest, overrides: ["vault": String(vaultSnapshot.prefix(10))])
        let database = try #require(steps.first { $0.step.store == "database" })
        #expect(database.snapshot?.id == first.member("database")?.snapshot)
        #expect(database.targetTime == nil)
        #expect(database.consistency?.contains("vault's restored data is from") == true)
    }

    @Test func withAnArchiveTheDatabaseIsRewoundToTheVaultsTime() async throws {
        var platform = try await Platform()
        defer { platform.cleanUp() }
        let t1 = Date().addingTimeInterval(-600), t2 = Date().addingTimeInterval(-60)
        // The database's own data is older than the vault's in the first point: only its archive
        // reaches the vault's time exactly.
        try platform.write(database: "d0", at: t1.addingTimeInterval(-20))
        try platform.write(vault: "v1", at: t1)
        let first = try await platform.backup()
        try platform.write(vault: "v2", database: "d2", at: t2)
        _ = try await platform.backup()
        platform.connector.windows["database"] = t1.addingTimeInterval(-30)...Date()
        let vaultSnapshot = try #require(first.member("vault")?.snapshot)
        let (_, steps) = try await platform.preparation().prepare(.latest, overrides: ["vault": vaultSnapshot])
        let database = try #require(steps.first { $0.step.store == "database" })
        let vaultTime = try #require(steps.first { $0.step.store == "vault" }?.dataTime)
        #expect(abs(vaultTime.timeIntervalSince(t1)) < 0.01)
        #expect(database.targetTime == vaultTime && database.dataTime == vaultTime)
        #expect(database.consistency?.hasPrefix("rewound to") == true)
    }

    @Test func withNoOlderSnapshotTheStepCannotRunAndSaysWhy() async throws {
        let platform = try await Platform()
        defer { platform.cleanUp() }
        let t1 = Date().addingTimeInterval(-600)
        try platform.write(vault: "v1", at: t1)
        try platform.write(database: "d1", at: Date())
        let point = try await platform.backup()
        // database's data is newer than vault's, and it has no older snapshot.
        let (_, steps) = try await platform.preparation().prepare(.point(point.id))
        let database = try #require(steps.first { $0.step.store == "database" })
        #expect(database.snapshot == nil)
        #expect(database.problem?.contains("would leave references into vault dangling") == true)
    }

    @Test func aTimeSelectionTakesEachStoresNewestSnapshotBeforeIt() async throws {
        let platform = try await Platform()
        defer { platform.cleanUp() }
        let t1 = Date().addingTimeInterval(-600), t2 = Date().addingTimeInterval(-60)
        let (first, _) = try await twoPoints(platform, t1: t1, t2: t2)
        let (point, steps) = try await platform.preparation().prepare(.time(t1.addingTimeInterval(10)))
        #expect(point == nil)
        #expect(steps.first { $0.step.store == "vault" }?.snapshot?.id == first.member("vault")?.snapshot)
        #expect(steps.first { $0.step.store == "database" }?.snapshot?.id == first.member("database")?.snapshot)
        let (_, early) = try await platform.preparation().prepare(.time(t1.addingTimeInterval(-10)))
        #expect(early.first { $0.step.store == "vault" }?.problem?.hasPrefix("no snapshot of vault is as old as") == true)
    }
}

/// Issue 10, item 4: a damaged manifest or recovery point never makes "latest" older data.
@Suite struct DamagedChoiceTests {
    /// Flips a byte in the middle of a stored object.
    func damage(_ name: String, in platform: Platform) async throws {
        let backend = try #require(platform.repository.backend as? MemoryBackend)
        var bytes = try await backend.load(name)
        bytes[bytes.count / 2] ^= 0x20
        await backend.corrupt(name, with: bytes)
    }

    func twoPoints(_ platform: Platform) async throws -> (RecoveryPoint, RecoveryPoint) {
        try await ConsistencyTests().twoPoints(platform, t1: Date().addingTimeInterval(-600), t2: Date().addingTimeInterval(-60))
    }

    @Test func aDamagedPointNamedIsDamageAndLatestNeedsNoPoint() async throws {
        let platform = try await Platform()
        defer { platform.cleanUp() }
        let (first, second) = try await twoPoints(platform)
        try await damage("points/\(second.id)", in: platform)
        // Naming the damaged point is damage, not "no such point" — for a restore and a drill alike.
        await #expect { try await platform.preparation().prepare(.point(String(second.id.prefix(8)))) } throws: { error in
            (error as? RepositoryError)?.code == .corruptObject && (error as? RepositoryError)?.object == "points/\(second.id)"
        }
        await #expect { try await platform.drill(.point(second.id)) } throws: { ($0 as? RepositoryError)?.object == "points/\(second.id)" }
        // --latest composes the stores' own snapshots and reads no point: the damaged one cannot make it older.
        let (point, steps) = try await platform.preparation().prepare(.latest)
        #expect(point == nil)
        #expect(steps.first { $0.step.store == "vault" }?.snapshot?.id == second.member("vault")?.snapshot)
        #expect(try await platform.preparation().prepare(.point(first.id)).point?.id == first.id, "an intact point is still restorable")
    }

    @Test func aDamagedManifestRefusesEveryChoiceAndIsSkippedOnlyWhenAsked() async throws {
        let platform = try await Platform()
        defer { platform.cleanUp() }
        let (first, second) = try await twoPoints(platform)
        let newestVault = try #require(second.member("vault")?.snapshot)
        try await damage("snapshots/\(newestVault)", in: platform)
        for selection in [RestoreSelection.latest, .point(first.id), .time(Date())] {
            await #expect("\(selection)") { try await platform.preparation().prepare(selection) } throws: { error in
                (error as? RepositoryError)?.object == "snapshots/\(newestVault)"
            }
        }
        await #expect { try await platform.repository.resolveSnapshot("latest", store: "vault") } throws: { error in
            (error as? RepositoryError)?.code == .corruptObject
        }

        let skipped = Skipped()
        let skipping = platform.repository.skippingDamaged { skipped.append($0) }
        #expect(try await skipping.resolveSnapshot("latest", store: "vault").id == first.member("vault")?.snapshot)
        let preparation = try RestorePreparation(catalog: platform.catalog, repository: skipping, connectors: platform.connectors)
        let (_, steps) = try await preparation.prepare(.point(second.id))
        #expect(steps.first { $0.step.store == "vault" }?.problem?.contains("is damaged") == true, "the point's own vault snapshot is the damaged one")
        for selection in [RestoreSelection.latest, .time(Date())] {
            let (_, older) = try await preparation.prepare(selection)
            #expect(older.first { $0.step.store == "vault" }?.snapshot?.id == first.member("vault")?.snapshot, "the newest readable: \(selection)")
        }
        #expect(Set(skipped.objects) == ["snapshots/\(newestVault)"])
    }
}

/// Collects what a skipping repository reports.
final class Skipped: @unchecked Sendable {
    private let lock = NSLock()
    private var errors: [RepositoryError] = []
    func append(_ error: RepositoryError) { lock.withLock { errors.append(error) } }
    var objects: [String] { lock.withLock { errors.compactMap(\.object) } }
}

@Suite struct RestoreJournalTests {
    @Test func aCommittedButUnverifiedStepBlocksAnImplicitResume() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("journal-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: url) }
        let journal = try RestoreJournal(url: url, point: "p1")
        try journal.mark(step: 1, store: "vault", snapshot: "s1", stage: .prepared)
        try journal.mark(step: 1, store: "vault", snapshot: "s1", stage: .committed)
        try journal.mark(step: 1, store: "vault", snapshot: "s1", stage: .verified)
        try journal.mark(step: 2, store: "database", snapshot: "s2", stage: .prepared)
        try journal.mark(step: 2, store: "database", snapshot: "s2", stage: .committed)
        // A new process reads the journal back from disk.
        let reopened = try RestoreJournal(url: url, point: "p1")
        #expect(reopened.stages[1]?.stage == .verified && reopened.stages[2]?.stage == .committed)
        #expect { try reopened.checkResume(explicitFromStep: false) } throws: { "\($0)".contains("step 2 (database) committed a destructive restore") }
        try reopened.checkResume(explicitFromStep: true)
        #expect { try RestoreJournal(url: url, point: "p2") } throws: { ($0 as? EngineError)?.code == .journal }
    }
}

@Suite struct PlatformStatusTests {
    @Test func statusShowsExposureProofAndFailures() async throws {
        let platform = try await Platform()
        defer { platform.cleanUp() }
        let written = Date()
        try platform.write(vault: "v1", database: "d1", cache: "c1", at: written.addingTimeInterval(-120))
        let complete = try await platform.backup()
        try FileManager.default.removeItem(at: platform.root.appendingPathComponent("cache/data"))
        _ = try await platform.backup()
        var status = try await PlatformStatus.read(catalog: platform.catalog, repository: platform.repository, maximumProofAge: 86_400)
        let vault = try #require(status.stores.first { $0.store == "vault" })
        // 120 s old when written, plus however long the backups took on a loaded machine.
        #expect(vault.rpoExposure! >= 120 && vault.rpoExposure! <= 121 + Date().timeIntervalSince(written) && vault.rpoMet == true)
        #expect(vault.proofStale && vault.lastVerifiedRestore == nil)
        #expect(status.stores.first { $0.store == "cache" }?.backupFailures == 1)
        #expect(!status.stores.contains { $0.store == "git" })
        _ = try await platform.drill(.point(complete.id))
        status = try await PlatformStatus.read(catalog: platform.catalog, repository: platform.repository, maximumProofAge: 86_400)
        #expect(status.stores.first { $0.store == "vault" }?.proofStale == false)
        #expect(status.stores.first { $0.store == "vault" }?.lastDrillOutcome == "passed")
        let later = try await PlatformStatus.read(catalog: platform.catalog, repository: platform.repository, now: Date().addingTimeInterval(2 * 86_400), maximumProofAge: 86_400)
        #expect(later.stores.first { $0.store == "vault" }?.proofStale == true)
        #expect(later.stores.first { $0.store == "vault" }?.rpoMet == false)
    }
}
