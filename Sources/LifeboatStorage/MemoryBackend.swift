import Foundation

/// A backend in memory, for tests and dry runs. Same contract as every other backend.
public actor MemoryBackend: Backend {
    private var objects: [String: (data: Data, modified: Date)] = [:]

    public init() {}

    public nonisolated var location: String { "memory" }

    public func create(_ name: String, data: Data) throws(BackendError) {
        try validateObjectName(name)
        guard objects[name] == nil else { throw BackendError(.alreadyExists, object: name, "already exists") }
        objects[name] = (data, Date())
    }

    public func replace(_ name: String, data: Data) throws(BackendError) {
        try validateObjectName(name)
        objects[name] = (data, Date())
    }

    public func load(_ name: String, range: Range<Int>?) throws(BackendError) -> Data {
        try validateObjectName(name)
        guard let object = objects[name] else { throw BackendError(.notFound, object: name, "not found") }
        guard let range else { return object.data }
        guard range.lowerBound >= 0, range.upperBound <= object.data.count else {
            throw BackendError(.io, object: name, "range \(range) is outside the object's \(object.data.count) bytes")
        }
        return object.data.subdata(in: range)
    }

    public func stat(_ name: String) throws(BackendError) -> ObjectInfo? {
        try validateObjectName(name)
        return objects[name].map { ObjectInfo(name: name, size: $0.data.count, modified: $0.modified) }
    }

    public func list(prefix: String) -> [ObjectInfo] {
        objects.filter { $0.key.hasPrefix(prefix) }.map { ObjectInfo(name: $0.key, size: $0.value.data.count, modified: $0.value.modified) }
    }

    public func delete(_ name: String) throws(BackendError) {
        try validateObjectName(name)
        objects[name] = nil
    }

    /// Test hook: overwrite an object's bytes in place (to simulate corruption).
    public func corrupt(_ name: String, with data: Data) {
        objects[name]?.data = data
    }
}
