import ArgumentParser
import Foundation
import LifeboatCore

/// Where the catalog is, for every command: `--catalog PATH`, else `$LIFEBOAT_CATALOG`, else
/// `./lifeboat.yaml` — the one place that default is written.
enum CatalogLocation {
    static let defaultPath = "lifeboat.yaml"

    /// The catalog to read; nil when none is named and `./lifeboat.yaml` does not exist (for
    /// commands that can run without one).
    static func resolve(_ flag: String?) -> String? {
        flag ?? ProcessInfo.processInfo.environment["LIFEBOAT_CATALOG"]
            ?? (FileManager.default.fileExists(atPath: defaultPath) ? defaultPath : nil)
    }
}

/// `--catalog PATH`, for commands that need the catalog (see `CatalogLocation`).
struct CatalogOptions: ParsableArguments {
    @Option(name: [.customShort("c"), .long], help: ArgumentHelp("The catalog file (default: $LIFEBOAT_CATALOG, else ./lifeboat.yaml).", valueName: "path"))
    var catalog: String?

    var path: String { CatalogLocation.resolve(catalog) ?? CatalogLocation.defaultPath }

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
