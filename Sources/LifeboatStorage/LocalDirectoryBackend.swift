import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A repository in a local directory (or a mounted filesystem).
///
/// Writes go to a temporary file in the target directory, are fsynced, then published: with
/// `link(2)` for create-once objects (fails atomically if the name exists) or `rename(2)` for
/// replaceable ones; the directory is fsynced after. A crash leaves at most a `.tmp-*` file,
/// which `list` ignores.
public struct LocalDirectoryBackend: Backend {
    public let root: URL

    public init(root: URL) {
        self.root = root.standardizedFileURL
    }

    public var location: String { root.path }

    static let temporaryPrefix = ".tmp-"

    func path(_ name: String) throws(BackendError) -> String {
        try validateObjectName(name)
        return root.appendingPathComponent(name).path
    }

    public func create(_ name: String, data: Data) async throws(BackendError) {
        let target = try path(name)
        try await Self.offThePool { () throws(BackendError) in
            let temporary = try writeTemporary(for: target, name: name, data: data)
            defer { unlink(temporary) }
            guard link(temporary, target) == 0 else {
                let code = errno
                if code == EEXIST { throw BackendError(.alreadyExists, object: name, "already exists") }
                throw Self.error(code, name, "cannot publish")
            }
            try syncDirectory(of: target, name: name)
        }
    }

    public func replace(_ name: String, data: Data) async throws(BackendError) {
        let target = try path(name)
        try await Self.offThePool { () throws(BackendError) in
            let temporary = try writeTemporary(for: target, name: name, data: data)
            guard rename(temporary, target) == 0 else {
                let code = errno
                unlink(temporary)
                throw Self.error(code, name, "cannot publish")
            }
            try syncDirectory(of: target, name: name)
        }
    }

    /// Writes and fsyncs block for milliseconds each. They run on this queue rather than on the
    /// cooperative pool, which has one thread per core: on two cores, one fsync parked there halved
    /// the chunking and sealing of every backup in flight (a physical PostgreSQL backup ran at
    /// about one core of two).
    static let blockingIO = DispatchQueue(label: "lifeboat.local-directory.io", attributes: .concurrent)

    static func offThePool(_ body: @escaping @Sendable () throws(BackendError) -> Void) async throws(BackendError) {
        let failure: BackendError? = await withCheckedContinuation { continuation in
            blockingIO.async {
                do throws(BackendError) {
                    try body()
                    continuation.resume(returning: nil)
                } catch {
                    continuation.resume(returning: error)
                }
            }
        }
        if let failure { throw failure }
    }

    public func load(_ name: String, range: Range<Int>?) async throws(BackendError) -> Data {
        let target = try path(name)
        let descriptor = open(target, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw Self.error(errno, name, "cannot open") }
        defer { close(descriptor) }
        var info = Glibc.stat()
        guard fstat(descriptor, &info) == 0 else { throw Self.error(errno, name, "cannot stat") }
        let size = Int(info.st_size)
        let wanted = range ?? 0..<size
        guard wanted.lowerBound >= 0, wanted.upperBound <= size else {
            throw BackendError(.io, object: name, "range \(wanted) is outside the object's \(size) bytes")
        }
        var data = Data(count: wanted.count)
        var done = 0
        while done < wanted.count {
            let count = data.withUnsafeMutableBytes { buffer in
                pread(descriptor, buffer.baseAddress! + done, wanted.count - done, off_t(wanted.lowerBound + done))
            }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else {
                throw count == 0 ? BackendError(.io, object: name, "object shrank while being read") : Self.error(errno, name, "cannot read")
            }
            done += count
        }
        return data
    }

    public func stat(_ name: String) async throws(BackendError) -> ObjectInfo? {
        let target = try path(name)
        var info = Glibc.stat()
        guard statPath(target, &info) == 0 else {
            if errno == ENOENT || errno == ENOTDIR { return nil }
            throw Self.error(errno, name, "cannot stat")
        }
        return ObjectInfo(name: name, size: Int(info.st_size), modified: Self.modified(info))
    }

    public func list(prefix: String) async throws(BackendError) -> [ObjectInfo] {
        // Walk the deepest directory the prefix names, then filter by the full prefix.
        let directory = prefix.contains("/") ? String(prefix[..<prefix.lastIndex(of: "/")!]) : ""
        var found: [ObjectInfo] = []
        try walk(directory, into: &found)
        return found.filter { $0.name.hasPrefix(prefix) }
    }

