import ArgumentParser
import Foundation
import LifeboatConnectors
import LifeboatCore
import LifeboatPlatform

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

/// The OpenBao store of a catalog and the flags that override its secrets: a flag first, then the
/// catalog's reference, resolved by the one `StoreResolver`.
struct OpenBaoStoreSettings {
    var store: Store?
    var connection: OpenBaoConnection?
    var resolver: StoreResolver?

    /// Store `name` of the catalog `resolver` read (nil resolver: no catalog, flags only).
    init(resolver: StoreResolver?, store name: String?) throws {
        self.resolver = resolver
        guard let name else { return }
        guard let resolver else { throw CommandFailure(.usage, "--store \(name) needs a catalog (--catalog or $LIFEBOAT_CATALOG)") }
        let store = try resolver.store(named: name, kind: .openbao)
        guard case .openbao(let connection)? = store.connection else { throw CommandFailure(.usage, "store \(name) has no connection") }
        self.store = store
        self.connection = connection
    }

    /// A token: `--*-token-file` first, then the catalog reference.
    func token(file: String?, reference: SecretReference?, what: String) throws -> String? {
        if let file { return try readSecretFile(file, what: what) }
        return try reference.map { try resolveSecret($0, relativeTo: resolver?.directory) }
    }

    /// Unseal key material: `--share` values, else `--unseal-keys-file`, else the catalog's `unseal_keys`.
    /// A catalog reference that cannot be read gives nil and the reason (a backup then records custody as unverified).
    func unsealKeys(file: String?, shares: [String]) throws -> (keys: UnsealKeyMaterial?, goneReason: String) {
        if !shares.isEmpty { return (try UnsealKeyMaterial.parse(keys: shares, source: "--share"), "") }
        if let file {
            let text = try readSecretFile(file, what: "the unseal keys")
            return (try UnsealKeyMaterial.parse(text, source: file), "")
        }
        guard let connection, let resolver else { return (nil, "no unseal keys given and the catalog names none") }
        let (keys, unavailable) = try resolver.unsealKeys(connection, strict: true)
        return (keys, unavailable ?? "")
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

/// Progress lines on a terminal's stderr; silent in a pipe.
func progressLine(_ text: String) {
    if isatty(STDERR_FILENO) == 1 { printError(text) }
}
