/// The `depends_on` edges between stores, with deterministic traversal (always in name order).
struct DependencyGraph {
    /// Store name → names it depends on, restricted to stores in the graph.
    let dependencies: [String: [String]]
    /// Store name → names that depend on it.
    let dependants: [String: [String]]

    init(_ stores: [Store]) {
        let names = Set(stores.map(\.name))
        var dependencies: [String: [String]] = [:]
        var dependants: [String: [String]] = [:]
        for store in stores {
            let known = Array(Set(store.dependsOn.filter(names.contains))).sorted()
            dependencies[store.name] = known
            for dependency in known { dependants[dependency, default: []].append(store.name) }
        }
        self.dependencies = dependencies
        self.dependants = dependants.mapValues { $0.sorted() }
    }

    /// One dependency cycle as `[a, b, c, a]`, or nil when the graph is acyclic.
    /// Deterministic: the search starts from names in sorted order.
    func findCycle() -> [String]? {
        enum Mark { case visiting, done }
        var marks: [String: Mark] = [:]
        var stack: [String] = []

        func visit(_ name: String) -> [String]? {
            switch marks[name] {
            case .done: return nil
            case .visiting:
                let start = stack.firstIndex(of: name)!
                return Array(stack[start...]) + [name]
            case nil: break
            }
            marks[name] = .visiting
            stack.append(name)
            for next in dependencies[name] ?? [] {
                if let cycle = visit(next) { return cycle }
            }
            stack.removeLast()
            marks[name] = .done
            return nil
        }
        for name in dependencies.keys.sorted() {
            if let cycle = visit(name) { return cycle }
        }
        return nil
    }
}
