import ArgumentParser
import Foundation
import LifeboatCore

/// `--catalog PATH`, defaulting to `$LIFEBOAT_CATALOG`, then `./lifeboat.yaml`.
struct CatalogOptions: ParsableArguments {
    @Option(name: [.customShort("c"), .long], help: ArgumentHelp("The catalog file.", valueName: "path"))
    var catalog: String?

    var path: String {
        catalog ?? ProcessInfo.processInfo.environment["LIFEBOAT_CATALOG"] ?? "lifeboat.yaml"
    }

    /// Loads and validates the catalog; warnings go to stderr (a pipe reading stdout stays clean).
    func load(showWarnings: Bool = true) throws -> LoadedCatalog {
        let loaded = try CatalogLoader.load(contentsOf: path)
        if showWarnings {
            for warning in loaded.warnings { printError(warning.description) }
        }
        return loaded
    }
}

/// `--json` for machine-readable output.
struct OutputOptions: ParsableArguments {
    @Flag(help: "Print JSON, for scripts, instead of text.")
    var json = false
}

func printJSON(_ value: some Encodable) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    encoder.dateEncodingStrategy = .iso8601
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}
