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
    /// Index objects before, and after the rewrite (a dry run rewrites nothing: 0).
    public var indexObjectsBefore = 0
    public var indexObjectsAfter = 0
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
        let referenced = Set(keptManifests.flatMap { $0.allChunks.map(\.id) })
        let cutoff = Date().addingTimeInterval(-grace)
        // The index objects are listed before `data/`: every object listed here was written after
        // its chunks, so each chunk it names is in the listing below (nothing deletes under our lock).
        let oldIndex = try await Self.list(backend, ObjectPath.index).map { String($0.name.dropFirst(ObjectPath.index.count)) }
        var doomed: [ObjectInfo] = []
        var remaining: [String] = []
        for info in try await listChunkObjects() {
            let id = String(info.name.split(separator: "/").last!)
            // Unreferenced chunks younger than the grace period may be a running backup's: kept, and
            // kept in the index, so the next backup of that data reuses them.
            guard !referenced.contains(id), info.modified < cutoff else {
                if !referenced.contains(id) { report.chunksInGrace += 1 }
                remaining.append(id)
                continue
            }
            doomed.append(info)
            report.removedChunks += 1
            report.removedBytes += Int64(info.size)
        }
        report.indexObjectsBefore = oldIndex.count
        if !dryRun {
            // A chunk leaves the index before it is deleted (restic's rule too): first the new index
            // naming what stays, then the old index objects, then the chunks. A crash between steps
            // leaves an index naming only chunks that exist, and unindexed chunks the next prune collects.
            let (written, _) = try await replaceIndex(with: ChunkIDSet(hexIDs: remaining), removing: oldIndex)
            report.indexObjectsAfter = written
            for info in doomed {
                do { try await backend.delete(info.name) } catch { throw RepositoryError(error) }
            }
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
        let targetKeys = Set(try await Self.list(target, ObjectPath.keys).map(\.name))
        for key in try await Self.list(backend, ObjectPath.keys) where !targetKeys.contains(key.name) {
            try await copyVerified(key.name, to: target)
            report.copiedKeys += 1
        }
        if report.createdTarget { try await copyVerified(ObjectPath.config, to: target) }

        let present = Set(try await Self.list(target, ObjectPath.snapshots).map(\.name))
        // The target's chunks from its index, not a listing of its `data/`: the copy costs what it
        // copies. The index is only a hint: a chunk it names is skipped only when the target still
        // has the object (one stat), and one it lacks is copied (identical bytes already there are
        // accepted by the read-back comparison).
        var targetIndex = try await replica.loadIndex()
        var newlyIndexed: [String] = []
        if targetIndex.objects.isEmpty {
            // A target without an index (new, or mirrored before the index existed): one listing
            // stands in, and the index written below names it, as a put does.
            let listed = try await replica.listChunkObjects().map { String($0.name.split(separator: "/").last!) }
            targetIndex.add(ChunkIDSet(hexIDs: listed))
            newlyIndexed = listed
        }
        var handled = Set<String>()
        var toCopy: [String] = []
        for id in try await snapshotIDs() {
            let name = ObjectPath.snapshot(id)
            if present.contains(name) {
                report.alreadyPresentSnapshots += 1
                continue
            }
            // Opening the manifest and each chunk checks the source before anything is propagated.
            let manifest = try await loadManifest(id: id)
            for chunk in manifest.allChunks {
                guard handled.insert(chunk.id).inserted else { continue }
                if targetIndex.contains(chunk.id), try await Self.stat(target, ObjectPath.chunk(chunk.id)) != nil { continue }
                _ = try await loadChunk(chunk)
                report.copiedBytes += try await copyVerified(ObjectPath.chunk(chunk.id), to: target)
                report.copiedChunks += 1
                if !targetIndex.contains(chunk.id) { newlyIndexed.append(chunk.id) }
            }
            toCopy.append(id)
        }
        // Chunks, then the target's index, then the manifests: the order every writer keeps (§2, §16).
        try await replica.writeIndex(ChunkIDSet(hexIDs: newlyIndexed))
        for id in toCopy {
            report.copiedBytes += try await copyVerified(ObjectPath.snapshot(id), to: target)
            report.copiedSnapshots.append(id)
        }
        // Recovery points and drill evidence, after the snapshots they name; each authenticated first.
        for namespace in DocumentNamespace.allCases where namespace.isMirrored {
            let prefix = namespace.prefix
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
