import Foundation
import LifeboatCore
import LifeboatRepository

extension PlatformStatus {
    /// How long a status read waits for the stores' coverage checks (a scrape must answer well
    /// within Prometheus's 10 s timeout even when a store's server does not answer).
    public static let coverageDeadline: Duration = .seconds(3)

    /// Every store's coverage check at once; a check that has not answered by `deadline` is left
    /// running on its own and counts as not checked (nil).
    static func coverageProblems(_ stores: [Store], connectors: [StoreKind: any StoreConnector], deadline: Duration) async -> [String: [String]?] {
        let results = CoverageResults()
        let checks = stores.compactMap { store in
            connectors[store.kind].map { connector in Task { await results.set(store.name, await connector.coverage(store)) } }
        }
        let end = ContinuousClock.now + deadline
        while await results.count < checks.count, ContinuousClock.now < end {
            try? await Task.sleep(for: .milliseconds(20))
        }
        for check in checks { check.cancel() }
        return await results.all
    }

    /// Reads snapshots, recovery points and drill evidence from `repository` and computes the status.
    /// With `connectors`, the live servers of continuously archived stores are asked how their
    /// archiving goes, and every store whether it is covered the way the catalog says.
    public static func read(catalog: Catalog, repository: Repository, connectors: [StoreKind: any StoreConnector] = [:], now: Date = Date(),
                            maximumProofAge: Double) async throws -> PlatformStatus {
        let listing = try await repository.snapshots()
        let manifests = listing.manifests
        let (points, unreadablePoints) = try await repository.documents(RecoveryPoint.self, in: .points)
        let (drills, unreadableDrills) = try await repository.documents(DrillReport.self, in: .evidence)
        var archived: [String: Date] = [:]
        var archivers: [String: ArchiverHealth] = [:]
        for store in catalog.stores where store.cadences.contains(.continuous) {
            archivers[store.name] = await connectors[store.kind]?.archiverHealth(store)
            // Segments and timeline histories; a `.backup` label is written by the base backup itself.
            archived[store.name] = try await repository.listWAL(store: store.name).filter { !$0.name.hasSuffix(".backup") }.map(\.archived).max()
        }
        var status = compute(
            catalog: catalog, snapshots: manifests.map { ($0.store, $0.kind, $0.finished, $0.sourceTime, $0.size, $0.id) },
            points: points, drills: drills, archivedWAL: archived, archivers: archivers, now: now, maximumProofAge: maximumProofAge)
        // A damaged manifest may be some store's newest backup (its store is unknown: the manifest
        // is what says it), a damaged report its newest proof: name them rather than report older ones as the latest.
        status.damaged = (listing.unreadable + unreadablePoints + unreadableDrills).map { $0.object ?? $0.description }.sorted()
        let coverage = await coverageProblems(catalog.stores, connectors: connectors, deadline: coverageDeadline)
        for index in status.stores.indices {
            status.stores[index].coverageProblems = coverage[status.stores[index].store] ?? nil
        }
        return status
    }
}

/// What the coverage checks answered so far.
actor CoverageResults {
    private(set) var all: [String: [String]?] = [:]
    var count: Int { all.count }
    func set(_ store: String, _ problems: [String]?) { all[store] = .some(problems) }
}
