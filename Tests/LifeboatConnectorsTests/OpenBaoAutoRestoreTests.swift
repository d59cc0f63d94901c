import Foundation
@testable import LifeboatConnectors
import LifeboatCore
import LifeboatRepository
import Testing

/// Every row of the auto-restore decision table against real servers: the guard decides from what
/// the nodes and the repository say, and only the `restore` row changes the empty node.
@Suite struct OpenBaoAutoRestoreTests {
    typealias Fixture = OpenBaoFixture

    /// A Shamir source (3 of 5) holding the fixture's secrets, an uninitialised node, a repository and the source's keys.
    static func sourceAndEmptyNode(in directory: URL) async throws -> (Fixture.Node, LocalOpenBao, Repository, UnsealKeyMaterial) {
        async let startedSource = Fixture.node("source", in: directory, secrets: Fixture.sourceSecrets)
        async let startedEmpty = LocalOpenBao.start(in: directory.appendingPathComponent("empty"), nodeID: "empty")
        let (source, empty) = try await (startedSource, startedEmpty)
        return (source, empty, try await Fixture.repository(in: directory), try UnsealKeyMaterial.parse(keys: source.initResult.keys, source: "stored keys"))
    }

    @Test func everyRowAgainstRealServers() async throws {
        let directory = try Fixture.scratch("auto")
        defer { try? FileManager.default.removeItem(at: directory) }
        let (source, empty, repository, keys) = try await Self.sourceAndEmptyNode(in: directory)
        let nodes = [empty.address]

        func decide(nodes: [String] = nodes, keys: UnsealKeyMaterial?) async throws -> (AutoRestoreDecision, AutoRestoreFacts, SnapshotManifest?) {
            let (facts, newest) = try await AutoRestoreGuard.gather(nodes: nodes, repository: { repository }, store: "openbao",
                                                                    keys: keys, keysGoneReason: "the key file does not exist")
            return (AutoRestoreDecision.decide(facts), facts, newest)
        }
        func emptyIsUntouched() async throws -> Bool { try await !empty.client.sealStatus().initialized }

        // Row 3: no snapshot → abort, and the node stays uninitialised.
        var (decision, facts, _) = try await decide(keys: keys)
        #expect(decision.action == .abort, "\(facts)")
        #expect(try await emptyIsUntouched())

        // Row 6: the only snapshot records no fingerprint (taken without keys) → refuse.
        let connector = OpenBaoConnector(store: "openbao", address: source.server.address, token: source.token, verify: Fixture.checks)
        _ = try await connector.backup(into: repository)
        (decision, facts, _) = try await decide(keys: keys)
        #expect(decision.action == .refuse)
        #expect(facts.keys == .unrecorded)

        // With a fingerprinted snapshot newest:
        var withKeys = connector
        withKeys.unsealKeys = keys
        let newest = try await withKeys.backup(into: repository)

        // Row 1: a node with an initialised barrier → skip (even listed after an empty one).
        (decision, facts, _) = try await decide(nodes: [empty.address, source.server.address], keys: keys)
        #expect(decision.action == .skip)
        #expect(facts.initializedNode == source.server.address)

        // Row 2: a node that does not answer → refuse.
        let silent = "http://127.0.0.1:\(try freeLoopbackPort())"
        (decision, facts, _) = try await decide(nodes: [empty.address, silent], keys: keys)
        #expect(decision.action == .refuse)
        #expect(facts.unreachableNodes == [silent])

        // Row 4: the stored keys are gone → refuse, naming why.
        (decision, facts, _) = try await decide(keys: nil)
        #expect(decision.action == .refuse)
        #expect(facts.keys == .missing)
        #expect(decision.reason.contains("does not exist"))

        // Row 5: keys of another generation → refuse.
        let otherKey = (0..<32).map { _ in UInt8.random(in: 0...255) }
        let other = try UnsealKeyMaterial.parse(keys: Shamir.split(otherKey, shares: 5, threshold: 3).map { Data($0.bytes).base64EncodedString() },
                                                source: "other")
        (decision, facts, _) = try await decide(keys: other)
        #expect(decision.action == .refuse)
        #expect(facts.keys == .mismatch)
        #expect(try await emptyIsUntouched())

        // Row 7: no barrier, the snapshot, matching keys → restore; the data comes back.
        let matched: SnapshotManifest?
        (decision, facts, matched) = try await decide(keys: keys)
        #expect(decision.action == .restore, "\(decision.reason)")
        #expect(matched?.id == newest.id)
        // This target is a process we started: a stale seal config is handled by restarting it.
        let report = try await withKeys.restore(try #require(matched), from: repository,
                                                into: OpenBaoRestoreTarget(address: empty.address, restart: { try await empty.restart() }))
        #expect(report.passed)
        #expect(report.bootstrappedTarget)
        #expect(report.staleSealConfig && report.restarted, "a 1/1 bootstrap reports its old seal config after the restore (PROTOCOLS.md): restarted")
        #expect(try await empty.client.readSecret("tenants/acme", token: source.token) == Fixture.sourceSecrets["tenants/acme"])

        // And once restored, the guard skips: the barrier is initialised now.
        (decision, _, _) = try await decide(keys: keys)
        #expect(decision.action == .skip)
    }

    /// A crash between Lifeboat's temporary `sys/init` and OpenBao accepting the snapshot leaves an
    /// initialised, empty barrier whose credentials died with the process. Before the fix the guard
    /// answered `skip` (exit 0) for it; the repository's record makes it refuse, naming what to do.
    @Test func aBarrierLifeboatInitialisedButNeverRestoredIsRefusedNotSkipped() async throws {
        let directory = try Fixture.scratch("auto-crash")
        defer { try? FileManager.default.removeItem(at: directory) }
        let (source, empty, repository, keys) = try await Self.sourceAndEmptyNode(in: directory)
        let connector = OpenBaoConnector(store: "openbao", address: source.server.address, token: source.token,
                                         unsealKeys: keys, verify: Fixture.checks)
        let manifest = try await connector.backup(into: repository)

        // The node dies right after the bootstrap, before the snapshot-force.
        let died = await #expect(throws: OpenBaoError.self) {
            try await connector.restore(manifest, from: repository, into: OpenBaoRestoreTarget(address: empty.address), progress: { line in
                if line.hasPrefix("restoring raft index") { empty.stop() }
            })
        }
        #expect(died?.code == .unreachable, "\(String(describing: died))")
        try await empty.restart()
        let status = try await empty.client.sealStatus()
        #expect(status.initialized && status.t == 1 && status.n == 1, "\(status)")

        let (facts, _) = try await AutoRestoreGuard.gather(nodes: [empty.address], repository: { repository }, store: "openbao",
                                                           keys: keys, keysGoneReason: "")
        let decision = AutoRestoreDecision.decide(facts)
        #expect(decision.action == .refuse, "\(decision)")
        #expect(facts.unfinishedRestore?.snapshot == manifest.id)
        #expect(decision.reason.contains("Lifeboat initialised it"), "\(decision.reason)")
        #expect(decision.reason.contains("empty its raft storage directory"))

        // The record is per node and per store: the source's own 3-of-5 barrier still skips.
        let (sourceFacts, _) = try await AutoRestoreGuard.gather(nodes: [source.server.address], repository: { repository }, store: "openbao",
                                                                 keys: keys, keysGoneReason: "")
        #expect(AutoRestoreDecision.decide(sourceFacts).action == .skip)
        #expect(sourceFacts.unfinishedRestore == nil)
    }
}
