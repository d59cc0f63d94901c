import ArgumentParser
import Foundation
import LifeboatConnectors
import LifeboatCore
import LifeboatPlatform
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

    /// The store's connector, configured by the catalog (its password resolved).
    func connector(_ repository: RepositoryOptions) throws -> PostgresConnector {
        let (store, resolver) = try repository.catalogStore(store, kind: .postgres)
        return try resolver.postgres(store)
    }
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
