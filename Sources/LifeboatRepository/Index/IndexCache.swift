import Crypto
import Foundation

/// The local copy of a repository's index objects, so a put reads none of them again and searches
/// the big ones in place (memory-mapped) instead of loading them.
///
/// Layout: `<root>/<repository id>/<location tag>/index/` holds one file per index object, named by
/// the object's id, with the object's plaintext (`LBIX`, §16 of repository-format.md), and at most
/// one `merged` file: many small ones folded into one, headed by the names it covers. A mirror shares
/// its source's repository id, so the location tag (a hash of the backend's location) keeps the two
/// sets apart.
///
/// Validity: an index object is write-once, so a cached copy of `index/<id>` stays right for as long
/// as that name exists; the set of names listed in `index/` is the cache's key. A name no longer
/// listed (prune or `repo index rebuild` replaced it) drops its file, and a `merged` file covering a
/// name no longer listed is discarded. Everything is written to a temporary file and renamed, so a
/// concurrent reader sees a whole file or none; a file that fails its checks is ignored and removed.
/// The cache holds chunk ids only, which the repository's own object names show already; the ids
/// are keyed hashes (§6) and reveal nothing about content.
///
/// The cache is never trusted over the repository: it only says which chunks a put may try to
/// reuse, and every reuse is read back and checked (§2.1).
struct IndexCache: Sendable {
    let directory: URL

    /// `LIFEBOAT_CACHE_DIR`, else `$XDG_CACHE_HOME/lifeboat`, else `~/.cache/lifeboat`; nil (no
    /// cache) when `LIFEBOAT_CACHE_DIR` is `off` or no home is known.
    static func defaultRoot(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL? {
        if let explicit = environment["LIFEBOAT_CACHE_DIR"], !explicit.isEmpty {
            return explicit == "off" ? nil : URL(fileURLWithPath: explicit)
        }
        if let xdg = environment["XDG_CACHE_HOME"], xdg.hasPrefix("/") {
            return URL(fileURLWithPath: xdg).appendingPathComponent("lifeboat")
        }
        if let home = environment["HOME"], home.hasPrefix("/") {
            return URL(fileURLWithPath: home).appendingPathComponent(".cache/lifeboat")
        }
        return nil
    }

    init?(root: URL?, repositoryID: String, location: String) {
        guard let root else { return nil }
        let tag = Data(SHA256.hash(data: Data(location.utf8))).prefix(8).hexString
        directory = root.appendingPathComponent(repositoryID).appendingPathComponent(tag).appendingPathComponent("index")
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            return nil // a read-only or missing home: work without a cache
        }
    }

    // MARK: one file per index object

    func run(_ name: String) -> ChunkIDSet? {
        let url = directory.appendingPathComponent(name)
        guard let data = Self.read(url) else { return nil }
        guard let ids = try? IndexObject.decode(data, checkOrder: false) else {
            try? FileManager.default.removeItem(at: url)
            return nil
        }
        return ids
    }

    func store(_ ids: ChunkIDSet, as name: String) {
        write(IndexObject.encode(ids), to: name)
    }

    // MARK: the merged file

    static let mergedMagic = Data("LBIC".utf8)
    static let nameLength = 32

    func merged() -> (names: Set<String>, ids: ChunkIDSet)? {
        let url = directory.appendingPathComponent("merged")
        guard let data = Self.read(url) else { return nil }
        let start = data.startIndex
        guard data.count >= 8, data[start..<(start + 4)] == Self.mergedMagic else {
            try? FileManager.default.removeItem(at: url)
            return nil
        }
        let n = data[(start + 4)..<(start + 8)].reduce(0) { $0 << 8 | Int($1) }
        let namesEnd = start + 8 + n * Self.nameLength
        guard data.endIndex >= namesEnd, let names = String(data: data[(start + 8)..<namesEnd], encoding: .ascii),
              let ids = try? IndexObject.decode(data[namesEnd...], checkOrder: false) else {
            try? FileManager.default.removeItem(at: url)
            return nil
        }
        let list = stride(from: 0, to: names.utf8.count, by: Self.nameLength).map { offset in
            String(names.dropFirst(offset).prefix(Self.nameLength))
        }
        return (Set(list), ids)
    }

    func storeMerged(names: Set<String>, ids: ChunkIDSet) {
        guard names.allSatisfy({ $0.utf8.count == Self.nameLength }) else { return }
        var out = Self.mergedMagic
        let n = UInt32(names.count)
        out.append(contentsOf: [UInt8(n >> 24), UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF)])
        out.append(Data(names.sorted().joined().utf8))
        out.append(IndexObject.encode(ids))
        write(out, to: "merged")
    }

    /// Drops the files of index objects that are no longer listed (and a merged file covering one).
    func forget(allBut listed: Set<String>) {
        guard let files = try? FileManager.default.contentsOfDirectory(atPath: directory.path) else { return }
        for file in files where file != "merged" && !listed.contains(file) {
            try? FileManager.default.removeItem(at: directory.appendingPathComponent(file))
        }
    }

    func forgetMerged() {
        try? FileManager.default.removeItem(at: directory.appendingPathComponent("merged"))
    }

    // MARK: files

    private func write(_ data: Data, to name: String) {
        let temporary = directory.appendingPathComponent(".tmp-\(name)-\(UInt64.random(in: 0...UInt64.max))")
        do {
            try data.write(to: temporary)
            guard rename(temporary.path, directory.appendingPathComponent(name).path) == 0 else {
                try? FileManager.default.removeItem(at: temporary)
                return
            }
        } catch {
            try? FileManager.default.removeItem(at: temporary)
        }
    }

    /// Small files are read; large ones are mapped, so a lookup touches only the pages it searches.
    static func read(_ url: URL) -> Data? {
        let fd = open(url.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return nil }
        let size = Int(info.st_size)
        if size < 1 << 16 {
            return FileManager.default.contents(atPath: url.path)
        }
        guard let address = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), address != UnsafeMutableRawPointer(bitPattern: -1) else { return nil }
        return Data(bytesNoCopy: address, count: size, deallocator: .custom { pointer, count in _ = munmap(pointer, count) })
    }
}
