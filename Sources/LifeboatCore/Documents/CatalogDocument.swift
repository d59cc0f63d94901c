/// The coverage matrix as served by `GET /v1/platform/backup/catalog` and `lifeboat catalog --json`.
///
/// The first fields of each entry follow an existing platform's published contract
/// (`store, method, cadence, retention, priority, restore_step, notes`, all present, strings except
/// `restore_step`) so its generated clients work unchanged; structured forms sit in extra fields.
public struct CatalogDocument: Codable, Sendable, Hashable {
    public var entries: [Entry]
    public var targets: [Target]
    public var exclusions: [ExclusionEntry]

    public struct Entry: Codable, Sendable, Hashable {
        public var store: String
        public var method: String
        public var cadence: String
        public var retention: String
        public var priority: String
        /// The store's plan step; 0 when it is outside the linear sequence.
        public var restoreStep: Int
        public var notes: String
        // Extra, structured fields.
        public var kind: String
        public var dependsOn: [String]
        public var cadenceExpressions: [String]
        public var retentionPolicy: Retention?
        public var rpo: String?
        public var rto: String?
        public var verify: [String]

        enum CodingKeys: String, CodingKey {
            case store, method, cadence, retention, priority, restoreStep = "restore_step", notes
            case kind, dependsOn = "depends_on", cadenceExpressions = "cadence_expressions"
            case retentionPolicy = "retention_policy", rpo, rto, verify
        }

        // Explicit so absent values are `null`, not missing: every field is always present.
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(store, forKey: .store)
            try container.encode(method, forKey: .method)
            try container.encode(cadence, forKey: .cadence)
            try container.encode(retention, forKey: .retention)
            try container.encode(priority, forKey: .priority)
            try container.encode(restoreStep, forKey: .restoreStep)
            try container.encode(notes, forKey: .notes)
            try container.encode(kind, forKey: .kind)
            try container.encode(dependsOn, forKey: .dependsOn)
            try container.encode(cadenceExpressions, forKey: .cadenceExpressions)
            try container.encode(retentionPolicy, forKey: .retentionPolicy)
            try container.encode(rpo, forKey: .rpo)
            try container.encode(rto, forKey: .rto)
            try container.encode(verify, forKey: .verify)
        }
    }

    public struct Target: Codable, Sendable, Hashable {
        public var plane: String
        public var rpo: String
        public var rto: String
        public var stores: [String]
    }

    public struct ExclusionEntry: Codable, Sendable, Hashable {
        public var name: String
        public var rationale: String
        public var recoveryPath: String

        enum CodingKeys: String, CodingKey { case name, rationale, recoveryPath = "recovery_path" }
    }

    /// Text used where a store has no value for a human-readable column.
    public static let notApplicable = "n/a"

    public init(catalog: Catalog, plan: RestorePlan) {
        entries = catalog.stores.map { store in
            Entry(
                store: store.name, method: store.method,
                cadence: store.cadenceSummary ?? Self.notApplicable,
                retention: store.retention?.summary ?? Self.notApplicable,
                priority: store.priority.description, restoreStep: plan.order(of: store.name),
                notes: store.notes ?? "", kind: store.kind.rawValue, dependsOn: store.dependsOn,
                cadenceExpressions: store.cadences.map(\.expression), retentionPolicy: store.retention,
                rpo: store.rpo?.description, rto: store.rto?.description, verify: store.verify.map(\.summary))
        }
        targets = catalog.planes.map { Target(plane: $0.plane, rpo: $0.rpo.description, rto: $0.rto.description, stores: $0.stores) }
        exclusions = catalog.exclusions.map { ExclusionEntry(name: $0.name, rationale: $0.rationale, recoveryPath: $0.recoveryPath) }
    }
}

/// The restore plan as served by `GET /v1/platform/backup/restore-plan` and `lifeboat plan --json`.
///
/// `sequence[]` starts with the contract's `order, name, action, verify` (strings except `order`,
/// orders contiguous from 1); the rest are extra fields.
public struct RestorePlanDocument: Codable, Sendable, Hashable {
    public var sequence: [Step]
    public var outOfSequence: [String]

    enum CodingKeys: String, CodingKey { case sequence, outOfSequence = "out_of_sequence" }

    public struct Step: Codable, Sendable, Hashable {
        public var order: Int
        public var name: String
        public var action: String
        /// The gate's checks joined into one sentence (the contract wants a string).
        public var verify: String
        public var store: String
        public var kind: String
        public var priority: String
        public var effectivePriority: String
        public var dependsOn: [String]
        public var manual: Bool
        public var verifyChecks: [String]
        public var explanation: [String]

        enum CodingKeys: String, CodingKey {
            case order, name, action, verify, store, kind, priority
            case effectivePriority = "effective_priority", dependsOn = "depends_on", manual
            case verifyChecks = "verify_checks", explanation
        }
    }

    public init(plan: RestorePlan) {
        sequence = plan.steps.map { step in
            Step(order: step.order, name: step.name, action: step.action, verify: step.verify.joined(separator: "; "),
                 store: step.store, kind: step.kind.rawValue, priority: step.priority.description,
                 effectivePriority: step.effectivePriority.description, dependsOn: step.dependsOn,
                 manual: step.isManual, verifyChecks: step.verify, explanation: step.explanation)
        }
        outOfSequence = plan.outOfSequence.map(\.name)
    }
}
