import ArgumentParser
import Foundation
import LifeboatConnectors
import LifeboatPlatform
import LifeboatRepository
import LifeboatErrors

/// `lifeboat openbao auto-restore --store NAME`: the init-step guard.
struct OpenBaoAutoRestoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "auto-restore",
        abstract: "Init-step guard: restore the newest snapshot into an empty OpenBao only when that is provably safe.",
        discussion: """
        Run before OpenBao's nodes join (an init container, a systemd ExecStartPre). Decision table, first matching row wins:

          a node Lifeboat initialised, restore   → refuse   (exit 1; its barrier is empty: wipe and re-run)
            never accepted (repository record)
          barrier initialised on a node          → skip     (exit 0; the cluster has its data)
          a node did not answer                  → refuse   (exit 1; cannot prove no barrier exists)
          no snapshot of the store               → abort    (exit 1; never initialises an empty barrier)
          stored unseal keys gone                → refuse   (exit 1)
          keys are another key generation        → refuse   (exit 1; Transit: --node-config names another key)
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

    @Option(help: ArgumentHelp("The first node's OpenBao server configuration (HCL), as an init container sees it: a Transit seal stanza naming another key than the snapshot's is refused (row 5) before anything is touched.", valueName: "path"))
    var nodeConfig: String?

    struct Report: Encodable {
        var decision: AutoRestoreAction
        var reason: String
        var facts: AutoRestoreFacts
        var snapshot: String?
        var restore: OpenBaoRestoreReport?
        /// Why the restore branch (or gathering the facts) failed, when it did.
        var error: String?
    }

    func run() async throws {
        do {
            let resolver = try repository.storeResolver(showWarnings: false)
            let settings = try OpenBaoStoreSettings(resolver: resolver, store: store)
            guard let connection = settings.connection, let catalogStore = settings.store else {
                throw CommandFailure(.usage, "store \(store) has no connection")
            }
            let targets = nodes.isEmpty ? [connection.address] : nodes
            var keys: UnsealKeyMaterial?
            var goneReason = ""
            if let unsealKeysFile, !FileManager.default.fileExists(atPath: unsealKeysFile) {
                goneReason = "\(unsealKeysFile) does not exist"
            } else {
                // Keys that can no longer be read or parsed (an empty, binary or garbled file) did not
                // survive either: a decision (row 4), not a usage error, wherever the file is named.
                do {
                    (keys, goneReason) = try settings.unsealKeys(file: unsealKeysFile, shares: [])
                } catch let error as OpenBaoError {
                    goneReason = error.description
                } catch let error as PlatformError {
                    goneReason = error.message
                } catch let error as CommandFailure {
                    goneReason = error.message
                }
            }
            let transitToken = try? settings.token(file: transitTokenFile, reference: connection.transit?.token, what: "the Transit token")
            let nodeSeal = try OpenBaoStoreSettings.nodeSeal(configuration: nodeConfig)
            let facts: AutoRestoreFacts
            let newest: SnapshotManifest?
            do {
                (facts, newest) = try await AutoRestoreGuard.gather(
                    nodes: targets, repository: { damaged.applied(to: try await repository.open(resolver: resolver)) }, store: store, keys: keys, keysGoneReason: goneReason,
                    transit: settings.transit, transitToken: transitToken ?? nil, nodeSeal: nodeSeal)
            } catch {
                // Without the facts nothing may be decided but a refusal; the error keeps its exit code.
                let reason = "the facts could not be gathered: \(error)"
                if output.json {
                    try printJSON(Report(decision: .refuse, reason: reason, facts: AutoRestoreFacts(), error: "\(error)"))
                } else {
                    print("refuse: \(reason)")
                }
                throw error
            }
            let decision = AutoRestoreDecision.decide(facts)
            var report = Report(decision: decision.action, reason: decision.reason, facts: facts, snapshot: newest?.id)
            if !output.json { print("\(decision.action.rawValue): \(decision.reason)") }
            if decision.action == .restore, let newest {
                let restored: OpenBaoRestoreReport
                do {
                    let connector = try OpenBaoConnector(
                        store: catalogStore, token: try settings.token(file: tokenFile, reference: connection.token, what: "the source token"),
                        unsealKeys: keys, transitToken: transitToken ?? nil)
                    restored = try await connector.restore(newest, from: try await repository.open(resolver: resolver), into: OpenBaoRestoreTarget(address: targets[0], transitSeal: nodeSeal),
                                                           progress: { progressLine($0) })
                } catch {
                    report.error = "\(error)"
                    if output.json { try printJSON(report) }
                    throw error
                }
                report.restore = restored
                if !output.json {
                    print("restored snapshot \(newest.id.prefix(8)) (raft index \(restored.raftIndex)) into \(targets[0]) in \(String(format: "%.1f", restored.seconds)) s")
                    for check in restored.checks { print("\(check.passed ? "ok  " : "FAIL") \(check.check): \(check.detail)") }
                }
                if !restored.passed { report.error = "the restore finished but a gate check failed" }
                if output.json { try printJSON(report) }
                if !restored.passed { throw CommandFailure(.failure, "the restore finished but a gate check failed") }
                return
            }
            if output.json { try printJSON(report) }
            if !decision.succeeded { throw ExitCode(ExitStatus.failure.rawValue) }
        }
    }
}
