/// Rules that span fields and stores: names unique, dependencies real, acyclic and never
/// pointing at a less urgent store, targets a cadence can meet.
///
/// Runs on any `Catalog`, whether it came from YAML (with positions) or was built in code.
public enum CatalogValidator {
    public static func diagnostics(
        for catalog: Catalog, file: String, locations: [String: SourcePosition] = [:], alsoDeclared: Set<String> = [],
        paths: CatalogFieldPaths? = nil
    ) -> [CatalogDiagnostic] {
        let paths = paths ?? CatalogFieldPaths(catalog)
        var found: [CatalogDiagnostic] = []
        func add(_ severity: CatalogDiagnostic.Severity, _ code: CatalogDiagnostic.Code, _ field: String, _ message: String, hint: String? = nil) {
            found.append(CatalogDiagnostic(severity, code, file: file, position: locations[field], field: field, message: message, hint: hint))
        }

        var firstIndexByName: [String: Int] = [:]
        for (index, store) in catalog.stores.enumerated() {
            if let first = firstIndexByName[store.name] {
                add(.error, .duplicateName, "\(paths.stores[index]).name", "store name '\(store.name)' is already used by \(paths.stores[first])",
                    hint: "store names identify snapshots and plan steps; give each store its own name")
            } else {
                firstIndexByName[store.name] = index
            }
        }
        let storeNames = catalog.stores.map(\.name)

        for (index, store) in catalog.stores.enumerated() {
            for (position, dependency) in store.dependsOn.enumerated() {
                let field = "\(paths.stores[index]).depends_on[\(position)]"
                guard let target = catalog.store(named: dependency) else {
                    // A store that is declared but failed to load has its own error already.
                    if alsoDeclared.contains(dependency) { continue }
                    let suggestion = closestMatch(to: dependency, in: storeNames.filter { $0 != store.name })
                    add(.error, .unknownDependency, field, "store '\(store.name)' depends on '\(dependency)', which is not a store in this catalog",
                        hint: suggestion.map { "did you mean '\($0)'?" } ?? "declare '\(dependency)' under stores, or remove it from depends_on")
                    continue
                }
                if target.priority > store.priority {
                    add(.error, .priorityInversion, field,
                        "priority inversion: \(store.priority) store '\(store.name)' depends on \(target.priority) store '\(target.name)', so a \(store.priority) restore would wait for a \(target.priority) one",
                        hint: "raise '\(target.name)' to \(store.priority), lower '\(store.name)', or drop the dependency")
                }
                if store.inSequence, !target.inSequence {
                    add(.error, .unknownDependency, field,
                        "store '\(store.name)' depends on '\(target.name)', which is outside the restore sequence (in_sequence: false)",
                        hint: "put '\(target.name)' back in the sequence, or drop the dependency")
                }
            }
            if !store.kind.isManual {
                if let rpo = store.rpo, let gap = store.longestBackupGap, gap > rpo {
                    add(.warning, .cadenceExceedsRPO, "\(paths.stores[index]).cadence",
                        "store '\(store.name)' is backed up at most every \(gap) but its rpo is \(rpo): the RPO cannot be met",
                        hint: rpo.seconds == 0 ? "an rpo of 0 needs a continuous cadence" : "back up at least every \(rpo), or relax the rpo")
                }
                if let rpo = store.rpo, let effective = catalog.effectiveBackupGap(of: store.name), let dependency = effective.because,
                   effective.gap > rpo, (store.longestBackupGap.map { $0 <= rpo } ?? true) {
                    add(.warning, .dependencyExceedsRPO, "\(paths.stores[index]).depends_on",
                        "store '\(store.name)' has rpo \(rpo), but it depends on '\(dependency)', backed up at most every \(effective.gap): in a platform restore '\(store.name)' comes back no newer than '\(dependency)' and can lose up to \(effective.gap)",
                        hint: "back '\(dependency)' up at least every \(rpo) (or on change), or relax '\(store.name)''s rpo")
                }
                if store.retention == nil {
                    add(.warning, .noRetention, paths.stores[index], "store '\(store.name)' has no retention: prune will keep every snapshot")
                }
                if store.verify.isEmpty {
                    add(.warning, .noVerifyChecks, paths.stores[index],
                        "store '\(store.name)' has no verify checks: its restore gate can only check the \(store.kind.displayName) server is up",
                        hint: "add checks that read back data you know is there")
                }
            }
            if case .s3(let connection) = store.connection {
                for (checkIndex, check) in store.verify.enumerated() {
                    guard case .object(_, let bucket) = check else { continue }
                    let field = "\(paths.stores[index]).verify[\(checkIndex)]"
                    if let bucket, !connection.buckets.contains(bucket) {
                        add(.error, .badValue, field, "bucket '\(bucket)' is not one of this store's buckets (\(connection.buckets.joined(separator: ", ")))")
                    } else if bucket == nil, connection.buckets.count != 1 {
                        add(.error, .missingField, field + ".bucket", "this store has \(connection.buckets.count) buckets; say which one holds the object")
                    }
                }
            }
        }

        if let cycle = DependencyGraph(catalog.stores).findCycle(), let index = catalog.stores.firstIndex(where: { $0.name == cycle[0] }) {
            add(.error, .dependencyCycle, "\(paths.stores[index]).depends_on",
                "dependency cycle: \(cycle.joined(separator: " → ")); no store in it could be restored first",
                hint: "remove one of these depends_on entries")
        }

        var planeNames: [String: Int] = [:]
        for (index, plane) in catalog.planes.enumerated() {
            if let first = planeNames[plane.plane] {
                add(.error, .duplicateName, "\(paths.planes[index]).plane", "plane '\(plane.plane)' is already declared by \(paths.planes[first])")
            } else {
                planeNames[plane.plane] = index
            }
            for (position, name) in plane.stores.enumerated() where catalog.store(named: name) == nil {
                add(.error, .unknownDependency, "\(paths.planes[index]).stores[\(position)]", "plane '\(plane.plane)' names store '\(name)', which is not in this catalog",
                    hint: closestMatch(to: name, in: storeNames).map { "did you mean '\($0)'?" })
            }
        }
        var drillNames: [String: Int] = [:]
        for (index, drill) in catalog.drills.enumerated() {
            let path = index < paths.drills.count ? paths.drills[index] : "drills[\(index)]"
            if let first = drillNames[drill.name] {
                add(.error, .duplicateName, "\(path).name", "drill '\(drill.name)' is already declared by \(first < paths.drills.count ? paths.drills[first] : "drills[\(first)]")",
                    hint: "drill names name their jobs and reports; give each drill its own name")
            } else {
                drillNames[drill.name] = index
            }
            for (position, name) in drill.stores.enumerated() {
                let field = "\(path).stores[\(position)]"
                guard let store = catalog.store(named: name) else {
                    if alsoDeclared.contains(name) { continue }
                    add(.error, .unknownDependency, field, "drill '\(drill.name)' names store '\(name)', which is not in this catalog",
                        hint: closestMatch(to: name, in: storeNames).map { "did you mean '\($0)'?" } ?? "declare '\(name)' under stores, or remove it from the drill")
                    continue
                }
                if store.kind.isManual {
                    add(.error, .badValue, field, "drill '\(drill.name)' names '\(name)', an external store Lifeboat does not restore",
                        hint: "drill only stores Lifeboat backs up; check external ones by hand")
                }
            }
            if let maxAge = drill.maxProofAge, let gap = drill.cadences.compactMap(\.longestGap).min(), gap > maxAge {
                add(.warning, .drillExceedsProofAge, "\(path).max_proof_age",
                    "drill '\(drill.name)' runs at most every \(gap) but its proof may be only \(maxAge) old: the proof goes stale between drills",
                    hint: "drill at least every \(maxAge), or raise max_proof_age")
            }
        }
        var exclusionNames: [String: Int] = [:]
        for (index, exclusion) in catalog.exclusions.enumerated() {
            if let first = exclusionNames[exclusion.name] {
                add(.error, .duplicateName, "\(paths.exclusions[index]).name", "exclusion '\(exclusion.name)' is already declared by \(paths.exclusions[first])")
            } else {
                exclusionNames[exclusion.name] = index
            }
        }
        return found
    }
}

/// Where each catalog entry sits in the file (`stores[3]`). Entries too broken to load are left
/// out of the `Catalog`, so its indices and the file's can differ; diagnostics use the file's.
public struct CatalogFieldPaths: Sendable, Hashable {
    public var stores: [String]
    public var planes: [String]
    public var exclusions: [String]
    public var drills: [String]

    public init(stores: [String], planes: [String], exclusions: [String], drills: [String] = []) {
        self.stores = stores
        self.planes = planes
        self.exclusions = exclusions
        self.drills = drills
    }

    /// Paths for a catalog built in code, where every entry is at its own index.
    public init(_ catalog: Catalog) {
        stores = catalog.stores.indices.map { "stores[\($0)]" }
        planes = catalog.planes.indices.map { "planes[\($0)]" }
        exclusions = catalog.exclusions.indices.map { "exclusions[\($0)]" }
        drills = catalog.drills.indices.map { "drills[\($0)]" }
    }
}
