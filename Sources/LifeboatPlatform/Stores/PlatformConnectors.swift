import Foundation
import LifeboatCore
import LifeboatEngine

/// The connectors the engine runs, one per store kind Lifeboat handles. The adapters live here, in
/// the application layer, so the engine never depends on a concrete connector.
public enum PlatformConnectors {
    /// `repositoryArguments`: how a child `lifeboat` (PostgreSQL's restore_command) opens the
    /// repository; `executable`: that child (this binary, unless the engine runs inside another program).
    public static func all(resolver: StoreResolver, repositoryArguments: [String], executable: String = lifeboatExecutablePath()) -> [StoreKind: any StoreConnector] {
        [
            .postgres: PostgresStoreConnector(resolver: resolver, repositoryArguments: repositoryArguments, executable: executable),
            .openbao: OpenBaoStoreConnector(resolver: resolver),
            .etcd: EtcdStoreConnector(resolver: resolver),
            .s3: S3BucketStoreConnector(resolver: resolver),
            .files: FilesStoreConnector(),
        ]
    }
}
