import ArgumentParser
import Foundation
import LifeboatRepository

/// `lifeboat get SNAPSHOT [FILE|-]`
struct GetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get",
        abstract: "Write a snapshot's bytes to a file or standard output.",
        discussion: """
        Every chunk is authenticated and re-hashed before it is written, and the whole is checked against the snapshot's SHA-256. Into a FILE the bytes go to a temporary file that is renamed only when everything checked out, so a damaged snapshot never leaves a wrong file behind; on standard output a damaged chunk stops the stream with exit code 3.

        Examples:
          lifeboat get 3fa1c2d0 ./restored.sql
          lifeboat get latest --store postgres-dump - | psql
        """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var damaged: DamagedChoiceOptions

    @Argument(help: "A snapshot id (4 or more leading hex digits) or `latest`.")
    var snapshot: String

    @Argument(help: "Where to write: a file, or - for standard output (the default).")
    var file = "-"

    @Option(help: "With `latest`: the newest snapshot of this store or artefact.")
    var store: String?

    func run() async throws {
        let repo = damaged.applied(to: try await repository.open())
        let manifest = try await repo.resolveSnapshot(snapshot, store: store)
        let progress = TransferProgress("restored", total: manifest.size)
        defer { progress.finish() }
        guard file != "-" else {
            try await repo.restore(manifest, progress: progress.update) { try FileHandle.standardOutput.write(contentsOf: $0) }
            return
        }
        let target = URL(fileURLWithPath: file)
        let temporary = target.deletingLastPathComponent().appendingPathComponent(".\(target.lastPathComponent).lifeboat-\(UUID().uuidString)")
        guard FileManager.default.createFile(atPath: temporary.path, contents: nil, attributes: [.posixPermissions: 0o600]),
              let handle = try? FileHandle(forWritingTo: temporary) else {
            throw CommandFailure(.failure, "cannot create \(temporary.path)")
        }
        do {
            try await repo.restore(manifest, progress: progress.update) { try handle.write(contentsOf: $0) }
            try handle.synchronize()
            try handle.close()
            guard rename(temporary.path, target.path) == 0 else {
                throw CommandFailure(.failure, "cannot move the restored file into place at \(file): \(String(cString: strerror(errno)))")
            }
        } catch {
            try? handle.close()
            try? FileManager.default.removeItem(at: temporary)
            throw error
        }
    }
}
