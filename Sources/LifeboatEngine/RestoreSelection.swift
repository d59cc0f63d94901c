import Foundation
import LifeboatCore
import LifeboatRepository

/// Which data a whole-platform restore brings back.
public enum RestoreSelection: Sendable, Hashable {
    /// The snapshots of one recovery point (an id or a unique prefix), exactly.
    case point(String)
    /// Every store at the newest state it can reach, within the consistency rule.
    case latest
    /// Every store as it was at this instant: the newest state at or before it that the store can
    /// reach (point-in-time where its archive covers it, else its newest snapshot from before).
    case time(Date)
}

extension RestoreSelection {
    /// How reports name the selection: `latest`, `time 2026-…`, or the point reference.
    public var label: String {
        switch self {
        case .point(let reference): reference
        case .latest: "latest"
        case .time(let instant): "time \(SourceTime.format(instant))"
        }
    }
}

/// One plan step with the data chosen for it: what `restore` will bring back and why.
public struct PreparedStep: Sendable {
    public var step: RestoreStep
    public var store: Store?
    /// The snapshot to restore; nil for manual steps and for steps that cannot run (see `problem`).
    public var snapshot: SnapshotManifest?
    /// Restore to this instant (point-in-time) rather than the snapshot's own time.
    public var targetTime: Date?
    /// The time the restored data will reflect.
    public var dataTime: Date?
    /// Why this data was chosen: newest available, at or before the instant, pinned, the point's,
    /// or rewound because of a dependency.
    public var reason: String?
    /// Set when the store is restored to an earlier time than it could be, to stay consistent with
    /// a dependency (cross-store consistency), and why.
    public var consistency: String?
    /// Why the step cannot run; the run stops here.
    public var problem: String?
}

/// Chooses the data for every plan step. The unit of restore is an instant: each store, in plan
/// order, takes the newest state at or before it that the store can reach — a snapshot's own data
/// time, or any instant its base backup plus archived WAL covers — and no store comes back newer
/// than the stores it depends on (so no PostgreSQL row points at an OpenBao secret that does not
/// exist yet in the restored OpenBao). Plan order puts dependencies first, so the rule holds
/// transitively. Stores keep their own cadences; nothing requires a recovery point to hold every store.
public struct RestorePreparation: Sendable {
    public let catalog: Catalog
    public let plan: RestorePlan
    public let repository: Repository
    public let connectors: [StoreKind: any StoreConnector]

    public init(catalog: Catalog, repository: Repository, connectors: [StoreKind: any StoreConnector]) throws(PlanError) {
        self.catalog = catalog
        plan = try RestorePlan(catalog: catalog)
        self.repository = repository
        self.connectors = connectors
    }

    /// The recovery point a `.point` selection names (nil for the others).
    public func resolvePoint(_ selection: RestoreSelection) async throws -> RecoveryPoint? {
        guard case .point(let reference) = selection else { return nil }
        // By name: a damaged point named here is reported as damaged when loaded, not as unknown.
        let ids = try await repository.documentIDs(in: .points)
        let matches = ids.filter { $0.hasPrefix(reference.lowercased()) }
        guard matches.count == 1 else {
            throw EngineError(.unknownPoint, matches.isEmpty
                ? "no recovery point \(reference); see `lifeboat points`"
                : "\(reference) matches \(matches.count) recovery points; give more digits")
        }
        return try await repository.loadDocument(RecoveryPoint.self, in: .points, id: matches[0])
    }

    /// A state a store can be restored to.
    struct Choice {
        var snapshot: SnapshotManifest
        var targetTime: Date?
        var dataTime: Date { targetTime ?? snapshot.sourceTime }
    }

    /// The newest state of `store` at or before `limit` (nil: no limit) that it can reach.
    /// `latest` is the connector's `latestInstant` (asked once per store: it reads the WAL archive).
    func newest(_ store: Store, _ ofStore: [SnapshotManifest], connector: any StoreConnector, latest: Date?, notAfter limit: Date?) async throws -> Choice? {
        let snapshot = ofStore.first { limit == nil || $0.sourceTime <= limit! }
        if let latest, limit.map({ latest <= $0 }) ?? true, let base = ofStore.first(where: { $0.sourceTime <= latest }),
           latest > (snapshot?.sourceTime ?? .distantPast) {
            return Choice(snapshot: base, targetTime: latest)
        }
        if let limit, limit > (snapshot?.sourceTime ?? .distantPast),
           try await connector.canRestore(store, to: limit, in: repository), let base = ofStore.first(where: { $0.sourceTime <= limit }) {
            return Choice(snapshot: base, targetTime: limit)
        }
        return snapshot.map { Choice(snapshot: $0) }
    }

    /// The consistency note of a store restored older than it could be.
    static func rewound(_ choice: Choice, why: String, selected: Date) -> String {
        (choice.targetTime != nil ? "rewound to \(SourceTime.format(choice.dataTime)) (point-in-time): \(why)"
            : "restored from the older snapshot \(choice.snapshot.id.prefix(8)) of \(SourceTime.format(choice.dataTime)): \(why)")
            + "; data from \(SourceTime.format(choice.dataTime)) to \(SourceTime.format(selected)) stays in the repository, not restored"
    }

