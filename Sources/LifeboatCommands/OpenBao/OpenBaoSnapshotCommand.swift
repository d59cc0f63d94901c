import ArgumentParser
import Foundation
import LifeboatConnectors
import LifeboatCore
import LifeboatPlatform
import LifeboatRepository

/// `lifeboat openbao snapshot --store NAME`
struct OpenBaoSnapshotCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshot",
        abstract: "Stream an OpenBao raft snapshot into the repository, checked and with its seal custody recorded.",
        discussion: """
        Streams GET sys/storage/raft/snapshot into the repository (no temporary file) and checks the archive's own SHA256SUMS against meta.json and state.bin as the bytes pass: a snapshot that fails is refused and leaves no snapshot behind (exit 3). The manifest records the raft index and term, cluster id, OpenBao version, seal type and key custody: for Shamir the threshold/shares and a fingerprint of the unseal key generation (from the catalog's unseal_keys, never the keys themselves; "unverified" when no keys are available), for Transit the key's address, mount and name.

        A snapshot's keys travel with it: restoring it anywhere needs the unseal keys (or Transit key) it was taken under. After rotating the unseal keys, take a snapshot at once with --reason rotation.

        Exit codes: 0 stored · 1 OpenBao unreachable, sealed or refused · 2 usage or catalog error · 3 the archive fails its own checksums · 12 the unseal keys given do not combine.

        Example:
          lifeboat openbao snapshot --store openbao --catalog lifeboat.yaml
          lifeboat openbao snapshot --store openbao --reason rotation --json
        """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var output: OutputOptions

    @Option(help: "The catalog store (kind openbao) to back up.")
    var store: String

    @Option(help: ArgumentHelp("File holding a token allowed to read sys/storage/raft/snapshot (default: the catalog's token).", valueName: "path"))
    var tokenFile: String?

    @Option(help: ArgumentHelp("The unseal keys, to fingerprint (default: the catalog's unseal_keys).", valueName: "path"))
    var unsealKeysFile: String?

    @Option(help: ArgumentHelp("File holding a Transit token, to prove the catalog's Transit key sealed the snapshot (default: the catalog's transit.token).", valueName: "path"))
    var transitTokenFile: String?

    @Option(help: "Why this snapshot was taken; recorded as the tag reason:<value> (e.g. rotation).")
    var reason: String?

    @Option(name: .customLong("tag"), help: "A tag for the snapshot (repeatable).")
    var tags: [String] = []

    @Option(help: "The recovery point this snapshot belongs to.")
    var point: String?

    struct Report: Encodable {
        var id: String
        var store: String
        var size: Int64
        var tags: [String]
        var source: [String: String]
    }

    func run() async throws {
        do {
            let resolver = try repository.storeResolver(showWarnings: false)
            let settings = try OpenBaoStoreSettings(resolver: resolver, store: store)
            guard let connection = settings.connection, let catalogStore = settings.store else {
                throw CommandFailure(.usage, "store \(store) has no connection")
            }
            let token = try settings.token(file: tokenFile, reference: connection.token, what: "the OpenBao token")
            let (keys, goneReason) = try settings.unsealKeys(file: unsealKeysFile, shares: [])
            let transitToken = try settings.token(file: transitTokenFile, reference: connection.transit?.token, what: "the Transit token")
            let connector = try OpenBaoConnector(store: catalogStore, token: token, unsealKeys: keys, transitToken: transitToken)
            let repo = try await repository.open(resolver: resolver)
            let progress = TransferProgress("snapshot", total: nil)
            let allTags = tags + (reason.map { ["reason:\($0)"] } ?? [])
            let manifest = try await connector.backup(into: repo, point: point, tags: allTags, progress: progress.update)
            progress.finish()
            let facts = OpenBaoFacts(manifest)
            if facts.sealType == .shamir, facts.custody == "unverified" {
                printError("lifeboat: warning: custody unverified: \(goneReason); the snapshot records t/n only")
            }
            if output.json {
                try printJSON(Report(id: manifest.id, store: manifest.store, size: manifest.size, tags: manifest.tags, source: manifest.source))
            } else {
                print(manifest.id)
                let custody = SealCustody(sourceFacts: manifest.source)?.summary ?? "unknown"
                printError("stored \(formatBytes(manifest.size)) of \(store) (raft index \(facts.raftIndex.map(String.init) ?? "?"), term \(facts.raftTerm.map(String.init) ?? "?")) as snapshot \(manifest.id.prefix(8)); custody: \(custody)")
            }
        }
    }
}
