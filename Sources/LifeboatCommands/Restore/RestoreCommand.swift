import ArgumentParser

/// `lifeboat restore`: the whole platform in plan order (the default), or one store by kind.
struct RestoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Restore the platform in plan order, each step gated by its verify checks; or one store.",
        discussion: """
        Examples:
          lifeboat restore --latest --catalog lifeboat.yaml --dry-run
          lifeboat restore --point 3fa9c2d1 --catalog lifeboat.yaml --confirm "restore lifeboat-demo 3fa9c2d1"
          lifeboat restore postgres --store postgres --snapshot latest --to-host 127.0.0.1
          lifeboat restore openbao --snapshot latest --target http://127.0.0.1:8200 --unseal-keys-file ./unseal.json
          lifeboat restore etcd --snapshot latest --store etcd --data-dir /var/lib/etcd-restored
          lifeboat restore s3 object-store --snapshot latest --to-bucket platform-artifacts-restored
          lifeboat restore files nats-jetstream --snapshot latest --to /srv/restored/jetstream
        """,
        subcommands: [RestorePlatformCommand.self, RestorePostgresCommand.self, RestoreOpenBaoCommand.self, EtcdRestoreCommand.self,
                      RestoreS3Command.self, RestoreFilesCommand.self],
        defaultSubcommand: RestorePlatformCommand.self)
}
