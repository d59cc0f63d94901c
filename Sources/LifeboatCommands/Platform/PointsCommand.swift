import ArgumentParser
import Foundation
import LifeboatCore
import LifeboatEngine
import LifeboatRepository
import LifeboatErrors

/// `lifeboat points`
struct PointsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "points",
        abstract: "List the recovery points: the snapshots each `lifeboat backup` took together.",
        discussion: """
        A partial point (a store's backup failed) is marked; a restore of it stops at that store.

        Example:
          lifeboat points --catalog lifeboat.yaml --json
        """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let repo = try await repository.open()
        let (points, unreadable) = try await repo.documents(RecoveryPoint.self, in: .points)
        let sorted = points.sorted { $0.started < $1.started }
        if output.json {
            try printJSON(sorted)
        } else {
            var table = Table("POINT", "STARTED (UTC)", "PLATFORM", "STATE", "STORES")
            for point in sorted {
                table.add(String(point.id.prefix(8)), RepositoryTimeText.format(point.started), point.platform,
                          point.isComplete ? "complete" : "partial", point.members.map { $0.snapshot == nil ? "\($0.store)!" : $0.store }.joined(separator: ","))
            }
            print(table.render())
            print("\(sorted.count) recovery point\(sorted.count == 1 ? "" : "s")")
        }
        for problem in unreadable { printError("lifeboat: damaged: \(problem)") }
        if !unreadable.isEmpty { throw ExitCode(ExitStatus.damaged.rawValue) }
    }

    /// A point in a few lines, for `backup`'s output.
    static func describe(_ point: RecoveryPoint) -> String {
        var table = Table("STORE", "KIND", "SNAPSHOT", "DATA TIME (UTC)", "SIZE", "STATE")
        for member in point.members {
            table.add(member.store, member.kind, member.snapshot.map { String($0.prefix(8)) } ?? "-",
                      member.sourceTime.map(RepositoryTimeText.format) ?? "-", member.size.map(formatBytes) ?? "-",
                      member.error.map { "FAILED: \($0)" } ?? "ok")
        }
        return "recovery point \(point.id.prefix(8)) (\(point.isComplete ? "complete" : "partial"))\n" + table.render()
    }
}
