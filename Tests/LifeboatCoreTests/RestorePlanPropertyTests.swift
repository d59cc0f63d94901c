import Foundation
import LifeboatTesting
import Testing
@testable import LifeboatCore

/// Properties of the restore plan over hundreds of generated catalogs.
@Suite struct RestorePlanPropertyTests {
    static let catalogsPerProperty = 400

    /// A random catalog. `allowInversions` lets a store depend on a less urgent one (which
    /// `validate` refuses); dependencies always point at earlier stores, so the graph is acyclic.
    static func randomCatalog(using generator: inout SeededGenerator, allowInversions: Bool) -> Catalog {
        let count = Int.random(in: 1...24, using: &generator)
        let names = (0..<200).map { "s\($0)" }.shuffled(using: &generator).prefix(count)
        var stores: [Store] = []
        for name in names {
            let priority = Priority.allCases.randomElement(using: &generator)!
            let candidates = stores.filter { $0.inSequence && (allowInversions || $0.priority <= priority) }
            let dependencyCount = min(candidates.count, Int.random(in: 0...3, using: &generator))
            let dependsOn = candidates.shuffled(using: &generator).prefix(dependencyCount).map(\.name)
            let kind = StoreKind.allCases.randomElement(using: &generator)!
            // Out-of-sequence stores are leaves nobody depends on, or validation would refuse them.
            let inSequence = Int.random(in: 0..<10, using: &generator) > 0
            stores.append(Store(name: name, kind: kind, method: "m", cadences: [.interval(TimeSpan(seconds: 3600))],
                                retention: Retention(keepLast: 3), priority: priority, dependsOn: dependsOn,
                                verify: kind == .external ? [] : [.manual("look")], inSequence: inSequence))
        }
        // Drop dependencies on stores that turned out out-of-sequence only for in-sequence dependants.
        let outOfSequence = Set(stores.filter { !$0.inSequence }.map(\.name))
        for index in stores.indices where stores[index].inSequence {
            stores[index].dependsOn.removeAll { outOfSequence.contains($0) }
        }
        return Catalog(stores: stores.shuffled(using: &generator))
    }

    /// Checks that hold for every acyclic catalog, valid or not.
    func checkCommonProperties(_ catalog: Catalog, _ plan: RestorePlan, seed: UInt64) {
        let inSequence = catalog.stores.filter(\.inSequence)
        #expect(plan.steps.map(\.order) == Array(1...max(1, plan.steps.count)).prefix(plan.steps.count).map { $0 }, "seed \(seed)")
        #expect(plan.steps.map(\.store).sorted() == inSequence.map(\.name).sorted(), "every in-sequence store exactly once; seed \(seed)")
        #expect(plan.outOfSequence.map(\.name).sorted() == catalog.stores.filter { !$0.inSequence }.map(\.name).sorted())
        for step in plan.steps {
            for dependency in step.dependsOn {
                #expect(plan.order(of: dependency) < step.order, "\(dependency) must precede \(step.store); seed \(seed)")
            }
            #expect(step.dependsOn == catalog.store(named: step.store)!.dependsOn.sorted())
            #expect(step.effectivePriority <= step.priority)
        }
        // The priority a step is restored at never goes backwards.
        for (earlier, later) in zip(plan.steps, plan.steps.dropFirst()) {
            #expect(earlier.effectivePriority <= later.effectivePriority, "seed \(seed)")
        }
        // Stable: the order of stores in the file does not matter.
        var shuffler = SeededGenerator(seed: seed &+ 1)
        let reordered = Catalog(stores: catalog.stores.shuffled(using: &shuffler))
        #expect(try! RestorePlan(catalog: reordered) == plan, "seed \(seed)")
    }

    @Test func validCatalogsOrderByPriorityThenDependenciesThenName() throws {
        for seed in UInt64(0)..<UInt64(Self.catalogsPerProperty) {
            var generator = SeededGenerator(seed: seed)
            let catalog = Self.randomCatalog(using: &generator, allowInversions: false)
            let diagnostics = CatalogValidator.diagnostics(for: catalog, file: "generated")
            #expect(diagnostics.filter { $0.severity == .error }.isEmpty, "seed \(seed): \(diagnostics)")
            let plan = try RestorePlan(catalog: catalog)
            checkCommonProperties(catalog, plan, seed: seed)
            for (earlier, later) in zip(plan.steps, plan.steps.dropFirst()) {
                // In a valid catalog nothing is raised, so the catalog's own priorities never go backwards.
                #expect(earlier.priority <= later.priority, "seed \(seed)")
                // Ties by name: when the later step was already ready and equally urgent, names decide.
                let laterWasReady = later.dependsOn.allSatisfy { plan.order(of: $0) < earlier.order }
                if laterWasReady, earlier.priority == later.priority {
                    #expect(earlier.store < later.store, "seed \(seed): \(earlier.store) before \(later.store)")
                }
            }
            #expect(plan.steps.allSatisfy { $0.effectivePriority == $0.priority })
        }
    }

