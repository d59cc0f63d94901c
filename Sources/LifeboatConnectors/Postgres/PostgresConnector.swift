import Foundation
import LifeboatCore
import LifeboatRepository

/// Logical (SQL-level dumps) or physical (a base backup for point-in-time recovery).
public enum PostgresBackupMethod: String, Sendable, CaseIterable, Codable {
    case logical, physical

    /// The catalog's free-text `method` decides: "basebackup" or "physical" in it means physical.
    public init(catalogMethod text: String) {
        let lowered = text.lowercased()
        self = lowered.contains("basebackup") || lowered.contains("physical") ? .physical : .logical
    }
}

/// Backs up one catalog PostgreSQL store into the repository, restores it, and runs its checks.
public struct PostgresConnector: Sendable {
    public var store: String
    public var endpoint: PostgresEndpoint
    /// What `backup` does unless told otherwise (from the catalog's `method`).
    public var defaultMethod: PostgresBackupMethod
    public var checks: [VerifyCheck]

    public init(store: String, endpoint: PostgresEndpoint, defaultMethod: PostgresBackupMethod = .logical, checks: [VerifyCheck] = []) {
        self.store = store
        self.endpoint = endpoint
        self.defaultMethod = defaultMethod
        self.checks = checks
    }

    /// From the catalog store, with its password reference already resolved by the caller.
    public init(store: Store, password: String?) throws {
        guard store.kind == .postgres else {
            throw PostgresError(.invalidArgument, "store \(store.name)", "is a \(store.kind) store, not postgres")
        }
        guard case .postgres(let connection)? = store.connection else {
            throw PostgresError(.invalidArgument, "store \(store.name)", "has no postgres connection in the catalog")
        }
        self.init(store: store.name, endpoint: PostgresEndpoint(connection, password: password),
                  defaultMethod: PostgresBackupMethod(catalogMethod: store.method), checks: store.verify)
    }

    static let kind = "postgres"

    // MARK: backup

    /// The catalog default method: what the lead's `lifeboat backup` calls.
    public func backup(into repository: Repository, point: String?, tags: [String]) async throws -> SnapshotManifest {
        try await backup(into: repository, point: point, tags: tags, method: defaultMethod)
    }

    public func backup(
        into repository: Repository, point: String?, tags: [String], method: PostgresBackupMethod,
        progress: (@Sendable (Int64) -> Void)? = nil
    ) async throws -> SnapshotManifest {
        switch method {
        case .logical: try await backupLogical(into: repository, point: point, tags: tags, progress: progress)
        case .physical: try await backupPhysical(into: repository, point: point, tags: tags, progress: progress)
        }
    }

    /// Facts every postgres manifest carries.
    func commonFacts(_ psql: Psql, method: PostgresBackupMethod) async throws -> [String: String] {
        let rows = try await psql.rows("SELECT current_setting('server_version'), current_setting('server_version_num'), (SELECT system_identifier FROM pg_control_system())::text")
        guard let row = rows.first, row.count == 3 else {
            throw PostgresError(.toolFailed, endpoint.description, "cannot read the server version")
        }
        return ["method": method.rawValue, "server_version": row[0], "server_version_num": row[1], "system_identifier": row[2],
                "host": endpoint.host, "port": String(endpoint.port), "user": endpoint.user]
    }

    /// Globals, then each database under its own exported snapshot, streamed into one artefact.
    func backupLogical(into repository: Repository, point: String?, tags: [String], progress: (@Sendable (Int64) -> Void)?) async throws -> SnapshotManifest {
        let psql = try Psql(endpoint)
        var source = try await commonFacts(psql, method: .logical)
        let databases = try await psql.rows("SELECT datname, pg_database_size(oid) FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname")
        source["format"] = LogicalArchive.format
        source["databases"] = databases.map { $0[0] }.joined(separator: ",")
        source["database_sizes"] = databases.map { "\($0[0])=\($0[1])" }.joined(separator: ",")
        let producer = try LogicalDumpProducer(endpoint: endpoint, databases: databases.map { $0[0] })
        let description = SnapshotDescription(store: store, kind: Self.kind, tags: tags, source: source, point: point)
        return try await repository.put(description, progress: progress, finish: { producer.facts }) {
            try await producer.next()
        }
    }

