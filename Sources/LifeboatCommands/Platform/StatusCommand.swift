import ArgumentParser
import Foundation
import LifeboatCore
import LifeboatEngine
import LifeboatPlatform
import LifeboatRepository

/// `--max-proof-age`: how old the last passed drill of a store may be before it is flagged.
struct ProofAgeOption: ParsableArguments {
    @Option(help: ArgumentHelp("Flag a store whose last proven restore (passed drill) is older than this.", valueName: "duration"))
    var maxProofAge = "7d"

    func seconds() throws -> Double {
        do { return Double(try TimeSpan(parsing: maxProofAge).seconds) } catch {
            throw CommandFailure(.usage, "--max-proof-age: \(error.message)")
        }
    }
}

/// `lifeboat status`
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Per store: the last good backup, RPO exposure against the target, and the last proven restore.",
        discussion: """
        Read from the repository: snapshots, recovery points (backup failures) and drill evidence.
        --json prints the same document as GET /v1/platform/backup/status. Exits 6 when a store's
        RPO exposure exceeds its target, its last proof is stale, its WAL archiving fails, or the live
        store is not covered the way the catalog says (archiving off or elsewhere, etcd members not the
        catalog's, OpenBao not on raft or unhealthy), so a cron job can alert on it;
        exits 3 when a snapshot manifest, recovery point or drill report cannot be read (it may be a
        store's newest backup or proof, so the table would understate the exposure).

        Example:
          lifeboat status --catalog lifeboat.yaml --max-proof-age 7d
        """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var proof: ProofAgeOption
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let status = try await PlatformOperations(try await repository.platformContext()).status(maximumProofAge: try proof.seconds())
        if output.json { try printJSON(status) } else { print(Self.render(status)) }
        if !status.damaged.isEmpty {
            throw CommandFailure(.damaged, "the repository holds \(status.damaged.count) damaged object(s) (\(status.damaged.joined(separator: ", "))): "
                + "a store's newest backup or proof may be among them, so the last backups shown may not be the newest; run `lifeboat verify` and see docs/recovery.md")
        }
        let exposed = status.stores.filter { $0.rpoMet == false || $0.lastBackup == nil }.map(\.store)
        let stale = status.stores.filter(\.proofStale).map(\.store)
        let failing = status.stores.filter { $0.archiver?.failing == true }.map(\.store)
        let drifting = status.stores.filter { $0.coverageProblems?.isEmpty == false }.map(\.store)
        if !exposed.isEmpty || !stale.isEmpty || !failing.isEmpty || !drifting.isEmpty {
            throw CommandFailure(.targetMissed, ([exposed.isEmpty ? nil : "RPO exceeded or never backed up: \(exposed.joined(separator: ", "))",
                                                   stale.isEmpty ? nil : "no recent proven restore: \(stale.joined(separator: ", "))",
                                                   failing.isEmpty ? nil : "WAL archiving failing: \(failing.joined(separator: ", "))",
                                                   drifting.isEmpty ? nil : "not covered as the catalog says: \(drifting.joined(separator: ", "))"])
                .compactMap { $0 }.joined(separator: "; "))
        }
    }

    static func render(_ status: PlatformStatus) -> String {
        var table = Table("STORE", "PRI", "LAST BACKUP (UTC)", "SIZE", "RPO EXPOSURE", "FAILURES", "LAST PROVEN RESTORE", "PROOF")
        for store in status.stores {
            let exposure = store.rpoExposure.map { TimeSpan.describe(seconds: $0) + (store.rpoTarget.map { " / " + TimeSpan.describe(seconds: $0) } ?? "")
                + (store.exposureFrom == "wal" ? " (WAL)" : "") + (store.rpoMet == false ? " EXCEEDED" : "")
                + (store.effectiveExposureFrom.flatMap { from in store.effectiveExposure.map { "; in a platform restore \(TimeSpan.describe(seconds: $0)) via \(from)" } } ?? "") } ?? "never backed up"
            let proof = store.lastDrillPassed == false ? "FAILED" : store.proofStale ? "STALE" : "ok"
            table.add(store.store, store.priority, store.lastBackup.map(RepositoryTimeText.format) ?? "-", store.lastBackupSize.map(formatBytes) ?? "-",
                      exposure, "\(store.backupFailures)", store.lastVerifiedRestore.map(RepositoryTimeText.format) ?? "never",
                      proof)
        }
        var text = table.render()
        if !status.damaged.isEmpty {
            text += "\nDAMAGED: \(status.damaged.joined(separator: ", ")) cannot be read: the last backups and proofs above may not be the newest"
        }
        for store in status.stores {
            guard let archiver = store.archiver else { continue }
            if let error = archiver.error {
                text += "\n\(store.store): cannot ask the server how its WAL archiving goes: \(error)"
            } else if archiver.failing {
                text += "\n\(store.store): WAL archiving FAILING: \(archiver.lastFailedWAL ?? "?") failed at \(archiver.lastFailedTime.map(RepositoryTimeText.format) ?? "?") UTC"
                    + " (\(archiver.failedCount ?? 0) failures; last archived \(archiver.lastArchivedWAL ?? "none")); check archive_command and the server log"
            } else if let last = archiver.lastArchivedWAL {
                text += "\n\(store.store): WAL archiving ok: \(last) at \(archiver.lastArchivedTime.map(RepositoryTimeText.format) ?? "?") UTC, \(archiver.failedCount ?? 0) failures since the server's statistics reset"
            }
        }
        for store in status.stores {
            for problem in store.coverageProblems ?? [] { text += "\n\(store.store): COVERAGE: \(problem)" }
        }
        if let drill = status.lastDrill {
            text += "\nlast \(drill.kind == DrillReport.Kind.production.rawValue ? "production restore" : "drill") \(drill.id.prefix(8)) at \(RepositoryTimeText.format(drill.started)) UTC: \(drill.passed ? "passed" : "FAILED") in \(TimeSpan.describe(seconds: drill.duration))"
        } else {
            text += "\nno drill has run: nothing is proven restorable yet (run `lifeboat drill`)"
        }
        return text
    }
}
