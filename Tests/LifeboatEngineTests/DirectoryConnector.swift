import Foundation
import LifeboatCore
import LifeboatEngine
import LifeboatRepository

/// A `files` connector for the engine's tests: backs up the file `data` of the store's directory,
/// with the data time written in the file `time` beside it, and restores it into a directory. The
/// engine's order, gates, consistency and evidence are what these tests exercise; the real
/// connectors have their own tests against real servers.
struct DirectoryConnector: StoreConnector {
    /// Stores whose data can be restored to any instant inside this window (a stand-in for WAL).
    var windows: [String: ClosedRange<Date>] = [:]
    let restores = RestoreLog()

    static func directory(_ store: Store) -> URL {
        guard case .files(let files) = store.connection, let path = files.paths.first else { fatalError("test store without a path") }
        return URL(fileURLWithPath: path)
    }

    func backup(_ store: Store, into repository: Repository, point: String, tags: [String]) async throws -> SnapshotManifest {
        let directory = Self.directory(store)
        let data = try Data(contentsOf: directory.appendingPathComponent("data"))
        let time = (try? String(contentsOf: directory.appendingPathComponent("time"), encoding: .utf8)) ?? SourceTime.format(Date())
        var remaining: Data? = data
        return try await repository.put(
            SnapshotDescription(store: store.name, kind: store.kind.rawValue, tags: tags, source: ["source_time": time], point: point)
        ) { defer { remaining = nil }; return remaining }
    }

    func canRestore(_ store: Store, to instant: Date, in repository: Repository) async throws -> Bool {
        windows[store.name]?.contains(instant) ?? false
    }

    func describe(_ request: StoreRestoreRequest) -> String { "copy \(request.snapshot.id.prefix(8)) into \(request.store.name)" }

    func restore(_ request: StoreRestoreRequest) async throws -> any RestoredStore {
        guard case .scratch(let directory) = request.destination else { throw CocoaError(.featureUnsupported) }
        var data = Data()
        try await request.repository.restore(request.snapshot) { data.append($0) }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try data.write(to: directory.appendingPathComponent("data"))
        await restores.append(request.store.name, request.targetTime)
        if String(decoding: data, as: UTF8.self) == "unrestorable" { throw CocoaError(.fileReadCorruptFile) }
        return RestoredDirectory(directory: directory, target: directory.path)
    }
}

actor RestoreLog {
    private(set) var entries: [(store: String, targetTime: Date?)] = []
    func append(_ store: String, _ time: Date?) { entries.append((store, time)) }
}

struct RestoredDirectory: RestoredStore {
    let directory: URL
    let target: String

    func check(_ checks: [VerifyCheck]) async throws -> [CheckResult] {
        checks.map { check in
            guard case .file(let name) = check else { return CheckResult(check: check.summary, passed: false, detail: "not a file check") }
            let content = try? String(contentsOf: directory.appendingPathComponent("data"), encoding: .utf8)
            return CheckResult(check: check.summary, passed: content == name, detail: "read \(content ?? "nothing")")
        }
    }

    func release() async { try? FileManager.default.removeItem(at: directory) }
}
