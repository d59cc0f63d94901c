import Foundation
import LifeboatStorage

/// Which chunks the repository's index objects name: what a put consults instead of listing
/// `data/`. Advisory: a chunk it names is reused only after it is read back intact, and a chunk it
/// lacks is still found when its create-once write collides (repository-format.md §16).
public struct ChunkIndex: Sendable {
    /// The sorted runs the lookups search (cached files, mapped when large).
    var runs: [ChunkIDSet] = []
    /// Index objects read intact (their ids).
    public internal(set) var objects: [String] = []
    /// Index objects that could not be opened or decoded: skipped, reported by `verify`, replaced
    /// by `repo index rebuild` and `prune`.
    public internal(set) var damaged: [RepositoryError] = []

    public func contains(_ hexID: String) -> Bool {
        guard let raw = ChunkIDSet.raw(hexID) else { return false }
        return runs.contains { $0.contains(raw: raw) }
    }

    /// Every id named, merged (linear in the index's size: for verify and tests, not for a put).
    public var allIDs: ChunkIDSet { ChunkIDSet.union(runs) }

    mutating func add(_ ids: ChunkIDSet) {
        if !ids.isEmpty { runs.append(ids) }
    }
}

/// What `repo index rebuild` did.
public struct IndexRebuildReport: Sendable {
    public var chunks = 0
    public var objectsWritten = 0
    public var objectsRemoved = 0
}

extension ObjectPath {
    static func index(_ id: String) -> String { index + id }
}

extension Repository {
    /// More cached runs than this are folded into the cache's merged file on the next load.
    static let cachedRunsBeforeMerging = 16

    var indexCache: IndexCache? { IndexCache(root: cacheRoot, repositoryID: config.id, location: backend.location) }

    /// Reads the index: one listing of `index/` (a few objects after a prune, one more per put
    /// since), each object from the local cache when it has it, else from the backend, checked and
    /// then cached. `useCache: false` reads every object from the backend (verify).
    public func loadIndex(useCache: Bool = true) async throws(RepositoryError) -> ChunkIndex {
        let names = try await Self.list(backend, ObjectPath.index).map { String($0.name.dropFirst(ObjectPath.index.count)) }
        let listed = Set(names)
        let cache = useCache ? indexCache : nil
        var index = ChunkIndex()
        var covered = Set<String>()
        if let merged = cache?.merged() {
            if merged.names.isSubset(of: listed) {
                index.add(merged.ids)
                covered = merged.names
                index.objects += merged.names.sorted()
            } else {
                cache?.forgetMerged() // a prune replaced some of what it covers
            }
        }
        var fresh: [(name: String, ids: ChunkIDSet)] = []
        for name in names.sorted() where !covered.contains(name) {
            if let ids = cache?.run(name) {
                fresh.append((name, ids))
                continue
            }
            do {
                let ids = try await readIndexObject(name)
                cache?.store(ids, as: name)
                fresh.append((name, ids))
            } catch where error.code == .missingObject {
                continue // replaced by a prune or rebuild since the listing
            } catch where error.code == .corruptObject {
                index.damaged.append(error)
            }
        }
        for (name, ids) in fresh {
            index.add(ids)
            index.objects.append(name)
        }
        if let cache {
            cache.forget(allBut: listed)
            if fresh.count > Self.cachedRunsBeforeMerging {
                // Fold the small runs (one per put since the last prune) into one file, so lookups
                // stay a handful of binary searches; the big runs prune writes are left as they are.
                let small = fresh.filter { $0.ids.count < IndexObject.maximumEntries / 16 }
                if small.count > Self.cachedRunsBeforeMerging {
                    var names = Set(small.map(\.name))
                    var runs = small.map(\.ids)
                    if let merged = cache.merged(), merged.names.isSubset(of: listed) {
                        names.formUnion(merged.names)
                        runs.append(merged.ids)
                    }
                    cache.storeMerged(names: names, ids: ChunkIDSet.union(runs))
                    cache.forget(allBut: listed.subtracting(small.map(\.name)))
                }
            }
        }
        return index
    }

    func readIndexObject(_ id: String) async throws(RepositoryError) -> ChunkIDSet {
        let name = ObjectPath.index(id)
        let sealed = try await Self.load(backend, name)
        let plaintext: Data
        do {
            plaintext = try SealedObject.open(sealed, binding: "index \(id)", key: keys.dataKey, maximumSize: IndexObject.maximumPlaintext)
        } catch {
            throw RepositoryError(.corruptObject, object: name, "the index object is damaged (\(Self.describe(error))); no data depends on it: run `lifeboat repo index rebuild`")
        }
        do {
            return try IndexObject.decode(plaintext)
        } catch {
            throw RepositoryError(.corruptObject, object: name, "the index object is not valid: \(error); no data depends on it: run `lifeboat repo index rebuild`")
        }
    }

    /// Writes `ids` as new index objects (create-once, at most `IndexObject.maximumEntries` each)
    /// and caches them; returns their ids. Callers write only ids of chunks already durable.
    @discardableResult
    func writeIndex(_ ids: ChunkIDSet) async throws(RepositoryError) -> [String] {
        guard !ids.isEmpty else { return [] }
        let cache = indexCache
        var written: [String] = []
        for part in ids.split(every: IndexObject.maximumEntries) {
            let id = randomID()
            let name = ObjectPath.index(id)
            do {
                // Not compressed: keyed hashes do not compress.
                let sealed = try SealedObject.seal(IndexObject.encode(part), binding: "index \(id)", key: keys.dataKey, compressionLevel: nil)
                try await backend.create(name, data: sealed)
            } catch let error as BackendError {
                throw RepositoryError(error)
            } catch {
                throw RepositoryError(.storage, object: name, "cannot write the index object: \(error)")
            }
            cache?.store(part, as: id)
            written.append(id)
        }
        return written
    }

    /// Every chunk id `data/` lists (the one O(repository) step; prune and rebuild take it).
    func listChunkObjects() async throws(RepositoryError) -> [ObjectInfo] {
        try await Self.list(backend, "data/")
    }

    /// Replaces the index with one naming exactly `ids` (chunks that exist): the new objects are
    /// written first, then the ones listed in `old` removed, so a crash leaves the union, which
    /// names only existing chunks too. Callers hold the exclusive lock.
    func replaceIndex(with ids: ChunkIDSet, removing old: [String]) async throws(RepositoryError) -> (written: Int, removed: Int) {
        let written = try await writeIndex(ids)
        for id in old {
            do { try await backend.delete(ObjectPath.index(id)) } catch { throw RepositoryError(error) }
        }
        return (written.count, old.count)
    }

    /// `repo index rebuild`: under the exclusive lock, lists `data/` and replaces every index
    /// object (damaged ones included) with objects naming exactly what is there.
    public func rebuildIndex() async throws -> IndexRebuildReport {
        try await withLock(exclusive: true, purpose: "index rebuild") {
            let old = try await Self.list(backend, ObjectPath.index).map { String($0.name.dropFirst(ObjectPath.index.count)) }
            let ids = ChunkIDSet(hexIDs: try await listChunkObjects().map { $0.name.split(separator: "/").last! })
            let (written, removed) = try await replaceIndex(with: ids, removing: old)
            return IndexRebuildReport(chunks: ids.count, objectsWritten: written, objectsRemoved: removed)
        }
    }
}
