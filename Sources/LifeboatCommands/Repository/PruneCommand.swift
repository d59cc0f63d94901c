import ArgumentParser
import Foundation
import LifeboatCore
import LifeboatPlatform
import LifeboatRepository
import LifeboatStorage

/// `--keep-*` flags, or per-store policies from the catalog's `retention`.
struct RetentionOptions: ParsableArguments {
    @Option(help: "Keep the N newest snapshots.") var keepLast: Int?
    @Option(help: ArgumentHelp("Keep snapshots within this span of the newest (e.g. 30d).", valueName: "duration")) var keepWithin: String?
    @Option(help: "Keep the newest snapshot of each of the last N hours.") var keepHourly: Int?
    @Option(help: "… of each of the last N days.") var keepDaily: Int?
    @Option(help: "… of each of the last N weeks.") var keepWeekly: Int?
    @Option(help: "… of each of the last N months.") var keepMonthly: Int?
    @Option(help: "… of each of the last N years.") var keepYearly: Int?
    @Option(help: ArgumentHelp("Collect unreferenced chunks only when older than this (e.g. 24h).", valueName: "duration"))
    var grace = "24h"

    func validate() throws {
        for (name, value) in [("--keep-last", keepLast), ("--keep-hourly", keepHourly), ("--keep-daily", keepDaily),
                              ("--keep-weekly", keepWeekly), ("--keep-monthly", keepMonthly), ("--keep-yearly", keepYearly)] {
            if let value, value < 1 { throw ValidationError("\(name) must be at least 1") }
        }
        if let keepWithin, (try? TimeSpan(parsing: keepWithin)) == nil { throw ValidationError("--keep-within takes a duration such as 30d") }
        if (try? TimeSpan(parsing: grace)) == nil { throw ValidationError("--grace takes a duration such as 24h") }
    }

    var flagPolicy: RetentionPolicy {
        RetentionPolicy(keepLast: keepLast, keepWithin: keepWithin.flatMap { try? TimeSpan(parsing: $0) }.map { TimeInterval($0.seconds) },
                        keepHourly: keepHourly, keepDaily: keepDaily, keepWeekly: keepWeekly, keepMonthly: keepMonthly, keepYearly: keepYearly)
    }

    var graceInterval: TimeInterval { TimeInterval((try? TimeSpan(parsing: grace))?.seconds ?? 86_400) }

    /// The policy per store: the flags for every store, else each store's catalog retention;
    /// nil when neither was given (pruning without a policy is refused).
    func policies(catalog: String?) throws -> ((String) -> RetentionPolicy)? {
        let flags = flagPolicy
        if !flags.isEmpty { return { _ in flags } }
        guard let catalog else { return nil }
        return PlatformOperations.retention(try CatalogLoader.load(contentsOf: catalog).catalog)
    }
}

struct PruneCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Apply retention: remove snapshots no policy keeps, then the chunks nothing references.",
        discussion: """
        The newest snapshot of every store is always kept. Unreferenced chunks are collected only after the grace period, so a backup running meanwhile is never robbed; prune also takes an exclusive lock and refuses while a backup holds one (exit 11). It refuses to run while any snapshot manifest is unreadable. --dry-run shows what would go and why the rest stays.

        Examples:
          lifeboat prune --keep-daily 7 --keep-weekly 4 --dry-run
          lifeboat prune --catalog lifeboat.yaml
        """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var retention: RetentionOptions
    @OptionGroup var output: OutputOptions

    @Flag(help: "Show what would be removed; change nothing.")
    var dryRun = false

    func run() async throws {
        guard let policy = try retention.policies(catalog: repository.catalogPath) else {
            throw CommandFailure(.usage, "no retention policy: give --keep-last/--keep-within/--keep-daily/… or --catalog")
        }
        let repo = try await repository.open()
        let report = try await repo.prune(policy: policy, grace: retention.graceInterval, dryRun: dryRun)
        try printPruneReport(report, json: output.json)
        if !output.json, let lock = (try? repository.backend(repository.catalogRepository(try? repository.storeResolver(showWarnings: false))) as? S3Backend)?.configuration.objectLock,
           !report.removedSnapshots.isEmpty || report.removedChunks > 0 {
            // On a lock bucket a delete only adds a delete marker: the repository no longer sees the
            // objects, but their versions (and their cost) stay until the retention ends.
            print("note: the bucket has Object Lock (\(lock.mode.rawValue), \(Int(lock.duration / 86_400)) days): S3 kept each removed object as a locked version behind a delete marker; the space is freed when its retention ends"
                  + (lock.mode == .governance ? " (or earlier by a user allowed to bypass GOVERNANCE retention)" : ""))
        }
    }
}

struct PruneSummary: Encodable {
    var dryRun: Bool
    var removedSnapshots: [String]
    var keptSnapshots: [String: [String]]
    var removedChunks: Int
    var removedBytes: Int64
    var chunksInGrace: Int
    var indexObjectsBefore: Int
    var indexObjectsAfter: Int

    enum CodingKeys: String, CodingKey {
        case dryRun = "dry_run", removedSnapshots = "removed_snapshots", keptSnapshots = "kept_snapshots"
        case removedChunks = "removed_chunks", removedBytes = "removed_bytes", chunksInGrace = "chunks_in_grace"
        case indexObjectsBefore = "index_objects_before", indexObjectsAfter = "index_objects_after"
    }

    init(_ report: PruneReport) {
        dryRun = report.dryRun
        removedSnapshots = report.removedSnapshots.map(\.id)
        keptSnapshots = report.kept
        removedChunks = report.removedChunks
        removedBytes = report.removedBytes
        chunksInGrace = report.chunksInGrace
        indexObjectsBefore = report.indexObjectsBefore
        indexObjectsAfter = report.indexObjectsAfter
    }
}

func printPruneReport(_ report: PruneReport, json: Bool) throws {
    if json {
        try printJSON(PruneSummary(report))
        return
    }
    let verb = report.dryRun ? "would remove" : "removed"
    for manifest in report.removedSnapshots {
        print("\(verb) snapshot \(manifest.id.prefix(8)) of \(manifest.store) (\(RepositoryTimeText.format(manifest.finished)))")
    }
    print("\(verb) \(report.removedSnapshots.count) snapshots and \(report.removedChunks) chunks (\(formatBytes(report.removedBytes))); kept \(report.kept.count) snapshots"
          + (report.chunksInGrace > 0 ? "; \(report.chunksInGrace) unreferenced chunks are younger than the grace period and stay" : ""))
    if !report.dryRun {
        print("index: \(report.indexObjectsBefore) objects replaced by \(report.indexObjectsAfter)")
    }
}

/// Times in human output: `2026-11-22 22:50:11`.
enum RepositoryTimeText {
    static func format(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle().year().month().day().time(includingFractionalSeconds: false).dateTimeSeparator(.space))
    }
}
