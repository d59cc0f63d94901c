import Foundation
import LifeboatCore
import LifeboatRepository

/// Which data a whole-platform restore brings back.
public enum RestoreSelection: Sendable, Hashable {
    /// The snapshots of one recovery point (an id or a unique prefix).
    case point(String)
    /// The newest complete recovery point of the platform.
    case latest
    /// Every store as it was at this instant: point-in-time where the store's archive allows,
    /// otherwise its newest snapshot from before the instant.
    case time(Date)
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
    /// Why this store is restored to an earlier time than chosen (cross-store consistency).
    public var consistency: String?
    /// Why the step cannot run; the run stops here.
    public var problem: String?
}

/// Chooses the snapshot (and instant) for every plan step, then applies the consistency rule: no
/// store is restored to a later time than the stores it depends on, so no PostgreSQL row points at
/// an OpenBao secret that does not exist yet in the restored OpenBao.
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

    /// The recovery point a selection names (nil for `.time`).
    public func resolvePoint(_ selection: RestoreSelection) async throws -> RecoveryPoint? {
        let platform = catalog.platform ?? ""
        switch selection {
        case .time:
            return nil
        case .latest:
            let points = try await repository.documentsToChooseFrom(RecoveryPoint.self, in: .points)
                .filter { $0.platform == platform }.sorted { $0.started > $1.started }
            guard let point = points.first(where: \.isComplete) ?? points.first else {
                throw EngineError(.unknownPoint, "the repository has no recovery point of \(platform.isEmpty ? "this platform" : platform); run `lifeboat backup` first")
            }
            return point
        case .point(let reference):
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
    }

    /// Chooses the data of every step. `overrides` pins a store to a snapshot (id or prefix), e.g.
    /// to restore OpenBao from an older point; its dependents then follow it back in time.
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
            let ofStore = listing.filter { $0.store == store.name && $0.kind == store.kind.rawValue }.sorted { $0.sourceTime > $1.sourceTime }
            // 1. The data the selection names.
            var chosen: SnapshotManifest?
            var targetTime: Date?
            if let reference = overrides[store.name] {
                let matches = ofStore.filter { $0.id.hasPrefix(reference.lowercased()) }
                guard matches.count == 1 else {
                    entry.problem = matches.isEmpty ? "no snapshot \(reference) of \(store.name)" : "\(reference) matches \(matches.count) snapshots of \(store.name)"
                    continue
                }
                chosen = matches[0]
            } else {
                switch selection {
                case .point, .latest:
                    guard let member = point?.member(store.name) else {
                        entry.problem = "recovery point \(point!.id.prefix(8)) has no snapshot of \(store.name) (it was not part of that backup)"
                        continue
                    }
                    guard let id = member.snapshot else {
                        entry.problem = "the backup of \(store.name) failed in recovery point \(point!.id.prefix(8)): \(member.error ?? "unknown error")"
                        continue
                    }
                    guard let manifest = ofStore.first(where: { $0.id == id }) else {
                        entry.problem = readable.isUnreadable(id)
                            ? "snapshot \(id.prefix(8)) of \(store.name) (recovery point \(point!.id.prefix(8))) is damaged (its manifest was skipped)"
                            : "snapshot \(id.prefix(8)) of \(store.name) (recovery point \(point!.id.prefix(8))) is no longer in the repository"
                        continue
                    }
                    chosen = manifest
                case .time(let instant):
                    if try await connector.canRestore(store, to: instant, in: repository),
                       let base = ofStore.first(where: { $0.sourceTime <= instant }) {
                        chosen = base
                        targetTime = instant
                    } else {
                        chosen = ofStore.first { $0.sourceTime <= instant }
                    }
                    if chosen == nil {
                        entry.problem = "no snapshot of \(store.name) is as old as \(SourceTime.format(instant))"
                        continue
                    }
                }
            }
            var dataTime = targetTime ?? chosen!.sourceTime
            // 2. Consistency: not later than any dependency's restored data.
            let bounds = step.dependsOn.compactMap { dependency in dataTimes[dependency].map { (dependency, $0) } }
            if let (dependency, bound) = bounds.min(by: { $0.1 < $1.1 }), dataTime > bound {
                let why = "\(dependency)'s restored data is from \(SourceTime.format(bound)), older than \(store.name)'s \(SourceTime.format(dataTime))"
                if try await connector.canRestore(store, to: bound, in: repository),
                   let base = ofStore.first(where: { $0.sourceTime <= bound }) {
                    chosen = base
                    targetTime = bound
                    dataTime = bound
                    entry.consistency = "rewound to \(SourceTime.format(bound)) (point-in-time): \(why)"
                } else if let older = ofStore.first(where: { $0.sourceTime <= bound }) {
                    chosen = older
                    targetTime = nil
                    dataTime = older.sourceTime
                    entry.consistency = "restored from the older snapshot \(older.id.prefix(8)) of \(SourceTime.format(older.sourceTime)): \(why)"
                } else {
                    entry.problem = "no snapshot of \(store.name) is as old as \(dependency)'s data (\(SourceTime.format(bound))); restoring a newer one would leave references into \(dependency) dangling"
                    continue
                }
            }
            entry.snapshot = chosen
            entry.targetTime = targetTime
            entry.dataTime = dataTime
            dataTimes[store.name] = dataTime
        }
        return (point, prepared)
    }
}
