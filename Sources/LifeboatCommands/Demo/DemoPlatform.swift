import Foundation
import LifeboatConnectors
import LifeboatCore
import LifeboatStorage

/// The demo's platform on one machine: an OpenBao (raft, Shamir 5/3), a PostgreSQL 15, an etcd and,
/// when asked, an S3 server (moto, with SigV4 checking on) holding one bucket, started on free
/// loopback ports under one directory and seeded with data that cross-references: every tenant row
/// in PostgreSQL, every tenant key in etcd and every tenant object in the bucket names the OpenBao
/// path of that tenant's secret. The catalog it writes points Lifeboat at these servers.
final class DemoPlatform: @unchecked Sendable {
    static let tenants = ["acme", "globex", "initech"]
    static func secretPath(_ tenant: String) -> String { "secret/data/demo/tenants/\(tenant)" }

    let directory: URL
    private(set) var openbao: LocalOpenBao?
    private(set) var postgres: LocalPostgres?
    private(set) var etcd: LocalEtcd?
    /// The S3 server of the `objects` store (with `bucket: true`).
    private(set) var objectStore: MotoServer?
    let withBucket: Bool
    static let bucket = "demo-objects"
    /// The OpenBao root token (written to `openbao-token`, mode 0600, for the catalog).
    private(set) var rootToken = ""

    var catalogURL: URL { directory.appendingPathComponent("lifeboat.yaml") }
    var repositoryURL: URL { directory.appendingPathComponent("repository") }
    var openbaoDirectory: URL { directory.appendingPathComponent("openbao") }
    var postgresDirectory: URL { directory.appendingPathComponent("postgres") }
    var etcdDirectory: URL { directory.appendingPathComponent("etcd") }
    var objectStoreDirectory: URL { directory.appendingPathComponent("s3") }

    /// `bucket`: also run an S3 server with one bucket, the `objects` store.
    init(directory: URL, bucket: Bool = false) {
        self.directory = directory
        withBucket = bucket
    }

    /// Starts the servers (concurrently: OpenBao's raft election dominates) and initialises OpenBao.
    func start() async throws {
        async let bao = LocalOpenBao.start(in: openbaoDirectory)
        async let pg = LocalPostgres.initialize(in: postgresDirectory.appendingPathComponent("data"), durable: false)
        async let kv = LocalEtcd.start(in: etcdDirectory)
        async let s3 = withBucket ? MotoServer.start(in: objectStoreDirectory) : nil
        let (openbao, postgres, etcd, objectStore) = try await (bao, pg, kv, s3)
        self.openbao = openbao
        self.postgres = postgres
        self.etcd = etcd
        self.objectStore = objectStore
        if let objectStore {
            try writeSecret("objects-access-key-id", objectStore.credentials.accessKeyID)
            try writeSecret("objects-secret-access-key", objectStore.credentials.secretAccessKey)
            let created = try await objectStore.client().createBucket(Self.bucket)
            guard created.isSuccess else { throw CommandFailure(.failure, "the demo's S3 server did not create bucket \(Self.bucket): HTTP \(created.status)") }
        }
        let initialized = try await openbao.initialize(shares: 5, threshold: 3)
        rootToken = initialized.rootToken
        try writeSecret("openbao-token", initialized.rootToken)
        try writeSecret("openbao-unseal-keys", initialized.keys.joined(separator: "\n"))
        try writeSecret("postgres-password", postgres.password ?? "")
        try writeSecret("repository-passphrase", Data((0..<24).map { _ in UInt8.random(in: 0...255) }).base64EncodedString())
        try await openbao.enableKV(token: rootToken)
    }

