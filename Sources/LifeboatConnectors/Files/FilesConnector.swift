#if canImport(Glibc)
import Glibc
#endif
import Crypto
import Foundation
import LifeboatCore
import LifeboatRepository

/// The first line of a tree snapshot's index: the roots it holds.
struct FilesIndexHeader: Codable, Sendable {
    static let formatName = "lifeboat/files-index"
    var format = Self.formatName
    var version = 1
    var roots: [String]
}

/// One entry of a tree snapshot: where it sits, what it is, its attributes, and for a regular file
/// its SHA-256 and chunks.
public struct FileRecord: Codable, Sendable, Hashable {
    /// Index into the header's roots.
    public var root: Int
    /// Relative to the root; empty for the root directory itself.
    public var path: String
    public var type: String
    public var mode: UInt32
    public var uid: UInt32
    public var gid: UInt32
    public var mtimeNanoseconds: Int64
    public var size: Int64
    /// A symlink's target, as stored in the link.
    public var target: String?
    public var sha256: String?
    public var chunks: [SnapshotManifest.ChunkReference]?

    enum CodingKeys: String, CodingKey {
        case root, path, type, mode, uid, gid, mtimeNanoseconds = "mtime_ns", size, target, sha256, chunks
    }

    var item: StoredItem? {
        guard let sha256, let chunks else { return nil }
        return StoredItem(chunks: chunks, size: size, sha256: sha256)
    }
}

typealias FilesIndex = ItemIndex<FilesIndexHeader, FileRecord>

/// What a tree snapshot records in its manifest's `source`; owned by this connector.
public struct FilesFacts: Sendable, Hashable {
    public var roots: [String]
    public var files: Int
    public var directories: Int
    public var symlinks: Int
    public var bytes: Int64
    public var sourceTime: Date

    var source: [String: String] {
        ["paths": roots.joined(separator: ","), "files": String(files), "directories": String(directories), "symlinks": String(symlinks),
         "bytes": String(bytes), "source_time": SourceTime.format(sourceTime)]
    }

    public init?(_ manifest: SnapshotManifest) {
        let source = manifest.source
        guard manifest.kind == StoreKind.files.rawValue, let paths = source["paths"], let files = source["files"].flatMap(Int.init) else { return nil }
        roots = paths.split(separator: ",").map(String.init)
        self.files = files
        directories = source["directories"].flatMap(Int.init) ?? 0
        symlinks = source["symlinks"].flatMap(Int.init) ?? 0
        bytes = source["bytes"].flatMap(Int64.init) ?? 0
        sourceTime = source["source_time"].flatMap(SourceTime.parse) ?? manifest.started
    }

    init(roots: [String], sourceTime: Date) {
        self.roots = roots
        files = 0
        directories = 0
        symlinks = 0
        bytes = 0
        self.sourceTime = sourceTime
    }
}

/// Backs up the directory trees of one catalog `files` store (regular files, directories and
/// symlinks with their permissions, ownership and modification times), restores them into empty
/// directories (or, with force, in place of the old ones, which are moved aside and put back if the
/// restore fails), and runs the gate: every file's type, size and SHA-256 read back, plus the
/// catalog's `file` checks.
public struct FilesConnector: Sendable {
    public let store: String
    /// Absolute paths of the trees' roots.
    public let roots: [String]
    /// Files read or written at once.
    public var concurrency = 4

    public static let kind = StoreKind.files.rawValue

    public init(store: String, roots: [String]) {
        self.store = store
        self.roots = roots.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
    }

    public init(store: Store) throws(FilesError) {
        guard store.kind == .files, case .files(let connection) = store.connection else {
            throw FilesError(.invalidArgument, object: store.name, "the store is not a files store with a connection (kind \(store.kind.rawValue))")
        }
        self.init(store: store.name, roots: connection.paths)
    }

    // MARK: backup

