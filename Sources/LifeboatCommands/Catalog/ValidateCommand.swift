import ArgumentParser
import LifeboatCore
import LifeboatErrors

/// `lifeboat validate`: check the catalog and nothing else.
struct ValidateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check the catalog: fields, types, durations, cron, dependencies, priorities, secrets.",
        discussion: """
        Every problem is reported with its file, line, column and field, compiler style. Exits 0 when the catalog is valid (warnings allowed), 2 when it has errors.

        Example:
          lifeboat validate --catalog examples/platform.yaml
        """)

    @OptionGroup var catalog: CatalogOptions
    @OptionGroup var output: OutputOptions

    struct Report: Encodable {
        var file: String
        var valid: Bool
        var stores: Int
        var planes: Int
        var exclusions: Int
        var errors: [CatalogDiagnostic]
        var warnings: [CatalogDiagnostic]
    }

    func run() async throws {
        let report: Report
        do {
            let loaded = try catalog.load(showWarnings: false)
            report = Report(file: catalog.path, valid: true, stores: loaded.catalog.stores.count, planes: loaded.catalog.planes.count,
                            exclusions: loaded.catalog.exclusions.count, errors: [], warnings: loaded.warnings)
        } catch let error as CatalogError {
            report = Report(file: catalog.path, valid: false, stores: 0, planes: 0, exclusions: 0,
                            errors: error.errors, warnings: error.diagnostics.filter { $0.severity == .warning })
        }
        if output.json {
            try printJSON(report)
        } else {
            for diagnostic in report.errors + report.warnings { printError(diagnostic.description) }
            if report.valid {
                let warnings = report.warnings.isEmpty ? "" : " (\(report.warnings.count) warning\(report.warnings.count == 1 ? "" : "s"))"
                print("\(report.file): valid — \(report.stores) stores, \(report.planes) planes, \(report.exclusions) exclusions\(warnings)")
            } else {
                printError("\(report.file): \(report.errors.count) error\(report.errors.count == 1 ? "" : "s"); the catalog is not valid")
            }
        }
        if !report.valid { throw ExitCode(ExitStatus.usage.rawValue) }
    }
}

extension CatalogDiagnostic: Encodable {
    enum CodingKeys: String, CodingKey { case severity, code, file, line, column, field, message, hint }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(severity, forKey: .severity)
        try container.encode(code, forKey: .code)
        try container.encode(file, forKey: .file)
        try container.encode(line, forKey: .line)
        try container.encode(column, forKey: .column)
        try container.encode(field, forKey: .field)
        try container.encode(message, forKey: .message)
        try container.encode(hint, forKey: .hint)
    }
}