    /// Tenants (and, from `generation` 2 on, one more per generation) in every store.
    func seed(generation: Int = 1) async throws {
        guard let openbao, let postgres, let etcd else { throw CommandFailure(.failure, "the demo servers are not running") }
        let tenants = Self.tenants + (generation > 1 ? (2...generation).map { "tenant\($0)" } : [])
        for tenant in tenants {
            try await openbao.client.writeSecret("demo/tenants/\(tenant)", [
                "db_password": Data((0..<18).map { _ in UInt8.random(in: 0...255) }).base64EncodedString(),
                "generation": String(generation),
            ], token: rootToken)
        }
        let psql = try Psql(postgres.socketEndpoint)
        if generation == 1 {
            // One statement per call: CREATE DATABASE cannot run inside psql -c's implicit transaction.
            for statement in ["CREATE ROLE app_owner LOGIN", "CREATE DATABASE app OWNER app_owner", "CREATE DATABASE billing OWNER app_owner"] {
                _ = try await psql.output(statement)
            }
            _ = try await psql.output("""
                CREATE TABLE tenants (name text PRIMARY KEY, secret_path text NOT NULL, created timestamptz NOT NULL DEFAULT now());
                ALTER TABLE tenants OWNER TO app_owner;
                """, database: "app")
            _ = try await psql.output("CREATE TABLE invoices (id serial PRIMARY KEY, tenant text NOT NULL, cents bigint NOT NULL); ALTER TABLE invoices OWNER TO app_owner;",
                                      database: "billing")
        }
        let rows = tenants.map { "('\($0)', '\(Self.secretPath($0))')" }.joined(separator: ", ")
        _ = try await psql.output("INSERT INTO tenants (name, secret_path) VALUES \(rows) ON CONFLICT (name) DO NOTHING;", database: "app")
        _ = try await psql.output("INSERT INTO invoices (tenant, cents) SELECT name, 1000 * length(name) FROM unnest(ARRAY['\(tenants.joined(separator: "','"))']) AS name;",
                                  database: "billing")
        let session = try await etcd.gateway().connect()
        for tenant in tenants {
            try await session.put(Data("/demo/tenants/\(tenant)".utf8), Data(#"{"secret_path":"\#(Self.secretPath(tenant))","database":"app"}"#.utf8))
        }
        try await session.put(Data("/demo/config/generation".utf8), Data(String(generation).utf8))
        if let bucket = try objectBucket() {
            for tenant in tenants {
                try await bucket.putObject("tenants/\(tenant)/profile.json",
                                           data: Data(#"{"tenant":"\#(tenant)","secret_path":"\#(Self.secretPath(tenant))"}"#.utf8),
                                           headers: [("content-type", "application/json"), ("x-amz-meta-tenant", tenant)])
            }
            try await bucket.putObject("index.json", data: Data(#"{"tenants":\#(tenants.count),"generation":\#(generation)}"#.utf8),
                                       headers: [("content-type", "application/json")])
        }
    }

    /// The `objects` store's bucket, when the demo runs one.
    func objectBucket() throws -> S3Backend? {
        guard let objectStore else { return nil }
        return try S3Backend(configuration: objectStore.configuration(bucket: Self.bucket))
    }

    /// The catalog of this platform: its stores, their gates, the repository next to them.
    func writeCatalog() throws {
        guard let openbao, let postgres, let etcd else { throw CommandFailure(.failure, "the demo servers are not running") }
        let paths = Self.tenants.map(Self.secretPath).joined(separator: ",")
        let yaml = """
        # Written by `lifeboat demo`: the servers it started on this machine.
        version: 1
        platform: lifeboat-demo

        repository:
          url: repository
          password: file:repository-passphrase

        stores:
          - name: openbao
            kind: openbao
            method: raft snapshot (sys/storage/raft/snapshot)
            cadence: 1h
            retention: {keep_last: 24, keep_daily: 7}
            priority: P0
            rpo: 1h
            rto: 5m
            verify:
        \(Self.tenants.map { "      - {read: \(Self.secretPath($0)), field: db_password}" }.joined(separator: "\n"))
            connection:
              address: \(openbao.address)
              token: file:openbao-token
              unseal_keys: file:openbao-unseal-keys

          - name: postgres
            kind: postgres
            method: pg_dumpall + pg_dump -Fc (logical)
            cadence: 1h
            retention: {keep_last: 24, keep_daily: 7}
            priority: P0
            depends_on: [openbao]
            rpo: 1h
            rto: 5m
            verify:
              - {sql: "SELECT count(*) FROM tenants WHERE name IN ('acme', 'globex', 'initech')", expect: "3", database: app}
              - {sql: "SELECT string_agg(secret_path, ',' ORDER BY name) FROM tenants WHERE name IN ('acme', 'globex', 'initech')", expect: "\(paths)", database: app}
              - {sql: "SELECT count(*) FROM pg_roles WHERE rolname = 'app_owner'", expect: "1"}
              - {sql: "SELECT count(DISTINCT tenant) >= 3 FROM invoices", expect: "t", database: billing}
            connection:
              host: 127.0.0.1
              port: \(postgres.port)
              user: \(postgres.superuser)
              password: file:postgres-password
              database: app

          - name: etcd
            kind: etcd
            method: etcd v3 snapshot (maintenance/snapshot)
            cadence: 15m
            retention: {keep_last: 96}
            priority: P1
            rpo: 15m
            rto: 5m
            verify:
              - {prefix: /demo/tenants/, min_keys: 3}
            connection:
              endpoints: [\(etcd.endpoints.joined(separator: ", "))]

        \(objectsStore())
        planes:
          - {plane: control plane, rpo: 1h, rto: 15m, stores: [openbao, postgres, etcd\(objectStore == nil ? "" : ", objects")]}
        """
        try Data(yaml.utf8).write(to: catalogURL)
    }

    /// The catalog entry of the bucket: its objects depend on nothing Lifeboat restores, but name
    /// OpenBao paths, so it comes back after OpenBao.
    private func objectsStore() -> String {
        guard let objectStore else { return "" }
        return """

          - name: objects
            kind: s3
            method: bucket copy with a manifest of keys, sizes and SHA-256
            cadence: 6h
            retention: {keep_last: 8}
            priority: P1
            depends_on: [openbao]
            rpo: 6h
            rto: 5m
            verify:
              - {object: index.json}
        \(Self.tenants.map { "      - {object: tenants/\($0)/profile.json}" }.joined(separator: "\n"))
            connection:
              endpoint: \(objectStore.endpoint.absoluteString)
              region: \(objectStore.region)
              path_style: true
              buckets: [\(Self.bucket)]
              access_key_id: file:objects-access-key-id
              secret_access_key: file:objects-secret-access-key

        """
    }

    /// The disaster: every server stopped and its data directory deleted; the bucket emptied (the
    /// S3 service itself is not the platform's to lose, its objects are). A bucket that could not
    /// be emptied fails the demo: its restore would otherwise prove nothing.
    func destroy() async throws {
        if let bucket = try objectBucket() {
            for object in try await bucket.listObjects() { try await bucket.deleteObject(object.key) }
            guard try await bucket.listObjects().isEmpty else { throw CommandFailure(.failure, "the demo could not empty bucket \(Self.bucket)") }
        }
        await stopServers(keepingObjectStore: true)
        for directory in [openbaoDirectory, postgresDirectory, etcdDirectory] { try? FileManager.default.removeItem(at: directory) }
    }

    /// Stops the servers; the S3 server too unless `keepingObjectStore` (the disaster empties its
    /// bucket but the drill restores into a scratch bucket on it).
    func stopServers(keepingObjectStore: Bool = false) async {
        openbao?.stop()
        await postgres?.stop()
        await etcd?.stop()
        openbao = nil
        postgres = nil
        etcd = nil
        guard !keepingObjectStore else { return }
        objectStore?.stop()
        objectStore = nil
    }

    /// A secret for the catalog to reference: readable by this user only.
    private func writeSecret(_ name: String, _ value: String) throws {
        let url = directory.appendingPathComponent(name)
        guard FileManager.default.createFile(atPath: url.path, contents: Data(value.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw CommandFailure(.failure, "cannot write \(url.path)")
        }
    }
}