    private func walk(_ relative: String, into found: inout [ObjectInfo]) throws(BackendError) {
        let absolute = relative.isEmpty ? root.path : root.appendingPathComponent(relative).path
        guard let handle = opendir(absolute) else {
            if errno == ENOENT || errno == ENOTDIR { return }
            throw Self.error(errno, relative.isEmpty ? location : relative, "cannot list")
        }
        defer { closedir(handle) }
        while let entry = readdir(handle) {
            let entryName = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard entryName != ".", entryName != "..", !entryName.hasPrefix(Self.temporaryPrefix) else { continue }
            let name = relative.isEmpty ? entryName : "\(relative)/\(entryName)"
            var info = Glibc.stat()
            guard lstat(root.appendingPathComponent(name).path, &info) == 0 else { continue }
            if (info.st_mode & S_IFMT) == S_IFDIR {
                try walk(name, into: &found)
            } else if (info.st_mode & S_IFMT) == S_IFREG {
                found.append(ObjectInfo(name: name, size: Int(info.st_size), modified: Self.modified(info)))
            }
        }
    }

    public func delete(_ name: String) async throws(BackendError) {
        let target = try path(name)
        guard unlink(target) == 0 || errno == ENOENT else { throw Self.error(errno, name, "cannot delete") }
        try syncDirectory(of: target, name: name)
    }

    // MARK: helpers

    /// Run as root, Lifeboat gives what it writes to the owner of the repository's directory: a
    /// repository that PostgreSQL's `archive_command` (running as `postgres`) writes and reads must
    /// stay readable and writable by it when `lifeboat restore` (as root) archives a timeline history.
    private func inheritedOwner() -> (uid: uid_t, gid: gid_t)? {
        guard geteuid() == 0 else { return nil }
        var info = Glibc.stat()
        guard statPath(root.path, &info) == 0, info.st_uid != 0 || info.st_gid != 0 else { return nil }
        return (info.st_uid, info.st_gid)
    }

    /// Creates the object's directory and any missing parent below the root, each given to `owner`.
    private func createDirectories(_ directory: String, name: String, owner: (uid: uid_t, gid: gid_t)?) throws(BackendError) {
        guard access(directory, F_OK) != 0 else { return }
        if access(root.path, F_OK) != 0 {
            do {
                try FileManager.default.createDirectory(atPath: root.path, withIntermediateDirectories: true)
            } catch {
                throw BackendError(.io, object: name, "cannot create directory \(root.path): \(error.localizedDescription)")
            }
        }
        var missing: [String] = []
        var current = directory
        while current.count > root.path.count, access(current, F_OK) != 0 {
            missing.append(current)
            current = (current as NSString).deletingLastPathComponent
        }
        for path in missing.reversed() {
            guard mkdir(path, 0o755) == 0 || errno == EEXIST else {
                throw Self.error(errno, name, "cannot create directory \(path)")
            }
            if let owner { _ = chown(path, owner.uid, owner.gid) }
        }
    }

    private func writeTemporary(for target: String, name: String, data: Data) throws(BackendError) -> String {
        let directory = (target as NSString).deletingLastPathComponent
        let owner = inheritedOwner()
        try createDirectories(directory, name: name, owner: owner)
        let temporary = "\(directory)/\(Self.temporaryPrefix)\(UInt64.random(in: 0...UInt64.max))"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw Self.error(errno, name, "cannot create a temporary file") }
        var failure: BackendError?
        if let owner, fchown(descriptor, owner.uid, owner.gid) != 0 { failure = Self.error(errno, name, "cannot give the object to the repository's owner") }
        if failure == nil { data.withUnsafeBytes { buffer in
            var done = 0
            while done < buffer.count {
                let count = write(descriptor, buffer.baseAddress! + done, buffer.count - done)
                if count < 0, errno == EINTR { continue }
                guard count > 0 else {
                    failure = Self.error(errno, name, "cannot write")
                    return
                }
                done += count
            }
        } }
        if failure == nil, fsync(descriptor) != 0 { failure = Self.error(errno, name, "cannot fsync") }
        close(descriptor)
        if let failure {
            unlink(temporary)
            throw failure
        }
        return temporary
    }

    private func syncDirectory(of target: String, name: String) throws(BackendError) {
        let directory = open((target as NSString).deletingLastPathComponent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard directory >= 0 else { throw Self.error(errno, name, "cannot open its directory") }
        defer { close(directory) }
        guard fsync(directory) == 0 else { throw Self.error(errno, name, "cannot fsync its directory") }
    }

    static func modified(_ info: Glibc.stat) -> Date {
        Date(timeIntervalSince1970: TimeInterval(info.st_mtim.tv_sec) + TimeInterval(info.st_mtim.tv_nsec) / 1e9)
    }

    static func error(_ code: Int32, _ name: String, _ action: String) -> BackendError {
        let reason = String(cString: strerror(code))
        switch code {
        case ENOENT: return BackendError(.notFound, object: name, "not found")
        case EACCES, EPERM, EROFS: return BackendError(.permissionDenied, object: name, "\(action): \(reason)")
        case ENOSPC, EDQUOT: return BackendError(.io, object: name, "\(action): the disk is full (\(reason))")
        default: return BackendError(.io, object: name, "\(action): \(reason)")
        }
    }
}

/// stat(2); a free function because inside the backend `stat` names the protocol method.
private func statPath(_ path: String, _ info: inout Glibc.stat) -> Int32 {
    stat(path, &info)
}
