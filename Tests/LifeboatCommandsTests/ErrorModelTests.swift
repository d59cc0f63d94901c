import ArgumentParser
import Foundation
import LifeboatConnectors
import LifeboatCore
import LifeboatEngine
import LifeboatPlatform
import LifeboatRepository
@testable import LifeboatStorage
import Testing
@testable import LifeboatCommands
import LifeboatErrors

/// One error model: every code of every module maps to its documented exit status, reaches the
/// user as `lifeboat: error: …`, and is listed in docs/exit-codes.md.
@Suite struct ErrorModelTests {
    /// The documented table, written out here (not derived from the code it checks).
    static let table: [String: Int32] = [
        "storage.not_found": 3, "storage.already_exists": 1, "storage.permission_denied": 1, "storage.unreachable": 7,
        "storage.unavailable": 7, "storage.invalid_name": 1, "storage.encryption_not_applied": 1, "storage.io": 1,
        "repository.no_repository": 10, "repository.already_initialized": 1, "repository.wrong_passphrase": 12,
        "repository.corrupt_object": 3, "repository.missing_object": 3, "repository.unknown_snapshot": 2,
        "repository.ambiguous_snapshot": 2, "repository.unsupported_version": 1, "repository.invalid_shares": 12,
        "repository.invalid_argument": 2, "repository.locked": 11, "repository.conflict": 1, "repository.storage": 1,
        "repository.unavailable": 7,
        "catalog.invalid": 2, "catalog.invalid_duration": 2, "plan.dependency_cycle": 2,
        "engine.unknown_store": 2, "engine.unsupported_store": 2, "engine.unknown_point": 2, "engine.no_snapshot": 1,
        "engine.journal": 1, "engine.confirmation": 2, "engine.invalid_argument": 2,
        "postgres.unreachable": 1, "postgres.tool_failed": 1, "postgres.refused": 1, "postgres.not_restorable": 1,
        "postgres.missing_wal": 1, "postgres.recovery_failed": 1, "postgres.wrong_snapshot": 2, "postgres.invalid_argument": 2,
        "etcd.unreachable": 1, "etcd.authentication": 1, "etcd.server": 1, "etcd.damaged_snapshot": 3,
        "etcd.data_directory_not_empty": 1, "etcd.invalid_target": 2, "etcd.wrong_snapshot": 2, "etcd.tool": 1, "etcd.verification": 1,
        "openbao.unreachable": 1, "openbao.requestFailed": 1, "openbao.tamperedSnapshot": 3, "openbao.invalidKeyMaterial": 12,
        "openbao.custodyMismatch": 12, "openbao.targetNotEmpty": 1, "openbao.transitUnavailable": 1, "openbao.sealMismatch": 1,
        "openbao.timedOut": 1, "openbao.notReady": 1, "openbao.missingSetting": 2,
        "s3.unreachable": 7, "s3.cancelled": 130, "tool.failed": 1, "server.start_failed": 1,
        "platform.catalog": 2, "platform.secret": 2, "platform.refused": 1, "platform.notPutBack": 1,
        "platform.unverified": 1, "platform.incomplete": 1, "platform.jobFailed": 1,
        "s3bucket.invalid_argument": 2, "s3bucket.refused": 1, "s3bucket.bucket": 1,
        "files.invalid_argument": 2, "files.unreadable": 1, "files.refused": 1, "files.io": 1,
    ]

