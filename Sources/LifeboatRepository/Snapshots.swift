import Crypto
import Foundation
import LifeboatStorage

/// What a `put` records about the artefact besides its bytes.
public struct SnapshotDescription: Sendable {
    public var store: String
    public var kind: String
    public var tags: [String]
    public var source: [String: String]
    public var point: String?

    public init(store: String, kind: String = "artefact", tags: [String] = [], source: [String: String] = [:], point: String? = nil) {
        self.store = store
        self.kind = kind
        self.tags = tags
        self.source = source
        self.point = point
    }
}

/// The repository's snapshots, and those whose manifest could not be read.
public struct SnapshotListing: Sendable {
    public var manifests: [SnapshotManifest]
    public var unreadable: [RepositoryError]

    /// Whether snapshot `id`'s manifest is among the unreadable ones.
    public func isUnreadable(_ id: String) -> Bool {
        unreadable.contains { $0.object == ObjectPath.snapshot(id) }
    }
}

extension Repository {
    /// How many chunks are sealed and uploaded (or downloaded) at once; bounds memory to about
    /// this many maximum-size chunks.
    public static let defaultParallelism = 8

    // MARK: put

    /// Stores the bytes `read` yields (nil at the end) as a new snapshot; returns its manifest.
    /// Memory stays bounded whatever the input size: the chunker's buffer plus the chunks in flight.
    /// Holds a shared lock, so `prune` cannot collect chunks this backup is about to reference.
    ///
    /// `read` may suspend (an HTTP body, a tool's output read off the cooperative pool). `finish`
    /// runs once the input is exhausted, before the manifest is written: it can check the whole
    /// artefact (an archive's own checksums) and returns facts known only at the end (a raft index,
    /// an end LSN), merged into `source`. If it throws, no manifest is written: the snapshot does
    /// not exist, and its chunks are left for `prune`.
    public func put(
        _ description: SnapshotDescription, parallelism: Int = Repository.defaultParallelism,
        progress: (@Sendable (Int64) -> Void)? = nil, finish: (() async throws -> [String: String])? = nil,
        read: () async throws -> Data?
    ) async throws(RepositoryError) -> SnapshotManifest {
        do {
            return try await withLock(exclusive: false, purpose: "put \(description.store)") {
                try await putUnlocked(description, parallelism: parallelism, progress: progress, finish: finish, read: read)
            }
        } catch let error as RepositoryError {
            throw error
        } catch {
            throw RepositoryError(.storage, object: description.store, "\(error)")
        }
    }

    /// `put` for input that arrives as an async sequence of blocks (an HTTP body, a server's stream).
    public func put<Blocks: AsyncSequence>(
        _ description: SnapshotDescription, parallelism: Int = Repository.defaultParallelism,
        progress: (@Sendable (Int64) -> Void)? = nil, blocks: Blocks,
        finish: (() async throws -> [String: String])? = nil
    ) async throws(RepositoryError) -> SnapshotManifest where Blocks.Element == Data {
        var iterator = blocks.makeAsyncIterator()
        return try await put(description, parallelism: parallelism, progress: progress, finish: finish) { try await iterator.next() }
    }

    func putUnlocked(
        _ description: SnapshotDescription, parallelism: Int, progress: (@Sendable (Int64) -> Void)?,
        finish: (() async throws -> [String: String])?, read: () async throws -> Data?
    ) async throws(RepositoryError) -> SnapshotManifest {
        let started = RepositoryTime.now()
        let known = try await knownChunks()
        let stream: StoredItem
        do {
            stream = try await storeStream(known: known.all, parallelism: parallelism, progress: progress, read: read)
        } catch let error as RepositoryError {
            throw error
        } catch {
            throw RepositoryError(.storage, object: description.store, "reading the input failed: \(error)")
        }
        var source = description.source
        if let finish {
            do {
                source.merge(try await finish()) { $1 }
            } catch let error as RepositoryError {
                throw error
            } catch {
                throw RepositoryError(.storage, object: description.store, "the input was refused: \(error)")
            }
        }
        // Index after the chunks (all durable now) and before the manifest: an index names only
        // chunks that exist, and a snapshot's chunks are indexed by the time it exists. Chunks the
        // index lacked — written now, or found by a create that collided — are added.
        try await writeIndex(known.toIndex(stream.chunks))
        let manifest = SnapshotManifest(
            version: 1, id: randomID(), store: description.store, kind: description.kind, tags: description.tags,
            hostname: ProcessInfo.processInfo.hostName, started: started, finished: RepositoryTime.now(), source: source,
            size: stream.size, sha256: stream.sha256, chunks: stream.chunks, point: description.point)
        try await writeManifest(manifest)
        return manifest
    }

