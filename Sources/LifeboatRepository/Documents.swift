import Foundation
import LifeboatStorage

/// Small sealed JSON documents that describe snapshots rather than hold data: recovery points
/// (`points/<id>`) and drill evidence (`evidence/<id>`). Written once, sealed like manifests, the
/// object name bound as associated data so one cannot be passed off as another.
public enum DocumentNamespace: String, Sendable, CaseIterable {
    /// The object prefix of the namespace (`ObjectPath.points`, `ObjectPath.evidence`).
    public var prefix: String { rawValue + "/" }

    /// A recovery point: the snapshots taken together by one `lifeboat backup`.
    case points
    /// A drill report: what was restored where, how long each step took, what every gate found.
    case evidence
    /// The scheduler's job history: `runs/<job>/<run>.start` and `.end` (docs/repository-format.md §15).
    case runs
    /// "Snapshot S of store X was still current at T": written when a change poll finds nothing
    /// changed since S, so the recovery model can count S as valid through T (§14).
    case currency
    /// The scheduler's lease: `lease/<epoch>`, one create-once record per renewal (§14).
    case lease

    /// Whether `mirror` copies the namespace. The scheduler's records are about this repository's
    /// own service (and are deleted by their retention, which a mirror would not follow).
    public var isMirrored: Bool {
        switch self {
        case .points, .evidence: true
        case .runs, .currency, .lease: false
        }
    }
}

extension Repository {
    /// The largest document accepted when decompressing.
    static let maximumDocumentSize = 64 << 20

    /// Stores `value` as `<namespace>/<id>`, create-once: an existing document is never replaced.
    /// Returns the document as every reader will see it (times at the format's millisecond precision).
    @discardableResult
    public func writeDocument<Value: Codable>(_ value: Value, in namespace: DocumentNamespace, id: String) async throws(RepositoryError) -> Value {
        let name = ObjectPath.document(namespace, id: id)
        do {
            let plaintext = try JSONEncoder.repository.encode(value)
            let stored = try JSONDecoder.repository.decode(Value.self, from: plaintext)
            let sealed = try SealedObject.seal(plaintext, binding: "\(namespace.rawValue) \(id)",
                                               key: keys.dataKey, compressionLevel: Int32(config.compressionLevel))
            try await backend.create(name, data: sealed)
            return stored
        } catch let error as BackendError where error.code == .alreadyExists {
            // Distinguishable, because a taken name is how the scheduler's lease loses a race (§14).
            throw RepositoryError(.conflict, object: name, "a document already exists under this name; it was not replaced")
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
            throw RepositoryError(.corruptObject, object: ObjectPath.document(namespace, id: id), "the document is not valid: \(error)")
        }
    }

    /// The authenticated plaintext of `<namespace>/<id>`.
    func loadDocumentPlaintext(in namespace: DocumentNamespace, id: String) async throws(RepositoryError) -> Data {
        let name = ObjectPath.document(namespace, id: id)
        let sealed = try await Self.load(backend, name)
        do {
            return try SealedObject.open(sealed, binding: "\(namespace.rawValue) \(id)", key: keys.dataKey, maximumSize: Self.maximumDocumentSize)
        } catch {
            throw RepositoryError(.corruptObject, object: name, "the document is damaged (\(Self.describe(error)))")
        }
    }

    /// The ids of a namespace's documents (cheap: names only).
    public func documentIDs(in namespace: DocumentNamespace) async throws(RepositoryError) -> [String] {
        let prefix = namespace.prefix
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

    /// Removes `<namespace>/<id>`. Only for the scheduler's own records, which have a retention
    /// (runs, currency, lease); points and evidence are never deleted.
    public func deleteDocument(in namespace: DocumentNamespace, id: String) async throws(RepositoryError) {
        guard !namespace.isMirrored else {
            throw RepositoryError(.invalidArgument, object: "\(namespace.rawValue)/\(id)", "recovery points and drill evidence are never deleted")
        }
        do { try await backend.delete("\(namespace.rawValue)/\(id)") } catch { throw RepositoryError(error) }
    }

    /// The ids under `<namespace>/<prefix>` (names only).
    public func documentIDs(in namespace: DocumentNamespace, prefix: String) async throws(RepositoryError) -> [String] {
        let full = "\(namespace.rawValue)/"
        return try await Self.list(backend, full + prefix).map { String($0.name.dropFirst(full.count)) }
    }

    /// A fresh random id for a new document.
    public static func newDocumentID() -> String { randomID() }
}
