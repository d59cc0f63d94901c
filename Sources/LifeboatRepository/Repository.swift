import Crypto
import CryptoExtras
import Foundation
import LifeboatStorage

/// An opened repository: its backend, its config and the keys derived from its master secret.
///
/// Write order makes crashes harmless: chunks first, the manifest last and create-once, so a
/// snapshot exists if and only if its manifest does.
public struct Repository: Sendable {
    public let backend: any Backend
    public let config: RepositoryConfig
    let keys: RepositoryKeys
    /// The key file this repository was opened with (nil when opened from a recombined secret).
    public let openedWithKey: String?
    /// Key files found damaged while opening (they could not be parsed); the command warns about each.
    public var damagedKeyFiles: [RepositoryError] = []
    /// What choosing the newest snapshot or recovery point does with a damaged one (`skippingDamaged`).
    public internal(set) var damagedChoices: DamagedChoices = .refuse
    /// Where the index cache lives (nil: no cache); `IndexCache.defaultRoot()` unless set.
    public var cacheRoot: URL? = IndexCache.defaultRoot()

    /// The largest manifest accepted when decompressing (a 20 GiB snapshot's manifest is ~2 MB).
    static let maximumManifestSize = 256 << 20

    // MARK: creating and opening

    /// Creates a repository at `backend`, protected by `passphrase`. Refuses a location that already has a config.
    public static func initialize(
        backend: any Backend, passphrase: String, label: String = "initial key",
        chunker: ChunkerParameters = .standard, compressionLevel: Int = 3, scrypt: KeyFile.ScryptParameters = .standard
    ) async throws(RepositoryError) -> Repository {
        guard !passphrase.isEmpty else { throw RepositoryError(.invalidArgument, "the passphrase is empty") }
        if try await Self.stat(backend, ObjectPath.config) != nil {
            throw RepositoryError(.alreadyInitialized, object: backend.location, "a repository already exists here; nothing was changed")
        }
        let secret = RepositoryKeys.generateMasterSecret()
        let config = RepositoryConfig(version: 1, id: randomID(), created: RepositoryTime.now(), chunker: chunker,
                                      compressionLevel: compressionLevel, keyCheck: RepositoryKeys.keyCheck(for: secret))
        let keys = RepositoryKeys(masterSecret: secret, repositoryID: config.id)
        // Key first, config last: a location without config is not a repository, so a crash here leaves nothing half made.
        let keyID = try await writeKey(backend: backend, config: config, secret: secret, passphrase: passphrase, label: label, scrypt: scrypt)
        do {
            try await backend.create(ObjectPath.config, data: try JSONEncoder.repository.encode(config))
        } catch let error as BackendError {
            if error.code == .alreadyExists {
                throw RepositoryError(.alreadyInitialized, object: backend.location, "another process initialised a repository here at the same time")
            }
            throw RepositoryError(error)
        } catch {
            throw RepositoryError(.storage, object: ObjectPath.config, "cannot encode the config: \(error)")
        }
        return Repository(backend: backend, config: config, keys: keys, openedWithKey: keyID)
    }

    /// Opens the repository with a passphrase, trying each intact key file.
    ///
    /// A key file that cannot be parsed (truncated, altered, a bad field) is damaged, not a wrong
    /// passphrase: when an intact key opens, the repository opens and `damagedKeyFiles` names the
    /// damaged ones; when none opens and some key file is damaged, the error is `.corruptObject`
    /// naming them (the passphrase may be the damaged key's); `.wrongPassphrase` only when every
    /// key file is intact and none accepts the passphrase.
    public static func open(backend: any Backend, passphrase: String) async throws(RepositoryError) -> Repository {
        let config = try await readConfig(backend)
        let keyFiles = try await Self.list(backend, ObjectPath.keys)
        guard !keyFiles.isEmpty else {
            throw RepositoryError(.wrongPassphrase, object: backend.location, "the repository has no key files; recover with `lifeboat key combine`")
        }
        // Parse every key file first (they are small and few), so the warning names every damaged one.
        var intact: [(id: String, file: KeyFile)] = []
        var damaged: [RepositoryError] = []
        for info in keyFiles.sorted(by: { $0.modified > $1.modified }) {
            do {
                intact.append((String(info.name.dropFirst(ObjectPath.keys.count)), try decodeKeyFile(try await load(backend, info.name), name: info.name)))
            } catch where error.code == .corruptObject {
                damaged.append(error)
            } catch where error.code == .missingObject {
                continue // removed by `key remove` since the listing
            }
        }
        for (keyID, file) in intact {
            if let secret = try? unwrap(file, keyID: keyID, passphrase: passphrase), RepositoryKeys.keyCheck(for: secret) == config.keyCheck {
                var repository = Repository(backend: backend, config: config, keys: RepositoryKeys(masterSecret: secret, repositoryID: config.id), openedWithKey: keyID)
                repository.damagedKeyFiles = damaged
                return repository
            }
        }
        guard damaged.isEmpty else {
            let names = damaged.compactMap(\.object).joined(separator: ", ")
            throw RepositoryError(.corruptObject, object: names,
                                  "no intact key opens with the passphrase given, and \(damaged.count == 1 ? "this key file is" : "these key files are") damaged (\(damaged.map(\.message).joined(separator: "; "))); the passphrase may be the damaged key's: try another key's passphrase, or recover with `lifeboat key combine`")
        }
        throw RepositoryError(.wrongPassphrase, object: backend.location, "no key of this repository opens with the passphrase given")
    }