    /// What exists, from the index rather than a listing of `data/`: a put's cost follows its
    /// input, not the repository. With no intact index object at all (a new repository, one written
    /// before the index, or every index object damaged) one listing of `data/` stands in, and this
    /// put's index object names all of it, so the next put needs no listing.
    func knownChunks() async throws(RepositoryError) -> KnownChunks {
        let index = try await loadIndex()
        var listed = ChunkIDSet.empty
        if index.objects.isEmpty {
            listed = ChunkIDSet(hexIDs: try await listChunkObjects().map { $0.name.split(separator: "/").last! })
        }
        var all = index
        all.add(listed)
        return KnownChunks(index: index, listed: listed, all: all)
    }

    /// Chunks, seals and stores the bytes `read` yields (nil or empty at the end), up to
    /// `parallelism` chunks in flight; returns the chunk list with the plaintext's size and SHA-256.
    func storeStream(
        known: ChunkIndex, parallelism: Int, progress: (@Sendable (Int64) -> Void)?, read: () async throws -> Data?
    ) async throws -> StoredItem {
        var chunker = Chunker(parameters: config.chunker, gear: keys.gearTable)
        var digest = SHA256()
        var total: Int64 = 0
        var references: [SnapshotManifest.ChunkReference?] = []
        try await withThrowingTaskGroup(of: (Int, SnapshotManifest.ChunkReference).self) { group in
            var inFlight = 0
            func submit(_ chunk: [UInt8]) async throws {
                if inFlight >= parallelism, let (index, reference) = try await group.next() {
                    references[index] = reference
                    inFlight -= 1
                }
                let index = references.count
                references.append(nil)
                group.addTask { (index, try await self.storeChunk(chunk, known: known)) }
                inFlight += 1
            }
            // nil or an empty block ends the input: a reader that keeps returning nothing must not spin.
            while let block = try await read(), !block.isEmpty {
                // Hash on another core while this one chunks: the whole-artefact SHA-256 stays off the read path.
                let hashing = Task { [digest] in
                    var running = digest
                    running.update(data: block)
                    return running
                }
                total += Int64(block.count)
                progress?(total)
                chunker.append(block)
                do {
                    while let chunk = chunker.nextChunk() { try await submit(chunk) }
                } catch {
                    hashing.cancel()
                    throw error
                }
                digest = await hashing.value
            }
            while let chunk = chunker.finish() { try await submit(chunk) }
            for try await (index, reference) in group { references[index] = reference }
        }
        return StoredItem(chunks: references.map { $0! }, size: total, sha256: Data(digest.finalize()).hexString)
    }

