import ArgumentParser
import Foundation
import LifeboatConnectors
import LifeboatRepository
import LifeboatErrors

/// `lifeboat postgres wal-fetch --store NAME %f %p` — PostgreSQL's restore_command.
struct WALFetchCommand: AsyncParsableCommand, ExitPolicy {
    static let configuration = CommandConfiguration(
        commandName: "wal-fetch",
        abstract: "Fetch one archived WAL file from the repository (use as PostgreSQL's restore_command).",
        discussion: """
        Exit codes: 0 the file is at the destination (written to a temporary file, fsynced, renamed) · 1 not archived (normal: recovery then ends or probes on) · 126 any real error (repository unreachable, wrong passphrase, damaged object, bad usage), so recovery stops instead of promoting early.

        Example (postgresql.conf of the server being recovered):
          restore_command = '/usr/local/bin/lifeboat postgres wal-fetch --store app-db --repo /srv/lifeboat --password-file /etc/lifeboat/passphrase %f %p'
        """)

    /// Above 125: PostgreSQL treats it as fatal instead of "file not found".
    static let errorStatus: Int32 = ExitStatus.stopRecovery.rawValue

    /// restore_command must never exit 1-125 for a real error (PostgreSQL would take it for "not
    /// archived" and promote early): bad usage of wal-fetch is a real error too. 1 stays "not archived".
    static func exitStatus(for status: ExitStatus) -> Int32 {
        switch status {
        case .ok, .failure, .stopRecovery, .interrupted: status.rawValue
        default: errorStatus
        }
    }

    @OptionGroup var repository: RepositoryOptions

    @Option(help: ArgumentHelp("The catalog store the WAL belongs to.", valueName: "name"))
    var store: String

    @Option(help: ArgumentHelp("Answer \"not archived\" for WAL segments after this one (any timeline): a restore planned to end there cannot replay WAL archived while it runs. Lifeboat's own restores set it.", valueName: "segment"))
    var through: String?

    @Argument(help: "The archived file's name (%f).")
    var name: String

    @Argument(help: "Where to write it (%p, relative to the data directory).")
    var destination: String

    /// Whether `name` is a WAL segment numbered after `last` (their log and segment digits compared:
    /// names of one cluster have the same segment size, so the hex digits order like the numbers).
    static func isSegment(_ name: String, after last: String) -> Bool {
        let hex = Set("0123456789ABCDEF")
        func position(_ text: String) -> Substring? {
            guard text.count >= 24, text.prefix(24).allSatisfy(hex.contains), text.count == 24 || text.dropFirst(24) == ".partial" else { return nil }
            return text.dropFirst(8).prefix(16)
        }
        guard let segment = position(name), let limit = position(last) else { return false }
        return segment > limit
    }

    func run() async throws {
        if let through, Self.isSegment(name, after: through) {
            printError("lifeboat: wal-fetch \(name): after \(through), where this restore was planned to end: answered as not archived")
            throw ExitCode(ExitStatus.failure.rawValue)
        }
        let contents: Data?
        do {
            let repo = try await repository.open()
            contents = try await repo.fetchWAL(store: store, name: name)
        } catch {
            printError("lifeboat: error: wal-fetch \(name): \(error)")
            throw ExitCode(Self.errorStatus)
        }
        guard let contents else { throw ExitCode(ExitStatus.failure.rawValue) }
        do {
            try Self.writeDurably(contents, to: destination)
        } catch {
            printError("lifeboat: error: wal-fetch \(name): cannot write \(destination): \(error)")
            throw ExitCode(Self.errorStatus)
        }
    }

    /// Temporary file beside the destination, fsync, rename, fsync the directory: never a half-written %p.
    static func writeDurably(_ data: Data, to destination: String) throws {
        let directory = URL(fileURLWithPath: destination).deletingLastPathComponent().path
        let temporary = destination + ".lifeboat-\(getpid()).tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        var failure: Int32 = 0
        data.withUnsafeBytes { buffer in
            var done = 0
            while done < buffer.count {
                let count = write(descriptor, buffer.baseAddress! + done, buffer.count - done)
                if count < 0 { if errno == EINTR { continue }; failure = errno; return }
                done += count
            }
        }
        if failure == 0, fsync(descriptor) != 0 { failure = errno }
        close(descriptor)
        if failure == 0, rename(temporary, destination) != 0 { failure = errno }
        guard failure == 0 else {
            unlink(temporary)
            throw POSIXError(POSIXErrorCode(rawValue: failure) ?? .EIO)
        }
        let directoryDescriptor = open(directory, O_RDONLY | O_CLOEXEC)
        if directoryDescriptor >= 0 {
            fsync(directoryDescriptor)
            close(directoryDescriptor)
        }
    }
}
