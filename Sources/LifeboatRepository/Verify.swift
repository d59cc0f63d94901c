import Crypto
import Foundation
import LifeboatStorage

/// What `verify` found.
public struct VerifyReport: Sendable {
    public var snapshots = 0
    public var referencedChunks = 0
    /// Chunks decrypted and re-hashed (all with --read-data, a sample with --read-data-subset).
    public var chunksRead = 0
    public var bytesRead: Int64 = 0
    /// Chunks no snapshot references (left by an interrupted backup or a prune); `prune` collects them.
    public var unreferencedChunks = 0
    /// Unreferenced chunks decrypted and re-hashed (all of them with --read-data): a damaged one is a
    /// problem too, since the next backup of the same data would otherwise build on it.
    public var unreferencedChunksRead = 0
    /// Index objects read intact (damaged ones are problems).
    public var indexObjects = 0
    /// Chunks in `data/` that no index object names (a crashed backup's, or a repository written
    /// before the index): harmless; the next backup of the same data, `prune` or `repo index rebuild` indexes them.
    public var unindexedChunks = 0
    public var problems: [RepositoryError] = []

    public var isHealthy: Bool { problems.isEmpty }
}

extension Repository {
    /// Checks the repository: every manifest opens, every referenced chunk exists, every index
    /// object opens and names only chunks that exist; with
    /// `readData` every chunk is decrypted and re-hashed and every snapshot's plaintext SHA-256
    /// recomputed, and every unreferenced chunk is read too (intact ones are normal after an
    /// interrupted backup; damaged ones are problems); with `subset` (0…1) a random share of the
    /// referenced chunks is read instead.
    /// Reads only; never changes the repository.
    public func verify(readData: Bool = false, subset: Double? = nil) async throws(RepositoryError) -> VerifyReport {
        var report = VerifyReport()
        let listing = try await snapshots()
        report.snapshots = listing.manifests.count
        report.problems += listing.unreadable

        // The index before `data/` (its objects are written after their chunks, so a chunk it names
        // is in the listing that follows), read from the backend, not the cache: this is the check.
        let index = try await loadIndex(useCache: false)
        report.indexObjects = index.objects.count
        report.problems += index.damaged
        let stored = Dictionary(try await Self.list(backend, ObjectPath.data).map { (String($0.name.split(separator: "/").last!), $0.size) },
                                uniquingKeysWith: { first, _ in first })
        var referencedBy: [String: [String]] = [:]
        var sizes: [String: Int] = [:]
        for manifest in listing.manifests {
            for chunk in manifest.allChunks {
                referencedBy[chunk.id, default: []].append(manifest.id)
                sizes[chunk.id] = chunk.size
            }
        }
        report.referencedChunks = referencedBy.count
        let indexed = index.allIDs
        let storedIDs = ChunkIDSet(hexIDs: stored.keys)
        report.unindexedChunks = storedIDs.subtracting(indexed).count
        let indexedButMissing = indexed.subtracting(storedIDs).hexIDs
        if let first = indexedButMissing.first {
            // Breaks the rule that an index names only existing chunks (someone deleted chunks, or a
            // prune without the index ran). No data depends on the index, so this is no data loss.
            report.problems.append(RepositoryError(.corruptObject, object: ObjectPath.index,
                                                   "the index names \(indexedButMissing.count) chunk\(indexedButMissing.count == 1 ? "" : "s") that data/ does not hold (\(ObjectPath.chunk(first))\(indexedButMissing.count > 1 ? ", …" : "")); backups store such chunks again, but run `lifeboat repo index rebuild`"))
        }
        let unreferenced = stored.keys.filter { referencedBy[$0] == nil }.sorted()
        report.unreferencedChunks = unreferenced.count
        var missing = Set<String>()
        for (id, snapshots) in referencedBy.sorted(by: { $0.key < $1.key }) {
            guard let size = stored[id] else {
                missing.insert(id)
                let names = Set(snapshots).sorted().map { String($0.prefix(8)) }.joined(separator: ", ")
                report.problems.append(RepositoryError(.missingObject, object: ObjectPath.chunk(id), "missing; snapshot \(names) cannot be restored"))
                continue
            }
            if size < SealedObject.overhead {
                report.problems.append(RepositoryError(.corruptObject, object: ObjectPath.chunk(id), "truncated: \(size) bytes"))
            }
        }

        if readData {
            // Every snapshot end to end: chunk by chunk, then its whole SHA-256.
            var damaged = Set<String>()
            var contentRead = Set<String>()
            for manifest in listing.manifests {
                var digest = SHA256()
                var intact = true
                for chunk in manifest.chunks {
                    if missing.contains(chunk.id) || damaged.contains(chunk.id) { intact = false; continue }
                    do {
                        let data = try await loadChunk(chunk)
                        digest.update(data: data)
                        report.bytesRead += Int64(data.count)
                    } catch {
                        damaged.insert(chunk.id)
                        report.problems.append(error)
                        intact = false
                    }
                }
                if intact, Data(digest.finalize()).hexString != manifest.sha256 {
                    report.problems.append(RepositoryError(.corruptObject, object: ObjectPath.snapshot(manifest.id),
                                                           "its chunks do not add up to the recorded SHA-256"))
                }
                // A many-item snapshot's items: each chunk re-hashed to its id (the items' own
                // SHA-256s are checked by the store's restore gate, which reads the index).
                for chunk in manifest.contentChunks ?? [] where !missing.contains(chunk.id) && !damaged.contains(chunk.id) && !contentRead.contains(chunk.id) {
                    contentRead.insert(chunk.id)
                    do {
                        report.bytesRead += Int64(try await loadChunk(chunk).count)
                    } catch {
                        damaged.insert(chunk.id)
                        report.problems.append(error)
                    }
                }
            }
            report.chunksRead = referencedBy.count - missing.count
            for id in unreferenced {
                do {
                    report.bytesRead += Int64(try await loadChunk(id: id, size: nil).count)
                } catch where error.code == .missingObject {
                    continue  // collected by a prune since the listing
                } catch where error.code == .corruptObject {
                    report.problems.append(RepositoryError(.corruptObject, object: error.object, "\(error.message); no snapshot references it (an interrupted backup or a removed snapshot left it), but it shows damage at rest; the next backup of the same data replaces it, `lifeboat prune` removes it"))
                } catch {
                    report.problems.append(error)
                }
                report.unreferencedChunksRead += 1
            }
        } else if let subset, subset > 0 {
            let candidates = referencedBy.keys.filter { !missing.contains($0) }.shuffled()
            let sample = candidates.prefix(max(1, Int((Double(candidates.count) * min(subset, 1)).rounded(.up))))
            for id in sample {
                do {
                    let data = try await loadChunk(SnapshotManifest.ChunkReference(id: id, size: sizes[id]!))
                    report.bytesRead += Int64(data.count)
                    report.chunksRead += 1
                } catch {
                    report.problems.append(error)
                }
            }
        }
        return report
    }
}
