import Foundation
import LifeboatCore
import LifeboatRepository

/// What the engine needs of a store kind. The commands wire concrete connectors (PostgreSQL,
/// OpenBao, etcd) in through adapters, so the engine never depends on one.
public protocol StoreConnector: Sendable {
    /// Backs `store` up now into `repository` as part of recovery point `point`.
    func backup(_ store: Store, into repository: Repository, point: String, tags: [String]) async throws -> SnapshotManifest

    /// Whether the store can be restored to exactly this instant (a base backup plus an unbroken
    /// WAL archive covers it). False when only its snapshots' own times can be restored.
    func canRestore(_ store: Store, to instant: Date, in repository: Repository) async throws -> Bool

    /// The newest instant the store can be restored to when that is later than its newest snapshot's
    /// own time (the end of a continuously archived WAL); nil when its snapshots are all it has.
    func latestInstant(_ store: Store, in repository: Repository) async throws -> Date?

    /// What the store's live server says of its continuous archiving (nil when the kind has none).
    /// Never throws: a server that cannot be asked is reported in the answer.
    func archiverHealth(_ store: Store) async -> PlatformStatus.ArchiverHealth?

    /// How the live store differs from the coverage the catalog describes (WAL archiving switched
    /// off or pointed elsewhere, members that are not the catalog's, an unhealthy raft cluster):
    /// one sentence per problem, empty when it matches; nil when not checked (this kind, a catalog
    /// that promises nothing to check, or a server that cannot be asked: the RPO and the archiver's
    /// health already say that). Never throws.
    func coverage(_ store: Store) async -> [String]?

    /// Every reason the restore would refuse, checked against the real target without changing
    /// anything (a running server, a non-empty directory, an unreachable target, wrong keys): the
    /// dry run's preflight. Empty when nothing stands in the way.
    func preflight(_ request: StoreRestoreRequest) async -> [String]

    /// The exact action and target of a restore, in words, for `--dry-run`. Touches nothing.
    func describe(_ request: StoreRestoreRequest) -> String

    /// Restores the snapshot into the request's destination and returns the restored store, still
    /// running, so the gate can check it. Refuses (throws) before touching a target it must not touch.
    func restore(_ request: StoreRestoreRequest) async throws -> any RestoredStore
}

extension StoreConnector {
    public func latestInstant(_ store: Store, in repository: Repository) async throws -> Date? { nil }
    public func archiverHealth(_ store: Store) async -> PlatformStatus.ArchiverHealth? { nil }
    public func coverage(_ store: Store) async -> [String]? { nil }
    public func preflight(_ request: StoreRestoreRequest) async -> [String] { [] }
}

/// A store after its restore: where it lives now, how to check it, and how to let it go.
public protocol RestoredStore: Sendable {
    /// Where the store now lives (an address, a data directory), for reports.
    var target: String { get }
    /// Runs the catalog's verify checks against the restored store. A failed check is a result,
    /// not an error; throws only when the store cannot be reached at all.
    func check(_ checks: [VerifyCheck]) async throws -> [CheckResult]
    /// Stops what the restore started (a drill's scratch instance); leaves production targets running.
    func release() async
}

/// One store's restore, as the engine hands it to a connector.
public struct StoreRestoreRequest: Sendable {
    public var store: Store
    public var snapshot: SnapshotManifest
    /// Restore to this instant instead of the snapshot's own time (only when the connector said it
    /// can restore to it).
    public var targetTime: Date?
    public var repository: Repository
    public var destination: Destination

    /// Where the restored store goes.
    public enum Destination: Sendable {
        /// A fresh instance the connector starts in this directory (drills, the demo).
        case scratch(URL)
        /// The store's own target from the catalog's connection; `force` allows a non-empty target.
        case production(force: Bool)
    }

    public init(store: Store, snapshot: SnapshotManifest, targetTime: Date?, repository: Repository, destination: Destination) {
        self.store = store
        self.snapshot = snapshot
        self.targetTime = targetTime
        self.repository = repository
        self.destination = destination
    }
}

extension SnapshotManifest {
    /// The store kind the snapshot belongs to (nil for an artefact of `lifeboat put`). On disk
    /// `kind` stays a string (docs/repository-format.md §8); code compares `StoreKind`s.
    public var storeKind: StoreKind? { StoreKind(rawValue: kind) }

    /// The wall-clock time the snapshot's data reflects: the connector's `source_time` fact, else
    /// the time the backup started.
    public var sourceTime: Date {
        source["source_time"].flatMap(SourceTime.parse) ?? started
    }
}
