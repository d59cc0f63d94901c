import LifeboatErrors

/// One problem found in a catalog file, positioned at the file, line, column and field it concerns.
///
/// Messages never repeat a value that might be a secret.
public struct CatalogDiagnostic: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Severity: String, Sendable, Hashable, Codable { case error, warning }

    /// Machine-readable kind of problem (stable; shown in `validate --json`).
    public enum Code: String, Sendable, Hashable, Codable {
        case yamlSyntax = "yaml_syntax"
        case unknownField = "unknown_field"
        case duplicateField = "duplicate_field"
        case missingField = "missing_field"
        case wrongType = "wrong_type"
        case badValue = "bad_value"
        case badDuration = "bad_duration"
        case badCadence = "bad_cadence"
        case duplicateName = "duplicate_name"
        case unknownDependency = "unknown_dependency"
        case dependencyCycle = "dependency_cycle"
        case priorityInversion = "priority_inversion"
        case literalSecret = "literal_secret"
        case cadenceExceedsRPO = "cadence_exceeds_rpo"
        /// A dependency is backed up less often than the store's RPO allows: in a platform restore
        /// the store is rewound to the dependency's data.
        case dependencyExceedsRPO = "dependency_exceeds_rpo"
        case noRetention = "no_retention"
        case noVerifyChecks = "no_verify_checks"
        /// A drill runs less often than its `max_proof_age`: its proof goes stale between drills.
        case drillExceedsProofAge = "drill_exceeds_proof_age"
    }

    public var severity: Severity
    public var code: Code
    public var file: String
    /// 1-based; nil when the problem has no single place in the file (a catalog built in code).
    public var line: Int?
    public var column: Int?
    /// Dotted path of the field, e.g. `stores[2].depends_on[0]`.
    public var field: String
    public var message: String
    /// What to do about it, e.g. "did you mean 'depends_on'?".
    public var hint: String?

    public init(
        _ severity: Severity, _ code: Code, file: String, position: SourcePosition?, field: String,
        message: String, hint: String? = nil
    ) {
        self.severity = severity
        self.code = code
        self.file = file
        self.line = position?.line
        self.column = position?.column
        self.field = field
        self.message = message
        self.hint = hint
    }

    /// `file:line:column: error: field: message` (compiler style, so editors can jump to it).
    public var description: String {
        var place = file
        if let line { place += ":\(line)" }
        if let column { place += ":\(column)" }
        var text = "\(place): \(severity.rawValue): \(field): \(message)"
        if let hint { text += "\n  hint: \(hint)" }
        return text
    }
}

/// A 1-based line and column in a catalog file.
public struct SourcePosition: Sendable, Hashable, Codable {
    public var line: Int
    public var column: Int
    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }
}

/// The catalog could not be accepted; `diagnostics` holds every error found (and any warnings).
public struct CatalogError: Error, Sendable, CustomStringConvertible {
    public var file: String
    public var diagnostics: [CatalogDiagnostic]

    public var errors: [CatalogDiagnostic] { diagnostics.filter { $0.severity == .error } }

    public var description: String {
        let count = errors.count
        let header = "\(file): \(count) error\(count == 1 ? "" : "s") in the catalog"
        let warnings = diagnostics.filter { $0.severity == .warning }
        return ([header] + (errors + warnings).map(\.description)).joined(separator: "\n")
    }
}

/// Closest candidate by edit distance, for "did you mean" hints; nil when nothing is close.
func closestMatch(to word: String, in candidates: [String]) -> String? {
    let scored = candidates.map { ($0, editDistance(word.lowercased(), $0.lowercased())) }
    guard let best = scored.min(by: { $0.1 < $1.1 || ($0.1 == $1.1 && $0.0 < $1.0) }) else { return nil }
    // Short words are close to everything; allow them one edit only, and never replace the whole word.
    let limit = word.count <= 3 ? 1 : max(2, word.count / 3)
    return best.1 <= limit && best.1 < word.count ? best.0 : nil
}

func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    guard !a.isEmpty else { return b.count }
    guard !b.isEmpty else { return a.count }
    var previous = Array(0...b.count)
    for i in 1...a.count {
        var current = [i] + Array(repeating: 0, count: b.count)
        for j in 1...b.count {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        previous = current
    }
    return previous[b.count]
}

extension CatalogError: LifeboatError {
    public var errorCode: String { "catalog.invalid" }
    public var errorObject: String? { file }
    public var errorMessage: String { errors.map(\.description).joined(separator: "\n") }
    public var exitStatus: ExitStatus { .usage }
}

extension CatalogDiagnostic: LifeboatError {
    public var errorCode: String { "catalog.invalid" }
    public var errorObject: String? { nil }
    public var errorMessage: String { description }
    public var exitStatus: ExitStatus { .usage }
}
