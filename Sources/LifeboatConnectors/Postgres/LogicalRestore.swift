import Foundation
import LifeboatRepository

/// What a logical restore did.
public struct LogicalRestoreReport: Sendable, Codable, Hashable {
    public var snapshot: String
    public var target: String
    public var databases: [String]
    /// Roles the dump created (those already on the target were updated, not created).
    public var rolesCreated: [String]
    public var replaced: [String]
    public var seconds: Double
}

extension PostgresConnector {
    /// Restores a logical backup into the server at `target`: roles first (`pg_dumpall
    /// --globals-only`), then each database with `pg_restore --create --exit-on-error`, streamed
    /// from the repository. Refuses, before changing anything, a target that already has any of the
    /// backup's databases (or user tables in `postgres`) unless `force`, which drops and recreates
    /// them. The target's own login role keeps its password and attributes, so the operator can
    /// still connect afterwards.
    /// The backup's databases the target already holds (`postgres` when it holds user tables):
    /// what a logical restore without `--force` refuses to replace.
    public func logicalConflicts(_ manifest: SnapshotManifest, in target: PostgresEndpoint) async throws -> [String] {
        let psql = try Psql(target)
        let existingDatabases = Set(try await psql.rows("SELECT datname FROM pg_database").map { $0[0] })
        let databases = PostgresFacts(manifest).databases
        var conflicts = databases.filter { $0 != "postgres" && existingDatabases.contains($0) }
        if databases.contains("postgres") {
            let userTables = try await psql.value("""
                SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE c.relkind IN ('r','p','v','m','S','f') AND n.nspname NOT IN ('pg_catalog','information_schema') AND n.nspname NOT LIKE 'pg_toast%'
                """, database: "postgres")
            if userTables != "0" { conflicts.append("postgres") }
        }
        return conflicts
    }

    public func restoreLogical(
        _ manifest: SnapshotManifest, from repository: Repository, into target: PostgresEndpoint, force: Bool = false
    ) async throws -> LogicalRestoreReport {
        let clock = Date()
        guard manifest.kind == Self.kind, PostgresFacts(manifest).method == .logical,
              manifest.source["format"] == LogicalArchive.format else {
            throw PostgresError(.wrongSnapshot, "snapshot \(manifest.id.prefix(8))",
                                "is not a logical PostgreSQL backup (kind \(manifest.kind), method \(PostgresFacts(manifest).method?.rawValue ?? "none"))")
        }
        let psql = try Psql(target)
        let conflicts = try await logicalConflicts(manifest, in: target)
        if !conflicts.isEmpty, !force {
            throw PostgresError(.refused, target.description,
                                "the target already holds \(conflicts.count == 1 ? "database" : "databases") \(conflicts.joined(separator: ", ")); nothing was changed. Restore into an empty server, or pass --force to drop and replace them")
        }
        let existingRoles = Set(try await psql.rows("SELECT quote_ident(rolname) FROM pg_roles").map { $0[0] })
        let ownRole = try await psql.value("SELECT quote_ident(current_user)")

        var reader = LogicalArchiveReader()
        var member: LogicalMember?
        var globals = Data()
        var restoring: StreamingTool?
        var rolesCreated: [String] = []
        var restored: [String] = []
        let psqlTool = try ExternalTool.locate("psql")
        let pgRestore = try ExternalTool.locate("pg_restore")
        do {
            try await repository.restore(manifest) { data in
                for event in try reader.consume(data) {
                    switch event {
                    case .begin(let next):
                        member = next
                        globals = Data()
                        if next.type == "database", let database = next.database {
                            var arguments = ["--exit-on-error", "--no-password", "-d", "postgres"]
                            if database != "postgres" { arguments.append("--create") }
                            if force { arguments += ["--clean", "--if-exists"] }
                            restoring = try StreamingTool(pgRestore, arguments, environment: target.environment(database: "postgres"), direction: .writeInput)
                        }
                    case .data(let bytes):
                        if member?.type == "globals" {
                            globals.append(bytes)
                            guard globals.count <= 256 << 20 else {
                                throw PostgresError(.wrongSnapshot, "snapshot \(manifest.id.prefix(8))", "the globals dump is larger than 256 MiB")
                            }
                        } else {
                            try await restoring?.write(bytes)
                        }
                    case .end:
                        if member?.type == "globals" {
                            let (script, created) = Self.globalsScript(globals, existingRoles: existingRoles, ownRole: ownRole)
                            let run = try await psqlTool.run(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", "-"],
                                                             environment: target.environment(database: "postgres"), input: script)
                            guard run.status == 0 else {
                                throw PostgresError(.toolFailed, target.description, "restoring roles failed: \(run.stderr.split(separator: "\n").suffix(3).joined(separator: " "))")
                            }
                            rolesCreated = created
                        } else if let tool = restoring, let database = member?.database {
                            do { try await tool.finish() } catch {
                                throw PostgresError(.toolFailed, "\(target)/\(database)", "pg_restore failed: \((error as? ToolError)?.reason ?? "\(error)")")
                            }
                            restoring = nil
                            restored.append(database)
                        }
                        member = nil
                    case .finished:
                        break
                    }
                }
            }
        } catch {
            restoring?.terminate()
            throw error
        }
        guard reader.isFinished else {
            throw PostgresError(.wrongSnapshot, "snapshot \(manifest.id.prefix(8))", "the archive ends early")
        }
        return LogicalRestoreReport(snapshot: manifest.id, target: target.description, databases: restored, rolesCreated: rolesCreated,
                                    replaced: force ? conflicts : [], seconds: Date().timeIntervalSince(clock))
    }

    /// The globals SQL minus what would fail or lock the operator out: `CREATE ROLE` of roles the
    /// target already has, and any `ALTER ROLE` of the role Lifeboat is connected as.
    static func globalsScript(_ sql: Data, existingRoles: Set<String>, ownRole: String) -> (Data, [String]) {
        var created: [String] = []
        var lines: [Substring] = []
        for line in String(decoding: sql, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("CREATE ROLE "), line.hasSuffix(";") {
                let role = String(line.dropFirst("CREATE ROLE ".count).dropLast())
                if existingRoles.contains(role) { continue }
                created.append(role)
            }
            if line.hasPrefix("ALTER ROLE \(ownRole) ") { continue }
            lines.append(line)
        }
        return (Data(lines.joined(separator: "\n").utf8), created)
    }
}
