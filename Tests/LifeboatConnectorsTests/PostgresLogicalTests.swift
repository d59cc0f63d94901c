import Foundation
import LifeboatCore
@testable import LifeboatRepository
import LifeboatStorage
import Testing
@testable import LifeboatConnectors

/// A scratch directory under /tmp that the postgres OS user can traverse.
func postgresScratch(_ label: String) throws -> URL {
    let directory = URL(fileURLWithPath: "/tmp/lifeboat-\(label)-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    chmod(directory.path, 0o755)
    return directory
}

/// Starts servers, runs `body`, and stops every server it started, whatever happens.
func withPostgres<T>(_ count: Int, label: String, settings: [String: String] = [:],
                     _ body: ([LocalPostgres], URL) async throws -> T) async throws -> T {
    let scratch = try postgresScratch(label)
    var servers: [LocalPostgres] = []
    do {
        for index in 0..<count {
            servers.append(try await LocalPostgres.initialize(in: scratch.appendingPathComponent("data\(index)"), settings: settings, durable: false))
        }
        let result = try await body(servers, scratch)
        for server in servers { await server.stop() }
        try? FileManager.default.removeItem(at: scratch)
        return result
    } catch {
        for server in servers { await server.stop() }
        try? FileManager.default.removeItem(at: scratch)
        throw error
    }
}

let testScrypt = KeyFile.ScryptParameters(n: 1 << 10, r: 8, p: 1)

@Suite struct PostgresLogicalTests {
    /// Roles, two databases and a checksum over their rows: what a logical round trip must preserve.
    static let fixture = """
        CREATE ROLE app_owner LOGIN PASSWORD 'owner-pw';
        CREATE ROLE "Report Reader" LOGIN;
        CREATE DATABASE inventory OWNER app_owner;
        CREATE DATABASE billing;
        """
    static let checksum = "SELECT count(*) || ':' || md5(string_agg(id::text || name, ',' ORDER BY id)) FROM items"

    @Test func aLogicalBackupRestoresRolesDatabasesAndRowsIntoAnotherServer() async throws {
        try await withPostgres(2, label: "pg-logical") { servers, _ in
            let (source, target) = (servers[0], servers[1])
            let psql = try Psql(source.endpoint)
            for statement in Self.fixture.split(separator: "\n") { _ = try await psql.output(String(statement)) }
            _ = try await psql.output("""
                CREATE TABLE items (id int PRIMARY KEY, name text); ALTER TABLE items OWNER TO app_owner;
                INSERT INTO items SELECT g, 'item-' || g FROM generate_series(1, 5000) g;
                GRANT SELECT ON items TO "Report Reader";
                """, database: "inventory")
            _ = try await psql.output("CREATE TABLE invoices (id int, amount numeric); INSERT INTO invoices SELECT g, g * 1.5 FROM generate_series(1, 1234) g;", database: "billing")
            let expected = try await psql.value(Self.checksum, database: "inventory")
            let repository = try await Repository.initialize(backend: MemoryBackend(), passphrase: "pw", scrypt: testScrypt)
            let connector = PostgresConnector(store: "app-db", endpoint: source.endpoint, defaultMethod: .logical, checks: [
                .sql(query: Self.checksum, expect: expected, database: "inventory"),
                .sql(query: "SELECT count(*) FROM invoices", expect: "1234", database: "billing"),
                .manual("look at the dashboard"),
            ])
            let before = Date()
            let manifest = try await connector.backup(into: repository, point: "p1", tags: ["nightly"])
            #expect(manifest.kind == "postgres")
            #expect(manifest.point == "p1")
            #expect(manifest.source["method"] == "logical")
            #expect(manifest.source["databases"] == "billing,inventory,postgres")
            #expect(manifest.source["server_version"]?.hasPrefix("15.") == true)
            #expect(manifest.source["database_sizes"]?.contains("inventory=") == true)
            let sourceTime = try #require(manifest.source["source_time"].flatMap(SourceTime.parse))
            #expect(sourceTime >= before.addingTimeInterval(-1) && sourceTime <= Date().addingTimeInterval(1))
            #expect(manifest.source["database.inventory.snapshot_lsn"].flatMap(LSN.init) != nil)
            #expect(!manifest.source.values.contains { $0.contains(source.password!) }, "no password in the manifest")
            #expect(try await connector.newestLogicalBackup(notAfter: Date(), in: repository)?.id == manifest.id)
            #expect(try await connector.newestLogicalBackup(notAfter: before.addingTimeInterval(-60), in: repository) == nil)

            let report = try await connector.restoreLogical(manifest, from: repository, into: target.endpoint)
            #expect(report.databases.sorted() == ["billing", "inventory", "postgres"])
            #expect(Set(report.rolesCreated) == ["app_owner", "\"Report Reader\""])
            let restored = try Psql(target.endpoint)
            #expect(try await restored.value(Self.checksum, database: "inventory") == expected)
            #expect(try await restored.value("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'inventory'") == "app_owner")
            #expect(try await restored.value("SELECT has_table_privilege('Report Reader', 'items', 'SELECT')", database: "inventory") == "t")
            // The app role's password came along; the operator's own login still works (checked by the query itself).
            let appLogin = PostgresEndpoint(host: "127.0.0.1", port: target.port, user: "app_owner", password: "owner-pw", database: "inventory")
            #expect(try await Psql(appLogin).value("SELECT count(*) FROM items") == "5000")

            let results = try await connector.runChecks(against: target.endpoint)
            #expect(results.count == 2)
            #expect(results.allSatisfy { $0.passed }, "\(results)")
            let failing = try await PostgresConnector.runChecks([
                .sql(query: "SELECT count(*) FROM invoices", expect: "9", database: "billing"),
                .sql(query: "SELECT * FROM no_such_table", expect: "1", database: nil),
            ], against: target.endpoint)
            #expect(failing.map(\.passed) == [false, false])
            #expect(failing[0].detail == "returned 1234, expected 9")
            #expect(failing[1].detail.contains("no_such_table"))

            // The target now holds the databases: refused before anything changes, unless forced.
            _ = try await restored.output("INSERT INTO items VALUES (999999, 'added after restore')", database: "inventory")
            let refusal = await #expect(throws: PostgresError.self) {
                try await connector.restoreLogical(manifest, from: repository, into: target.endpoint)
            }
            #expect(refusal?.code == .refused)
            #expect(refusal?.message.contains("billing, inventory") == true)
            #expect(try await restored.value("SELECT count(*) FROM items", database: "inventory") == "5001")
            let forced = try await connector.restoreLogical(manifest, from: repository, into: target.endpoint, force: true)
            #expect(forced.replaced.contains("inventory"))
            #expect(try await restored.value(Self.checksum, database: "inventory") == expected)

            // An unreachable target throws rather than reporting failed checks.
            let closed = PostgresEndpoint(host: "127.0.0.1", port: try freeLoopbackPort(), password: "x")
            await #expect(throws: PostgresError.self) { try await PostgresConnector.runChecks([], against: closed) }
        }
    }
}
