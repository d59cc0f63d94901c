import LifeboatErrors

/// The ordered restore: which store comes back when, how, and which gate proves it worked.
///
/// Built by a pure function from a `Catalog`: P0 before P1 before P2 before P3, every
/// `depends_on` before its dependant, ties broken by store name so the plan never changes
/// unless the catalog does.
public struct RestorePlan: Sendable, Hashable {
    public var steps: [RestoreStep]
    /// Stores restored outside the linear sequence (`in_sequence: false`); their `restore_step` is 0.
    public var outOfSequence: [Store]

    /// The plan step restoring `store`, or nil when it is not in the sequence.
    public func step(for store: String) -> RestoreStep? { steps.first { $0.store == store } }

    /// The step number of `store` in the sequence; 0 when it is not in it (the API's `restore_step`).
    public func order(of store: String) -> Int { step(for: store)?.order ?? 0 }
}

/// One step of the restore plan.
public struct RestoreStep: Sendable, Hashable {
    /// 1-based, contiguous.
    public var order: Int
    public var name: String
    public var store: String
    public var kind: StoreKind
    public var priority: Priority
    /// The priority the step is restored at: its own, or a more urgent dependant's when one depends on it.
    public var effectivePriority: Priority
    public var action: String
    /// The gate: every check must pass before the next step starts.
    public var verify: [String]
    public var dependsOn: [String]
    /// External stores: a person performs the step.
    public var isManual: Bool
    /// Why the step sits where it does, one reason per line (`plan --explain`).
    public var explanation: [String]
}

/// The catalog cannot be ordered.
public enum PlanError: Error, Sendable, Hashable, CustomStringConvertible {
    case dependencyCycle([String])

    public var description: String {
        switch self {
        case .dependencyCycle(let names):
            "the stores depend on each other in a cycle (\(names.joined(separator: " → "))); no order can satisfy it — run `lifeboat validate`"
        }
    }
}

extension RestorePlan {
    /// Orders the catalog's stores into restore steps.
    ///
    /// Total on any acyclic catalog, validated or not: a dependency on a less urgent store
    /// (refused by `validate`) raises that store to its dependant's priority instead of being ignored.
    public init(catalog: Catalog) throws(PlanError) {
        let sequenced = catalog.stores.filter(\.inSequence)
        let graph = DependencyGraph(sequenced)
        if let cycle = graph.findCycle() { throw .dependencyCycle(cycle) }
        let byName = Dictionary(sequenced.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })

        // Effective priority: the most urgent of the store itself and everything that (transitively) needs it.
        var effective: [String: Priority] = [:]
        var raisedBy: [String: String] = [:]
        func effectivePriority(_ name: String) -> Priority {
            if let known = effective[name] { return known }
            var best = byName[name]!.priority
            for dependant in graph.dependants[name] ?? [] {
                let candidate = effectivePriority(dependant)
                if candidate < best {
                    best = candidate
                    raisedBy[name] = dependant
                }
            }
            effective[name] = best
            return best
        }
        for name in byName.keys { _ = effectivePriority(name) }

