import Foundation
import Testing
@testable import LifeboatCore

/// The bad-input cases of the catalog: each must name the file, the line and the field.
@Suite struct CatalogLoaderTests {
    static let file = "test/lifeboat.yaml"

    /// A valid two-store catalog; tests break one thing in it at a time.
    static let base = """
    version: 1
    platform: test
    stores:
      - name: openbao
        kind: openbao
        method: raft snapshot
        cadence: 30m
        retention:
          keep_last: 6
        priority: P0
        rpo: 4h
        verify:
          - read: secret/data/app
        connection:
          address: http://127.0.0.1:8200
          token: env:BAO_TOKEN
      - name: postgres
        kind: postgres
        method: pg_dumpall
        cadence: 1h
        retention:
          keep_daily: 7
        priority: P0
        depends_on: [openbao]
        rpo: 1h
        verify:
          - sql: SELECT 1
            expect: "1"
        connection:
          host: 127.0.0.1
          password: env:PGPASSWORD
    """

    func errors(_ yaml: String) -> [CatalogDiagnostic] {
        do {
            _ = try CatalogLoader.load(yaml: yaml, file: Self.file)
            Issue.record("the catalog was accepted")
            return []
        } catch {
            return error.errors
        }
    }

    /// 1-based line of the first line containing `marker`.
    func line(of marker: String, in yaml: String) -> Int {
        let lines = yaml.components(separatedBy: "\n")
        guard let index = lines.firstIndex(where: { $0.contains(marker) }) else {
            Issue.record("marker \(marker) not in the YAML")
            return -1
        }
        return index + 1
    }