    /// Walks every root, then streams each regular file into the repository; the index and the
    /// manifest are written last. Any file or directory that cannot be read fails the backup with
    /// every such path named; nothing is skipped silently.
    public func backup(into repository: Repository, point: String? = nil, tags: [String] = []) async throws -> SnapshotManifest {
        var facts = FilesFacts(roots: roots, sourceTime: Date())
        var tree: [(root: Int, path: String, status: FileStatus)] = []
        var unreadable: [String] = []
        var special: [String] = []
        for (index, root) in roots.enumerated() {
            let walkedTree = try walkTree(root)
            guard walkedTree.entries.first?.status.kind == .directory else {
                throw FilesError(.invalidArgument, object: root, "is not a directory; a files store's paths are directories")
            }
            tree += walkedTree.entries.map { (index, $0.path, $0.status) }
            unreadable += walkedTree.unreadable
            special += walkedTree.special
        }
        // Open every file before storing any, so one backup names all unreadable files at once.
        let walked = tree
        var readers: [Int: FileBlockReader] = [:]
        for (position, entry) in walked.enumerated() where entry.status.kind == .file {
            do throws(FilesError) {
                readers[position] = try FileBlockReader(path: join(roots[entry.root], entry.path))
            } catch {
                unreadable.append("\(error.object) (\(error.message))")
            }
        }
        guard unreadable.isEmpty else {
            throw FilesError(.unreadable, object: store,
                             "\(unreadable.count) path\(unreadable.count == 1 ? "" : "s") cannot be read, so no snapshot was written: \(unreadable.joined(separator: ", ")); give Lifeboat read access (or exclude them from the store's paths)",
                             paths: unreadable)
        }
        guard special.isEmpty else {
            throw FilesError(.invalidArgument, object: store,
                             "not a regular file, directory or symlink (a socket, FIFO or device), so no snapshot was written: \(special.joined(separator: ", "))",
                             paths: special)
        }
        let description = SnapshotDescription(store: store, kind: Self.kind, tags: tags, source: [:], point: point)
        let roots = roots
        let positions = Array(walked.indices)
        let readerTable = readers
        return try await repository.putContents(description) { writer in
            let records = try await forEachConcurrently(positions, limit: concurrency) { position -> FileRecord in
                let entry = walked[position]
                let full = join(roots[entry.root], entry.path)
                var record = FileRecord(root: entry.root, path: entry.path, type: entry.status.kind!.rawValue, mode: entry.status.mode,
                                        uid: entry.status.uid, gid: entry.status.gid, mtimeNanoseconds: entry.status.mtimeNanoseconds, size: 0)
                switch entry.status.kind! {
                case .file:
                    let reader = readerTable[position]!
                    let item = try await writer.store { try reader.next() }
                    record.size = item.size
                    record.sha256 = item.sha256
                    record.chunks = item.chunks
                case .symlink:
                    record.target = try readLink(full)
                case .directory:
                    break
                }
                return record
            }
            facts.files = records.filter { $0.type == FileStatus.Kind.file.rawValue }.count
            facts.directories = records.filter { $0.type == FileStatus.Kind.directory.rawValue }.count
            facts.symlinks = records.filter { $0.type == FileStatus.Kind.symlink.rawValue }.count
            facts.bytes = records.reduce(0) { $0 + $1.size }
            let index = FilesIndex(header: FilesIndexHeader(roots: roots), records: records)
            return (try index.encoded(), records.compactMap(\.item), facts.source)
        }
    }

    // MARK: restore

    public static func index(of manifest: SnapshotManifest, in repository: Repository) async throws -> (roots: [String], records: [FileRecord]) {
        guard manifest.kind == kind, manifest.contentChunks != nil else {
            throw FilesError(.invalidArgument, object: "snapshot \(manifest.id.prefix(8))", "is a \(manifest.kind) snapshot, not a files snapshot")
        }
        let index = try FilesIndex.decode(try await repository.loadStream(manifest), snapshot: manifest.id)
        guard index.header.format == FilesIndexHeader.formatName else {
            throw RepositoryError(.corruptObject, object: "snapshot \(manifest.id)", "its index is not a files index (\(index.header.format))")
        }
        for record in index.records where record.root >= index.header.roots.count || !Self.isSafeRelativePath(record.path) {
            throw RepositoryError(.corruptObject, object: "snapshot \(manifest.id)", "its index names an entry outside its roots (\(record.path))")
        }
        return (index.header.roots, index.records)
    }

