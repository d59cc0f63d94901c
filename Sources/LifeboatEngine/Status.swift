import Foundation
import LifeboatCore
import LifeboatRepository

extension PlatformStatus {
    /// Reads snapshots, recovery points and drill evidence from `repository` and computes the status.
    /// With `connectors`, the live servers of continuously archived stores are asked how their archiving goes.
    public static func read(catalog: Catalog, repository: Repository, connectors: [StoreKind: any StoreConnector] = [:], now: Date = Date(),
                            maximumProofAge: Double) async throws -> PlatformStatus {
        let manifests = try await repository.snapshots().manifests
        let points = try await repository.documents(RecoveryPoint.self, in: .points).documents
        let drills = try await repository.documents(DrillReport.self, in: .evidence).documents
        var archived: [String: Date] = [:]
        var archivers: [String: ArchiverHealth] = [:]
        for store in catalog.stores where store.cadences.contains(.continuous) {
            archivers[store.name] = await connectors[store.kind]?.archiverHealth(store)
            // Segments and timeline histories; a `.backup` label is written by the base backup itself.
            archived[store.name] = try await repository.listWAL(store: store.name).filter { !$0.name.hasSuffix(".backup") }.map(\.archived).max()
        }
        return compute(
            catalog: catalog, snapshots: manifests.map { ($0.store, $0.kind, $0.finished, $0.sourceTime, $0.size, $0.id) },
            points: points, drills: drills, archivedWAL: archived, archivers: archivers, now: now, maximumProofAge: maximumProofAge)
    }
}