    /// A key file's fields, checked well-formed (base64 salt and wrapped key of the right size);
    /// anything else is a damaged key file named by `name`.
    static func decodeKeyFile(_ data: Data, name: String) throws(RepositoryError) -> KeyFile {
        let file: KeyFile
        do {
            file = try JSONDecoder.repository.decode(KeyFile.self, from: data)
        } catch {
            throw RepositoryError(.corruptObject, object: name, "the key file is damaged: \(RepositoryError.describeDecoding(error))")
        }
        // 12-byte nonce, 32-byte secret, 16-byte tag.
        guard file.kdf == "scrypt", let salt = Data(base64Encoded: file.salt), !salt.isEmpty,
              let wrapped = Data(base64Encoded: file.wrapped), wrapped.count == 12 + 32 + 16 else {
            throw RepositoryError(.corruptObject, object: name, "the key file is damaged: its kdf, salt or wrapped key is not well-formed")
        }
        return file
    }

    /// Opens the repository with its master secret (recombined from Shamir shares).
    public static func open(backend: any Backend, masterSecret: SymmetricKey) async throws(RepositoryError) -> Repository {
        let config = try await readConfig(backend)
        guard RepositoryKeys.keyCheck(for: masterSecret) == config.keyCheck else {
            throw RepositoryError(.invalidShares, object: backend.location, "the recovered key is not this repository's")
        }
        return Repository(backend: backend, config: config, keys: RepositoryKeys(masterSecret: masterSecret, repositoryID: config.id), openedWithKey: nil)
    }

    static func readConfig(_ backend: any Backend) async throws(RepositoryError) -> RepositoryConfig {
        let data: Data
        do {
            data = try await backend.load(ObjectPath.config)
        } catch {
            if error.code == .notFound {
                throw RepositoryError(.noRepository, object: backend.location, "no Lifeboat repository here (no config); create one with `lifeboat repo init`")
            }
            throw RepositoryError(error)
        }
        let config: RepositoryConfig
        do {
            config = try JSONDecoder.repository.decode(RepositoryConfig.self, from: data)
        } catch {
            throw RepositoryError(.corruptObject, object: ObjectPath.config, "the repository config is damaged: \(RepositoryError.describeDecoding(error))")
        }
        guard config.version == 1 else {
            throw RepositoryError(.unsupportedVersion, object: ObjectPath.config, "repository format version \(config.version) is newer than this Lifeboat reads (1)")
        }
        return config
    }

    // MARK: keys

    /// Wraps the master secret under a new passphrase; returns the key id.
    public func addKey(passphrase: String, label: String, scrypt: KeyFile.ScryptParameters = .standard) async throws(RepositoryError) -> String {
        guard !passphrase.isEmpty else { throw RepositoryError(.invalidArgument, "the passphrase is empty") }
        return try await Self.writeKey(backend: backend, config: config, secret: keys.masterSecret, passphrase: passphrase, label: label, scrypt: scrypt)
    }

    /// The key files, newest first.
    public func listKeys() async throws(RepositoryError) -> [(id: String, file: KeyFile)] {
        var found: [(id: String, file: KeyFile)] = []
        for info in try await Self.list(backend, ObjectPath.keys) {
            let file = try Self.decodeKeyFile(try await Self.load(backend, info.name), name: info.name)
            found.append((String(info.name.dropFirst(ObjectPath.keys.count)), file))
        }
        return found.sorted { $0.file.created > $1.file.created }
    }

    /// Removes a key file; refuses the last one and the one in use (so a typo cannot lock everyone out).
    /// Works from the key files' names, so a damaged key file can be removed too.
    public func removeKey(id prefix: String) async throws(RepositoryError) -> String {
        let all = try await Self.list(backend, ObjectPath.keys).map { String($0.name.dropFirst(ObjectPath.keys.count)) }
        let matches = all.filter { $0.hasPrefix(prefix) }
        guard matches.count == 1, let key = matches.first else {
            throw RepositoryError(.invalidArgument, object: "key \(prefix)",
                                  matches.isEmpty ? "no such key; see `lifeboat key list`" : "the prefix matches \(matches.count) keys; give more of the id")
        }
        guard key != openedWithKey else {
            throw RepositoryError(.invalidArgument, object: "key \(key)", "this is the key you opened the repository with; open with another key to remove it")
        }
        guard all.count > 1 else {
            throw RepositoryError(.invalidArgument, object: "key \(key)", "it is the last key: removing it would make the repository unreadable")
        }
        do { try await backend.delete(ObjectPath.key(key)) } catch { throw RepositoryError(error) }
        return key
    }

