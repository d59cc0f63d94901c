import Foundation
import LifeboatStorage

/// `locks/<id>` (sealed, binding `lock <id>`): who is working on the repository.
///
/// Backups take a shared lock, `prune` an exclusive one; each writes its lock, then looks for a
/// conflicting one, so with a strongly consistent listing at least one of two racing processes
/// sees the other and backs off. A lock is stale — ignored, and never blocking anyone — when it
/// has not been refreshed for `staleAfter`, or when its holder is a process on this host that no
/// longer exists.
public struct RepositoryLock: Codable, Sendable, Hashable {
    public var exclusive: Bool
    public var hostname: String
    public var pid: Int32
    public var created: Date
    public var refreshed: Date
    /// What holds it (`put dump`, `prune`), for messages.
    public var purpose: String

    /// Refreshed every 5 minutes while held; stale after 30 without a refresh.
    public static let refreshInterval: TimeInterval = 300
    public static let staleAfter: TimeInterval = 1_800

    /// How the holder keeps its lock fresh; a task-local so tests can shorten it.
    public struct Timing: Sendable {
        public var refreshInterval: TimeInterval
        /// After a failed refresh, the next attempt comes sooner.
        public var retryInterval: TimeInterval
        /// With no successful refresh for this long the operation stops: well before `staleAfter`.
        public var giveUpAfter: TimeInterval
        public init(refreshInterval: TimeInterval, retryInterval: TimeInterval, giveUpAfter: TimeInterval) {
            self.refreshInterval = refreshInterval
            self.retryInterval = retryInterval
            self.giveUpAfter = giveUpAfter
        }
        public static let standard = Timing(refreshInterval: RepositoryLock.refreshInterval, retryInterval: 30, giveUpAfter: 1_200)
    }
    @TaskLocal public static var timing = Timing.standard

    public func isStale(now: Date = Date()) -> Bool {
        if now.timeIntervalSince(refreshed) > Self.staleAfter { return true }
        if hostname == ProcessInfo.processInfo.hostName, kill(pid, 0) != 0, errno == ESRCH { return true }
        return false
    }

    var holder: String { "\(purpose) (pid \(pid) on \(hostname), since \(RepositoryTime.format(created)))" }
}

extension Repository {
    /// Runs `body` holding a lock; the lock is refreshed while it runs and removed afterwards.
    public func withLock<T>(
        exclusive: Bool, purpose: String, _ body: () async throws -> T
    ) async throws -> T {
        let id = randomID()
        let lock = RepositoryLock(exclusive: exclusive, hostname: ProcessInfo.processInfo.hostName, pid: getpid(),
                                  created: RepositoryTime.now(), refreshed: RepositoryTime.now(), purpose: purpose)
        try await checkConflicts(exclusive: exclusive, ignoring: nil)
        try await writeLock(lock, id: id)
        do {
            // Our lock is visible now; a racing process that wrote first is visible to us.
            try await checkConflicts(exclusive: exclusive, ignoring: id)
        } catch {
            try? await backend.delete(Self.lockPath(id))
            throw error
        }
        // The body runs beside a refresher. A lock that cannot be refreshed would go stale, and a
        // prune could then delete chunks this operation still relies on: when refreshing keeps
        // failing for that long, the refresher throws, which cancels the body before its lock lapses
        // (restic does the same). The group awaits the body before returning, so it never outlives
        // this call: handing it to a child task only looks escaping.
        do {
            let value = try await withoutActuallyEscaping(body) { body in
                let work = Unchecked(body)
                return try await withThrowingTaskGroup(of: Unchecked<T>?.self) { group in
                    group.addTask { Unchecked(try await work.value()) }
                    group.addTask { try await self.keepRefreshed(lock, id: id); return nil }
                    while let next = try await group.next() {
                        if let done = next {
                            group.cancelAll()
                            return done.value
                        }
                    }
                    throw CancellationError()
                }
            }
            try? await backend.delete(Self.lockPath(id))
            return value
        } catch {
            try? await backend.delete(Self.lockPath(id))
            throw error
        }
    }

