import Foundation
import LifeboatCore
import LifeboatEngine
import LifeboatRepository

/// What every whole-platform use case needs: the catalog (loaded once), the repository and the
/// connectors, each configured by the one `StoreResolver`.
public struct PlatformContext: Sendable {
    public var resolver: StoreResolver
    public var repository: Repository
    public var connectors: [StoreKind: any StoreConnector]

    public var catalog: Catalog { resolver.catalog }
    /// Relative paths and secret references in the catalog resolve against this directory.
    public var directory: URL { resolver.directory }

    /// `repositoryArguments`: how a child `lifeboat` (PostgreSQL's restore_command) opens the same repository.
    public init(resolver: StoreResolver, repository: Repository, repositoryArguments: [String], executable: String = lifeboatExecutablePath()) {
        self.init(resolver: resolver, repository: repository,
                  connectors: PlatformConnectors.all(resolver: resolver, repositoryArguments: repositoryArguments, executable: executable))
    }

    public init(resolver: StoreResolver, repository: Repository, connectors: [StoreKind: any StoreConnector]) {
        self.resolver = resolver
        self.repository = repository
        self.connectors = connectors
    }

    public func preparation() throws -> RestorePreparation {
        try RestorePreparation(catalog: catalog, repository: repository, connectors: connectors)
    }
}
