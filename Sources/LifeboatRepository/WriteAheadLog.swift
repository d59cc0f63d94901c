import Crypto
import Foundation
import LifeboatStorage

/// One archived write-ahead-log file of a store, as listed (names only; cheap).
public struct WALObject: Sendable, Hashable {
    /// The file name PostgreSQL gave it (`000000010000000000000004`, `00000002.history`, …).
    public var name: String
    /// Sealed size in the repository.
    public var storedSize: Int
    /// When it was archived.
    public var archived: Date
}

/// What `pushWAL` did.
public enum WALPushOutcome: String, Sendable {
    /// The file is now stored, durably.
    case stored
    /// The same file (same bytes) was already stored: pushing twice is fine.
    case alreadyPresent = "already_present"
}

/// WAL objects (`wal/<store>/<file name>`, sealed, binding `wal <store>/<file name>`): write-once
/// objects outside the snapshot list, so thousands of segments do not swamp `lifeboat snapshots`.
/// Each is sealed like a chunk (zstd when it helps, AES-256-GCM under the data key) with its full
/// name bound as associated data, so a segment stored under another name or store fails to open.
extension Repository {
    /// The largest WAL file accepted when opening (PostgreSQL's largest `wal_segment_size`, 1 GiB).
    static let maximumWALFileSize = 1 << 30

    static func walPath(store: String, name: String) -> String { ObjectPath.wal(store: store, name: name) }

    /// Checks that `name` is a file name PostgreSQL archives: a segment (24 hex digits, optionally
    /// `.partial`), a timeline history (`8 hex.history`) or a backup history file (`24 hex.8 hex.backup`).
    public static func validateWALName(_ name: String) throws(RepositoryError) {
        func hex(_ text: Substring, _ count: Int) -> Bool {
            text.count == count && text.allSatisfy { $0.isHexDigit && ($0.isNumber || $0.isUppercase) }
        }
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        let valid: Bool
        switch parts.count {
        case 1: valid = hex(parts[0], 24)
        case 2: valid = (hex(parts[0], 24) && parts[1] == "partial") || (hex(parts[0], 8) && parts[1] == "history")
        case 3: valid = hex(parts[0], 24) && hex(parts[1], 8) && parts[2] == "backup"
        default: valid = false
        }
        guard valid else {
            throw RepositoryError(.invalidArgument, object: "WAL file \(name)",
                                  "not a WAL file name (a 24-hex-digit segment, .partial, .history or .backup file)")
        }
    }

    static func validateWALStore(_ store: String) throws(RepositoryError) {
        guard !store.isEmpty, store.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }),
              store != ".", store != ".." else {
            throw RepositoryError(.invalidArgument, object: "store \(store)", "a store name may hold letters, digits, '-', '_' and '.'")
        }
    }

    /// Stores one WAL file, create-once. Returns only when the object is durable. If the name is
    /// taken, the stored file is opened and compared: the same bytes are `.alreadyPresent` (an
    /// archiver retrying after a crash), different bytes are a `.conflict` error and nothing changes.
    /// Takes no lock: WAL objects are independent of snapshots, and `prune` leaves them alone.
    @discardableResult
    public func pushWAL(store: String, name: String, contents: Data) async throws(RepositoryError) -> WALPushOutcome {
        try Self.validateWALStore(store)
        try Self.validateWALName(name)
        let path = Self.walPath(store: store, name: name)
        let sealed: Data
        do {
            sealed = try SealedObject.seal(contents, binding: "wal \(store)/\(name)", key: keys.dataKey,
                                           compressionLevel: Int32(config.compressionLevel))
        } catch {
            throw RepositoryError(.storage, object: path, "cannot seal the WAL file: \(error)")
        }
        do {
            try await backend.create(path, data: sealed)
            return .stored
        } catch {
            guard error.code == .alreadyExists else { throw RepositoryError(error) }
        }
        guard let existing = try await fetchWAL(store: store, name: name) else {
            throw RepositoryError(.storage, object: path, "the backend said the object exists, but it cannot be read back")
        }
        guard SHA256.hash(data: existing) == SHA256.hash(data: contents) else {
            throw RepositoryError(.conflict, object: path,
                                  "a different file with this name is already archived (\(existing.count) bytes stored, \(contents.count) bytes pushed); nothing was overwritten. Two servers may be archiving into the same store")
        }
        return .alreadyPresent
    }

    /// The plaintext of one archived WAL file, authenticated; nil when it was never archived.
    public func fetchWAL(store: String, name: String) async throws(RepositoryError) -> Data? {
        try Self.validateWALStore(store)
        try Self.validateWALName(name)
        let path = Self.walPath(store: store, name: name)
        let sealed: Data
        do {
            sealed = try await backend.load(path)
        } catch {
            if error.code == .notFound { return nil }
            throw RepositoryError(error)
        }
        do {
            return try SealedObject.open(sealed, binding: "wal \(store)/\(name)", key: keys.dataKey, maximumSize: Self.maximumWALFileSize)
        } catch {
            throw RepositoryError(.corruptObject, object: path, "the WAL file is damaged (\(Self.describe(error)))")
        }
    }

    /// Every archived WAL file of `store`, sorted by name (which for one timeline is LSN order).
    public func listWAL(store: String) async throws(RepositoryError) -> [WALObject] {
        try Self.validateWALStore(store)
        let prefix = ObjectPath.wal(store: store)
        return try await Self.list(backend, prefix).compactMap { info -> WALObject? in
            let name = String(info.name.dropFirst(prefix.count))
            guard (try? Self.validateWALName(name)) != nil else { return nil }
            return WALObject(name: name, storedSize: info.size, archived: info.modified)
        }.sorted { $0.name < $1.name }
    }

    /// Removes one archived WAL file (WAL retention: a file no kept base backup needs). Removing an
    /// absent file is not an error.
    public func deleteWAL(store: String, name: String) async throws(RepositoryError) {
        try Self.validateWALStore(store)
        try Self.validateWALName(name)
        do { try await backend.delete(Self.walPath(store: store, name: name)) } catch { throw RepositoryError(error) }
    }

    /// The stores that have archived WAL.
    public func walStores() async throws(RepositoryError) -> [String] {
        let names = try await Self.list(backend, ObjectPath.wal).compactMap { info -> String? in
            let parts = info.name.split(separator: "/")
            return parts.count == 3 ? String(parts[1]) : nil
        }
        return Set(names).sorted()
    }
}
