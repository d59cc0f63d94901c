import Foundation
import LifeboatCore
import LifeboatRepository

extension PlatformStatus {
    /// Reads snapshots, recovery points and drill evidence from `repository` and computes the status.
    public static func read(catalog: Catalog, repository: Repository, now: Date = Date(), maximumProofAge: Double) async throws -> PlatformStatus {
        let manifests = try await repository.snapshots().manifests
        let points = try await repository.documents(RecoveryPoint.self, in: .points).documents
        let drills = try await repository.documents(DrillReport.self, in: .evidence).documents
        return compute(
            catalog: catalog, snapshots: manifests.map { ($0.store, $0.kind, $0.finished, $0.sourceTime, $0.size, $0.id) },
            points: points, drills: drills, now: now, maximumProofAge: maximumProofAge)
    }
}
