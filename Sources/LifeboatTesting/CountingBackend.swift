import Foundation
import LifeboatStorage

/// Passes every operation to `base` and counts them by kind and by the object's top-level prefix
/// (`data/`, `index/`, `locks/`…), so a test can prove what an operation did not do — a put that
/// never lists `data/` — from the calls the storage really received.
public struct CountingBackend: Backend {
    public let base: any Backend
    public let counts = OperationCounts()

    public init(_ base: any Backend) { self.base = base }

    public var location: String { base.location }

    public func create(_ name: String, data: Data) async throws(BackendError) {
        await counts.record(.create, name)
        try await base.create(name, data: data)
    }
    public func replace(_ name: String, data: Data) async throws(BackendError) {
        await counts.record(.replace, name)
        try await base.replace(name, data: data)
    }
    public func load(_ name: String, range: Range<Int>?) async throws(BackendError) -> Data {
        await counts.record(.load, name)
        return try await base.load(name, range: range)
    }
    public func stat(_ name: String) async throws(BackendError) -> ObjectInfo? {
        await counts.record(.stat, name)
        return try await base.stat(name)
    }
    public func list(prefix: String) async throws(BackendError) -> [ObjectInfo] {
        await counts.record(.list, prefix)
        return try await base.list(prefix: prefix)
    }
    public func delete(_ name: String) async throws(BackendError) {
        await counts.record(.delete, name)
        try await base.delete(name)
    }
}

public actor OperationCounts {
    public enum Operation: String, Sendable { case create, replace, load, stat, list, delete }

    private var counts: [String: Int] = [:]

    func record(_ operation: Operation, _ name: String) {
        let top = name.split(separator: "/", maxSplits: 1).first.map { "\($0)/" } ?? name
        counts["\(operation.rawValue) \(top)", default: 0] += 1
    }

    /// How many `operation` calls touched objects under `prefix` (`data/`, `index/`) since the last reset.
    public func count(_ operation: Operation, _ prefix: String) -> Int { counts["\(operation.rawValue) \(prefix)", default: 0] }

    public func reset() { counts = [:] }
}