    @Test func inversionsAreRefusedByValidateAndOnlyDependenciesMovePrioritiesBackwards() throws {
        var sawInversion = false
        for seed in UInt64(1_000)..<UInt64(1_000 + Self.catalogsPerProperty) {
            var generator = SeededGenerator(seed: seed)
            let catalog = Self.randomCatalog(using: &generator, allowInversions: true)
            let plan = try RestorePlan(catalog: catalog)
            checkCommonProperties(catalog, plan, seed: seed)
            let hasInversion = catalog.stores.contains { store in
                store.dependsOn.contains { catalog.store(named: $0)!.priority > store.priority }
            }
            sawInversion = sawInversion || hasInversion
            let refused = CatalogValidator.diagnostics(for: catalog, file: "generated").contains { $0.code == .priorityInversion }
            #expect(refused == hasInversion, "seed \(seed)")
            for (earlier, later) in zip(plan.steps, plan.steps.dropFirst()) where earlier.priority > later.priority {
                // Backwards only because a more urgent store needed the earlier one.
                #expect(earlier.effectivePriority < earlier.priority, "seed \(seed): \(earlier.store) moved without cause")
                #expect(earlier.explanation.contains { $0.hasPrefix("raised from") })
            }
        }
        #expect(sawInversion, "the generator must produce inversions for this property to mean anything")
    }

    @Test func cyclesAreRefusedAndNamed() {
        for seed in UInt64(2_000)..<UInt64(2_000 + Self.catalogsPerProperty) {
            var generator = SeededGenerator(seed: seed)
            var catalog = Self.randomCatalog(using: &generator, allowInversions: true)
            let sequenced = catalog.stores.indices.filter { catalog.stores[$0].inSequence }
            guard let first = sequenced.randomElement(using: &generator) else { continue }
            // Close a cycle: make some store that (transitively) depends on `first` a dependency of `first`,
            // or make `first` depend on itself when nothing depends on it.
            let name = catalog.stores[first].name
            let dependants = catalog.stores.filter { $0.inSequence && $0.dependsOn.contains(name) }.map(\.name)
            catalog.stores[first].dependsOn.append(dependants.randomElement(using: &generator) ?? name)

            guard case .dependencyCycle(let cycle)? = Self.planError(for: catalog) else {
                Issue.record("the plan accepted a cyclic catalog; seed \(seed)")
                continue
            }
            #expect(cycle.first == cycle.last && cycle.count >= 2)
            for (from, to) in zip(cycle, cycle.dropFirst()) {
                #expect(catalog.store(named: from)!.dependsOn.contains(to), "\(from) → \(to) is not an edge; seed \(seed)")
            }
            // validate searches every store (the plan only sequenced ones), so it may name another cycle; it must be real.
            let diagnostic = CatalogValidator.diagnostics(for: catalog, file: "generated").first { $0.code == .dependencyCycle }
            let named = diagnostic?.message.split(separator: ":")[1].split(separator: ";")[0]
                .components(separatedBy: " → ").map { $0.trimmingCharacters(in: .whitespaces) } ?? []
            #expect(named.count >= 2 && named.first == named.last, "seed \(seed): \(diagnostic?.message ?? "no cycle reported")")
            for (from, to) in zip(named, named.dropFirst()) {
                #expect(catalog.store(named: from)?.dependsOn.contains(to) == true, "\(from) → \(to) is not an edge; seed \(seed)")
            }
        }
    }

    static func planError(for catalog: Catalog) -> PlanError? {
        do { _ = try RestorePlan(catalog: catalog); return nil } catch { return error }
    }

    /// Rendering a generated catalog as YAML and loading it back gives the same plan.
    @Test func yamlRoundTripKeepsThePlan() throws {
        for seed in UInt64(3_000)..<UInt64(3_000 + Self.catalogsPerProperty / 2) {
            var generator = SeededGenerator(seed: seed)
            let catalog = Self.randomCatalog(using: &generator, allowInversions: false)
            let loaded = try CatalogLoader.load(yaml: Self.yaml(for: catalog), file: "generated.yaml")
            #expect(loaded.catalog.stores.map(\.name) == catalog.stores.map(\.name))
            #expect(try RestorePlan(catalog: loaded.catalog) == RestorePlan(catalog: catalog), "seed \(seed)")
        }
    }

    static func yaml(for catalog: Catalog) -> String {
        var lines = ["stores:"]
        for store in catalog.stores {
            lines += ["  - name: \(store.name)", "    kind: \(store.kind.rawValue)", "    method: \(store.method)",
                      "    cadence: \(store.cadences.map(\.expression).joined())", "    retention:", "      keep_last: 3",
                      "    priority: \(store.priority)", "    depends_on: [\(store.dependsOn.joined(separator: ", "))]",
                      "    in_sequence: \(store.inSequence)"]
            if !store.verify.isEmpty { lines += ["    verify:", "      - manual: look"] }
        }
        return lines.joined(separator: "\n")
    }
}