        // Kahn's algorithm; among ready stores, the most urgent first, then by name.
        var remaining = Dictionary(uniqueKeysWithValues: byName.keys.map { ($0, graph.dependencies[$0]?.count ?? 0) })
        var ready = Set(remaining.filter { $0.value == 0 }.keys)
        var steps: [RestoreStep] = []
        func rank(_ name: String) -> (Int, Int, String) { (effective[name]!.rawValue, byName[name]!.priority.rawValue, name) }
        while let next = ready.min(by: { rank($0) < rank($1) }) {
            ready.remove(next)
            let store = byName[next]!
            let tiedWith = ready.filter { effective[$0] == effective[next] }.sorted()
            let explanation = Self.explain(store, effective: effective[next]!, raisedBy: raisedBy[next], graph: graph, tiedWith: tiedWith, byName: byName)
            steps.append(RestoreStep(
                order: steps.count + 1, name: store.kind.isManual ? "Manual: \(store.name)" : "Restore \(store.name)",
                store: store.name, kind: store.kind, priority: store.priority, effectivePriority: effective[next]!,
                action: store.action ?? Self.defaultAction(for: store), verify: Self.gate(for: store),
                dependsOn: graph.dependencies[next] ?? [], isManual: store.kind.isManual, explanation: explanation))
            for dependant in graph.dependants[next] ?? [] {
                remaining[dependant]! -= 1
                if remaining[dependant] == 0 { ready.insert(dependant) }
            }
        }
        self.init(steps: steps, outOfSequence: catalog.stores.filter { !$0.inSequence }.sorted { $0.name < $1.name })
    }

    static func explain(
        _ store: Store, effective: Priority, raisedBy: String?, graph: DependencyGraph, tiedWith: [String], byName: [String: Store]
    ) -> [String] {
        var lines: [String] = []
        if effective == .p0 {
            lines.append("\(store.priority): in the first tier")
        } else {
            let earlier = Priority.allCases.filter { $0 < effective }.map(\.description).joined(separator: "/")
            lines.append("\(effective): after every \(earlier) step")
        }
        if let raisedBy, effective < store.priority {
            lines.append("raised from \(store.priority) to \(effective): '\(raisedBy)' (\(byName[raisedBy]!.priority)) needs it first — `validate` refuses this inversion")
        }
        let dependencies = graph.dependencies[store.name] ?? []
        if !dependencies.isEmpty {
            lines.append("after \(dependencies.map { "'\($0)'" }.joined(separator: ", ")): depends_on")
        }
        let dependants = graph.dependants[store.name] ?? []
        if !dependants.isEmpty {
            lines.append("before \(dependants.map { "'\($0)'" }.joined(separator: ", ")): \(dependants.count == 1 ? "it depends" : "they depend") on this store")
        }
        if !tiedWith.isEmpty {
            lines.append("ready at the same time as \(tiedWith.map { "'\($0)'" }.joined(separator: ", ")); ties go by name")
        }
        if store.kind.isManual {
            lines.append("external store: Lifeboat holds no backup of it; a person performs this step")
        }
        return lines
    }

    static func defaultAction(for store: Store) -> String {
        switch store.kind {
        case .postgres:
            "restore PostgreSQL to the recovery point: base backup plus archived WAL to the target time (or the logical dump), then promote"
        case .openbao:
            "force-restore the raft snapshot (snapshot-force), then unseal with the source cluster's key material"
        case .etcd:
            "etcdutl snapshot restore into fresh data directories, then start the members"
        case .s3:
            "copy the objects back into the buckets from the repository"
        case .files:
            "copy the files back from the repository"
        case .external:
            if case .external(let location) = store.connection {
                "manual: restore from \(location.url)"
            } else {
                "manual: restore from the store's own source (see notes)"
            }
        }
    }

    /// The kind's built-in check followed by the catalog's own checks.
    static func gate(for store: Store) -> [String] {
        let builtIn: String? = switch store.kind {
        case .postgres: "server accepts connections and reports the restored timeline"
        case .openbao: "sys/health: initialized, unsealed, active"
        case .etcd: "every member healthy; key count and revision equal the snapshot's"
        case .s3: "object keys, sizes and SHA-256 equal the snapshot manifest"
        case .files: "file sizes and SHA-256 equal the snapshot manifest"
        case .external: store.verify.isEmpty ? "manual: confirm the store is back" : nil
        }
        return (builtIn.map { [$0] } ?? []) + store.verify.map(\.summary)
    }
}

extension PlanError: LifeboatError {
    public var errorCode: String { "plan.dependency_cycle" }
    public var errorObject: String? { nil }
    public var errorMessage: String { description }
    /// A catalog whose stores cannot be ordered is a catalog error.
    public var exitStatus: ExitStatus { .usage }
}
