import ArgumentParser
import Foundation
import LifeboatRepository
import LifeboatStorage

/// `lifeboat mirror --to LOCATION`
struct MirrorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mirror",
        abstract: "Copy snapshots to a second repository (off-site). Copy-only: never deletes there because the source lost something.",
        discussion: """
        The target becomes a replica: same config and keys (the same passphrases open it). Each copied object is read back from the target and compared before its snapshot's manifest is written, and a source snapshot with a damaged chunk is not propagated. With --keep-* (or --catalog) the target is pruned by that policy, and only after every upload of this run succeeded.

        Example:
          lifeboat mirror --to /mnt/offsite/lifeboat --keep-daily 30 --keep-monthly 12
        """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var retention: RetentionOptions
    @OptionGroup var output: OutputOptions

    @Option(help: ArgumentHelp("The mirror: a directory (empty, or an earlier mirror of this repository).", valueName: "location"))
    var to: String

    @Option(help: ArgumentHelp("S3 endpoint of the mirror, when it differs from the source's.", valueName: "url"))
    var toEndpoint: String?

    struct Summary: Encodable {
        var createdTarget: Bool
        var copiedSnapshots: [String]
        var copiedChunks: Int
        var copiedBytes: Int64
        var alreadyPresentSnapshots: Int
        var copiedDocuments: Int
        var prune: PruneSummary?

        enum CodingKeys: String, CodingKey {
            case createdTarget = "created_target", copiedSnapshots = "copied_snapshots", copiedChunks = "copied_chunks"
            case copiedBytes = "copied_bytes", alreadyPresentSnapshots = "already_present_snapshots", copiedDocuments = "copied_documents", prune
        }
    }

    func run() async throws {
        // The mirror inherits the S3 options (endpoint, region, SSE, Object Lock) unless --to-endpoint says otherwise.
        var targetS3 = repository.s3
        if let toEndpoint { targetS3.endpoint = toEndpoint }
        // The catalog describes the source; the mirror takes its S3 credentials from flags and AWS_* only.
        let target = try makeBackend(location: to, s3: targetS3)
        let repo = try await repository.open()
        let report = try await repo.mirror(to: target, targetPolicy: try retention.policies(catalog: repository.catalogPath), grace: retention.graceInterval)
        if output.json {
            try printJSON(Summary(createdTarget: report.createdTarget, copiedSnapshots: report.copiedSnapshots, copiedChunks: report.copiedChunks,
                                  copiedBytes: report.copiedBytes, alreadyPresentSnapshots: report.alreadyPresentSnapshots, copiedDocuments: report.copiedDocuments,
                                  prune: report.prune.map(PruneSummary.init)))
            return
        }
        print("\(report.createdTarget ? "created mirror at \(target.location); " : "")copied \(report.copiedSnapshots.count) snapshots, \(report.copiedChunks) chunks (\(formatBytes(report.copiedBytes))), \(report.copiedDocuments) recovery points and drill reports; \(report.alreadyPresentSnapshots) snapshots were there already")
        if let prune = report.prune { try printPruneReport(prune, json: false) }
    }
}
