import ArgumentParser
import Foundation
import LifeboatCore
import LifeboatEngine
import LifeboatRepository

/// `lifeboat catalog`: the coverage matrix.
struct CatalogCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "catalog",
        abstract: "Show the coverage matrix: per store its method, cadence, retention, priority, RPO/RTO and restore step.",
        discussion: """
        Also lists the planes' recovery targets and what is deliberately excluded, with each exclusion's recovery path. --json prints the same document as GET /v1/platform/backup/catalog.

        With --status, each store also shows its last good backup and its last proven restore (the newest passed drill), read from the repository (--repo, $LIFEBOAT_REPOSITORY or the catalog's repository section); a store whose proof is older than --max-proof-age is flagged STALE. --json then adds a `status` field (the document of GET /v1/platform/backup/status).

        Example:
          lifeboat catalog --catalog examples/platform.yaml
          lifeboat catalog --catalog lifeboat.yaml --status --max-proof-age 7d
          lifeboat catalog --catalog examples/platform.yaml --json | jq '.entries[] | select(.priority == "P0")'
        """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var output: OutputOptions

    @Flag(help: "Also show each store's last backup and last proven restore, from the repository.")
    var status = false

    @OptionGroup var proof: ProofAgeOption

    func run() async throws {
        let path = repository.catalogPath ?? CatalogLocation.defaultPath
        let loaded = try CatalogLoader.load(contentsOf: path)
        for warning in loaded.warnings { printError(warning.description) }
        let plan = try RestorePlan(catalog: loaded.catalog)
        let document = CatalogDocument(catalog: loaded.catalog, plan: plan)
        let platformStatus = status
            ? try await PlatformStatus.read(catalog: loaded.catalog, repository: try await repository.open(), maximumProofAge: try proof.seconds())
            : nil
        if output.json {
            guard let platformStatus else { return try printJSON(document) }
            try printJSON(CatalogWithStatus(document: document, status: platformStatus))
            return
        }
        let title = loaded.catalog.platform.map { "\($0) — " } ?? ""
        print("\(title)\(path): \(document.entries.count) stores\n")
        var stores = platformStatus == nil
            ? Table("STORE", "KIND", "PRI", "STEP", "METHOD", "CADENCE", "RETENTION", "RPO", "RTO")
            : Table("STORE", "KIND", "PRI", "STEP", "METHOD", "CADENCE", "RETENTION", "RPO", "RTO", "LAST BACKUP (UTC)", "LAST PROVEN RESTORE")
        for entry in document.entries {
            var row = [entry.store, entry.kind, entry.priority, entry.restoreStep == 0 ? "-" : "\(entry.restoreStep)",
                       entry.method, entry.cadence, entry.retention, entry.rpo ?? "-", entry.rto ?? "-"]
            if let platformStatus {
                let store = platformStatus.stores.first { $0.store == entry.store }
                row.append(store?.lastBackup.map(RepositoryTimeText.format) ?? (store == nil ? "-" : "never"))
                row.append(store.map { ($0.lastVerifiedRestore.map(RepositoryTimeText.format) ?? "never") + ($0.proofStale ? " STALE" : "") } ?? "-")
            }
            stores.add(row)
        }
        print(stores.render())
        if !document.targets.isEmpty {
            print("\nRecovery targets per plane\n")
            var targets = Table("PLANE", "RPO", "RTO", "NEEDS")
            for target in document.targets {
                targets.add(target.plane, target.rpo, target.rto, target.stores.isEmpty ? "-" : target.stores.joined(separator: ", "))
            }
            print(targets.render())
        }
        if !document.exclusions.isEmpty {
            print("\nNot backed up, on purpose\n")
            for exclusion in document.exclusions {
                print("- \(exclusion.name)\n    why:      \(exclusion.rationale)\n    recovery: \(exclusion.recoveryPath)")
            }
        }
    }
}

/// `catalog --status --json`: the catalog document with the status beside it.
struct CatalogWithStatus: Encodable {
    var document: CatalogDocument
    var status: PlatformStatus

    enum CodingKeys: String, CodingKey { case status }

    func encode(to encoder: any Encoder) throws {
        try document.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(status, forKey: .status)
    }
}
