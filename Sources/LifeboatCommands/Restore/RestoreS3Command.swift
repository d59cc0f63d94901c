import ArgumentParser
import Foundation
import LifeboatConnectors
import LifeboatCore
import LifeboatPlatform
import LifeboatRepository

/// `lifeboat restore s3 STORE [--snapshot ID] [--bucket B] [--to-bucket B] [--force] [--delete-extra]`
struct RestoreS3Command: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "s3",
        abstract: "Restore an s3 store's buckets from a snapshot, then read every object back against it.",
        discussion: """
        Writes the snapshot's objects with their content type, user metadata and standard headers back into the store's buckets (or --to-bucket), large ones as multipart uploads; an object's unexpired Object Lock retention and legal hold are restored when the target bucket has Object Lock. A non-empty target bucket is refused unless --force; objects that are not in the snapshot stay unless --delete-extra (only under the snapshot's prefixes). Then the gate: every object's key, size and SHA-256 read back against the snapshot, and the store's `object` checks.
        Exit codes: 0 restored and every check passed · 1 refused, the restore failed, or a check failed · 2 usage · 3 the snapshot is damaged.

        Examples:
          lifeboat restore s3 object-store -c lifeboat.yaml
          lifeboat restore s3 object-store -c lifeboat.yaml --snapshot 3fa9c2d1 --bucket platform-uploads --to-bucket platform-uploads-restored
        """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var damaged: DamagedChoiceOptions
    @OptionGroup var output: OutputOptions

    @Argument(help: ArgumentHelp("The catalog store (kind s3).", valueName: "store"))
    var store: String

    @Option(help: "The snapshot: an id prefix, or latest.")
    var snapshot = "latest"

    @Option(help: ArgumentHelp("Restore only this one of the snapshot's buckets.", valueName: "bucket"))
    var bucket: String?

    @Option(help: ArgumentHelp("Restore into this bucket instead (the snapshot's only bucket, or --bucket's).", valueName: "bucket"))
    var toBucket: String?

    @Flag(help: "Write into a bucket that is not empty.")
    var force = false

    @Flag(help: "Delete objects of the target that are not in the snapshot (under its prefixes).")
    var deleteExtra = false

    struct Outcome: Encodable {
        var restore: S3RestoreReport
        var checks: [CheckResult]
    }

    func run() async throws {
        let (catalogStore, resolver) = try resolveCatalogStore(store, kind: .s3, repository: repository)
        let connector = try resolver.s3Bucket(catalogStore)
        let repo = damaged.applied(to: try await repository.open())
        let manifest = try await repo.resolveSnapshot(snapshot, store: store)
        guard let facts = S3BucketFacts(manifest) else {
            throw CommandFailure(.usage, "snapshot \(manifest.id.prefix(8)) is a \(manifest.kind) snapshot, not a bucket snapshot of \(store)")
        }
        let targets = try S3BucketConnector.targets(for: facts.buckets, toBucket: toBucket, only: bucket)
        let report = try await connector.restore(manifest, from: repo, targets: targets, force: force, deleteExtra: deleteExtra)
        let checks = try await connector.runGate(manifest, in: repo, targets: targets, checks: catalogStore.verify)
        if output.json {
            try printJSON(Outcome(restore: report, checks: checks))
        } else {
            let into = targets.sorted { $0.key < $1.key }.map { $0.key == $0.value ? $0.key : "\($0.key) → \($0.value)" }.joined(separator: ", ")
            print("restored snapshot \(report.snapshot.prefix(8)): \(report.objects) objects (\(report.bytes) bytes) into \(into) at \(report.endpoint) in \(String(format: "%.1f", report.seconds)) s")
            if report.lockedObjects > 0 { print("\(report.lockedObjects) objects written with their Object Lock retention or legal hold") }
            if report.retentionNotApplied > 0 { print("warning: \(report.retentionNotApplied) objects had unexpired retention the target cannot hold (no Object Lock on the bucket)") }
            if deleteExtra { print("deleted \(report.deletedExtra) objects that are not in the snapshot") }
            for check in checks { print("\(check.passed ? "ok  " : "FAIL") \(check.check): \(check.detail)") }
        }
        if checks.contains(where: { !$0.passed }) {
            throw CommandFailure(.failure, "\(checks.filter { !$0.passed }.count) check(s) failed after the restore")
        }
    }
}

/// The catalog store a single-store command names, through the one resolver.
func resolveCatalogStore(_ name: String, kind: StoreKind, repository: RepositoryOptions) throws -> (Store, StoreResolver) {
    guard let resolver = try repository.storeResolver() else {
        throw CommandFailure(.usage, "this command needs the catalog: pass --catalog, set LIFEBOAT_CATALOG, or run it where \(CatalogLocation.defaultPath) is")
    }
    return (try resolver.store(named: name, kind: kind), resolver)
}
