import ArgumentParser
import Foundation
import LifeboatCore
import LifeboatEngine
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
        RPO exposure exceeds its target or its last proof is stale, so a cron job can alert on it.

        Example:
          lifeboat status --catalog lifeboat.yaml --max-proof-age 7d
        """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var proof: ProofAgeOption
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let context = try await PlatformContext.open(repository)
        let status = try await PlatformStatus.read(catalog: context.catalog, repository: context.repository, connectors: context.connectors,
                                                   maximumProofAge: try proof.seconds())
        if output.json { try printJSON(status) } else { print(Self.render(status)) }
        let exposed = status.stores.filter { $0.rpoMet == false || $0.lastBackup == nil }.map(\.store)
        let stale = status.stores.filter(\.proofStale).map(\.store)
        let failing = status.stores.filter { $0.archiver?.failing == true }.map(\.store)
        if !exposed.isEmpty || !stale.isEmpty || !failing.isEmpty {
            throw CommandFailure(.targetMissed, ([exposed.isEmpty ? nil : "RPO exceeded or never backed up: \(exposed.joined(separator: ", "))",
                                                   stale.isEmpty ? nil : "no recent proven restore: \(stale.joined(separator: ", "))",
                                                   failing.isEmpty ? nil : "WAL archiving failing: \(failing.joined(separator: ", "))"])
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
        if let drill = status.lastDrill {
            text += "\nlast \(drill.kind == DrillReport.Kind.production.rawValue ? "production restore" : "drill") \(drill.id.prefix(8)) at \(RepositoryTimeText.format(drill.started)) UTC: \(drill.passed ? "passed" : "FAILED") in \(TimeSpan.describe(seconds: drill.duration))"
        } else {
            text += "\nno drill has run: nothing is proven restorable yet (run `lifeboat drill`)"
        }
        return text
    }
}
