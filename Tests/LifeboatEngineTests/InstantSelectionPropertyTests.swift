import Foundation
import LifeboatCore
import LifeboatStorage
import LifeboatTesting
import Testing
@testable import LifeboatEngine
@testable import LifeboatRepository

/// The instant-based selection over generated catalogs and snapshot histories: stores with random
/// dependencies, cadences of their own (snapshots at random times) and some with an archive
/// window. For each history and a random instant (or latest), the chosen states must obey the rule.
@Suite struct InstantSelectionPropertyTests {
    static let now = Date()
    static func repository() async throws -> Repository {
        try await Repository.initialize(backend: MemoryBackend(), passphrase: "p",
                                        chunker: ChunkerParameters(minimumSize: 16 << 10, averageSize: 64 << 10, maximumSize: 256 << 10),
                                        scrypt: KeyFile.ScryptParameters(n: 1 << 10, r: 8, p: 1))
    }

    /// The newest state `store` could reach at or before `limit`, by the rule's own definition.
    static func admissible(_ snapshots: [Date], window: ClosedRange<Date>?, notAfter limit: Date?) -> Date? {
        let snapshot = snapshots.filter { limit == nil || $0 <= limit! }.max()
        guard let limit, let window, snapshot != nil, window.contains(limit), limit > snapshot! else { return snapshot }
        return limit
    }

    @Test func chosenStatesAreConsistentAtOrBeforeTheInstantAndNoNewerAdmissibleStateIsPassedOver() async throws {
        var random = SeededGenerator(seed: 0x1_1fe_b0a7)
        for history in 0..<300 {
            let repository = try await Self.repository()
            let count = Int.random(in: 2...5, using: &random)
            var yaml = "version: 1\nplatform: p\(history)\nstores:\n"
            var dependencies: [[Int]] = []
            for index in 0..<count {
                let depends = (0..<index).filter { _ in Bool.random(using: &random) }
                dependencies.append(depends)
                let list = depends.map { "h\(history)s\($0)" }.joined(separator: ", ")
                yaml += "  - {name: h\(history)s\(index), kind: files, method: copy, cadence: 1h, priority: P1, depends_on: [\(list)], connection: {paths: [/nowhere/\(index)]}}\n"
            }
            let catalog = try CatalogLoader.load(yaml: yaml, file: "generated.yaml").catalog
            var connector = DirectoryConnector()
            var times: [String: [Date]] = [:]
            for index in 0..<count {
                let name = "h\(history)s\(index)"
                // Each store on a cadence of its own; some have no backup at all.
                let snapshots = (0..<Int.random(in: 0...4, using: &random)).map { _ in Self.now.addingTimeInterval(-Double.random(in: 0...86_400, using: &random)) }
                times[name] = snapshots
                for time in snapshots {
                    var once: Data? = Data("x".utf8)
                    _ = try await repository.put(SnapshotDescription(store: name, kind: "files", source: ["source_time": SourceTime.format(time)])) {
                        defer { once = nil }
                        return once
                    }
                }
                if Bool.random(using: &random), let oldest = snapshots.min() {
                    connector.windows[name] = oldest...max(oldest, Self.now.addingTimeInterval(-Double.random(in: 0...3_600, using: &random)))
                }
            }
            // Times round-trip through the manifest's text: compare what the repository holds.
            let stored = try await repository.snapshots().manifests
            for name in times.keys { times[name] = stored.filter { $0.store == name }.map(\.sourceTime) }
            let instant: Date? = Bool.random(using: &random) ? nil : Self.now.addingTimeInterval(-Double.random(in: 0...86_400, using: &random))
            let preparation = try RestorePreparation(catalog: catalog, repository: repository, connectors: [.files: connector])
            let (_, steps) = try await preparation.prepare(instant.map { .time($0) } ?? .latest)
            var chosen: [String: Date] = [:]
            for step in steps { if let time = step.dataTime { chosen[step.step.store] = time } }
            for (index, depends) in dependencies.enumerated() {
                let name = "h\(history)s\(index)"
                let step = try #require(steps.first { $0.step.store == name })
                let bounds = depends.map { "h\(history)s\($0)" }
                // A store whose dependency has nothing restorable cannot be bounded: the run stops earlier.
                guard bounds.allSatisfy({ chosen[$0] != nil || steps.first { $0.step.store == name }?.problem != nil }) else { continue }
                let limit = ([instant] + bounds.map { chosen[$0] }).compactMap { $0 }.min()
                let expected = Self.admissible(times[name] ?? [], window: connector.windows[name], notAfter: limit)
                #expect(step.dataTime == expected, "history \(history) \(name): chose \(String(describing: step.dataTime)), admissible \(String(describing: expected)) (limit \(String(describing: limit)))")
                if let time = step.dataTime {
                    if let instant { #expect(time <= instant, "history \(history) \(name) is newer than the instant") }
                    for bound in bounds { if let dependency = chosen[bound] { #expect(time <= dependency, "history \(history) \(name) is newer than \(bound)") } }
                    #expect(step.reason != nil && step.problem == nil)
                } else {
                    #expect(step.problem != nil, "history \(history) \(name): no data and no reason")
                }
            }
        }
    }
}