    /// Seals and uploads one chunk unless the repository holds an intact copy already; returns its reference.
    /// `known` is the index: a hint of what exists, never trusted (a chunk it names may be gone or
    /// damaged, and one it lacks may exist).
    ///
    /// A chunk is reused only after it is read back and checked like a restore would (authenticated,
    /// decompressed, re-hashed to its id): a chunk a killed `put` left behind, or one that rotted at
    /// rest, must not become part of a snapshot reported as stored. One proven damaged (or gone since
    /// the listing) is replaced with a fresh sealing of the same plaintext: ids are keyed hashes of the
    /// plaintext, so any correct object under the id is interchangeable with any other.
    func storeChunk(_ plaintext: [UInt8], known: ChunkIndex) async throws(RepositoryError) -> SnapshotManifest.ChunkReference {
        let id = keys.chunkID(for: plaintext)
        let reference = SnapshotManifest.ChunkReference(id: id, size: plaintext.count)
        if known.contains(id), try await storedChunkIsIntact(reference) { return reference }
        let sealed: Data
        do {
            sealed = try SealedObject.seal(plaintext, binding: "chunk \(id)", key: keys.dataKey, compressionLevel: Int32(config.compressionLevel))
        } catch {
            throw RepositoryError(.storage, object: ObjectPath.chunk(id), "cannot seal the chunk: \(error)")
        }
        do {
            if known.contains(id) {
                try await backend.replace(ObjectPath.chunk(id), data: sealed)
                return reference
            }
            do {
                try await backend.create(ObjectPath.chunk(id), data: sealed)
            } catch {
                // Stored already though the index did not say so (another backup since the index was
                // read, a crashed one, a writer without the index): reuse it on the same terms.
                guard error.code == .alreadyExists else { throw error }
                if try await storedChunkIsIntact(reference) { return reference }
                try await backend.replace(ObjectPath.chunk(id), data: sealed)
            }
        } catch let error as BackendError {
            throw RepositoryError(error)
        } catch let error as RepositoryError {
            throw error
        } catch {
            throw RepositoryError(.storage, object: ObjectPath.chunk(id), "\(error)")
        }
        return reference
    }

    /// Whether the stored chunk reads back intact; false when it is damaged or gone, so the caller
    /// writes it again. Any other failure (the backend unreachable) is thrown: nothing is proven.
    func storedChunkIsIntact(_ reference: SnapshotManifest.ChunkReference) async throws(RepositoryError) -> Bool {
        do {
            _ = try await loadChunk(reference)
            return true
        } catch where error.code == .corruptObject || error.code == .missingObject {
            return false
        }
    }

    func writeManifest(_ manifest: SnapshotManifest) async throws(RepositoryError) {
        let name = ObjectPath.snapshot(manifest.id)
        do {
            let sealed = try SealedObject.seal(try JSONEncoder.repository.encode(manifest), binding: "snapshot \(manifest.id)",
                                               key: keys.dataKey, compressionLevel: Int32(config.compressionLevel))
            try await backend.create(name, data: sealed)
        } catch let error as BackendError {
            throw RepositoryError(error)
        } catch {
            throw RepositoryError(.storage, object: name, "cannot write the manifest: \(error)")
        }
    }

    // MARK: reading

    /// A chunk's plaintext, checked: authenticated, decompressed, and re-hashed to its id. A chunk
    /// that fails the check is read once more before it is called damaged: a bit flipped in transit
    /// (a bad NIC, a proxy) is not damage at rest.
    public func loadChunk(_ reference: SnapshotManifest.ChunkReference) async throws(RepositoryError) -> Data {
        try await loadChunk(id: reference.id, size: reference.size)
    }

    /// A chunk's plaintext by id, read once more before it is called damaged; `size` is nil for a
    /// chunk no manifest references (verify reads those too).
    func loadChunk(id: String, size: Int?) async throws(RepositoryError) -> Data {
        do {
            return try await readChunk(id: id, size: size)
        } catch where error.code == .corruptObject {
            do {
                return try await readChunk(id: id, size: size)
            } catch where error.code == .corruptObject {
                throw RepositoryError(.corruptObject, object: error.object, "\(error.message); read twice, so it is damaged at rest")
            }
        }
    }

    func readChunk(id: String, size: Int?) async throws(RepositoryError) -> Data {
        let name = ObjectPath.chunk(id)
        let sealed = try await Self.load(backend, name)
        let plaintext: Data
        do {
            plaintext = try SealedObject.open(sealed, binding: "chunk \(id)", key: keys.dataKey, maximumSize: config.chunker.maximumSize)
        } catch {
            throw RepositoryError(.corruptObject, object: name, "the chunk is damaged (\(Self.describe(error)))")
        }
        guard size.map({ plaintext.count == $0 }) ?? true, keys.chunkID(for: plaintext) == id else {
            throw RepositoryError(.corruptObject, object: name, "the chunk's content does not match its id")
        }
        return plaintext
    }