    static func isSafeRelativePath(_ path: String) -> Bool {
        path.isEmpty || (!path.hasPrefix("/") && !path.split(separator: "/", omittingEmptySubsequences: false).contains { $0.isEmpty || $0 == "." || $0 == ".." })
    }

    /// Where each root of the snapshot goes: its own path; with `to`, that directory (one root) or
    /// `to/<root's last component>` (several).
    public static func destinations(for roots: [String], to directory: String?) throws(FilesError) -> [String] {
        guard let directory else { return roots }
        let base = URL(fileURLWithPath: directory).standardizedFileURL.path
        if roots.count == 1 { return [base] }
        let names = roots.map { URL(fileURLWithPath: $0).lastPathComponent }
        guard Set(names).count == names.count else {
            throw FilesError(.invalidArgument, object: directory, "the snapshot's roots \(roots.joined(separator: ", ")) share a last path component; restore them to their own paths")
        }
        return names.map { base + "/" + $0 }
    }

    /// Every reason the restore into `destinations` would refuse, without changing anything.
    public static func preflight(destinations: [String], force: Bool) -> [String] {
        destinations.compactMap { destination in
            guard let entries = try? FileManager.default.contentsOfDirectory(atPath: destination), !entries.isEmpty, !force else { return nil }
            return "the directory \(destination) is not empty; nothing was changed. With --force it is moved aside (to \(URL(fileURLWithPath: setAsidePath(for: destination)).lastPathComponent)), never deleted, and put back if the restore fails"
        }
    }

    /// Restores the snapshot's trees into `destinations` (one per root). A non-empty destination is
    /// refused without `force`; with it, it is moved aside first and put back if the restore fails.
    /// Ownership is restored when running as root (otherwise the files belong to the caller).
    public static func restore(_ manifest: SnapshotManifest, from repository: Repository, destinations: [String], force: Bool = false,
                               concurrency: Int = 4) async throws -> FilesRestoreReport {
        let started = Date()
        let index = try await Self.index(of: manifest, in: repository)
        guard destinations.count == index.roots.count else {
            throw FilesError(.invalidArgument, object: "snapshot \(manifest.id.prefix(8))", "holds \(index.roots.count) roots, \(destinations.count) destinations given")
        }
        let problems = preflight(destinations: destinations, force: force)
        guard problems.isEmpty else { throw FilesError(.refused, object: destinations.joined(separator: ", "), problems.joined(separator: "; ")) }
        var setAside: [(destination: String, aside: String)] = []
        let fileManager = FileManager.default
        do {
            for destination in destinations {
                try fileManager.createDirectory(atPath: URL(fileURLWithPath: destination).deletingLastPathComponent().path, withIntermediateDirectories: true)
                if let entries = try? fileManager.contentsOfDirectory(atPath: destination), !entries.isEmpty {
                    let aside = setAsidePath(for: destination)
                    try fileManager.moveItem(atPath: destination, toPath: aside)
                    setAside.append((destination, aside))
                } else if fileManager.fileExists(atPath: destination) {
                    try fileManager.removeItem(atPath: destination)  // empty: replaced by the restored root
                }
            }
            try await write(index.records, manifest: manifest, from: repository, destinations: destinations, concurrency: concurrency)
        } catch {
            // Put every moved directory back: a failed restore leaves the targets as it found them.
            var notBack: [String] = []
            for (destination, aside) in setAside {
                do {
                    if fileManager.fileExists(atPath: destination) { try fileManager.removeItem(atPath: destination) }
                    try fileManager.moveItem(atPath: aside, toPath: destination)
                } catch {
                    notBack.append("\(destination) is intact at \(aside)")
                }
            }
            if !notBack.isEmpty {
                throw FilesError(.io, object: destinations.joined(separator: ", "), "\(error); and the previous directory could not be put back: \(notBack.joined(separator: "; "))")
            }
            throw error
        }
        let files = index.records.filter { $0.type == FileStatus.Kind.file.rawValue }
        return FilesRestoreReport(snapshot: manifest.id, destinations: destinations, setAside: setAside.map(\.aside), files: files.count,
                                  bytes: files.reduce(0) { $0 + $1.size }, entries: index.records.count,
                                  ownershipRestored: geteuid() == 0, seconds: Date().timeIntervalSince(started))
    }

