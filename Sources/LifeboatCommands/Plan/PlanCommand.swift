import ArgumentParser
import LifeboatCore

/// `lifeboat plan`: the ordered restore plan.
struct PlanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Show the ordered restore plan: step, action, verification gate, dependencies.",
        discussion: """
        P0 stores come back before P1, P1 before P2, P2 before P3; a store always comes after what it depends on; ties go by name, so the plan only changes when the catalog does. --explain says why each step sits where it does. --json prints the same document as GET /v1/platform/backup/restore-plan.

        Example:
          lifeboat plan --catalog examples/platform.yaml --explain
        """)

    @OptionGroup var catalog: CatalogOptions
    @OptionGroup var output: OutputOptions

    @Flag(help: "Say why each step sits where it does.")
    var explain = false

    func run() async throws {
        let loaded = try catalog.load()
        let plan = try RestorePlan(catalog: loaded.catalog)
        if output.json {
            try printJSON(RestorePlanDocument(plan: plan))
            return
        }
        let title = loaded.catalog.platform.map { " for \($0)" } ?? ""
        print("Restore plan\(title): \(plan.steps.count) steps, each gated by its checks\n")
        let width = String(plan.steps.count).count
        for step in plan.steps {
            let number = String(repeating: " ", count: width - String(step.order).count) + "\(step.order)"
            let indent = String(repeating: " ", count: width + 2)
            print("\(number). \(step.name)  [\(step.effectivePriority), \(step.kind.rawValue)]")
            print("\(indent)action: \(step.action)")
            for (index, check) in step.verify.enumerated() {
                print("\(indent)\(index == 0 ? "gate:  " : "       ") \(check)")
            }
            if !step.dependsOn.isEmpty {
                print("\(indent)after:  \(step.dependsOn.joined(separator: ", "))")
            }
            if explain {
                for (index, reason) in step.explanation.enumerated() {
                    print("\(indent)\(index == 0 ? "why:   " : "       ") \(reason)")
                }
            }
            print("")
        }
        if !plan.outOfSequence.isEmpty {
            print("Outside the sequence (restore_step 0): \(plan.outOfSequence.map(\.name).joined(separator: ", "))")
        }
    }
}