    /// Chooses the data of every step. `overrides` pins a store to a snapshot (id or prefix), e.g.
    /// to restore OpenBao from an older snapshot; its dependents then follow it back in time.
    /// A damaged manifest refuses the whole choice (it may be the snapshot to choose, here or when
    /// a dependency rewinds a store), unless the repository skips damaged ones.
    public func prepare(_ selection: RestoreSelection, overrides: [String: String] = [:]) async throws -> (point: RecoveryPoint?, steps: [PreparedStep]) {
        let point = try await resolvePoint(selection)
        let readable = try await repository.snapshotsToChooseFrom()
        let listing = readable.manifests
        var prepared: [PreparedStep] = []
        var dataTimes: [String: Date] = [:]
        for step in plan.steps {
            var entry = PreparedStep(step: step, store: catalog.stores.first { $0.name == step.store })
            defer { prepared.append(entry) }
            guard !step.isManual, let store = entry.store else { continue }
            guard let connector = connectors[store.kind] else {
                entry.problem = "Lifeboat has no connector for \(store.kind.rawValue) stores; restore \(store.name) by hand"
                continue
            }
            let ofStore = listing.filter { $0.store == store.name && $0.storeKind == store.kind }.sorted { $0.sourceTime > $1.sourceTime }
            let latest = try await connector.latestInstant(store, in: repository)
            // The dependencies' restored data bounds this store's (the consistency rule).
            let bound = step.dependsOn.compactMap { dependency in dataTimes[dependency].map { (dependency, $0) } }.min { $0.1 < $1.1 }
            var choice: Choice
            if let reference = overrides[store.name] {
                let matches = ofStore.filter { $0.id.hasPrefix(reference.lowercased()) }
                guard matches.count == 1 else {
                    entry.problem = matches.isEmpty ? "no snapshot \(reference) of \(store.name)" : "\(reference) matches \(matches.count) snapshots of \(store.name)"
                    continue
                }
                choice = Choice(snapshot: matches[0])
                entry.reason = "pinned with --snapshot \(store.name)=\(reference)"
            } else if let point {
                guard let member = point.member(store.name) else {
                    entry.problem = "recovery point \(point.id.prefix(8)) has no snapshot of \(store.name) (it was not part of that backup); restore --latest or --time composes the stores' own backups"
                    continue
                }
                guard let id = member.snapshot else {
                    entry.problem = "the backup of \(store.name) failed in recovery point \(point.id.prefix(8)): \(member.error ?? "unknown error")"
                    continue
                }
                guard let manifest = ofStore.first(where: { $0.id == id }) else {
                    entry.problem = readable.isUnreadable(id)
                        ? "snapshot \(id.prefix(8)) of \(store.name) (recovery point \(point.id.prefix(8))) is damaged (its manifest was skipped)"
                        : "snapshot \(id.prefix(8)) of \(store.name) (recovery point \(point.id.prefix(8))) is no longer in the repository"
                    continue
                }
                choice = Choice(snapshot: manifest)
                entry.reason = "the snapshot of recovery point \(point.id.prefix(8))"
            } else {
                let requested: Date? = if case .time(let instant) = selection { instant } else { nil }
                // A continuously archived store has no data for an instant after its archive ends:
                // its base backup would be older data than asked for, so refuse.
                if let requested, let latest, requested > latest {
                    entry.problem = "\(SourceTime.format(requested)) is after the last archived transaction of \(store.name) (\(SourceTime.format(latest))): restore with --latest (or --time now) for the newest data, or wait until the WAL that covers it is archived"
                    continue
                }
                let limit = [requested, bound?.1].compactMap { $0 }.min()
                guard let found = try await newest(store, ofStore, connector: connector, latest: latest, notAfter: limit) else {
                    entry.problem = ofStore.isEmpty
                        ? "\(store.name) has no backup in the repository; back it up (`lifeboat backup \(store.name)`) first"
                        : "no snapshot of \(store.name) is as old as \(SourceTime.format(limit!))"
                            + (bound.map { " (the time of \($0.0)'s restored data); restoring a newer one would leave references into \($0.0) dangling" } ?? "")
                    continue
                }
                choice = found
                let kind = found.targetTime == nil ? "snapshot \(found.snapshot.id.prefix(8))" : "point-in-time \(SourceTime.format(found.dataTime))"
                if let bound, limit == bound.1 {
                    entry.reason = "\(kind): rewound because of \(bound.0), whose restored data is from \(SourceTime.format(bound.1))"
                } else if let requested {
                    entry.reason = "\(kind): the newest at or before \(SourceTime.format(requested))"
                } else {
                    entry.reason = "\(kind): the newest available"
                }
            }
            // A pinned or a point's snapshot newer than a dependency's data is rewound too.
            if let (dependency, limit) = bound, choice.dataTime > limit {
                let why = "\(dependency)'s restored data is from \(SourceTime.format(limit)), older than \(store.name)'s \(SourceTime.format(choice.dataTime))"
                let selected = choice.dataTime
                guard let older = try await newest(store, ofStore, connector: connector, latest: latest, notAfter: limit) else {
                    entry.problem = "no snapshot of \(store.name) is as old as \(dependency)'s data (\(SourceTime.format(limit))); restoring a newer one would leave references into \(dependency) dangling"
                    continue
                }
                choice = older
                entry.consistency = Self.rewound(older, why: why, selected: selected)
                entry.reason = (entry.reason ?? "") + ", rewound because of \(dependency)"
            } else if let (dependency, limit) = bound, entry.reason?.contains("rewound because of") == true,
                      let unbounded = try await newest(store, ofStore, connector: connector, latest: latest, notAfter: nil),
                      unbounded.dataTime > choice.dataTime {
                // Chosen within the bound: say what newer data the rule left behind.
                let why = "\(dependency)'s restored data is from \(SourceTime.format(limit)), older than \(store.name)'s newest \(SourceTime.format(unbounded.dataTime))"
                entry.consistency = Self.rewound(choice, why: why, selected: unbounded.dataTime)
            }
            entry.snapshot = choice.snapshot
            entry.targetTime = choice.targetTime
            entry.dataTime = choice.dataTime
            dataTimes[store.name] = choice.dataTime
        }
        return (point, prepared)
    }
}
