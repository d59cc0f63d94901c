import Foundation
import LifeboatCore
import LifeboatRepository
import LifeboatErrors

/// `lifeboat backup`: backs up catalog stores as one recovery point.
///
/// Stores are backed up in the reverse of restore order: PostgreSQL before the OpenBao its rows
/// point into. Each dependency's snapshot is then taken after its dependents', so everything a
/// PostgreSQL row names already exists in the OpenBao snapshot of the same point. A store that
/// fails does not stop the others; the point is then partial.
public struct PlatformBackup: Sendable {
    public let catalog: Catalog
    public let repository: Repository
    public let connectors: [StoreKind: any StoreConnector]

    public init(catalog: Catalog, repository: Repository, connectors: [StoreKind: any StoreConnector]) {
        self.catalog = catalog
        self.repository = repository
        self.connectors = connectors
    }

    /// What happened to one store.
    public enum Event: Sendable {
        case started(Store)
        case finished(Store, SnapshotManifest)
        case failed(Store, String)
    }

    /// The stores `lifeboat backup` handles: every store whose kind has a connector.
    public var supportedStores: [Store] { catalog.stores.filter { connectors[$0.kind] != nil } }

    /// The order stores are backed up in: the reverse of the restore plan's, so dependencies last.
    public func backupOrder(_ stores: [Store]) throws(PlanError) -> [Store] {
        let plan = try RestorePlan(catalog: catalog)
        let rank = Dictionary(uniqueKeysWithValues: plan.steps.map { ($0.store, $0.order) })
        return stores.sorted { (rank[$0.name] ?? 0, $0.name) > (rank[$1.name] ?? 0, $1.name) }
    }

    /// Backs up `names` (all supported stores when empty) and records the recovery point, partial
    /// when a store failed. Throws only for a bad request (an unknown or unsupported store name) or
    /// when the point itself cannot be written.
    public func run(stores names: [String] = [], tags: [String] = [], onEvent: (Event) -> Void = { _ in }) async throws -> RecoveryPoint {
        let selected: [Store]
        if names.isEmpty {
            selected = supportedStores
        } else {
            selected = try names.map { name in
                guard let store = catalog.stores.first(where: { $0.name == name }) else {
                    throw EngineError(.unknownStore, "no store named \(name) in the catalog (stores: \(catalog.stores.map(\.name).joined(separator: ", ")))")
                }
                guard connectors[store.kind] != nil else {
                    throw EngineError(.unsupportedStore, "\(name) is a \(store.kind.rawValue) store; Lifeboat backs up \(connectors.keys.map(\.rawValue).sorted().joined(separator: ", ")) stores")
                }
                return store
            }
        }
        guard !selected.isEmpty else {
            throw EngineError(.unsupportedStore, "the catalog has no store Lifeboat can back up (\(connectors.keys.map(\.rawValue).sorted().joined(separator: ", ")))")
        }
        let pointID = Repository.newDocumentID()
        let started = Date()
        var members: [RecoveryPoint.Member] = []
        for store in try backupOrder(selected) {
            // Cancelled: no point is written (a snapshot already stored stays, as any unreferenced one).
            try Task.checkCancellation()
            onEvent(.started(store))
            do {
                let manifest = try await connectors[store.kind]!.backup(store, into: repository, point: pointID, tags: tags)
                members.append(.init(store: store.name, kind: store.kind.rawValue, snapshot: manifest.id, sourceTime: manifest.sourceTime, size: manifest.size))
                onEvent(.finished(store, manifest))
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                let reason = "\(error)"
                members.append(.init(store: store.name, kind: store.kind.rawValue, error: reason))
                onEvent(.failed(store, reason))
            }
        }
        try Task.checkCancellation()
        let point = RecoveryPoint(id: pointID, platform: catalog.platform ?? "", started: started, finished: Date(), members: members)
        return try await repository.writeDocument(point, in: .points, id: pointID)
    }
}

/// A request the engine refuses, or a run it cannot start.
public struct EngineError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable, CaseIterable {
        case unknownStore = "unknown_store"
        case unsupportedStore = "unsupported_store"
        case unknownPoint = "unknown_point"
        case noSnapshot = "no_snapshot"
        case journal
        case confirmation
        case invalidArgument = "invalid_argument"
    }

    public var code: Code
    public var message: String
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { message }
}

extension EngineError: LifeboatError {
    public var errorCode: String { "engine.\(code.rawValue)" }
    public var errorObject: String? { nil }
    public var errorMessage: String { message }
    public var exitStatus: ExitStatus {
        switch code {
        case .unknownStore, .unsupportedStore, .unknownPoint, .invalidArgument, .confirmation: .usage
        case .noSnapshot, .journal: .failure
        }
    }
}
