import ArgumentParser
import Foundation
import LifeboatCore
import LifeboatErrors
import LifeboatRepository

/// `lifeboat verify`
struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check the repository's integrity: manifests readable, every referenced chunk present.",
        discussion: """
        --read-data also decrypts and re-hashes every chunk and recomputes every snapshot's SHA-256, unreferenced chunks included (left by an interrupted backup; intact ones are normal until prune, a damaged one is reported as damage); --read-data-subset 10% reads a random tenth of the chunks (a different tenth each run). Never changes the repository. Exits 3 when it finds damage; 7 when it found none but the storage failed to hand over some object (unavailable: try again); 1 when the storage refused some object otherwise.

        Example:
          lifeboat verify --read-data-subset 5%
        """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var output: OutputOptions

    @Flag(help: "Decrypt and re-hash everything.")
    var readData = false

    @Option(help: ArgumentHelp("Read a random share of the chunks, e.g. 10%.", valueName: "percent"))
    var readDataSubset: String?

    func validate() throws {
        if let readDataSubset, Self.fraction(readDataSubset) == nil {
            throw ValidationError("--read-data-subset takes a percentage between 0% and 100%, e.g. 10%")
        }
    }

    static func fraction(_ text: String) -> Double? {
        guard let value = Double(text.hasSuffix("%") ? String(text.dropLast()) : text), value > 0, value <= 100 else { return nil }
        return value / 100
    }

    struct Report: Encodable {
        var healthy: Bool
        var snapshots: Int
        var referencedChunks: Int
        var chunksRead: Int
        var bytesRead: Int64
        var unreferencedChunks: Int
        var unreferencedChunksRead: Int
        var indexObjects: Int
        var unindexedChunks: Int
        var problems: [Problem]

        struct Problem: Encodable {
            var code: String
            var object: String?
            var message: String
        }

        enum CodingKeys: String, CodingKey {
            case healthy, snapshots, referencedChunks = "referenced_chunks", chunksRead = "chunks_read", bytesRead = "bytes_read"
            case unreferencedChunks = "unreferenced_chunks", unreferencedChunksRead = "unreferenced_chunks_read", problems
            case indexObjects = "index_objects", unindexedChunks = "unindexed_chunks"
        }
    }

    func run() async throws {
        let repo = try await repository.open()
        let result = try await repo.verify(readData: readData, subset: readDataSubset.flatMap(Self.fraction))
        let report = Report(healthy: result.isHealthy, snapshots: result.snapshots, referencedChunks: result.referencedChunks,
                            chunksRead: result.chunksRead, bytesRead: result.bytesRead, unreferencedChunks: result.unreferencedChunks,
                            unreferencedChunksRead: result.unreferencedChunksRead,
                            indexObjects: result.indexObjects, unindexedChunks: result.unindexedChunks,
                            problems: result.problems.map { .init(code: $0.code.rawValue, object: $0.object, message: $0.message) })
        if output.json {
            try printJSON(report)
        } else {
            for problem in result.problems { printProblem(problem) }
            var summary = "\(result.snapshots) snapshots, \(result.referencedChunks) chunks referenced"
            if result.chunksRead > 0 { summary += ", \(result.chunksRead) read and re-hashed (\(formatBytes(result.bytesRead)))" }
            if result.unreferencedChunks > 0 {
                summary += ", \(result.unreferencedChunks) unreferenced (prune collects them"
                summary += result.unreferencedChunksRead > 0 ? "; \(result.unreferencedChunksRead) of them read)" : ")"
            }
            if result.unindexedChunks > 0 { summary += ", \(result.unindexedChunks) not in the index yet (the next backup of them, prune or `repo index rebuild` adds them)" }
            print(result.isHealthy ? "no problems found: \(summary)" : "\(result.problems.count) problems found: \(summary)")
        }
        if let status = ExitStatus(problems: result.problems) { throw ExitCode(status.rawValue) }
    }
}
