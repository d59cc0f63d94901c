import Foundation

/// The last line of defence against leaked servers: finds every process whose command line names a
/// path inside a directory (the demo's or a drill's own work directory: every server started there
/// has its data directory on its command line) and stops it. Linux (`/proc`) only; elsewhere it
/// finds nothing. Callers pass a directory they created for the purpose, never a shared one.
public enum ProcessSweep {
    /// PIDs of processes (other than this one) with an argument naming a path inside `directory`.
    public static func processes(mentioning directory: String) -> [Int32] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        let me = getpid()
        let inside = directory.hasSuffix("/") ? directory : directory + "/"
        guard inside.count > 1 else { return [] }
        return entries.compactMap { Int32($0) }.filter { pid in
            guard pid != me, let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            // Arguments are NUL-separated; `--data-dir=/x/y` names a path too.
            let arguments = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            return arguments.contains { $0.contains(inside) }
        }
    }

    /// SIGTERM to every process naming a path inside `path`, then SIGKILL to those still alive after `grace`.
    /// Returns how many were found. Blocks the calling thread: meant for exit paths and signal handlers.
    @discardableResult
    public static func stopProcesses(mentioning path: String, grace: TimeInterval = 5) -> Int {
        let found = processes(mentioning: path)
        for pid in found { kill(pid, SIGTERM) }
        let deadline = Date().addingTimeInterval(grace)
        while Date() < deadline, found.contains(where: { kill($0, 0) == 0 && !isZombie($0) }) { usleep(50_000) }
        for pid in found where kill(pid, 0) == 0 { kill(pid, SIGKILL) }
        return found.count
    }

    /// Removes a work directory whose servers were just stopped. Retries briefly: a server's own
    /// children (PostgreSQL's background writers do not name the data directory on their command
    /// line) may still be finishing a write when their parent is gone. Blocks the calling thread.
    @discardableResult
    public static func removeDirectory(_ directory: URL, attempts: Int = 20) -> Bool {
        for _ in 0..<attempts {
            do {
                try FileManager.default.removeItem(at: directory)
                return true
            } catch {
                if !FileManager.default.fileExists(atPath: directory.path) { return true }
                usleep(250_000)
            }
        }
        return false
    }

    static func isZombie(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        return stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z")
    }
}
