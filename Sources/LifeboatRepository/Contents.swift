import Foundation
import LifeboatStorage

/// One stored run of bytes: its chunks in order, with the plaintext's size and SHA-256. A whole
/// snapshot's stream is one; so is each object or file of a many-item snapshot.
public struct StoredItem: Sendable, Hashable, Codable {
    public var chunks: [SnapshotManifest.ChunkReference]
    public var size: Int64
    public var sha256: String

    public init(chunks: [SnapshotManifest.ChunkReference], size: Int64, sha256: String) {
        self.chunks = chunks
        self.size = size
        self.sha256 = sha256
    }
}

/// Stores the items of one many-item snapshot (a bucket's objects, a tree's files). Each item is
/// chunked on its own — its chunk boundaries start at its first byte — so an unchanged item can
/// be carried into the next snapshot by its chunk list alone, without reading its bytes again.
/// Safe to use from several tasks at once.
public struct ContentWriter: Sendable {
    let repository: Repository
    /// The chunks the repository held when the snapshot started (its index: a hint, §16).
    let known: KnownChunks

    /// Stores one item's bytes (`read` yields blocks, nil at the end), `parallelism` chunks in flight.
    public func store(parallelism: Int = 2, read: () async throws -> Data?) async throws -> StoredItem {
        try await repository.storeStream(known: known.all, parallelism: parallelism, progress: nil, read: read)
    }

    /// Whether every chunk of an item stored by an earlier snapshot is still in the repository, so
    /// the item can be referenced again without its bytes. Presence by the index (prune takes a
    /// chunk out of the index before it deletes it): at-rest damage is found by `verify
    /// --read-data` and by the restore, which checks every chunk and every item's SHA-256.
    public func canReuse(_ item: StoredItem) -> Bool {
        item.chunks.allSatisfy { known.contains($0.id) }
    }
}

extension Repository {
    /// Writes a many-item snapshot (manifest version 2) under the shared lock, so prune cannot
    /// collect chunks it is about to reference. `write` stores the items through the writer and
    /// returns the snapshot's index (the document that names every item and its chunks), the
    /// items' chunk lists, and source facts known only at the end (merged into the description's);
    /// the index is stored as the snapshot's stream, the items' chunks are
    /// recorded (each id once) in `content_chunks`. A failure writes no manifest: the snapshot does
    /// not exist, and the chunks already stored are left for prune.
    public func putContents(
        _ description: SnapshotDescription, write: (ContentWriter) async throws -> (index: Data, items: [StoredItem], source: [String: String])
    ) async throws(RepositoryError) -> SnapshotManifest {
        do {
            return try await withLock(exclusive: false, purpose: "backup \(description.store)") {
                let started = RepositoryTime.now()
                let writer = ContentWriter(repository: self, known: try await knownChunks())
                let (index, items, facts) = try await write(writer)
                var remaining = index
                let stream = try await storeStream(known: writer.known.all, parallelism: Self.defaultParallelism, progress: nil) {
                    guard !remaining.isEmpty else { return nil }
                    let block = remaining.prefix(1 << 20)
                    remaining.removeFirst(block.count)
                    return Data(block)
                }
                var seen = Set<String>()
                var content: [SnapshotManifest.ChunkReference] = []
                for item in items {
                    for chunk in item.chunks where seen.insert(chunk.id).inserted { content.append(chunk) }
                }
                // The index after every chunk (items and stream) and before the manifest (§2, §16).
                try await writeIndex(writer.known.toIndex(stream.chunks + content))
                let manifest = SnapshotManifest(
                    version: 2, id: randomID(), store: description.store, kind: description.kind, tags: description.tags,
                    hostname: ProcessInfo.processInfo.hostName, started: started, finished: RepositoryTime.now(), source: description.source.merging(facts) { $1 },
                    size: stream.size, sha256: stream.sha256, chunks: stream.chunks, point: description.point, contentChunks: content)
                try await writeManifest(manifest)
                return manifest
            }
        } catch let error as RepositoryError {
            throw error
        } catch {
            throw RepositoryError(.storage, object: description.store, "\(error)")
        }
    }

    /// The whole stream of a snapshot in memory: for a many-item snapshot's index (bounded by
    /// the number of items, not their bytes). Checked against the manifest's size and SHA-256.
    public func loadStream(_ manifest: SnapshotManifest) async throws(RepositoryError) -> Data {
        var data = Data()
        try await restore(manifest) { data.append($0) }
        return data
    }
}
