import Foundation

/// `currency/<store>/<checked ms>-<random>`: at `checked`, the store was found unchanged since
/// `snapshot` was taken, so that snapshot still holds everything the store held then.
///
/// Written by the scheduler's OpenBao change poll when a scheduled slot finds nothing changed
/// (raft index, keyring term and seal configuration all equal to `basis`, the values read just
/// before the snapshot was taken): instead of an identical snapshot, this record. The recovery
/// model reads "snapshot S is valid through T" from the newest record naming S.
public struct SnapshotCurrency: Codable, Sendable, Hashable {
    public var version: Int
    public var store: String
    public var snapshot: String
    /// When the store was read and found unchanged; the snapshot is current through this time.
    public var checked: Date
    /// What was compared (e.g. `raft_index`, `keyring_term`, `seal`), as read at `checked`.
    public var basis: [String: String]
    /// The job run that checked (`runs/<job>/<run>`), for tracing.
    public var run: String?

    public init(store: String, snapshot: String, checked: Date, basis: [String: String], run: String? = nil) {
        self.version = 1
        self.store = store
        self.snapshot = snapshot
        self.checked = checked
        self.basis = basis
        self.run = run
    }

    /// How many records are kept per store: only the newest matters; a few survive a damaged one.
    public static let keepPerStore = 3
}

extension Repository {
    /// Records that `snapshot` of `store` was still current at `checked`, then drops the store's
    /// older records beyond `SnapshotCurrency.keepPerStore`.
    @discardableResult
    public func recordCurrency(_ record: SnapshotCurrency) async throws(RepositoryError) -> SnapshotCurrency {
        let millis = Int64((record.checked.timeIntervalSince1970 * 1000).rounded(.down))
        let id = "\(record.store)/\(String(format: "%013lld", millis))-\(Repository.newDocumentID().prefix(8))"
        let stored = try await writeDocument(record, in: .currency, id: id)
        let ids = try await documentIDs(in: .currency, prefix: "\(record.store)/").sorted()
        for old in ids.dropLast(SnapshotCurrency.keepPerStore) {
            try await deleteDocument(in: .currency, id: old)
        }
        return stored
    }

    /// The newest readable currency record of `store` (naming `snapshot`, when given); nil when none.
    public func latestCurrency(store: String, snapshot: String? = nil) async throws(RepositoryError) -> SnapshotCurrency? {
        let ids = try await documentIDs(in: .currency, prefix: "\(store)/").sorted(by: >)
        for id in ids {
            guard let record = try? await loadDocument(SnapshotCurrency.self, in: .currency, id: id) else { continue }
            if snapshot == nil || record.snapshot == snapshot { return record }
        }
        return nil
    }
}
