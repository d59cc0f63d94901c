#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// One entry of a directory tree as `lstat` sees it (symlinks are not followed).
struct FileStatus: Sendable, Hashable {
    enum Kind: String, Codable, Sendable { case file, directory, symlink }
    var kind: Kind?
    /// Permission bits with setuid, setgid and sticky (`0o7777`).
    var mode: UInt32
    var uid: UInt32
    var gid: UInt32
    var size: Int64
    /// Modification time in nanoseconds since 1970.
    var mtimeNanoseconds: Int64

    static func of(_ path: String) throws(FilesError) -> FileStatus {
        var info = Glibc.stat()
        guard lstat(path, &info) == 0 else { throw FilesError(.io, object: path, "cannot stat: \(errnoText())") }
        let type = info.st_mode & S_IFMT
        let kind: Kind? = type == S_IFREG ? .file : type == S_IFDIR ? .directory : type == S_IFLNK ? .symlink : nil
        return FileStatus(kind: kind, mode: UInt32(info.st_mode & 0o7777), uid: info.st_uid, gid: info.st_gid, size: Int64(info.st_size),
                          mtimeNanoseconds: Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec))
    }
}

func errnoText(_ code: Int32 = errno) -> String { String(cString: strerror(code)) }

/// The entries below a directory, depth first, each directory before its contents, names sorted.
/// Directories that cannot be listed are collected in `unreadable` rather than stopping the walk.
func walkTree(_ root: String) throws(FilesError) -> (entries: [(path: String, status: FileStatus)], unreadable: [String], special: [String]) {
    var entries: [(path: String, status: FileStatus)] = []
    var unreadable: [String] = []
    var special: [String] = []
    var pending = [""]
    while let relative = pending.popLast() {
        let full = relative.isEmpty ? root : root + "/" + relative
        let status = try FileStatus.of(full)
        guard status.kind != nil else {
            special.append(full)
            continue
        }
        entries.append((relative, status))
        guard status.kind == .directory else { continue }
        guard let directory = opendir(full) else {
            unreadable.append("\(full) (\(errnoText()))")
            continue
        }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != ".", name != ".." { names.append(name) }
        }
        closedir(directory)
        for name in names.sorted().reversed() { pending.append(relative.isEmpty ? name : relative + "/" + name) }
    }
    return (entries, unreadable, special)
}

/// Reads a regular file in blocks, through one descriptor opened up front (so an unreadable file
/// is found before anything is stored).
final class FileBlockReader: @unchecked Sendable {
    let path: String
    let descriptor: Int32
    let blockSize: Int

    init(path: String, blockSize: Int = 1 << 20) throws(FilesError) {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard descriptor >= 0 else { throw FilesError(.unreadable, object: path, errnoText(), paths: [path]) }
        self.path = path
        self.descriptor = descriptor
        self.blockSize = blockSize
    }

    deinit { close(descriptor) }

    func next() throws -> Data? {
        var buffer = Data(count: blockSize)
        let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, blockSize) }
        guard count >= 0 else { throw FilesError(.unreadable, object: path, "read failed: \(errnoText())", paths: [path]) }
        guard count > 0 else { return nil }
        buffer.count = count
        return buffer
    }
}
