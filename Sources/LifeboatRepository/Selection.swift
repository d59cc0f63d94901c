import LifeboatStorage

/// What choosing among snapshots or recovery points (the newest, the newest before an instant)
/// does when one of them cannot be read. Its store, kind and time are sealed inside it, so a
/// damaged manifest may well be the one that would have been chosen.
public enum DamagedChoices: Sendable {
    /// Refuse the choice, naming the damaged object (the default): never older data as "latest".
    case refuse
    /// Choose among the readable ones; `report` hears of each damaged object passed over (the
    /// command line prints it), because the user asked for it (`--skip-damaged`).
    case skip(report: @Sendable (RepositoryError) -> Void)
}

extension Repository {
    /// This repository, choosing among the readable snapshots and points when some are damaged.
    public func skippingDamaged(report: @escaping @Sendable (RepositoryError) -> Void) -> Repository {
        var copy = self
        copy.damagedChoices = .skip(report: report)
        return copy
    }

    /// The snapshots a choice may be made from, oldest first; `unreadable` holds the damaged
    /// manifests skipped. Throws when a manifest is damaged, unless this repository skips them.
    /// Every choice of "the newest" goes through here, so none can silently fall back to older data.
    public func snapshotsToChooseFrom() async throws(RepositoryError) -> SnapshotListing {
        var listing = try await snapshots()
        listing.unreadable = try screen(listing.unreadable, "snapshot")
        return listing
    }

    /// The documents a choice may be made from (recovery points), on the same terms as snapshots.
    public func documentsToChooseFrom<Value: Decodable>(_ type: Value.Type, in namespace: DocumentNamespace) async throws(RepositoryError) -> [Value] {
        let found = try await documents(type, in: namespace)
        _ = try screen(found.unreadable, namespace == .points ? "recovery point" : "document")
        return found.documents
    }

    /// Applies `damagedChoices` to the objects that did not read back; returns the damaged ones skipped.
    func screen(_ unreadable: [RepositoryError], _ what: String) throws(RepositoryError) -> [RepositoryError] {
        // Gone since the listing (a prune removed it): it no longer exists, so it cannot be the newest.
        let present = unreadable.filter { $0.code != .missingObject }
        // The backend failed, or a newer format: nothing is known about the object, so no choice can be made.
        if let failure = present.first(where: { $0.code != .corruptObject }) { throw failure }
        guard let first = present.first else { return [] }
        switch damagedChoices {
        case .refuse:
            let others = present.count > 1 ? " (and \(present.count - 1) more damaged)" : ""
            throw RepositoryError(.corruptObject, object: first.object,
                                  "\(first.message)\(others); no \(what) is chosen while one is unreadable, since it may be the one to choose: run `lifeboat verify`, or pass --skip-damaged to choose among the readable ones")
        case .skip(let report):
            present.forEach(report)
            return present
        }
    }
}
