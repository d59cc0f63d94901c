import Crypto
import Foundation
import LifeboatRepository
import LifeboatStorage

/// Lifeboat's durable note, in the repository, that it initialised an empty node temporarily to
/// restore a snapshot into it and OpenBao has not yet accepted the snapshot. Written before
/// `sys/init`, removed once `snapshot-force` answered: a crash in between leaves a node that
/// reports an initialised barrier which is empty and whose credentials nobody holds, and this note
/// is how `auto-restore` tells it from a cluster that has its data.
///
/// Stored as `restores/openbao/<sha256(store NUL node)>`, plaintext JSON with no secret (the name
/// hides the store and address); replaced, not created once, like a lock.
public struct BootstrapRecord: Codable, Sendable, Hashable {
    /// The snapshot being restored.
    public var snapshot: String
    /// When Lifeboat began initialising the node.
    public var started: Date
    /// Who did it: `host pid`.
    public var holder: String

    public init(snapshot: String, started: Date = Date(), holder: String = "\(ProcessInfo.processInfo.hostName) pid \(getpid())") {
        self.snapshot = snapshot
        self.started = started
        self.holder = holder
    }

    static let prefix = ObjectPath.restores + "openbao/"

    /// The object's name for `store` on `node` (the address as OpenBaoClient normalises it).
    static func name(store: String, node: String) -> String {
        let address = OpenBaoClient(address: node).address
        let digest = SHA256.hash(data: Data("\(store)\u{0}\(address)".utf8))
        return prefix + digest.map { String(format: "%02x", $0) }.joined()
    }

    static func coder() -> (JSONEncoder, JSONDecoder) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return (encoder, decoder)
    }

    /// Records that Lifeboat is about to initialise `node`. A repository that refuses the write stops
    /// the restore before the node is touched: without the note a crash could pass for a restored cluster.
    func write(in repository: Repository, store: String, node: String) async throws(OpenBaoError) {
        let name = Self.name(store: store, node: node)
        do {
            try await repository.backend.replace(name, data: try Self.coder().0.encode(self))
        } catch {
            throw OpenBaoError(.requestFailed, object: "\(repository.backend.location)/\(name)",
                               "cannot record that Lifeboat is initialising \(node) (\(error)); the target was not touched. Give the repository credentials that may write")
        }
    }

    /// The note for `store` on `node`, if Lifeboat left one.
    static func load(from repository: Repository, store: String, node: String) async throws(OpenBaoError) -> BootstrapRecord? {
        let name = Self.name(store: store, node: node)
        do {
            guard try await repository.backend.stat(name) != nil else { return nil }
            return try coder().1.decode(BootstrapRecord.self, from: try await repository.backend.load(name))
        } catch {
            throw OpenBaoError(.requestFailed, object: "\(repository.backend.location)/\(name)",
                               "cannot read Lifeboat's record of an unfinished restore into \(node) (\(error))")
        }
    }

    /// Removes the note: the node now holds the snapshot's barrier.
    static func clear(in repository: Repository, store: String, node: String) async throws(OpenBaoError) {
        let name = Self.name(store: store, node: node)
        do {
            try await repository.backend.delete(name)
        } catch {
            throw OpenBaoError(.requestFailed, object: "\(repository.backend.location)/\(name)",
                               "the snapshot was restored into \(node), but the record of the unfinished restore cannot be removed (\(error)); delete that object by hand")
        }
    }
}
