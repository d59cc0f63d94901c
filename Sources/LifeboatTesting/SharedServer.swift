/// One server per test process, shared by whoever uses it at the same time: started for the first
/// user, stopped (by the server's own `stop`, which works by PID) when the last concurrent user is
/// done, whether that user succeeded or failed.
actor SharedServer<Server: Sendable> {
    private let start: @Sendable () async throws -> Server
    private let stop: @Sendable (Server) -> Void
    private var server: Server?
    private var starting: Task<Server, any Error>?
    private var users = 0

    init(start: @escaping @Sendable () async throws -> Server, stop: @escaping @Sendable (Server) -> Void) {
        self.start = start
        self.stop = stop
    }

    nonisolated func with<T: Sendable>(_ body: (Server) async throws -> T) async throws -> T {
        let server = try await acquire()
        do {
            let result = try await body(server)
            await release()
            return result
        } catch {
            await release()
            throw error
        }
    }

    private func acquire() async throws -> Server {
        users += 1
        if let server { return server }
        let task = starting ?? Task { [start] in try await start() }
        starting = task
        do {
            let started = try await task.value
            server = started
            starting = nil
            return started
        } catch {
            starting = nil
            users -= 1
            throw error
        }
    }

    private func release() {
        users -= 1
        guard users == 0, let server else { return }
        stop(server)
        self.server = nil
    }
}