    /// `pg_basebackup -D - -Ft -X fetch` straight into the repository.
    ///
    /// `-X stream` cannot write to stdout, so WAL is fetched at the end of the backup instead; a
    /// temporary physical replication slot (held by a session for the backup's duration, dropped by
    /// the server if Lifeboat dies) keeps that WAL from being recycled meanwhile. The tar carries
    /// `backup_label`, the WAL from start to end, and `backup_manifest` (appended by pg_basebackup).
    func backupPhysical(into repository: Repository, point: String?, tags: [String], progress: (@Sendable (Int64) -> Void)?) async throws -> SnapshotManifest {
        let psql = try Psql(endpoint)
        var source = try await commonFacts(psql, method: .physical)
        source["format"] = "pg_basebackup-tar"
        source["wal_segment_size"] = try await psql.value("SELECT setting FROM pg_settings WHERE name = 'wal_segment_size'")
        source["archive_mode"] = try await psql.value("SHOW archive_mode")
        let slotName = "lifeboat_\(UUID().uuidString.prefix(8).lowercased())"
        let slotSession = try PostgresSession(endpoint, database: endpoint.database)
        defer { slotSession.close() }
        _ = try await slotSession.query("SELECT pg_create_physical_replication_slot('\(slotName)', true, true)")
        let tool = try StreamingTool(try ExternalTool.locate("pg_basebackup"),
                                     ["-D", "-", "-Ft", "-X", "fetch", "--checkpoint=fast", "--manifest-checksums=CRC32C",
                                      "--label=lifeboat \(store)", "--no-password"],
                                     environment: endpoint.environment(), direction: .readOutput)
        let scanner = Box(TarScanner(wanted: ["backup_label": 64 << 10, "backup_manifest": 256 << 20]))
        let started = Date()
        let description = SnapshotDescription(store: store, kind: Self.kind, tags: tags, source: source, point: point)
        let finished = Box<Date?>(nil)
        let manifest = try await repository.put(description, progress: progress, finish: {
            Self.physicalFacts(scanner.value, started: started, finished: finished.value ?? Date())
        }) {
            let data = try await tool.read(exactly: 1 << 20)
            guard !data.isEmpty else {
                finished.value = Date()
                guard scanner.value.members["backup_manifest"] != nil, scanner.value.members["backup_label"] != nil else {
                    throw PostgresError(.toolFailed, "store \(store)", "pg_basebackup's output has no backup_label or backup_manifest")
                }
                return nil
            }
            scanner.value.consume(data)
            return data
        }
        return manifest
    }

    /// Start and end LSN, timeline and WAL file from `backup_label` and the manifest's `WAL-Ranges`.
    static func physicalFacts(_ scanner: TarScanner, started: Date, finished: Date) -> [String: String] {
        var facts: [String: String] = ["backup_started": SourceTime.format(started), "source_time": SourceTime.format(finished)]
        if let label = scanner.members["backup_label"] {
            let fields = parseBackupLabel(label)
            if let start = fields["START WAL LOCATION"] {
                facts["start_lsn"] = String(start.prefix { $0 != " " })
                if let file = start.split(separator: "file ").last?.prefix(24) { facts["start_wal_file"] = String(file) }
            }
            facts["timeline"] = fields["START TIMELINE"]
            facts["checkpoint_lsn"] = fields["CHECKPOINT LOCATION"]
        }
        if let manifest = scanner.members["backup_manifest"],
           let json = try? JSONSerialization.jsonObject(with: manifest) as? [String: Any],
           let ranges = json["WAL-Ranges"] as? [[String: Any]], let last = ranges.last {
            facts["end_lsn"] = last["End-LSN"] as? String
            if let first = ranges.first, let start = first["Start-LSN"] as? String { facts["start_lsn"] = start }
            if let timeline = last["Timeline"] as? Int { facts["end_timeline"] = String(timeline) }
            facts["manifest_files"] = String((json["Files"] as? [Any])?.count ?? 0)
        }
        return facts
    }

    // MARK: checks

    /// Runs the catalog's SQL checks against `target`. A check that fails (wrong answer, SQL error)
    /// is a failed result; only an unreachable server throws. Manual checks are not run.
    public static func runChecks(_ checks: [VerifyCheck], against target: PostgresEndpoint) async throws -> [CheckResult] {
        let psql = try Psql(target)
        _ = try await psql.output("SELECT 1")
        var results: [CheckResult] = []
        for check in checks {
            switch check {
            case .sql(let query, let expect, let database):
                do {
                    let got = try await psql.output(query, database: database).trimmingCharacters(in: .whitespacesAndNewlines)
                    let wanted = expect.trimmingCharacters(in: .whitespacesAndNewlines)
                    results.append(CheckResult(check: check.summary, passed: got == wanted,
                                               detail: got == wanted ? "returned \(got)" : "returned \(got.isEmpty ? "no rows" : got), expected \(wanted)"))
                } catch let error as PostgresError {
                    results.append(CheckResult(check: check.summary, passed: false, detail: "the query failed: \(error.message)"))
                }
            case .manual:
                continue
            default:
                results.append(CheckResult(check: check.summary, passed: false, detail: "not a PostgreSQL check (\(check.keyword))"))
            }
        }
        return results
    }

