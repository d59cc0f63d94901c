import ArgumentParser
import Foundation
import LifeboatConnectors
import LifeboatCore
import LifeboatRepository

/// `lifeboat postgres …`: PostgreSQL backups and WAL archiving.
struct PostgresCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "postgres",
        abstract: "Back up PostgreSQL stores (logical or physical) and archive their WAL for point-in-time recovery.",
        discussion: """
        Restores are `lifeboat restore postgres`. See docs/connectors.md (PostgreSQL) for archive_command and restore_command.
        """,
        subcommands: [PostgresBackupCommand.self, WALPushCommand.self, WALFetchCommand.self, RecoveryWindowCommand.self, WALPruneCommand.self])
}

/// `--store NAME`: a postgres store of the catalog.
struct PostgresStoreOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The catalog store (kind postgres).", valueName: "name"))
    var store: String

    func connector(_ repository: RepositoryOptions) throws -> PostgresConnector {
        try postgresConnector(store: store, repository: repository)
    }
}

/// The store's connector, its connection password resolved from the catalog's reference.
func postgresConnector(store name: String, repository: RepositoryOptions) throws -> PostgresConnector {
    guard let path = repository.catalogPath else {
        throw CommandFailure(.usage, "the store's connection comes from the catalog: pass --catalog or set LIFEBOAT_CATALOG")
    }
    let catalog = try CatalogLoader.load(contentsOf: path).catalog
    guard let store = catalog.store(named: name) else {
        throw CommandFailure(.usage, "\(path): no store named \(name)")
    }
    var password: String?
    if case .postgres(let connection)? = store.connection, let reference = connection.password {
        password = try resolve(reference, relativeTo: URL(fileURLWithPath: path).deletingLastPathComponent())
    }
    return try PostgresConnector(store: store, password: password)
}

extension RepositoryOptions {
    /// The flags a child Lifeboat (PostgreSQL's archive_command / restore_command) needs to open
    /// the same repository: absolute paths, since PostgreSQL runs it from its data directory.
    /// Without --password-file the child reads $LIFEBOAT_PASSWORD, inherited from the server's environment.
    func childArguments() throws -> [String] {
        func absolute(_ path: String) -> String {
            path.hasPrefix("/") || path.hasPrefix("s3://") ? path : FileManager.default.currentDirectoryPath + "/" + path
        }
        var arguments: [String] = []
        if let catalogPath { arguments += ["--catalog", absolute(catalogPath)] }
        if repository != nil || catalogPath == nil { arguments += ["--repo", absolute(try location())] }
        if let passwordFile { arguments += ["--password-file", absolute(passwordFile)] }
        return arguments
    }
}

/// This binary's absolute path, for the commands PostgreSQL runs.
func lifeboatExecutablePath() -> String {
    if let path = Bundle.main.executablePath { return URL(fileURLWithPath: path).resolvingSymlinksInPath().path }
    return URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path
}