    /// One error per code of every module.
    static func everyError() throws -> [any LifeboatError] {
        var errors: [any LifeboatError] = []
        errors += BackendError.Code.allCases.map { BackendError($0, object: "data/aa/aa11", "what happened") }
        errors += RepositoryError.Code.allCases.map { RepositoryError($0, object: "snapshot 9c2e", "what happened") }
        errors += EngineError.Code.allCases.map { EngineError($0, "what happened") }
        errors += PostgresError.Code.allCases.map { PostgresError($0, "app-db", "what happened") }
        errors += EtcdError.Code.allCases.map { EtcdError($0, object: "fleet-etcd", "what happened") }
        errors += OpenBaoError.Code.allCases.map { OpenBaoError($0, object: "http://127.0.0.1:8200", "what happened") }
        errors += PlatformError.Code.allCases.map { PlatformError($0, object: "app-db", "what happened") }
        errors += S3BucketError.Code.allCases.map { S3BucketError($0, object: "bucket/key", "what happened") }
        errors += FilesError.Code.allCases.map { FilesError($0, object: "/srv/tree", "what happened") }
        errors += [Shamir.Failure.mismatchedShares("the shares do not recombine"), PlanError.dependencyCycle(["a", "b", "a"]),
                   ToolError(tool: "pg_dump", reason: "exited with status 1"), ServerStartError(message: "etcd exited")]
        errors += [S3TransportError(endpoint: "http://127.0.0.1:9", attempts: 4, reason: "connection refused", cancelled: false),
                   S3TransportError(endpoint: "http://127.0.0.1:9", attempts: 1, reason: "cancelled", cancelled: true)]
        errors.append(try #require(Self.failure { _ = try TimeSpan(parsing: "soon") }))
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("lifeboat-bad-catalog-\(UUID().uuidString.prefix(8)).yaml")
        try "stores: 5\n".write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        errors.append(try #require(Self.failure { _ = try CatalogLoader.load(contentsOf: file.path) }))
        return errors
    }

    /// The Lifeboat error `body` throws, if it throws one.
    static func failure(_ body: () throws -> Void) -> (any LifeboatError)? {
        do {
            try body()
            return nil
        } catch {
            return error as? any LifeboatError
        }
    }

    @Test func everyCodeOfEveryModuleMapsToItsDocumentedStatus() throws {
        let errors = try Self.everyError()
        for error in errors {
            let expected = try #require(Self.table[error.errorCode], "\(error.errorCode) is not in the table")
            #expect(error.exitStatus.rawValue == expected, "\(error.errorCode)")
            // The one function: the same status, and one `lifeboat: error:` line naming the object.
            let (status, line) = Lifeboat.classify(error)
            #expect(status.rawValue == expected, "\(error.errorCode)")
            #expect(line?.hasPrefix("lifeboat: error: ") == true, "\(line ?? "")")
            #expect(line?.contains(error.errorMessage) == true, "\(error.errorCode): \(line ?? "")")
        }
        // Every row of the table is some module's code: none is stale.
        #expect(Set(errors.map(\.errorCode)) == Set(Self.table.keys))
    }

    @Test func docsListEveryCode() throws {
        let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("docs/exit-codes.md")
        let text = try String(contentsOf: docs, encoding: .utf8)
        for (code, status) in Self.table {
            #expect(text.contains("| `\(code)` | \(status) |"), "docs/exit-codes.md lists \(code) → \(status)")
        }
        for status in ExitStatus.allCases {
            #expect(text.contains("| \(status.rawValue) |"), "docs/exit-codes.md lists exit status \(status.rawValue)")
        }
    }

    @Test func typedErrorsSurviveTheRepositoryBoundary() {
        let storage = BackendError(.unavailable, object: "config", "HTTP 503")
        let repository = RepositoryError(storage)
        #expect(repository.code == .unavailable)
        #expect((repository.underlyingError as? BackendError)?.code == .unavailable, "the storage error is kept, not stringified")
        let refused = PlatformError(.notPutBack, object: "/srv/pg", "could not put back", underlying: PostgresError(.recoveryFailed, "app-db", "no promotion"))
        #expect((refused.underlyingError as? PostgresError)?.code == .recoveryFailed)
    }

    @Test func usageInterruptionAndDeclaredPolicies() throws {
        // ArgumentParser's own usage errors are 2 and read `lifeboat: error:`.
        do {
            _ = try Lifeboat.parseAsRoot(["snapshots", "--no-such-option"])
            Issue.record("parsed")
        } catch {
            let (status, line) = Lifeboat.classify(error)
            #expect(status == .usage)
            #expect(line?.hasPrefix("lifeboat: error: ") == true, "\(line ?? "")")
        }
        #expect(Lifeboat.classify(CancellationError()).status == .interrupted)
        #expect(ExitStatus.interrupted.rawValue == 130)
        // wal-fetch declares its policy: every real error (usage included) stops recovery; 1 stays "not archived".
        #expect(ObjectIdentifier(Lifeboat.commandType(for: ["postgres", "wal-fetch", "--bogus"])) == ObjectIdentifier(WALFetchCommand.self))
        #expect(Lifeboat.exit(for: CommandFailure(.usage, "bad"), command: WALFetchCommand.self) == 126)
        #expect(Lifeboat.exit(for: RepositoryError(.wrongPassphrase, "no key opens"), command: WALFetchCommand.self) == 126)
        #expect(Lifeboat.exit(for: ExitCode(1), command: WALFetchCommand.self) == 1)
        #expect(Lifeboat.exit(for: CommandFailure(.usage, "bad"), command: Lifeboat.commandType(for: ["postgres", "backup"])) == 2)
    }
}
