import ArgumentParser
import Foundation
import LifeboatCore
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
          lifeboat mirror --to s3://cold-bucket/lifeboat --to-storage-class GLACIER_IR
        """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var retention: RetentionOptions
    @OptionGroup var output: OutputOptions

    @Option(help: ArgumentHelp("The mirror: a directory (empty, or an earlier mirror of this repository).", valueName: "location"))
    var to: String

    @Option(help: ArgumentHelp("S3 endpoint of the mirror, when it differs from the source's.", valueName: "url"))
    var toEndpoint: String?

    @Option(help: ArgumentHelp("S3 storage class for every object the mirror writes (cold storage: STANDARD_IA, GLACIER_IR, or a class the server defines). S3 mirrors only.", valueName: "class"))
    var toStorageClass: String?

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
        let target = try mirrorBackend(location: to, repositoryS3: repository.s3, endpoint: toEndpoint,
                                       storageClass: toStorageClass, storageClassFlag: "--to-storage-class")
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

/// A mirror's backend (`mirror --to`, `serve --mirror-to`): it inherits the repository's S3 options
/// (endpoint, region, SSE, Object Lock) unless `endpoint` says otherwise, and writes `storageClass`
/// (S3 mirrors only; `storageClassFlag` names the option in the refusal).
func mirrorBackend(location: String, repositoryS3: S3Options, endpoint: String?, storageClass: String?,
                   storageClassFlag: String) throws -> any Backend {
    var s3 = repositoryS3
    if let endpoint { s3.endpoint = endpoint }
    if let storageClass {
        guard location.hasPrefix("s3://") else {
            throw CommandFailure(.usage, "\(storageClassFlag) applies to S3 mirrors only; \(location) is a directory")
        }
        s3.storageClass = storageClass
    }
    // The catalog describes the source; the mirror takes its S3 credentials from flags and AWS_* only.
    return try makeBackend(location: location, s3: s3)
}