    /// The master secret as Shamir shares, printable.
    public func splitMasterSecret(shares: Int, threshold: Int) throws(RepositoryError) -> [PrintableShare] {
        let secret = keys.masterSecret.withUnsafeBytes { Array($0) }
        do {
            return try Shamir.split(secret, shares: shares, threshold: threshold).map {
                PrintableShare(repositoryID: config.id, threshold: threshold, share: $0)
            }
        } catch {
            throw RepositoryError(.invalidArgument, error.description)
        }
    }

    /// Recombines printable shares into the master secret of the repository whose config is at `backend`,
    /// checked against its key-check value: a wrong or short set of shares is an error, never a wrong key.
    public static func combine(shares texts: [String], backend: any Backend) async throws(RepositoryError) -> SymmetricKey {
        let config = try await readConfig(backend)
        var shares: [PrintableShare] = []
        for text in texts { shares.append(try PrintableShare(parsing: text)) }
        guard let threshold = shares.first?.threshold else { throw RepositoryError(.invalidShares, "no shares given") }
        guard shares.allSatisfy({ $0.repositoryPrefix == String(config.id.prefix(8)) }) else {
            throw RepositoryError(.invalidShares, "a share belongs to another repository (its id does not start with \(config.id.prefix(8)))")
        }
        guard shares.allSatisfy({ $0.threshold == threshold }) else {
            throw RepositoryError(.invalidShares, "the shares come from different splits (their thresholds differ)")
        }
        guard shares.count >= threshold else {
            throw RepositoryError(.invalidShares, "\(shares.count) share\(shares.count == 1 ? "" : "s") given; this split needs \(threshold)")
        }
        let bytes: [UInt8]
        do { bytes = try Shamir.combine(shares.map(\.share)) } catch { throw RepositoryError(.invalidShares, error.description) }
        let secret = SymmetricKey(data: bytes)
        guard RepositoryKeys.keyCheck(for: secret) == config.keyCheck else {
            throw RepositoryError(.invalidShares, "the shares do not recombine to this repository's key: one is wrong or from another split")
        }
        return secret
    }

    static func writeKey(
        backend: any Backend, config: RepositoryConfig, secret: SymmetricKey, passphrase: String, label: String, scrypt: KeyFile.ScryptParameters
    ) async throws(RepositoryError) -> String {
        let keyID = randomID()
        let salt = Data((0..<32).map { _ in UInt8.random(in: 0...255) })
        do {
            let wrappingKey = try KDF.Scrypt.deriveKey(from: Data(passphrase.utf8), salt: salt, outputByteCount: 32,
                                                       rounds: scrypt.n, blockSize: scrypt.r, parallelism: scrypt.p)
            let box = try AES.GCM.seal(secret.withUnsafeBytes { Data($0) }, using: wrappingKey,
                                       authenticating: Data("lifeboat/v1 key \(keyID)".utf8))
            let file = KeyFile(version: 1, kdf: "scrypt", scrypt: scrypt, salt: salt.base64EncodedString(),
                               wrapped: box.combined!.base64EncodedString(), created: RepositoryTime.now(), label: label,
                               hostname: ProcessInfo.processInfo.hostName)
            try await backend.create(ObjectPath.key(keyID), data: try JSONEncoder.repository.encode(file))
        } catch let error as BackendError {
            throw RepositoryError(error)
        } catch {
            throw RepositoryError(.invalidArgument, object: ObjectPath.key(keyID), "cannot derive or wrap the key: \(error)")
        }
        return keyID
    }

    static func unwrap(_ file: KeyFile, keyID: String, passphrase: String) throws -> SymmetricKey {
        guard file.kdf == "scrypt", let salt = Data(base64Encoded: file.salt), let wrapped = Data(base64Encoded: file.wrapped) else {
            throw RepositoryError(.corruptObject, object: ObjectPath.key(keyID), "unknown key format")
        }
        let wrappingKey = try KDF.Scrypt.deriveKey(from: Data(passphrase.utf8), salt: salt, outputByteCount: 32,
                                                   rounds: file.scrypt.n, blockSize: file.scrypt.r, parallelism: file.scrypt.p)
        let secret = try AES.GCM.open(try AES.GCM.SealedBox(combined: wrapped), using: wrappingKey,
                                      authenticating: Data("lifeboat/v1 key \(keyID)".utf8))
        return SymmetricKey(data: secret)
    }

    // MARK: backend helpers that turn storage errors into repository errors

    static func load(_ backend: any Backend, _ name: String) async throws(RepositoryError) -> Data {
        do { return try await backend.load(name) } catch { throw RepositoryError(error) }
    }

    static func stat(_ backend: any Backend, _ name: String) async throws(RepositoryError) -> ObjectInfo? {
        do { return try await backend.stat(name) } catch { throw RepositoryError(error) }
    }

    static func list(_ backend: any Backend, _ prefix: String) async throws(RepositoryError) -> [ObjectInfo] {
        do { return try await backend.list(prefix: prefix) } catch { throw RepositoryError(error) }
    }
}
