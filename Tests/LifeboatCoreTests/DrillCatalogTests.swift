import Foundation
import Testing
@testable import LifeboatCore

/// The catalog's `drills:` section and `timezone`: read, and every mistake named with its place.
@Suite struct DrillCatalogTests {
    static let file = "test/lifeboat.yaml"

    static func catalog(_ tail: String) -> String {
        """
        version: 1
        platform: test
        stores:
          - name: vault
            kind: openbao
            method: raft snapshot
            cadence: 4h
            retention:
              keep_last: 6
            priority: P0
            verify:
              - read: secret/data/app
          - name: pg-main
            kind: postgres
            method: WAL + base backup
            cadence: [continuous, "0 2 * * *"]
            retention:
              keep_daily: 7
            priority: P0
            verify:
              - sql: SELECT 1
                expect: "1"
          - name: gitops
            kind: external
            method: git
            priority: P1
        \(tail)
        """
    }

    func errors(_ yaml: String) -> [CatalogDiagnostic] {
        do {
            _ = try CatalogLoader.load(yaml: yaml, file: Self.file)
            return []
        } catch {
            return error.errors
        }
    }

    @Test func drillsAndTimeZoneLoad() throws {
        let loaded = try CatalogLoader.load(yaml: Self.catalog("""
        timezone: Europe/Berlin
        drills:
          - name: quarterly
            cadence: "0 3 1 */3 *"
            stores: [vault, pg-main]
            max_proof_age: 100d
          - name: weekly-vault
            cadence: 1w
            stores: [vault]
        """), file: Self.file)
        let catalog = loaded.catalog
        #expect(catalog.timeZone == "Europe/Berlin")
        #expect(catalog.drills.map(\.name) == ["quarterly", "weekly-vault"])
        #expect(catalog.drills[0].cadences == [.cron(try CronSchedule(parsing: "0 3 1 */3 *"))])
        #expect(catalog.drills[0].stores == ["vault", "pg-main"])
        #expect(catalog.drills[0].maxProofAge == TimeSpan(seconds: 100 * 86_400))
        #expect(catalog.drills[1].maxProofAge == nil)
        // Without `stores`, a drill covers every store Lifeboat restores (not external ones).
        #expect(DrillSchedule(name: "all", cadences: [.interval(TimeSpan(seconds: 86_400))]).stores(in: catalog) == ["vault", "pg-main"])
        #expect(loaded.warnings.filter { $0.code == .drillExceedsProofAge }.isEmpty)
    }

    @Test func mistakesAreNamedWithTheirPlace() {
        let found = errors(Self.catalog("""
        timezone: Europe/Berln
        drills:
          - name: quarterly
            cadense: "0 3 1 */3 *"
          - name: q2
            cadence: continuous
            stores: [vualt, gitops]
          - name: q2
            cadence: "0 3 * * 9"
        """))
        func find(_ field: String) -> CatalogDiagnostic? { found.first { $0.field == field } }
        let zone = find("timezone")
        #expect(zone?.code == .badValue)
        #expect(zone?.hint == "did you mean 'Europe/Berlin'?")
        #expect(zone?.line == 27)
        let misspelt = find("drills[0].cadense")
        #expect(misspelt?.code == .unknownField)
        #expect(misspelt?.hint == "did you mean 'cadence'?")
        #expect(misspelt?.line == 30 && misspelt?.column == 5)
        #expect(find("drills[0].cadence")?.code == .missingField)
        #expect(find("drills[1].cadence")?.message == "a drill cannot be continuous")
        #expect(find("drills[2].cadence")?.code == .badCadence)
        // q2 is listed twice, but the first q2 failed to load (a continuous cadence): no duplicate
        // is reported for it, and its stores are not checked.
        #expect(found.allSatisfy { $0.file == Self.file })
    }

    @Test func storesAndNamesAreChecked() throws {
        let found = errors(Self.catalog("""
        drills:
          - name: q
            cadence: 1d
            stores: [vualt, gitops]
          - name: q
            cadence: 1d
        """))
        let unknown = found.first { $0.field == "drills[0].stores[0]" }
        #expect(unknown?.code == .unknownDependency)
        #expect(unknown?.hint == "did you mean 'vault'?")
        #expect(unknown?.line == 30)
        #expect(found.first { $0.field == "drills[0].stores[1]" }?.message.contains("external store") == true)
        #expect(found.first { $0.field == "drills[1].name" }?.code == .duplicateName)

        let stale = try CatalogLoader.load(yaml: Self.catalog("""
        drills:
          - name: q
            cadence: "0 3 * * *"
            max_proof_age: 12h
        """), file: Self.file)
        let warning = try #require(stale.warnings.first { $0.code == .drillExceedsProofAge })
        #expect(warning.field == "drills[0].max_proof_age")
        #expect(warning.line == 30)
    }
}
