import ArgumentParser
import Foundation
import LifeboatConnectors
import LifeboatCore
import LifeboatPlatform
import LifeboatRepository

/// `lifeboat restore openbao --snapshot ID --target URL`
struct RestoreOpenBaoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "openbao",
        abstract: "Restore an OpenBao raft snapshot into a target node and unseal it with the source's keys.",
        discussion: """
        Before touching the target: the archive is checked against its own SHA256SUMS; for Shamir the unseal keys offered are combined and their fingerprint compared with the snapshot's; for Transit the key must encrypt and decrypt and open the snapshot's sealed checksums; an initialised target is refused without --force. Then an empty target is initialised temporarily (1 of 1; those credentials stay in memory and die with the restore, and the repository records the initialisation until OpenBao accepts the snapshot), the snapshot is force-restored, Lifeboat waits for the node to seal itself (~6.5 s), unseals it with the SOURCE's key (sending the combined key when the node still reports its old seal config), and runs the gate: the store's verify checks with the source's token, and the credential cutover (the source's token accepted, the target's previous token refused).

        A Transit target sealed by another key than the snapshot's is refused untouched when --target-config names its server configuration; otherwise it can only be seen after the temporary initialisation: the snapshot is then restored anyway (the node seals itself) and the command fails naming the seal stanza (address, mount_path, key_name) to set; restarted with it, the node unseals itself with the restored data.

        Unseal keys come from --share (repeatable), --unseal-keys-file (hex or base64 keys one per line, or the JSON of `bao operator init -format=json`), or the catalog's unseal_keys. A single 32-byte key is taken as the combined key.

        Exit codes: 0 restored and every gate check passed · 1 the restore or a check failed, the target is initialised (no --force), the Transit key is unusable, or the target is sealed by another Transit key · 2 usage · 3 the snapshot fails its checksums · 12 the unseal keys are not the snapshot's.

        Example:
          lifeboat restore openbao --snapshot latest --store openbao --catalog lifeboat.yaml --target http://10.0.0.7:8200 --unseal-keys-file ./unseal.json
        """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var damaged: DamagedChoiceOptions
    @OptionGroup var output: OutputOptions

    @Option(help: "The snapshot: an id prefix, or latest.")
    var snapshot: String

    @Option(help: "The target node's address.")
    var target: String

    @Option(help: "The catalog store the snapshot belongs to: its verify checks, token and keys are used (default: the snapshot's store, when the catalog has it).")
    var store: String?

    @Option(help: ArgumentHelp("The source's unseal keys (hex/base64 lines or init JSON).", valueName: "path"))
    var unsealKeysFile: String?

    @Option(name: .customLong("share"), help: "An unseal share of the source, hex or base64 (repeatable).")
    var shares: [String] = []

    @Option(help: ArgumentHelp("File holding the source's token, for the verify checks (default: the catalog's token).", valueName: "path"))
    var tokenFile: String?

    @Option(help: ArgumentHelp("File holding a token of the target; needed only with --force on an initialised target.", valueName: "path"))
    var targetTokenFile: String?

    @Option(help: ArgumentHelp("File holding a Transit token (default: the catalog's transit.token).", valueName: "path"))
    var transitTokenFile: String?

    @Option(help: ArgumentHelp("The target's OpenBao server configuration (HCL): a Transit seal stanza naming another key than the snapshot's is refused before the target is touched.", valueName: "path"))
    var targetConfig: String?

    @Flag(help: "Overwrite an initialised target.")
    var force = false

    func validate() throws {
        if unsealKeysFile != nil, !shares.isEmpty {
            throw ValidationError("give the unseal keys once: --unseal-keys-file or --share, not both")
        }
    }

    func run() async throws {
        do {
            let resolver = try repository.storeResolver(showWarnings: false)
            let repo = damaged.applied(to: try await repository.open(resolver: resolver))
            let manifest = try await repo.resolveSnapshot(snapshot, store: store)
            var settings = try OpenBaoStoreSettings(resolver: resolver, store: nil)
            if let resolver {
                let name = store ?? manifest.store
                if store != nil || resolver.catalog.store(named: name) != nil {
                    settings = try OpenBaoStoreSettings(resolver: resolver, store: name)
                }
            }
            let connection = settings.connection
            let (keys, _) = try settings.unsealKeys(file: unsealKeysFile, shares: shares)
            let connector = OpenBaoConnector(
                store: manifest.store, address: connection?.address ?? OpenBaoFacts(manifest).address ?? "",
                token: try settings.token(file: tokenFile, reference: connection?.token, what: "the source token"),
                unsealKeys: keys, transit: settings.transit,
                transitToken: try settings.token(file: transitTokenFile, reference: connection?.transit?.token, what: "the Transit token"),
                verify: settings.store?.verify ?? [])
            let targetToken = try targetTokenFile.map { try readSecretFile($0, what: "the target token") }
            let report = try await connector.restore(
                manifest, from: repo,
                into: OpenBaoRestoreTarget(address: target, token: targetToken, force: force,
                                           transitSeal: try OpenBaoStoreSettings.nodeSeal(configuration: targetConfig)),
                progress: { progressLine($0) })
            if output.json {
                try printJSON(report)
            } else {
                print("restored snapshot \(report.snapshot.prefix(8)) (raft index \(report.raftIndex), term \(report.raftTerm)) into \(report.target) in \(String(format: "%.1f", report.seconds)) s")
                print("custody: \(report.custody)")
                if report.bootstrappedTarget { print("the empty target was initialised temporarily; its bootstrap credentials are gone") }
                if report.staleSealConfig { print("the target reported its old seal config after the restore; \(report.restarted ? "it was restarted" : "it was unsealed with the combined key")") }
                for check in report.checks { print("\(check.passed ? "ok  " : "FAIL") \(check.check): \(check.detail)") }
            }
            if !report.passed {
                throw CommandFailure(.failure, "\(report.checks.filter { !$0.passed }.count) gate check(s) failed on \(target)")
            }
        }
    }
}