    /// Rewrites the lock every `refreshInterval` (sooner again after a failed write); throws once no
    /// write has succeeded for `giveUpAfter`, while the lock is still fresh for everyone else.
    func keepRefreshed(_ lock: RepositoryLock, id: String) async throws {
        let timing = RepositoryLock.timing
        var refreshed = lock
        var lastSuccess = Date()
        var lastError: RepositoryError?
        while true {
            try await Task.sleep(for: .seconds(lastError == nil ? timing.refreshInterval : timing.retryInterval))
            refreshed.refreshed = RepositoryTime.now()
            do {
                try await writeLock(refreshed, id: id)
                lastSuccess = Date()
                lastError = nil
            } catch {
                if Task.isCancelled { throw CancellationError() }
                lastError = error
                if Date().timeIntervalSince(lastSuccess) >= timing.giveUpAfter {
                    throw RepositoryError(.storage, object: Self.lockPath(id),
                                          "the repository lock could not be refreshed for \(Int(timing.giveUpAfter)) s (\(error)); the operation was stopped before the lock went stale, so a prune cannot remove what it relies on. Nothing was committed; run it again when the storage answers")
                }
            }
        }
    }

    /// The locks currently held (stale ones excluded), by id.
    public func activeLocks() async throws(RepositoryError) -> [String: RepositoryLock] {
        var active: [String: RepositoryLock] = [:]
        for info in try await Self.list(backend, ObjectPath.locks) {
            let id = String(info.name.dropFirst(ObjectPath.locks.count))
            // A lock that cannot be read (being replaced, or damaged) counts as a shared lock while it is
            // recent: it may hold off prune, never a backup.
            guard let sealed = try? await backend.load(info.name),
                  let plaintext = try? SealedObject.open(sealed, binding: "lock \(id)", key: keys.dataKey, maximumSize: 1 << 16),
                  let lock = try? JSONDecoder.repository.decode(RepositoryLock.self, from: plaintext) else {
                if Date().timeIntervalSince(info.modified) < RepositoryLock.staleAfter {
                    active[id] = RepositoryLock(exclusive: false, hostname: "unknown", pid: 0, created: info.modified,
                                                refreshed: info.modified, purpose: "an unreadable lock")
                }
                continue
            }
            if !lock.isStale() { active[id] = lock }
        }
        return active
    }

    /// Deletes lock objects that are stale (their holder died or stopped refreshing); returns how many.
    /// Only prune does this, under its exclusive lock, so a lock being written right now is never among them.
    func removeStaleLocks() async throws(RepositoryError) -> Int {
        let active = try await activeLocks()
        var removed = 0
        for info in try await Self.list(backend, ObjectPath.locks) where active[String(info.name.dropFirst(ObjectPath.locks.count))] == nil {
            do { try await backend.delete(info.name) } catch { throw RepositoryError(error) }
            removed += 1
        }
        return removed
    }

    func checkConflicts(exclusive: Bool, ignoring own: String?) async throws(RepositoryError) {
        let others = try await activeLocks().filter { $0.key != own }
        if exclusive, let (_, other) = others.min(by: { $0.value.created < $1.value.created }) {
            throw RepositoryError(.locked, object: backend.location, "\(other.holder) is using the repository; try again when it is done")
        }
        if !exclusive, let other = others.values.filter(\.exclusive).min(by: { $0.created < $1.created }) {
            throw RepositoryError(.locked, object: backend.location, "\(other.holder) holds the repository exclusively; try again when it is done")
        }
    }

    func writeLock(_ lock: RepositoryLock, id: String) async throws(RepositoryError) {
        do {
            let sealed = try SealedObject.seal(try JSONEncoder.repository.encode(lock), binding: "lock \(id)", key: keys.dataKey, compressionLevel: nil)
            try await backend.replace(Self.lockPath(id), data: sealed)
        } catch let error as BackendError {
            throw RepositoryError(error)
        } catch {
            throw RepositoryError(.storage, object: Self.lockPath(id), "cannot write the lock: \(error)")
        }
    }

    static func lockPath(_ id: String) -> String { ObjectPath.lock(id) }
}

/// Moves a value the compiler cannot prove `Sendable` into a child task that the caller awaits
/// before returning (see `withLock`).
struct Unchecked<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
