import ArgumentParser
import LifeboatCore

/// `lifeboat catalog`: the coverage matrix.
struct CatalogCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "catalog",
        abstract: "Show the coverage matrix: per store its method, cadence, retention, priority, RPO/RTO and restore step.",
        discussion: """
        Also lists the planes' recovery targets and what is deliberately excluded, with each exclusion's recovery path. --json prints the same document as GET /v1/platform/backup/catalog.

        Example:
          lifeboat catalog --catalog examples/platform.yaml
          lifeboat catalog --catalog examples/platform.yaml --json | jq '.entries[] | select(.priority == "P0")'
        """)

    @OptionGroup var catalog: CatalogOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let loaded = try catalog.load()
        let plan = try RestorePlan(catalog: loaded.catalog)
        let document = CatalogDocument(catalog: loaded.catalog, plan: plan)
        if output.json {
            try printJSON(document)
            return
        }
        let title = loaded.catalog.platform.map { "\($0) — " } ?? ""
        print("\(title)\(catalog.path): \(document.entries.count) stores\n")
        var stores = Table("STORE", "KIND", "PRI", "STEP", "METHOD", "CADENCE", "RETENTION", "RPO", "RTO")
        for entry in document.entries {
            stores.add(entry.store, entry.kind, entry.priority, entry.restoreStep == 0 ? "-" : "\(entry.restoreStep)",
                       entry.method, entry.cadence, entry.retention, entry.rpo ?? "-", entry.rto ?? "-")
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
