import ArgumentParser
import Foundation
import LifeboatConnectors
import LifeboatRepository

/// `lifeboat openbao auto-restore --store NAME`: the init-step guard.
struct OpenBaoAutoRestoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "auto-restore",
        abstract: "Init-step guard: restore the newest snapshot into an empty OpenBao only when that is provably safe.",
        discussion: """
        Run before OpenBao's nodes join (an init container, a systemd ExecStartPre). Decision table, first matching row wins:

          barrier initialised on a node          → skip     (exit 0; the cluster has its data)
          a node did not answer                  → refuse   (exit 1; cannot prove no barrier exists)
          no snapshot of the store               → abort    (exit 1; never initialises an empty barrier)
          stored unseal keys gone                → refuse   (exit 1)
          keys are another key generation        → refuse   (exit 1)
          snapshot records no key fingerprint    → refuse   (exit 1)
          keys match the newest snapshot         → restore  (exit 0 when the restore and its checks pass)

        The stored keys are --unseal-keys-file or the catalog's unseal_keys; for a transit-sealed snapshot the Transit key must encrypt and decrypt instead. The decision and its reason are printed (with --json, as an object).

        Example:
          lifeboat openbao auto-restore --store openbao --catalog lifeboat.yaml --json
        """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var damaged: DamagedChoiceOptions
    @OptionGroup var output: OutputOptions

    @Option(help: "The catalog store (kind openbao).")
    var store: String

    @Option(name: .customLong("node"), help: "A node of the cluster (repeatable; default: the catalog's address). The first is restored into.")
    var nodes: [String] = []

    @Option(help: ArgumentHelp("The stored unseal keys (default: the catalog's unseal_keys).", valueName: "path"))
    var unsealKeysFile: String?

    @Option(help: ArgumentHelp("File holding the source's token, for the verify checks (default: the catalog's token).", valueName: "path"))
    var tokenFile: String?

    @Option(help: ArgumentHelp("File holding a Transit token (default: the catalog's transit.token).", valueName: "path"))
    var transitTokenFile: String?

    struct Report: Encodable {
        var decision: AutoRestoreAction
        var reason: String
        var facts: AutoRestoreFacts
        var snapshot: String?
        var restore: OpenBaoRestoreReport?
    }

    func run() async throws {
        try await withOpenBaoExitCodes {
            let settings = try OpenBaoStoreSettings(catalogPath: repository.catalogPath, store: store)
            guard let connection = settings.connection, let catalogStore = settings.store else {
                throw CommandFailure(.usage, "store \(store) has no connection")
            }
            let targets = nodes.isEmpty ? [connection.address] : nodes
            var keys: UnsealKeyMaterial?
            var goneReason = ""
            if let unsealKeysFile, !FileManager.default.fileExists(atPath: unsealKeysFile) {
                goneReason = "\(unsealKeysFile) does not exist"
            } else {
                do {
                    (keys, goneReason) = try settings.unsealKeys(file: unsealKeysFile, shares: [])
                } catch let error as OpenBaoError {
                    // Keys that no longer parse did not survive either: a decision, not a crash.
                    goneReason = error.description
                }
            }
            let transitToken = try? settings.token(file: transitTokenFile, reference: connection.transit?.token, what: "the Transit token")
            let (facts, newest) = try await AutoRestoreGuard.gather(
                nodes: targets, repository: { damaged.applied(to: try await repository.open()) }, store: store, keys: keys, keysGoneReason: goneReason,
                transit: settings.transit, transitToken: transitToken ?? nil)
            let decision = AutoRestoreDecision.decide(facts)
            var report = Report(decision: decision.action, reason: decision.reason, facts: facts, snapshot: newest?.id)
            if !output.json { print("\(decision.action.rawValue): \(decision.reason)") }
            if decision.action == .restore, let newest {
                let connector = try OpenBaoConnector(
                    store: catalogStore, token: try settings.token(file: tokenFile, reference: connection.token, what: "the source token"),
                    unsealKeys: keys, transitToken: transitToken ?? nil)
                let restored = try await connector.restore(newest, from: try await repository.open(), into: OpenBaoRestoreTarget(address: targets[0]),
                                                           progress: { progressLine($0) })
                report.restore = restored
                if !output.json {
                    print("restored snapshot \(newest.id.prefix(8)) (raft index \(restored.raftIndex)) into \(targets[0]) in \(String(format: "%.1f", restored.seconds)) s")
                    for check in restored.checks { print("\(check.passed ? "ok  " : "FAIL") \(check.check): \(check.detail)") }
                }
                if output.json { try printJSON(report) }
                if !restored.passed { throw CommandFailure(.failure, "the restore finished but a verify check failed") }
                return
            }
            if output.json { try printJSON(report) }
            if !decision.succeeded { throw ExitCode(ExitStatus.failure.rawValue) }
        }
    }
}
