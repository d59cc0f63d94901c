import Foundation
import LifeboatCore
import LifeboatEngine

/// The connectors the engine runs, one per store kind Lifeboat handles. The adapters live here, in
/// the commands, so the engine never depends on a concrete connector.
enum PlatformConnectors {
    /// `repositoryArguments`: how a child `lifeboat` (PostgreSQL's restore_command) opens the
    /// repository; `executable`: that child (this binary, unless the engine runs inside another program).
    static func all(catalogDirectory: URL, repositoryArguments: [String], executable: String = lifeboatExecutablePath()) -> [StoreKind: any StoreConnector] {
        [
            .postgres: PostgresStoreConnector(catalogDirectory: catalogDirectory, repositoryArguments: repositoryArguments, executable: executable),
            .openbao: OpenBaoStoreConnector(catalogDirectory: catalogDirectory),
            .etcd: EtcdStoreConnector(catalogDirectory: catalogDirectory),
        ]
    }
}
