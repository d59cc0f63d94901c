import Foundation
import LifeboatStorage

/// Small sealed JSON documents that describe snapshots rather than hold data: recovery points
/// (`points/<id>`) and drill evidence (`evidence/<id>`). Written once, sealed like manifests, the
/// object name bound as associated data so one cannot be passed off as another.
public enum DocumentNamespace: String, Sendable, CaseIterable {
    /// A recovery point: the snapshots taken together by one `lifeboat backup`.
    case points
    /// A drill report: what was restored where, how long each step took, what every gate found.
    case evidence
}

extension Repository {
    /// The largest document accepted when decompressing.
    static let maximumDocumentSize = 64 << 20

    /// Stores `value` as `<namespace>/<id>`, create-once: an existing document is never replaced.
    /// Returns the document as every reader will see it (times at the format's millisecond precision).
    @discardableResult
    public func writeDocument<Value: Codable>(_ value: Value, in namespace: DocumentNamespace, id: String) async throws(RepositoryError) -> Value {
        let name = "\(namespace.rawValue)/\(id)"
        do {
            let plaintext = try JSONEncoder.repository.encode(value)
            let stored = try JSONDecoder.repository.decode(Value.self, from: plaintext)
            let sealed = try SealedObject.seal(plaintext, binding: "\(namespace.rawValue) \(id)",
                                               key: keys.dataKey, compressionLevel: Int32(config.compressionLevel))
            try await backend.create(name, data: sealed)
            return stored
        } catch let error as BackendError {
            throw RepositoryError(error)
        } catch {
            throw RepositoryError(.storage, object: name, "cannot write the document: \(error)")
        }
    }

    /// Reads and authenticates `<namespace>/<id>`.
    public func loadDocument<Value: Decodable>(_ type: Value.Type, in namespace: DocumentNamespace, id: String) async throws(RepositoryError) -> Value {
        let plaintext = try await loadDocumentPlaintext(in: namespace, id: id)
        do {
            return try JSONDecoder.repository.decode(Value.self, from: plaintext)
        } catch {
            throw RepositoryError(.corruptObject, object: "\(namespace.rawValue)/\(id)", "the document is not valid: \(error)")
        }
    }

    /// The authenticated plaintext of `<namespace>/<id>`.
    func loadDocumentPlaintext(in namespace: DocumentNamespace, id: String) async throws(RepositoryError) -> Data {
        let name = "\(namespace.rawValue)/\(id)"
        let sealed = try await Self.load(backend, name)
        do {
            return try SealedObject.open(sealed, binding: "\(namespace.rawValue) \(id)", key: keys.dataKey, maximumSize: Self.maximumDocumentSize)
        } catch {
            throw RepositoryError(.corruptObject, object: name, "the document is damaged (\(Self.describe(error)))")
        }
    }

    /// The ids of a namespace's documents (cheap: names only).
    public func documentIDs(in namespace: DocumentNamespace) async throws(RepositoryError) -> [String] {
        let prefix = "\(namespace.rawValue)/"
        return try await Self.list(backend, prefix).map { String($0.name.dropFirst(prefix.count)) }
    }

    /// Every document of a namespace that reads back, and the errors of those that do not (a damaged
    /// document must not hide the others). To choose one, use `documentsToChooseFrom`.
    public func documents<Value: Decodable>(_ type: Value.Type, in namespace: DocumentNamespace) async throws(RepositoryError) -> (documents: [Value], unreadable: [RepositoryError]) {
        var documents: [Value] = []
        var unreadable: [RepositoryError] = []
        for id in try await documentIDs(in: namespace) {
            do {
                documents.append(try await loadDocument(type, in: namespace, id: id))
            } catch {
                unreadable.append(error)
            }
        }
        return (documents, unreadable)
    }

    /// A fresh random id for a new document.
    public static func newDocumentID() -> String { randomID() }
}
