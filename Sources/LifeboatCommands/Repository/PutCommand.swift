import ArgumentParser
import Foundation
import LifeboatCore
import LifeboatRepository
import LifeboatStorage

/// `lifeboat put NAME [FILE|-]`
struct PutCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "put",
        abstract: "Store a file or standard input in the repository as a named artefact.",
        discussion: """
        Streams: memory stays the same whatever the size. Prints the new snapshot's id (with --json: {"id": …}). A failure part way leaves no snapshot behind.

        Examples:
          lifeboat put release-notes ./notes.pdf
          pg_dumpall | lifeboat put postgres-dump - --tag nightly
        """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var output: OutputOptions

    @Argument(help: "The artefact's name (snapshots are grouped by it).")
    var name: String

    @Argument(help: "The file to store, or - for standard input (the default).")
    var file = "-"

    @Option(name: .customLong("tag"), help: "A tag for the snapshot (repeatable).")
    var tags: [String] = []

    func validate() throws {
        guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) else {
            throw ValidationError("the name may hold letters, digits, '-', '_' and '.'")
        }
    }

    func run() async throws {
        let repo = try await repository.open()
        let input: FileHandle
        var total: Int64?
        if file == "-" {
            input = .standardInput
        } else {
            guard let handle = FileHandle(forReadingAtPath: file) else {
                throw CommandFailure(.usage, "cannot open \(file) for reading")
            }
            input = handle
            total = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? NSNumber)?.int64Value
        }
        let progress = TransferProgress("stored", total: total)
        let manifest = try await repo.put(SnapshotDescription(store: name, tags: tags), progress: progress.update) {
            try input.readBlock(upToCount: 1 << 20)
        }
        progress.finish()
        if output.json {
            try printJSON(["id": manifest.id])
        } else {
            print(manifest.id)
            printError("stored \(formatBytes(manifest.size)) as snapshot \(manifest.id.prefix(8)) in \(manifest.chunks.count) chunks")
        }
    }
}
