import ArgumentParser
import Foundation
import LifeboatConnectors
import LifeboatCore

/// `lifeboat openbao …`: OpenBao raft snapshots and the auto-restore guard.
struct OpenBaoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "openbao",
        abstract: "OpenBao: raft snapshots into the repository, and the auto-restore guard.",
        discussion: """
        Restoring a snapshot is `lifeboat restore openbao`.

        Example:
          lifeboat openbao snapshot --store openbao --catalog lifeboat.yaml
        """,
        subcommands: [OpenBaoSnapshotCommand.self, OpenBaoAutoRestoreCommand.self])
}

/// The OpenBao store of a catalog, with its secret references resolved (flags first).
struct OpenBaoStoreSettings {
    var store: Store?
    var connection: OpenBaoConnection?
    var catalogDirectory: URL?

    /// Loads `name` from the catalog at `path` (nil path: no catalog, flags only).
    init(catalogPath: String?, store name: String?) throws {
        guard let catalogPath else {
            if let name { throw CommandFailure(.usage, "--store \(name) needs a catalog (--catalog or $LIFEBOAT_CATALOG)") }
            return
        }
        let loaded = try CatalogLoader.load(contentsOf: catalogPath)
        catalogDirectory = URL(fileURLWithPath: catalogPath).deletingLastPathComponent()
        guard let name else { return }
        guard let store = loaded.catalog.store(named: name) else {
            throw CommandFailure(.usage, "the catalog has no store named \(name)")
        }
        guard store.kind == .openbao, case .openbao(let connection)? = store.connection else {
            throw CommandFailure(.usage, "store \(name) is not an OpenBao store with a connection (kind \(store.kind.rawValue))")
        }
        self.store = store
        self.connection = connection
    }

    /// A token: `--*-token-file` first, then the catalog reference.
    func token(file: String?, reference: SecretReference?, what: String) throws -> String? {
        if let file { return try readSecretFile(file, what: what) }
        if let reference { return try resolve(reference, relativeTo: catalogDirectory) }
        return nil
    }

    /// Unseal key material: `--share` values, else `--unseal-keys-file`, else the catalog's `unseal_keys`.
    /// A catalog reference that cannot be read gives nil and the reason (a backup then records custody as unverified).
    func unsealKeys(file: String?, shares: [String]) throws -> (keys: UnsealKeyMaterial?, goneReason: String) {
        if !shares.isEmpty { return (try UnsealKeyMaterial.parse(keys: shares, source: "--share"), "") }
        if let file {
            let text = try readSecretFile(file, what: "the unseal keys")
            return (try UnsealKeyMaterial.parse(text, source: file), "")
        }
        guard let reference = connection?.unsealKeys else { return (nil, "no unseal keys given and the catalog names none") }
        do {
            return (try UnsealKeyMaterial.parse(try resolve(reference, relativeTo: catalogDirectory), source: reference.description), "")
        } catch let error as CommandFailure {
            return (nil, "\(reference) cannot be read: \(error.message)")
        }
    }

    /// The Transit key a node's own server configuration seals it with (nil: none given, or a Shamir node).
    static func nodeSeal(configuration path: String?) throws -> TransitSealKey? {
        guard let path else { return nil }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw CommandFailure(.usage, "cannot read the OpenBao server configuration \(path)")
        }
        return try TransitSealKey.sealStanza(in: text, source: path)
    }

    var transit: TransitSealKey? {
        connection?.transit.map { TransitSealKey(address: $0.address, mount: $0.mount, keyName: $0.keyName) }
    }
}

/// OpenBao failures as documented exit codes: a damaged snapshot 3, wrong keys 12, a missing setting 2, else 1.
func withOpenBaoExitCodes<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as OpenBaoError {
        let status: ExitStatus = switch error.code {
        case .tamperedSnapshot: .damaged
        case .custodyMismatch, .invalidKeyMaterial: .wrongKey
        case .missingSetting: .usage
        default: .failure
        }
        throw CommandFailure(status, error.description)
    }
}

/// Progress lines on a terminal's stderr; silent in a pipe.
func progressLine(_ text: String) {
    if isatty(STDERR_FILENO) == 1 { printError(text) }
}
