import Foundation
import LifeboatStorage

/// What `prune` removed (or, in a dry run, would remove).
public struct PruneReport: Sendable {
    public var dryRun: Bool
    /// Kept snapshots and why (by id).
    public var kept: [String: [String]] = [:]
    public var removedSnapshots: [SnapshotManifest] = []
    public var removedChunks = 0
    public var removedBytes: Int64 = 0
    /// Unreferenced chunks younger than the grace period: possibly a running backup's; left alone.
    public var chunksInGrace = 0
    /// Lock objects left by processes that died or stopped refreshing them.
    public var removedStaleLocks = 0
}

extension Repository {
    /// Default grace before unreferenced chunks are collected: longer than any backup runs.
    public static let defaultPruneGrace: TimeInterval = 24 * 3600

    /// Applies each store's retention policy, then deletes chunks no remaining snapshot references
    /// and that are older than `grace`. The newest snapshot of every store is always kept. Refuses
    /// to run while any manifest is unreadable: a chunk it references would look unreferenced.
    public func prune(
        policy: (String) -> RetentionPolicy, grace: TimeInterval = Repository.defaultPruneGrace, dryRun: Bool = false
    ) async throws -> PruneReport {
        if dryRun { return try await planPrune(policy: policy, grace: grace, dryRun: true) }
        return try await withLock(exclusive: true, purpose: "prune") {
            var report = try await planPrune(policy: policy, grace: grace, dryRun: false)
            report.removedStaleLocks = try await removeStaleLocks()
            return report
        }
    }

    private func planPrune(policy: (String) -> RetentionPolicy, grace: TimeInterval, dryRun: Bool) async throws -> PruneReport {
        var report = PruneReport(dryRun: dryRun)
        let listing = try await snapshots()
        if let damaged = listing.unreadable.first {
            throw RepositoryError(.corruptObject, object: damaged.object,
                                  "prune refuses to run while a snapshot manifest is unreadable (\(damaged.message)); run `lifeboat verify` and repair or remove it first")
        }
        var keptManifests: [SnapshotManifest] = []
        for (store, manifests) in Dictionary(grouping: listing.manifests, by: \.store) {
            let reasons = policy(store).reasons(for: manifests)
            for manifest in manifests {
                if let why = reasons[manifest.id] {
                    report.kept[manifest.id] = why
                    keptManifests.append(manifest)
                } else {
                    report.removedSnapshots.append(manifest)
                }
            }
        }
        report.removedSnapshots.sort { ($0.store, $0.finished) < ($1.store, $1.finished) }
        if !dryRun {
            // Manifests first: a crash after this leaves only unreferenced chunks, which the next prune collects.
            for manifest in report.removedSnapshots {
                do { try await backend.delete(ObjectPath.snapshot(manifest.id)) } catch { throw RepositoryError(error) }
            }
        }
        let referenced = Set(keptManifests.flatMap { $0.chunks.map(\.id) })
        let cutoff = Date().addingTimeInterval(-grace)
        for info in try await Self.list(backend, "data/") {
            let id = String(info.name.split(separator: "/").last!)
            guard !referenced.contains(id) else { continue }
            guard info.modified < cutoff else {
                report.chunksInGrace += 1
                continue
            }
            if !dryRun {
                do { try await backend.delete(info.name) } catch { throw RepositoryError(error) }
            }
            report.removedChunks += 1
            report.removedBytes += Int64(info.size)
        }
        return report
    }
}

/// What a `mirror` run copied.
public struct MirrorReport: Sendable {
    public var createdTarget = false
    public var copiedSnapshots: [String] = []
    public var copiedChunks = 0
    public var copiedBytes: Int64 = 0
    public var alreadyPresentSnapshots = 0
    public var copiedKeys = 0
    /// Recovery points and drill evidence copied.
    public var copiedDocuments = 0
    /// Set when the target was pruned after the copy.
    public var prune: PruneReport?
}