    /// Directories first (owner-writable while being filled), then files and symlinks, then every
    /// directory's own mode and time, deepest first (writing into a directory changes its time).
    static func write(_ records: [FileRecord], manifest: SnapshotManifest, from repository: Repository, destinations: [String], concurrency: Int) async throws {
        let asRoot = geteuid() == 0
        let directories = records.filter { $0.type == FileStatus.Kind.directory.rawValue }
        for record in directories {
            let path = join(destinations[record.root], record.path)
            guard mkdir(path, 0o700) == 0 || (errno == EEXIST && record.path.isEmpty) else {
                throw FilesError(.io, object: path, "cannot create the directory: \(errnoText())")
            }
        }
        let others = records.filter { $0.type != FileStatus.Kind.directory.rawValue }
        _ = try await forEachConcurrently(others, limit: concurrency) { record -> Bool in
            let path = join(destinations[record.root], record.path)
            if record.type == FileStatus.Kind.symlink.rawValue {
                guard let target = record.target, symlink(target, path) == 0 else { throw FilesError(.io, object: path, "cannot create the symlink: \(errnoText())") }
            } else {
                guard let item = record.item else { throw RepositoryError(.corruptObject, object: "snapshot \(manifest.id)", "file \(record.path) has no content in the index") }
                let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
                guard descriptor >= 0 else { throw FilesError(.io, object: path, "cannot create the file: \(errnoText())") }
                defer { close(descriptor) }
                let object = "\(record.path) in snapshot \(manifest.id.prefix(8))"
                try await repository.restore(item, object: object, what: object) { block in
                    try block.withUnsafeBytes { buffer in
                        var offset = 0
                        while offset < buffer.count {
                            let written = Glibc.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                            guard written > 0 else { throw FilesError(.io, object: path, "cannot write: \(errnoText())") }
                            offset += written
                        }
                    }
                }
                guard fsync(descriptor) == 0 else { throw FilesError(.io, object: path, "cannot sync: \(errnoText())") }
            }
            try applyAttributes(record, at: path, asRoot: asRoot)
            return true
        }
        for record in directories.sorted(by: { $0.path.count > $1.path.count }) {
            try applyAttributes(record, at: join(destinations[record.root], record.path), asRoot: asRoot)
        }
    }

    /// Ownership (as root), mode (not for symlinks, which have none of their own) and modification time.
    static func applyAttributes(_ record: FileRecord, at path: String, asRoot: Bool) throws {
        let isLink = record.type == FileStatus.Kind.symlink.rawValue
        if asRoot, lchown(path, record.uid, record.gid) != 0 {
            throw FilesError(.io, object: path, "cannot set the owner \(record.uid):\(record.gid): \(errnoText())")
        }
        if !isLink, chmod(path, mode_t(record.mode)) != 0 {
            throw FilesError(.io, object: path, "cannot set the mode \(String(record.mode, radix: 8)): \(errnoText())")
        }
        let seconds = record.mtimeNanoseconds / 1_000_000_000
        let nanoseconds = record.mtimeNanoseconds % 1_000_000_000
        let time = timespec(tv_sec: Int(seconds), tv_nsec: Int(nanoseconds))
        var times = [time, time]  // access time: the modification time too (it is not recorded)
        if utimensat(AT_FDCWD, path, &times, isLink ? AT_SYMLINK_NOFOLLOW : 0) != 0 {
            throw FilesError(.io, object: path, "cannot set the modification time: \(errnoText())")
        }
    }

    // MARK: gate

