/// The outcome of one catalog verify check run against a restored (or live) store: the gate's input.
public struct CheckResult: Sendable, Hashable, Codable {
    /// What was checked, in the catalog's words (`read secret/data/app`, `sql SELECT count(*) …`).
    public var check: String
    public var passed: Bool
    /// What was found: the value read back, the row count, or why the check could not run.
    /// Never a secret's value.
    public var detail: String

    public init(check: String, passed: Bool, detail: String) {
        self.check = check
        self.passed = passed
        self.detail = detail
    }
}
