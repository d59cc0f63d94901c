import Foundation
import LifeboatConnectors
import LifeboatCore
import LifeboatEngine
import LifeboatRepository

/// The files connector as the engine sees it: production restores go back to the snapshot's own
/// paths; drills into the scratch directory.
public struct FilesStoreConnector: StoreConnector {
    public init() {}

    public func backup(_ store: Store, into repository: Repository, point: String, tags: [String]) async throws -> SnapshotManifest {
        try await FilesConnector(store: store).backup(into: repository, point: point, tags: tags)
    }

    /// Only snapshot times: a directory tree has no continuous archive.
    public func canRestore(_ store: Store, to instant: Date, in repository: Repository) async throws -> Bool { false }

    /// The directories each root of the snapshot goes to.
    static func destinations(_ request: StoreRestoreRequest) throws -> [String] {
        let roots = FilesFacts(request.snapshot)?.roots ?? []
        switch request.destination {
        case .scratch(let directory):
            return roots.enumerated().map { directory.appendingPathComponent("\($0.offset)-\(URL(fileURLWithPath: $0.element).lastPathComponent)").path }
        case .production:
            return try FilesConnector.destinations(for: roots, to: nil)
        }
    }

    public func describe(_ request: StoreRestoreRequest) -> String {
        let facts = FilesFacts(request.snapshot)
        let what = "copy of \(facts.map { "\($0.files) files (\($0.bytes) bytes), \($0.directories) directories and \($0.symlinks) symlinks" } ?? "the files") of snapshot \(request.snapshot.id.prefix(8)) with their modes, owners and times"
        let destinations = (try? Self.destinations(request))?.joined(separator: ", ") ?? "?"
        switch request.destination {
        case .scratch:
            return "\(what) into \(destinations), read back against the snapshot"
        case .production(let force):
            return "\(what) into \(destinations)" + (force ? " (a non-empty directory is moved aside first: --force)" : " (refused if a directory is not empty: --force)")
                + ", then read back against the snapshot"
        }
    }

    public func preflight(_ request: StoreRestoreRequest) async -> [String] {
        guard case .production(let force) = request.destination else { return [] }
        do {
            return FilesConnector.preflight(destinations: try Self.destinations(request), force: force)
        } catch {
            return ["\(error)"]
        }
    }

    public func restore(_ request: StoreRestoreRequest) async throws -> any RestoredStore {
        let destinations = try Self.destinations(request)
        let force = if case .production(let force) = request.destination { force } else { false }
        let report = try await FilesConnector.restore(request.snapshot, from: request.repository, destinations: destinations, force: force)
        return RestoredFiles(manifest: request.snapshot, repository: request.repository, report: report)
    }
}

/// Directory trees after a restore; the gate reads every file back. Nothing to stop on release.
struct RestoredFiles: RestoredStore {
    let manifest: SnapshotManifest
    let repository: Repository
    let report: FilesRestoreReport

    var target: String {
        report.destinations.joined(separator: ", ") + (report.setAside.isEmpty ? "" : " (previous contents moved to \(report.setAside.joined(separator: ", ")))")
    }

    func check(_ checks: [VerifyCheck]) async throws -> [CheckResult] {
        try await FilesConnector.runGate(manifest, in: repository, destinations: report.destinations, checks: checks)
    }

    func release() async {}
}