    /// The gate: every entry of the snapshot exists at its destination with its type, mode and
    /// (files) size and SHA-256 read back, (symlinks) target; then the catalog's `file` checks
    /// (paths relative to a root, or absolute under one). A failed check is a result.
    public static func runGate(_ manifest: SnapshotManifest, in repository: Repository, destinations: [String], checks: [VerifyCheck]) async throws -> [CheckResult] {
        let index = try await Self.index(of: manifest, in: repository)
        let problems = try await forEachConcurrently(index.records, limit: 4) { record -> String? in
            let path = join(destinations[record.root], record.path)
            let status: FileStatus
            do { status = try FileStatus.of(path) } catch { return "\(path) is missing" }
            guard status.kind?.rawValue == record.type else { return "\(path) is a \(status.kind?.rawValue ?? "special file"), the snapshot has a \(record.type)" }
            if record.type != FileStatus.Kind.symlink.rawValue, status.mode != record.mode {
                return "\(path) has mode \(String(status.mode, radix: 8)), the snapshot \(String(record.mode, radix: 8))"
            }
            switch record.type {
            case FileStatus.Kind.file.rawValue:
                guard status.size == record.size else { return "\(path) has \(status.size) bytes, the snapshot \(record.size)" }
                let sha256: String
                do { sha256 = try Self.sha256(of: path) } catch { return "\(path) cannot be read back: \(error)" }
                return sha256 == record.sha256 ? nil : "\(path) reads back with another SHA-256 than the snapshot's"
            case FileStatus.Kind.symlink.rawValue:
                let target = try? readLink(path)
                return target == record.target ? nil : "\(path) points to \(target ?? "?"), the snapshot to \(record.target ?? "?")"
            default:
                return nil
            }
        }.compactMap { $0 }
        let files = index.records.filter { $0.type == FileStatus.Kind.file.rawValue }
        var results = [CheckResult(
            check: "files match the snapshot (types, modes, sizes, SHA-256)", passed: problems.isEmpty,
            detail: problems.isEmpty ? "\(index.records.count) entries, \(files.count) files of \(files.reduce(0) { $0 + $1.size }) bytes read back and matching"
                : "\(problems.count) of \(index.records.count) differ: " + problems.prefix(5).joined(separator: "; ") + (problems.count > 5 ? "; …" : ""))]
        results += runChecks(checks, roots: index.roots, destinations: destinations)
        return results
    }

    /// The catalog's `file` checks: the path (relative to a root, or absolute under one) exists at its destination.
    public static func runChecks(_ checks: [VerifyCheck], roots: [String], destinations: [String]) -> [CheckResult] {
        checks.compactMap { check in
            switch check {
            case .file(let wanted):
                var candidates: [String] = []
                for (root, destination) in zip(roots, destinations) {
                    if wanted.hasPrefix("/") {
                        if wanted == root || wanted.hasPrefix(root + "/") { candidates.append(destination + wanted.dropFirst(root.count)) }
                    } else {
                        candidates.append(join(destination, wanted))
                    }
                }
                let found = candidates.first { (try? FileStatus.of($0)) != nil }
                return CheckResult(check: check.summary, passed: found != nil,
                                   detail: found.map { "\($0) exists" } ?? (candidates.isEmpty ? "\(wanted) is under none of the store's paths" : "\(candidates.joined(separator: ", ")) does not exist"))
            case .manual:
                return nil
            default:
                return CheckResult(check: check.summary, passed: false, detail: "not a files check (\(check.keyword)); it cannot run against a directory")
            }
        }
    }

    static func sha256(of path: String) throws -> String {
        let reader = try FileBlockReader(path: path)
        var digest = SHA256()
        while let block = try reader.next() { digest.update(data: block) }
        return Data(digest.finalize()).map { String(format: "%02x", $0) }.joined()
    }
}

/// What a files restore did.
public struct FilesRestoreReport: Sendable, Codable {
    public var snapshot: String
    public var destinations: [String]
    /// Where non-empty destinations were moved (with --force).
    public var setAside: [String]
    public var files: Int
    public var bytes: Int64
    public var entries: Int
    /// False when not running as root: files then belong to the user who ran the restore.
    public var ownershipRestored: Bool
    public var seconds: Double
}

func join(_ root: String, _ relative: String) -> String { relative.isEmpty ? root : root + "/" + relative }

func readLink(_ path: String) throws(FilesError) -> String {
    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    let count = readlink(path, &buffer, buffer.count - 1)
    guard count >= 0 else { throw FilesError(.io, object: path, "cannot read the symlink: \(errnoText())") }
    return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