    func expectOne(
        _ yaml: String, code: CatalogDiagnostic.Code, field: String, line marker: String, message: String, hint: String? = nil,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let found = errors(yaml)
        guard let diagnostic = found.first(where: { $0.code == code }) else {
            Issue.record("no \(code) error; got: \(found.map(\.description))", sourceLocation: sourceLocation)
            return
        }
        #expect(diagnostic.file == Self.file, sourceLocation: sourceLocation)
        #expect(diagnostic.line == line(of: marker, in: yaml), "\(diagnostic)", sourceLocation: sourceLocation)
        #expect(diagnostic.column != nil, sourceLocation: sourceLocation)
        #expect(diagnostic.field == field, sourceLocation: sourceLocation)
        #expect(diagnostic.message.contains(message), "\(diagnostic.message)", sourceLocation: sourceLocation)
        if let hint { #expect(diagnostic.hint?.contains(hint) == true, "\(diagnostic.hint ?? "nil")", sourceLocation: sourceLocation) }
        // Compiler-style text: file:line:column: error: field: message
        #expect(diagnostic.description.hasPrefix("\(Self.file):\(diagnostic.line!):\(diagnostic.column!): error: \(field): "), sourceLocation: sourceLocation)
    }

    @Test func theBaseCatalogIsValid() throws {
        let loaded = try CatalogLoader.load(yaml: Self.base, file: Self.file)
        #expect(loaded.catalog.stores.map(\.name) == ["openbao", "postgres"])
        #expect(loaded.catalog.stores[1].dependsOn == ["openbao"])
        #expect(loaded.catalog.stores[1].verify == [.sql(query: "SELECT 1", expect: "1", database: nil)])
        #expect(loaded.catalog.stores[0].connection == .openbao(OpenBaoConnection(address: "http://127.0.0.1:8200", token: .environment("BAO_TOKEN"))))
        #expect(loaded.warnings.isEmpty, "\(loaded.warnings)")
    }

    @Test func unknownFieldSuggestsTheClosestName() {
        let yaml = Self.base.replacingOccurrences(of: "depends_on: [openbao]", with: "depend_on: [openbao]")
        expectOne(yaml, code: .unknownField, field: "stores[1].depend_on", line: "depend_on:", message: "unknown field 'depend_on'", hint: "did you mean 'depends_on'?")
    }

    @Test func unknownTopLevelFieldListsTheKnownOnes() {
        let yaml = Self.base + "\nbackups: yes\n"
        expectOne(yaml, code: .unknownField, field: "backups", line: "backups:", message: "unknown field 'backups'", hint: "known fields here")
    }

    @Test func wrongTypeNamesWhatWasFound() {
        let yaml = Self.base.replacingOccurrences(of: "priority: P0\n    rpo: 4h", with: "priority: [P0]\n    rpo: 4h")
        expectOne(yaml, code: .wrongType, field: "stores[0].priority", line: "priority: [P0]", message: "must be text, found a list")
        let notAList = "stores:\n  name: a\n"
        expectOne(notAList, code: .wrongType, field: "stores", line: "name: a", message: "must be a list")
        let badCount = Self.base.replacingOccurrences(of: "keep_last: 6", with: "keep_last: many")
        expectOne(badCount, code: .wrongType, field: "stores[0].retention.keep_last", line: "keep_last: many", message: "must be a whole number, found 'many'")
    }

    @Test func restoreLayoutsAreReadAndRelativeDirectoriesRefused() throws {
        let withDirectory = Self.base.replacingOccurrences(of: "password: env:PGPASSWORD", with: "password: env:PGPASSWORD\n      data_directory: /var/lib/postgresql/15/main")
        /// The two-store catalog with a third, etcd store whose connection ends with `members` (YAML lines at its indentation).
        func withEtcd(_ members: String) -> String {
            withDirectory + "\n" + """
              - name: etcd
                kind: etcd
                method: etcd snapshot
                cadence: 15m
                retention:
                  keep_last: 4
                priority: P1
                connection:
                  endpoints: [http://127.0.0.1:2379]
                  members:

            """ + members
        }
        let catalog = try CatalogLoader.load(yaml: withEtcd("""
                - {name: etcd-0, peer_url: "http://127.0.0.1:2380", data_directory: /var/lib/etcd/etcd-0}
              cluster_token: platform-etcd
        """), file: Self.file).catalog
        guard case .postgres(let postgres)? = catalog.stores.first(where: { $0.name == "postgres" })?.connection,
              case .etcd(let etcd)? = catalog.stores.first(where: { $0.name == "etcd" })?.connection else {
            Issue.record("connections not read")
            return
        }
        #expect(postgres.dataDirectory == "/var/lib/postgresql/15/main")
        #expect(etcd.members == [EtcdMember(name: "etcd-0", peerURL: "http://127.0.0.1:2380", dataDirectory: "/var/lib/etcd/etcd-0")])
        #expect(etcd.clusterToken == "platform-etcd")

        let badMembers = withEtcd("""
                - {name: a, peer_url: "127.0.0.1:2380", data_directory: /var/lib/etcd/a}
                - {name: b, peer_url: "http://127.0.0.1:2381", data_directory: /var/lib/etcd/a/}
                - {name: b, peer_url: "http://127.0.0.1:2382", data_directory: /var/lib/etcd/a}
        """)
        let found = errors(badMembers)
        #expect(found.contains { $0.field == "stores[2].connection.members[0].peer_url" && $0.message.contains("is not a peer URL") }, "\(found)")
        // "/var/lib/etcd/a/" and "/var/lib/etcd/a" are one directory.
        #expect(found.contains { $0.field == "stores[2].connection.members[2].data_directory" && $0.message.contains("two members") }, "\(found)")
        #expect(found.contains { $0.code == .duplicateName && $0.field == "stores[2].connection.members[2].name" }, "\(found)")

        let relative = Self.base.replacingOccurrences(of: "password: env:PGPASSWORD", with: "password: env:PGPASSWORD\n      data_directory: pgdata")
        expectOne(relative, code: .badValue, field: "stores[1].connection.data_directory", line: "data_directory: pgdata", message: "'pgdata' is not an absolute path")
    }

    @Test func badDurationSaysWhatADurationLooksLike() {
        let yaml = Self.base.replacingOccurrences(of: "rpo: 1h", with: "rpo: 1hour")
        expectOne(yaml, code: .badDuration, field: "stores[1].rpo", line: "rpo: 1hour", message: "bad duration: 'o' is not a duration unit")
    }

    @Test func badCronNamesTheCronField() {
        let yaml = Self.base.replacingOccurrences(of: "cadence: 1h", with: "cadence: \"0 25 * * *\"")
        expectOne(yaml, code: .badCadence, field: "stores[1].cadence", line: "0 25 * * *", message: "hour field: 25 is out of range 0-23")
    }

    @Test func unknownDependencySuggestsAStore() {
        let yaml = Self.base.replacingOccurrences(of: "depends_on: [openbao]", with: "depends_on: [openbaoo]")
        expectOne(yaml, code: .unknownDependency, field: "stores[1].depends_on[0]", line: "depends_on: [openbaoo]",
                  message: "depends on 'openbaoo', which is not a store in this catalog", hint: "did you mean 'openbao'?")
    }

    @Test func dependencyCycleNamesEveryStoreInIt() {
        let yaml = Self.base.replacingOccurrences(of: "    priority: P0\n    rpo: 4h", with: "    priority: P0\n    depends_on: [postgres]\n    rpo: 4h")
        expectOne(yaml, code: .dependencyCycle, field: "stores[0].depends_on", line: "depends_on: [postgres]",
                  message: "dependency cycle: openbao → postgres → openbao")
    }

    @Test func selfDependencyIsACycle() {
        let yaml = Self.base.replacingOccurrences(of: "depends_on: [openbao]", with: "depends_on: [postgres]")
        expectOne(yaml, code: .dependencyCycle, field: "stores[1].depends_on", line: "depends_on: [postgres]", message: "postgres → postgres")
    }

    @Test func priorityInversionIsRefused() {
        let yaml = Self.base.replacingOccurrences(of: "    priority: P0\n    rpo: 4h", with: "    priority: P2\n    rpo: 4h")
        expectOne(yaml, code: .priorityInversion, field: "stores[1].depends_on[0]", line: "depends_on: [openbao]",
                  message: "P0 store 'postgres' depends on P2 store 'openbao'", hint: "raise 'openbao' to P0")
    }

    @Test func literalSecretIsRefusedWithoutRepeatingIt() {
        let yaml = Self.base.replacingOccurrences(of: "password: env:PGPASSWORD", with: "password: hunter2-very-secret")
        expectOne(yaml, code: .literalSecret, field: "stores[1].connection.password", line: "hunter2-very-secret",
                  message: "literal value where a secret reference is required", hint: "env:NAME")
        for diagnostic in errors(yaml) {
            #expect(!diagnostic.description.contains("hunter2"))
        }
    }

    @Test func passwordInsideAURLIsRefusedWithoutRepeatingIt() {
        let yaml = Self.base.replacingOccurrences(of: "address: http://127.0.0.1:8200", with: "address: http://admin:s3cr3t@127.0.0.1:8200")
        expectOne(yaml, code: .literalSecret, field: "stores[0].connection.address", line: "s3cr3t", message: "embeds a password in the URL")
        #expect(!errors(yaml).contains { $0.description.contains("s3cr3t") })
    }

    @Test func missingRequiredFieldPointsAtTheStore() {
        let yaml = Self.base.replacingOccurrences(of: "    method: pg_dumpall\n", with: "")
        expectOne(yaml, code: .missingField, field: "stores[1].method", line: "- name: postgres", message: "missing required field 'method'")
    }

    @Test func duplicateKeyIsRefused() throws {
        let yaml = Self.base.replacingOccurrences(of: "    rpo: 1h", with: "    rpo: 1h\n    password: plaintext-secret\n    rpo: 2h")
        let found = errors(yaml)
        #expect(found.count == 1)
        let diagnostic = try #require(found.first)
        #expect(diagnostic.code == .duplicateField)
        #expect(diagnostic.field == "rpo")
        #expect(diagnostic.line == line(of: "rpo: 1h", in: yaml))
        #expect(diagnostic.message.contains("'rpo' given more than once"))
        // Yams' own message quotes the whole file; ours must not.
        #expect(!diagnostic.description.contains("plaintext-secret"))
    }

    @Test func duplicateStoreNameIsRefused() {
        let yaml = Self.base.replacingOccurrences(of: "- name: postgres", with: "- name: openbao # again")
            .replacingOccurrences(of: "    depends_on: [openbao]\n", with: "")
        expectOne(yaml, code: .duplicateName, field: "stores[1].name", line: "# again", message: "already used by stores[0]")
    }

    @Test func checkOfTheWrongKindIsRefused() {
        let yaml = Self.base.replacingOccurrences(of: "- read: secret/data/app", with: "- sql: SELECT 1\n        expect: \"1\"")
        expectOne(yaml, code: .badValue, field: "stores[0].verify[0].sql", line: "- sql: SELECT 1", message: "a `sql` check does not apply to a store of kind openbao", hint: "read, manual")
    }

    @Test func unknownKindSuggestsOne() {
        let yaml = Self.base.replacingOccurrences(of: "kind: postgres", with: "kind: postgresql")
        expectOne(yaml, code: .badValue, field: "stores[1].kind", line: "kind: postgresql", message: "'postgresql' is not one of", hint: "did you mean 'postgres'?")
    }

    @Test func yamlSyntaxErrorHasAPosition() {
        let yaml = Self.base.replacingOccurrences(of: "    rpo: 1h", with: "    rpo: [1h")
        let found = errors(yaml)
        #expect(found.count == 1)
        #expect(found.first?.code == .yamlSyntax)
        #expect(found.first?.line != nil)
        #expect(found.first?.message.contains("not valid YAML") == true)
    }

    @Test func emptyFileSaysWhatIsNeeded() {
        let found = errors("# nothing here\n")
        #expect(found.map(\.code) == [.missingField])
        #expect(found.first?.hint?.contains("stores:") == true)
    }

    @Test func everyErrorIsReportedNotJustTheFirst() {
        let yaml = Self.base.replacingOccurrences(of: "rpo: 1h", with: "rpo: soon")
            .replacingOccurrences(of: "kind: openbao", with: "kind: vault")
            .replacingOccurrences(of: "password: env:PGPASSWORD", with: "password: plain")
        #expect(Set(errors(yaml).map(\.code)) == [.badDuration, .badValue, .literalSecret])
    }

    @Test func diagnosticsAfterABrokenStoreNameTheFilePosition() {
        // stores[0] is too broken to load; the catalog then holds postgres at index 0, but every
        // message must still say stores[1] and point at postgres's lines.
        let yaml = Self.base.replacingOccurrences(of: "kind: openbao", with: "kind: vault")
            .replacingOccurrences(of: "depends_on: [openbao]", with: "depends_on: [openbao, redis]")
        expectOne(yaml, code: .unknownDependency, field: "stores[1].depends_on[1]", line: "depends_on: [openbao, redis]",
                  message: "depends on 'redis'")
        // openbao is declared (just broken): no second, misleading "not a store" error for it.
        #expect(!errors(yaml).contains { $0.message.contains("'openbao', which is not a store") })
    }

    @Test func shortNamesDoNotGetFarFetchedSuggestions() {
        #expect(closestMatch(to: "d", in: ["a", "name"]) == nil)
        #expect(closestMatch(to: "nme", in: ["name", "kind"]) == "name")
        #expect(closestMatch(to: "depend_on", in: ["depends_on", "rpo"]) == "depends_on")
        #expect(closestMatch(to: "schedule", in: ["cadence", "retention"]) == nil)
    }

    @Test func warningsDoNotFailValidation() throws {
        let yaml = Self.base.replacingOccurrences(of: "cadence: 1h", with: "cadence: 6h")
        let loaded = try CatalogLoader.load(yaml: yaml, file: Self.file)
        let warning = try #require(loaded.warnings.first { $0.code == .cadenceExceedsRPO })
        #expect(warning.severity == .warning)
        #expect(warning.field == "stores[1].cadence")
        #expect(warning.line == line(of: "cadence: 6h", in: yaml))
        #expect(warning.message.contains("at most every 6h but its rpo is 1h"))
    }

    /// The README's pattern: PostgreSQL rpo 5m on continuous WAL, depending on an OpenBao backed up
    /// every 4h. Its own cadence meets the RPO; a platform restore cannot.
    @Test func aDependencyBackedUpLessOftenThanTheRPOIsWarnedWithTheFix() throws {
        let yaml = """
        version: 1
        stores:
          - {name: openbao, kind: openbao, method: raft, cadence: 4h, priority: P0, rpo: 4h, retention: {keep_last: 3}, verify: [{read: secret/data/a}], connection: {address: "http://127.0.0.1:8200"}}
          - {name: postgres, kind: postgres, method: wal, cadence: [continuous, "0 2 * * *"], priority: P0, rpo: 5m, depends_on: [openbao], retention: {keep_last: 3}, verify: [{sql: "SELECT 1", expect: "1"}], connection: {host: 127.0.0.1}}
          - {name: app, kind: postgres, method: pg_dumpall, cadence: 1m, priority: P1, rpo: 5m, depends_on: [postgres], retention: {keep_last: 3}, verify: [{sql: "SELECT 1", expect: "1"}], connection: {host: 127.0.0.1}}
        """
        let loaded = try CatalogLoader.load(yaml: yaml, file: Self.file)
        let warnings = loaded.warnings.filter { $0.code == .dependencyExceedsRPO }
        #expect(warnings.map(\.field) == ["stores[1].depends_on", "stores[2].depends_on"], "transitively too: \(warnings)")
        let postgres = try #require(warnings.first)
        #expect(postgres.message.contains("depends on 'openbao', backed up at most every 4h") && postgres.message.contains("can lose up to 4h"), "\(postgres.message)")
        #expect(postgres.hint?.contains("back 'openbao' up at least every 5m (or on change)") == true)
        #expect(loaded.catalog.effectiveBackupGap(of: "app")?.because == "openbao")
        #expect(!loaded.warnings.contains { $0.code == .cadenceExceedsRPO }, "each store's own cadence meets its RPO")
    }

    @Test func continuousCadenceMeetsAnyRPO() throws {
        let yaml = Self.base.replacingOccurrences(of: "cadence: 1h", with: "cadence: [continuous, \"0 2 * * *\"]")
            .replacingOccurrences(of: "rpo: 1h", with: "rpo: 5m")
        let loaded = try CatalogLoader.load(yaml: yaml, file: Self.file)
        #expect(!loaded.warnings.contains { $0.code == .cadenceExceedsRPO }, "\(loaded.warnings)")
        #expect(loaded.catalog.stores[1].cadenceSummary == "continuous + daily at 02:00")
    }

    @Test func unreadableFileIsAnError() {
        #expect {
            try CatalogLoader.load(contentsOf: "/nonexistent/lifeboat.yaml")
        } throws: { error in
            (error as? CatalogError)?.diagnostics.first?.message.contains("no such file") == true
        }
    }
}