extension Repository {
    /// Copies to `target` every key file, snapshot and chunk it lacks; never deletes anything there
    /// because the source lost it. The target is a replica: same config, same keys. Every copied
    /// object is read back from the target and compared before its snapshot's manifest is written,
    /// and the target is pruned by `targetPolicy` only after the whole copy succeeded.
    public func mirror(to target: any Backend, targetPolicy: ((String) -> RetentionPolicy)? = nil,
                       grace: TimeInterval = Repository.defaultPruneGrace) async throws -> MirrorReport {
        var report = MirrorReport()
        let replica: Repository
        if try await Self.stat(target, ObjectPath.config) != nil {
            let config = try await Self.readConfig(target)
            guard config.id == self.config.id, config.keyCheck == self.config.keyCheck else {
                throw RepositoryError(.invalidArgument, object: target.location,
                                      "the target holds another repository (\(config.id.prefix(8))); a mirror target must be empty or a mirror of \(self.config.id.prefix(8))")
            }
        } else {
            report.createdTarget = true
        }
        replica = Repository(backend: target, config: config, keys: keys, openedWithKey: nil)

        // Keys before config, as `repo init` does: a target without config is not yet a repository.
        let targetKeys = Set(try await Self.list(target, "keys/").map(\.name))
        for key in try await Self.list(backend, "keys/") where !targetKeys.contains(key.name) {
            try await copyVerified(key.name, to: target)
            report.copiedKeys += 1
        }
        if report.createdTarget { try await copyVerified(ObjectPath.config, to: target) }

        let present = Set(try await Self.list(target, "snapshots/").map(\.name))
        var targetChunks = Set(try await Self.list(target, "data/").map(\.name))
        for id in try await snapshotIDs() {
            let name = ObjectPath.snapshot(id)
            if present.contains(name) {
                report.alreadyPresentSnapshots += 1
                continue
            }
            // Opening the manifest and each chunk checks the source before anything is propagated.
            let manifest = try await loadManifest(id: id)
            for chunk in manifest.chunks where !targetChunks.contains(ObjectPath.chunk(chunk.id)) {
                _ = try await loadChunk(chunk)
                report.copiedBytes += try await copyVerified(ObjectPath.chunk(chunk.id), to: target)
                report.copiedChunks += 1
                targetChunks.insert(ObjectPath.chunk(chunk.id))
            }
            report.copiedBytes += try await copyVerified(name, to: target)
            report.copiedSnapshots.append(id)
        }
        // Recovery points and drill evidence, after the snapshots they name; each authenticated first.
        for namespace in DocumentNamespace.allCases {
            let prefix = "\(namespace.rawValue)/"
            let there = Set(try await Self.list(target, prefix).map(\.name))
            for info in try await Self.list(backend, prefix) where !there.contains(info.name) {
                _ = try await loadDocumentPlaintext(in: namespace, id: String(info.name.dropFirst(prefix.count)))
                report.copiedBytes += try await copyVerified(info.name, to: target)
                report.copiedDocuments += 1
            }
        }
        if let targetPolicy {
            report.prune = try await replica.prune(policy: targetPolicy, grace: grace)
        }
        return report
    }

    /// Copies one object byte for byte and reads it back from the target to compare.
    @discardableResult
    private func copyVerified(_ name: String, to target: any Backend) async throws(RepositoryError) -> Int64 {
        let bytes = try await Self.load(backend, name)
        do {
            try await target.create(name, data: bytes)
        } catch {
            // Present already (an earlier, interrupted mirror): fine if identical, checked below.
            guard error.code == .alreadyExists else { throw RepositoryError(error) }
        }
        guard try await Self.load(target, name) == bytes else {
            throw RepositoryError(.corruptObject, object: "\(target.location)/\(name)", "the copy on the mirror target differs from the source")
        }
        return Int64(bytes.count)
    }
}
