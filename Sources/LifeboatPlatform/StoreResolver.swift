import Foundation
import LifeboatConnectors
import LifeboatCore

/// The one place a catalog store becomes a configured connector with its secrets resolved (the
/// catalog's references, relative to the catalog's directory). Every command and the adapters the
/// engine runs get their connectors here.
public struct StoreResolver: Sendable {
    public let catalog: Catalog
    /// Relative paths and secret references in the catalog resolve against this directory.
    public let directory: URL
    /// The catalog file, for messages.
    public let path: String

    public init(catalog: Catalog, directory: URL, path: String) {
        self.catalog = catalog
        self.directory = directory
        self.path = path
    }

    /// The catalog at `path`, loaded (and validated) once.
    public static func load(path: String) throws -> (resolver: StoreResolver, warnings: [CatalogDiagnostic]) {
        let loaded = try CatalogLoader.load(contentsOf: path)
        return (StoreResolver(catalog: loaded.catalog, directory: URL(fileURLWithPath: path).deletingLastPathComponent(), path: path), loaded.warnings)
    }

    /// Store `name`, which must be of `kind`; with no name, the catalog's only store of that kind.
    public func store(named name: String?, kind: StoreKind) throws(PlatformError) -> Store {
        let ofKind = catalog.stores.filter { $0.kind == kind }
        guard let name else {
            guard ofKind.count == 1 else {
                throw PlatformError(.catalog, object: path, "name the \(kind.rawValue) store with --store (the catalog has \(ofKind.count): \(ofKind.map(\.name).joined(separator: ", ")))")
            }
            return ofKind[0]
        }
        guard let store = catalog.store(named: name) else {
            throw PlatformError(.catalog, object: name, "\(path) has no store named \(name) (its \(kind.rawValue) stores: \(ofKind.map(\.name).joined(separator: ", ")))")
        }
        guard store.kind == kind, store.connection != nil else {
            throw PlatformError(.catalog, object: name, store.kind == kind
                ? "store \(name) has no connection in the catalog"
                : "store \(name) is of kind \(store.kind.rawValue), not \(kind.rawValue)")
        }
        return store
    }

    /// A secret the catalog refers to (nil reference: none).
    public func secret(_ reference: SecretReference?) throws(PlatformError) -> String? {
        try reference.map { reference throws(PlatformError) in try resolveSecret(reference, relativeTo: directory) }
    }

    public func postgres(_ store: Store) throws -> PostgresConnector {
        guard case .postgres(let connection)? = store.connection else { return try PostgresConnector(store: store, password: nil) }
        return try PostgresConnector(store: store, password: try secret(connection.password))
    }

    /// An etcd store's connector and the credentials a restored cluster still expects (auth travels inside the snapshot).
    public func etcd(_ store: Store) throws -> EtcdStoreAccess {
        guard case .etcd(let connection)? = store.connection else {
            return EtcdStoreAccess(store: store, connector: try EtcdConnector(store: store), username: nil, password: nil)
        }
        let password = try secret(connection.password)
        return EtcdStoreAccess(store: store, connector: try EtcdConnector(store: store, password: password), username: connection.username, password: password)
    }

    /// An OpenBao store's connector: a secret given in `overrides` (a flag) wins over the catalog's reference.
    /// Catalog unseal keys that cannot be read are not an error here: a backup then records custody
    /// as unverified (`keysUnavailable` says why), and a restore refuses a Shamir snapshot without them.
    public func openbao(_ store: Store, overrides: OpenBaoSecrets = OpenBaoSecrets()) throws -> (connector: OpenBaoConnector, keysUnavailable: String?) {
        guard case .openbao(let connection)? = store.connection else {
            return (try OpenBaoConnector(store: store, token: overrides.token, unsealKeys: overrides.unsealKeys, transitToken: overrides.transitToken), nil)
        }
        var keys = overrides.unsealKeys, keysUnavailable: String?
        if keys == nil { (keys, keysUnavailable) = try unsealKeys(connection) }
        let connector = try OpenBaoConnector(store: store, token: try overrides.token ?? secret(connection.token), unsealKeys: keys,
                                             transitToken: try overrides.transitToken ?? secret(connection.transit?.token))
        return (connector, keysUnavailable)
    }
}

extension StoreResolver {
    /// The unseal keys the catalog names for an OpenBao store, or nil and why they cannot be had.
    /// `strict`: keys that can be read but do not parse are an error (the commands that were handed
    /// them say so, exit 12), not an absence.
    public func unsealKeys(_ connection: OpenBaoConnection, strict: Bool = false) throws(OpenBaoError) -> (keys: UnsealKeyMaterial?, unavailable: String?) {
        guard let reference = connection.unsealKeys else { return (nil, "no unseal keys given and the catalog names none") }
        let text: String
        do {
            text = try resolveSecret(reference, relativeTo: directory)
        } catch {
            return (nil, "\(reference) cannot be read: \(error.message)")
        }
        do {
            return (try UnsealKeyMaterial.parse(text, source: reference.description), nil)
        } catch {
            if strict { throw error }
            return (nil, "\(reference): \(error)")
        }
    }
}

/// Secrets given on the command line for an OpenBao store; nil: the catalog's.
public struct OpenBaoSecrets: Sendable {
    public var token: String?
    public var unsealKeys: UnsealKeyMaterial?
    public var transitToken: String?
    public init(token: String? = nil, unsealKeys: UnsealKeyMaterial? = nil, transitToken: String? = nil) {
        self.token = token
        self.unsealKeys = unsealKeys
        self.transitToken = transitToken
    }
}

/// An etcd store, its connector, and the credentials its data expects.
public struct EtcdStoreAccess: Sendable {
    public var store: Store
    public var connector: EtcdConnector
    public var username: String?
    public var password: String?
}