/// The two shipped examples stay valid, and the full one orders as a person would expect.
@Suite struct ExampleCatalogTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test func platformExampleLoadsAndPlans() throws {
        let loaded = try CatalogLoader.load(contentsOf: Self.root.appendingPathComponent("examples/platform.yaml").path)
        // The reference platform as its runbook has it: RPOs shorter than the 4h OpenBao cadence they
        // depend on are exactly what the effective-RPO warning is for, and the only warnings.
        #expect(loaded.warnings.allSatisfy { $0.code == .dependencyExceedsRPO }, "\(loaded.warnings)")
        #expect(loaded.warnings.map(\.field) == ["stores[2].depends_on", "stores[3].depends_on", "stores[6].depends_on"])
        let catalog = loaded.catalog
        #expect(Set(catalog.stores.map(\.kind)) == Set(StoreKind.allCases))
        #expect(catalog.planes.count == 5)
        #expect(catalog.exclusions.count == 5)
        let plan = try RestorePlan(catalog: catalog)
        #expect(plan.steps.map(\.store) == [
            "config-as-code", "openbao", "postgres", "blueprint-catalogue", "fleet-etcd", "object-store",
            "audit-archive", "nats-jetstream", "mimir",
        ])
        #expect(plan.outOfSequence.map(\.name) == ["loki"])
        #expect(plan.step(for: "openbao")!.order < plan.step(for: "postgres")!.order)
        #expect(plan.step(for: "config-as-code")!.isManual)
    }

    @Test func localExampleHasOneOfEachServer() throws {
        let loaded = try CatalogLoader.load(contentsOf: Self.root.appendingPathComponent("examples/local.yaml").path)
        #expect(loaded.catalog.stores.map(\.kind) == [.openbao, .postgres, .etcd])
        #expect(loaded.catalog.repository?.password == .environment("LIFEBOAT_PASSWORD"))
        #expect(try RestorePlan(catalog: loaded.catalog).steps.map(\.store) == ["openbao", "postgres", "etcd"])
    }
}