    public func runChecks(against target: PostgresEndpoint) async throws -> [CheckResult] {
        try await Self.runChecks(checks, against: target)
    }

    // MARK: snapshots of this store

    /// This store's backups of one method, oldest first; a damaged manifest refuses (it may be the
    /// backup to choose) unless the repository skips damaged ones.
    public func backups(in repository: Repository, method: PostgresBackupMethod) async throws -> [SnapshotManifest] {
        try await repository.snapshotsToChooseFrom().manifests.filter {
            $0.store == store && $0.kind == Self.kind && PostgresFacts($0).method == method
        }
    }

    /// The newest logical backup whose data is not newer than `time` (its `source_time` is at or before it).
    public func newestLogicalBackup(notAfter time: Date, in repository: Repository) async throws -> SnapshotManifest? {
        try await backups(in: repository, method: .logical)
            .compactMap { manifest in PostgresFacts(manifest).sourceTime.map { (time: $0, manifest: manifest) } }
            .filter { $0.time <= time }
            .max { ($0.time, $0.manifest.id) < ($1.time, $1.manifest.id) }?.manifest
    }
}

/// A mutable value shared with the repository's read closure (which runs on one task at a time).
final class Box<Value>: @unchecked Sendable {
    var value: Value
    init(_ value: Value) { self.value = value }
}

/// Produces the logical archive block by block: globals, then each database dumped under a
/// snapshot exported from a session that stays open until its pg_dump is done.
final class LogicalDumpProducer: @unchecked Sendable {
    let endpoint: PostgresEndpoint
    let databases: [String]
    private var started = false
    private var finished = false
    private var memberIndex = -1 // -1: globals
    private var tool: StreamingTool?
    private var session: PostgresSession?
    private var snapshots: [(database: String, time: String, lsn: String)] = []

    init(endpoint: PostgresEndpoint, databases: [String]) throws {
        self.endpoint = endpoint
        self.databases = databases
    }

    /// The facts known only once every member is dumped: snapshot times and LSNs.
    var facts: [String: String] {
        var facts: [String: String] = [:]
        for snapshot in snapshots {
            facts["database.\(snapshot.database).snapshot_time"] = snapshot.time
            facts["database.\(snapshot.database).snapshot_lsn"] = snapshot.lsn
        }
        // The data is no newer than the last snapshot: the conservative "as of" time.
        if let last = snapshots.max(by: { $0.time < $1.time }) {
            facts["source_time"] = last.time
            facts["source_lsn"] = last.lsn
        }
        if let first = snapshots.min(by: { $0.time < $1.time }) { facts["source_time_first"] = first.time }
        return facts
    }

    func next() async throws -> Data? {
        if finished { return nil }
        if !started {
            started = true
            return LogicalArchive.magic
        }
        if let tool {
            let frame = try await tool.read(exactly: LogicalArchive.frameSize)
            if !frame.isEmpty { return LogicalArchive.uint32(frame.count) + frame }
            try await tool.finish()
            self.tool = nil
            session?.close()
            session = nil
            memberIndex += 1
            return LogicalArchive.uint32(0)
        }
        guard memberIndex < databases.count else {
            finished = true
            return LogicalArchive.uint32(0)
        }
        let member: LogicalMember
        if memberIndex < 0 {
            member = LogicalMember(type: "globals")
            tool = try StreamingTool(try ExternalTool.locate("pg_dumpall"), ["--globals-only", "--no-password"],
                                     environment: endpoint.environment(), direction: .readOutput)
        } else {
            let database = databases[memberIndex]
            let session = try PostgresSession(endpoint, database: database)
            self.session = session
            let rows = try await session.query("""
                BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;
                SELECT pg_export_snapshot(),
                       (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text,
                       to_char((clock_timestamp() + interval '999 microseconds') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
                """)
            // Milliseconds rounded up: `source_time` must not be earlier than the snapshot.
            guard let row = rows.last, row.count == 3 else {
                throw PostgresError(.toolFailed, "\(endpoint)/\(database)", "cannot export a snapshot")
            }
            let time = SourceTime.parse(row[2]).map(SourceTime.format) ?? row[2]
            snapshots.append((database, time, row[1]))
            member = LogicalMember(type: "database", database: database, snapshotTime: time, snapshotLSN: row[1])
            tool = try StreamingTool(try ExternalTool.locate("pg_dump"),
                                     ["-Fc", "-Z0", "--snapshot=\(row[0])", "--no-password"],
                                     environment: endpoint.environment(database: database), direction: .readOutput)
        }
        let header = try JSONEncoder().encode(member)
        return LogicalArchive.uint32(header.count) + header
    }
}