    public func loadManifest(id: String) async throws(RepositoryError) -> SnapshotManifest {
        let name = ObjectPath.snapshot(id)
        let sealed = try await Self.load(backend, name)
        do {
            let plaintext = try SealedObject.open(sealed, binding: "snapshot \(id)", key: keys.dataKey, maximumSize: Self.maximumManifestSize)
            let manifest = try JSONDecoder.repository.decode(SnapshotManifest.self, from: plaintext)
            guard manifest.id == id else { throw RepositoryError(.corruptObject, object: name, "the manifest names another snapshot") }
            return manifest
        } catch let error as SealedObject.OpenFailure {
            throw RepositoryError(.corruptObject, object: name, "the snapshot manifest is damaged (\(Self.describe(error)))")
        } catch let error as RepositoryError {
            throw error
        } catch {
            throw RepositoryError(.corruptObject, object: name, "the snapshot manifest is not valid: \(error)")
        }
    }

    /// Every snapshot id (cheap: names only).
    public func snapshotIDs() async throws(RepositoryError) -> [String] {
        try await Self.list(backend, ObjectPath.snapshots).map { String($0.name.dropFirst(ObjectPath.snapshots.count)) }
    }

    /// Every readable snapshot, oldest first; damaged manifests are reported, not fatal. To choose
    /// one (the newest, the newest before a time), use `snapshotsToChooseFrom`.
    public func snapshots() async throws(RepositoryError) -> SnapshotListing {
        var listing = SnapshotListing(manifests: [], unreadable: [])
        var vanished: [String: RepositoryError] = [:]
        for id in try await snapshotIDs() {
            do {
                listing.manifests.append(try await loadManifest(id: id))
            } catch where error.code == .missingObject {
                vanished[id] = error
            } catch {
                listing.unreadable.append(error)
            }
        }
        if !vanished.isEmpty {
            // Listed, then gone: a prune deleted it meanwhile (the scheduler prunes while people
            // list) — not damage. One still listed but missing when read is reported.
            let listed = Set(try await snapshotIDs())
            listing.unreadable += vanished.filter { listed.contains($0.key) }.sorted { $0.key < $1.key }.map(\.value)
        }
        listing.manifests.sort { ($0.finished, $0.id) < ($1.finished, $1.id) }
        return listing
    }

    /// The snapshot a user means: a unique id prefix (4+ characters), or `latest` (optionally of
    /// one store), which a damaged manifest makes an error unless damaged ones are skipped.
    public func resolveSnapshot(_ reference: String, store: String? = nil) async throws(RepositoryError) -> SnapshotManifest {
        if reference == "latest" {
            let listing = try await snapshotsToChooseFrom()
            guard let newest = listing.manifests.last(where: { store == nil || $0.store == store }) else {
                throw RepositoryError(.unknownSnapshot, object: store.map { "store \($0)" } ?? backend.location, "there are no snapshots yet")
            }
            return newest
        }
        guard reference.count >= 4, Data(hexString: reference.count % 2 == 0 ? reference : reference + "0") != nil else {
            throw RepositoryError(.unknownSnapshot, object: "snapshot \(reference)", "give at least 4 hex digits of a snapshot id, or `latest`")
        }
        let matches = try await snapshotIDs().filter { $0.hasPrefix(reference.lowercased()) }
        guard !matches.isEmpty else {
            throw RepositoryError(.unknownSnapshot, object: "snapshot \(reference)", "no such snapshot; see `lifeboat snapshots`")
        }
        guard matches.count == 1 else {
            throw RepositoryError(.ambiguousSnapshot, object: "snapshot \(reference)", "the prefix matches \(matches.count) snapshots; give more digits")
        }
        return try await loadManifest(id: matches[0])
    }

