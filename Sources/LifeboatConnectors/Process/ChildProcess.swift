import Foundation

/// The one way Lifeboat (and its tests) start a child process and make pipes for it.
///
/// Foundation's `Process.run()` on Linux is not safe to call from two threads at once. It lists the
/// descriptors open in this process, asks the spawn to close them in the child, then spawns; a
/// descriptor another thread opens in between is inherited. Two kinds of inherited descriptor hang
/// Lifeboat:
/// - another `run()`'s exit socket: Foundation learns that a child exited when the child's end of a
///   socket pair closes, so a long-lived server that inherited it hides that child's exit until the
///   server itself exits (`terminationHandler` never runs, `waitUntilExit()` spins). Seen in CI: a
///   test restarting one OpenBao server waited forever because its twin, started at the same moment,
///   held the stopped server's socket.
/// - the write end of a pipe made for another child's output: its reader never sees EOF.
///
/// So every spawn holds one process-wide lock (no socket pair is ever open during another spawn),
/// and every pipe is close-on-exec (the spawn's dup2 onto 0, 1 or 2 gives the intended child its
/// own copy without the flag; no other child can keep one).
public enum ChildProcess {
    private static let spawning = NSLock()

    /// Starts `process` with an empty signal mask, one spawn at a time.
    public static func launch(_ process: Process) throws {
        spawning.lock()
        defer { spawning.unlock() }
        try withUnblockedSignals { try process.run() }
    }

    /// A pipe whose two descriptors no child inherits unless it is given one as 0, 1 or 2. Made
    /// under the spawn lock: between pipe(2) and the flag, a spawn could still take them.
    public static func pipe() -> Pipe {
        spawning.lock()
        defer { spawning.unlock() }
        let pipe = Pipe()
        for handle in [pipe.fileHandleForReading, pipe.fileHandleForWriting] {
            _ = fcntl(handle.fileDescriptor, F_SETFD, FD_CLOEXEC)
        }
        return pipe
    }

    /// Runs `body` with an empty signal mask. A child inherits the spawning thread's mask, and the
    /// test runner's threads block nearly every signal (SIGTERM included): servers would then ignore
    /// `stop()`'s SIGTERM and die only to SIGKILL after the grace period.
    static func withUnblockedSignals<T>(_ body: () throws -> T) rethrows -> T {
        var empty = sigset_t()
        var saved = sigset_t()
        sigemptyset(&empty)
        pthread_sigmask(SIG_SETMASK, &empty, &saved)
        defer { pthread_sigmask(SIG_SETMASK, &saved, nil) }
        return try body()
    }

    /// Whether `pid` has exited, whether or not Foundation has noticed yet: gone, or a zombie.
    /// `Process.isRunning` alone can stay true after the exit (see above), so waits that must end
    /// check this too.
    public static func hasExited(_ pid: Int32) -> Bool {
        kill(pid, 0) != 0 && errno == ESRCH || ProcessSweep.isZombie(pid)
    }
}