    /// Streams the snapshot's bytes to `write`, in order, each chunk verified before it is written;
    /// the whole is checked against the manifest's size and SHA-256 at the end.
    public func restore(
        _ manifest: SnapshotManifest, parallelism: Int = Repository.defaultParallelism,
        progress: (@Sendable (Int64) -> Void)? = nil, write: (Data) async throws -> Void
    ) async throws(RepositoryError) {
        try await restore(StoredItem(chunks: manifest.chunks, size: manifest.size, sha256: manifest.sha256),
                          object: ObjectPath.snapshot(manifest.id), what: "snapshot \(manifest.id)",
                          parallelism: parallelism, progress: progress, write: write)
    }

    /// Streams one stored item's bytes (a whole snapshot's stream, or one object or file of a
    /// many-item snapshot) to `write`, each chunk verified before it is written; the whole is
    /// checked against the item's size and SHA-256 at the end. `object` names it in errors.
    public func restore(
        _ item: StoredItem, object: String, what: String, parallelism: Int = Repository.defaultParallelism,
        progress: (@Sendable (Int64) -> Void)? = nil, write: (Data) async throws -> Void
    ) async throws(RepositoryError) {
        var digest = SHA256()
        var total: Int64 = 0
        do {
            try await withThrowingTaskGroup(of: (Int, Data).self) { group in
                var next = 0
                var submitted = 0
                var ready: [Int: Data] = [:]
                while next < item.chunks.count {
                    // Keep up to `parallelism` chunks loading ahead of the one to write next.
                    while submitted < item.chunks.count, submitted < next + parallelism {
                        let index = submitted
                        let reference = item.chunks[index]
                        group.addTask { (index, try await self.loadChunk(reference)) }
                        submitted += 1
                    }
                    while ready[next] == nil, let (index, data) = try await group.next() { ready[index] = data }
                    let data = ready.removeValue(forKey: next)!
                    // Hash on another core while this one writes: the whole-snapshot SHA-256 stays off the write path.
                    let hashing = Task { [digest] in
                        var running = digest
                        running.update(data: data)
                        return running
                    }
                    total += Int64(data.count)
                    do {
                        try await write(data)
                    } catch {
                        hashing.cancel()
                        throw error
                    }
                    digest = await hashing.value
                    progress?(total)
                    next += 1
                }
            }
        } catch let error as RepositoryError {
            throw error
        } catch {
            throw RepositoryError(.storage, object: what, "writing the output failed: \(error)")
        }
        guard total == item.size, Data(digest.finalize()).hexString == item.sha256 else {
            throw RepositoryError(.corruptObject, object: object,
                                  "the restored bytes do not match the recorded size and SHA-256")
        }
    }

    static func describe(_ failure: SealedObject.OpenFailure) -> String {
        switch failure {
        case .truncated: "truncated"
        case .unknownVersion(let version): "unknown object format \(version)"
        case .unknownCompression(let value): "unknown compression \(value)"
        case .authenticationFailed: "authentication failed: altered, truncated or not this repository's"
        case .decompressionFailed(let reason): "cannot decompress: \(reason)"
        }
    }
}

/// What a backup knows exists before it stores anything: the index as loaded, the listing of
/// `data/` that stands in when there is no index, and both together (the dedup hint).
struct KnownChunks: Sendable {
    let index: ChunkIndex
    let listed: ChunkIDSet
    let all: ChunkIndex

    func contains(_ id: String) -> Bool { all.contains(id) }

    /// What the backup's index object names, written after its chunks and before its manifest:
    /// the chunks the index lacked (written now, or found by a create that collided), and the
    /// listing that stood in for a missing index.
    func toIndex(_ chunks: [SnapshotManifest.ChunkReference]) -> ChunkIDSet {
        ChunkIDSet.union([ChunkIDSet(hexIDs: chunks.map(\.id).filter { !index.contains($0) }), listed])
    }
}
