import Foundation
@testable import LifeboatConnectors
import LifeboatCore
import LifeboatRepository
import LifeboatStorage
import LifeboatTesting
import Testing

/// Cross-cluster restore under a shared Transit seal: a third OpenBao holds the Transit key, the
/// source and target clusters are both sealed by it; the repository is on S3 (moto with SigV4 on).
@Suite struct OpenBaoTransitTests {
    typealias Fixture = OpenBaoFixture

    @Test func restoresAcrossTransitSealedClustersThroughS3AndRefusesWithoutTheTransitKey() async throws {
        try await MotoServer.withShared { moto in
            let directory = try Fixture.scratch("transit")
            defer { try? FileManager.default.removeItem(at: directory) }
            let transitToken = "transit-root-\(UUID().uuidString.prefix(8))"
            let provider = try await LocalOpenBao.startDev(in: directory.appendingPathComponent("provider"), rootToken: transitToken)
            defer { provider.stop() }
            let key = try await provider.enableTransit(keyName: "autounseal", token: transitToken)
            let seal = LocalOpenBao.Seal.transit(key, token: transitToken)
            async let startedSource = Fixture.node("source", in: directory, seal: seal, secrets: Fixture.sourceSecrets)
            async let startedTarget = Fixture.node("target", in: directory, seal: seal, shares: 1, threshold: 1,
                                                   secrets: ["target-only": ["mine": "target"]])
            let (source, target) = try await (startedSource, startedTarget)

            let bucket = MotoServer.uniqueBucketName("openbao")
            try await moto.createBucket(bucket)
            var configuration = moto.configuration(bucket: bucket, prefix: "lifeboat")
            configuration.compatibility = S3Compatibility(listWithoutSlashInQuery: true, retentionAfterMultipartComplete: true)
            let repository = try await Repository.initialize(backend: try S3Backend(configuration: configuration), passphrase: "s3 pass")

            let connector = OpenBaoConnector(store: "openbao", address: source.server.address, token: source.token,
                                             transit: key, transitToken: transitToken, verify: Fixture.checks)
            let manifest = try await connector.backup(into: repository)
            #expect(manifest.source["seal_type"] == "transit")
            #expect(manifest.source["transit_address"] == key.address)
            #expect(manifest.source["transit_mount"] == "transit")
            #expect(manifest.source["transit_key"] == "autounseal")
            #expect(manifest.source["transit_key_version"] == "1")
            #expect(manifest.source["seal_threshold"] == "3")
            #expect(!manifest.source.values.contains { $0.contains(transitToken) })

            // A catalog naming another Transit key than the one that seals the source: the backup is
            // refused (its custody record would be false) and leaves no snapshot.
            let otherKey = try await provider.enableTransit(mount: "transit-other", keyName: "autounseal", token: transitToken)
            var misnamed = connector
            misnamed.transit = otherKey
            let wrongKey = await #expect(throws: OpenBaoError.self) { try await misnamed.backup(into: repository) }
            #expect(wrongKey?.code == .transitUnavailable)
            #expect(try await repository.snapshotIDs() == [manifest.id])

            // The target holds its own data: refused without force, restored with it.
            let refused = await #expect(throws: OpenBaoError.self) {
                try await connector.restore(manifest, from: repository, into: OpenBaoRestoreTarget(address: target.server.address, token: target.token))
            }
            #expect(refused?.code == .targetNotEmpty)
            let report = try await connector.restore(manifest, from: repository,
                                                     into: OpenBaoRestoreTarget(address: target.server.address, token: target.token, force: true))
            #expect(report.custody == "verified: the Transit key decrypts the snapshot's sealed checksums")
            #expect(report.passed, "\(report.checks)")
            #expect(report.clusterID == manifest.source["cluster_id"])
            // The gate reports the cutover: the target's own token (given for --force) is refused now.
            let cutover = report.checks.filter { $0.check.hasPrefix("credential cutover") }
            #expect(cutover.count == 2 && cutover.allSatisfy(\.passed), "\(report.checks)")
            #expect(cutover.last?.detail == "auth/token/lookup-self answered 403")

            // Credential cutover: the source's root token works on the target, the target's own no longer does.
            #expect(try await target.client.send(.GET, "auth/token/lookup-self", token: source.token).status == 200)
            #expect(try await target.client.send(.GET, "auth/token/lookup-self", token: target.token).status == 403)
            // Data cutover: the source's paths read back, the target-only path is gone.
            for (path, data) in Fixture.sourceSecrets {
                #expect(try await target.client.readSecret(path, token: source.token) == data)
            }
            #expect(try await target.client.readSecret("target-only", token: source.token) == nil)

            // The auto-restore guard's Transit rows: reachable key → restore would go ahead on an empty node …
            let empty = try await LocalOpenBao.start(in: directory.appendingPathComponent("empty"), seal: seal, nodeID: "empty")
            let ready = try await AutoRestoreGuard.gather(nodes: [empty.address], repository: { repository }, store: "openbao",
                                                          keys: nil, keysGoneReason: "", transitToken: transitToken)
            #expect(AutoRestoreDecision.decide(ready.facts).action == .restore, "\(ready.facts)")

            // … and with the Transit provider gone, a restore is refused before the target is touched.
            provider.stop()
            let unreachable = await #expect(throws: OpenBaoError.self) {
                try await connector.restore(manifest, from: repository,
                                            into: OpenBaoRestoreTarget(address: target.server.address, token: source.token, force: true))
            }
            #expect(unreachable?.code == .transitUnavailable)
            #expect(try await target.client.readSecret("tenants/acme", token: source.token) == Fixture.sourceSecrets["tenants/acme"])
            let gone = try await AutoRestoreGuard.gather(nodes: [empty.address], repository: { repository }, store: "openbao",
                                                         keys: nil, keysGoneReason: "", transitToken: transitToken)
            #expect(gone.facts.keys == .missing)
            #expect(AutoRestoreDecision.decide(gone.facts).action == .refuse)
            #expect(try await empty.client.sealStatus().initialized == false)
        }
    }

    /// An infra OpenBao with two Transit keys, `autounseal` (the source's) and `otherkey` (the
    /// target's). Measured on 2.7.2 before the fix: the restore initialised the target, refused after,
    /// left it `initialized: true, sealed: false` with credentials nobody held; the guard then said
    /// `skip`; a restart with `key_name = "autounseal"` left it sealed for good ("failed to decrypt keys
    /// from storage"). Now: refused untouched where the target's key is known; otherwise the snapshot
    /// is restored anyway and the node opens it once its stanza names the snapshot's key.
    @Test func aTargetSealedByAnotherTransitKeyIsRefusedUntouchedOrLeftRestoredForTheRightSeal() async throws {
        let directory = try Fixture.scratch("transit-two-keys")
        defer { try? FileManager.default.removeItem(at: directory) }
        let transitToken = "transit-root-\(UUID().uuidString.prefix(8))"
        let provider = try await LocalOpenBao.startDev(in: directory.appendingPathComponent("provider"), rootToken: transitToken)
        defer { provider.stop() }
        let key = try await provider.enableTransit(keyName: "autounseal", token: transitToken)
        let otherKey = try await provider.createTransitKey(keyName: "otherkey", token: transitToken)
        async let startedSource = Fixture.node("source", in: directory, seal: .transit(key, token: transitToken), secrets: Fixture.sourceSecrets)
        async let startedTarget = LocalOpenBao.start(in: directory.appendingPathComponent("target"), seal: .transit(otherKey, token: transitToken), nodeID: "target")
        let (source, target) = try await (startedSource, startedTarget)
        defer { target.stop() }
        let repository = try await Fixture.repository(in: directory)
        let connector = OpenBaoConnector(store: "openbao", address: source.server.address, token: source.token,
                                         transit: key, transitToken: transitToken, verify: Fixture.checks)
        let manifest = try await connector.backup(into: repository)

        // Known first, from the target's own server configuration (--target-config / --node-config):
        // the restore and the guard refuse, the target is not initialised.
        let configured = try TransitSealKey.sealStanza(in: String(contentsOf: target.directory.appendingPathComponent("openbao.hcl"), encoding: .utf8),
                                                       source: "openbao.hcl")
        #expect(configured == otherKey)
        let early = await #expect(throws: OpenBaoError.self) {
            try await connector.restore(manifest, from: repository, into: OpenBaoRestoreTarget(address: target.address, transitSeal: configured))
        }
        #expect(early?.code == .sealMismatch)
        #expect(early?.message.contains("key_name = \"autounseal\"") == true, "\(early?.message ?? "")")
        let refused = try await AutoRestoreGuard.gather(nodes: [target.address], repository: { repository }, store: "openbao",
                                                        keys: nil, keysGoneReason: "", transitToken: transitToken, nodeSeal: configured)
        #expect(refused.facts.keys == .mismatch)
        #expect(AutoRestoreDecision.decide(refused.facts).action == .refuse)
        #expect(try await target.client.sealStatus().initialized == false)

        // The guard cannot see the target's key (seal-status does not name it): it decides restore.
        let guarded = try await AutoRestoreGuard.gather(nodes: [target.address], repository: { repository }, store: "openbao",
                                                        keys: nil, keysGoneReason: "", transitToken: transitToken)
        #expect(AutoRestoreDecision.decide(guarded.facts).action == .restore, "\(guarded.facts)")

        // Known only after the temporary initialisation: the snapshot is restored anyway, the node
        // seals itself, and the error says which key_name to set.
        let late = await #expect(throws: OpenBaoError.self) {
            try await connector.restore(manifest, from: repository, into: OpenBaoRestoreTarget(address: target.address))
        }
        #expect(late?.code == .sealMismatch)
        let advice = try #require(late?.message)
        #expect(advice.contains("address = \"\(key.address)\", mount_path = \"transit/\", key_name = \"autounseal\""), "\(advice)")
        #expect(advice.contains("was restored into it anyway"), "\(advice)")
        let left = try await target.client.sealStatus()
        #expect(left.initialized && left.sealed, "\(left)")
        #expect(!advice.contains(transitToken))

        // OpenBao accepted the snapshot, so the record of an unfinished restore is gone and the
        // guard's skip is true: the node holds the source's barrier.
        #expect(try await BootstrapRecord.load(from: repository, store: "openbao", node: target.address) == nil)
        let again = try await AutoRestoreGuard.gather(nodes: [target.address], repository: { repository }, store: "openbao",
                                                      keys: nil, keysGoneReason: "", transitToken: transitToken)
        #expect(AutoRestoreDecision.decide(again.facts).action == .skip)

        // Following the message: the stanza names autounseal, restart → unsealed with the source's data.
        try await target.restart(seal: .transit(key, token: transitToken))
        let opened = try await target.client.waitFor("unsealed with the snapshot's key", timeout: .seconds(60)) { !$0.sealed }
        try await target.client.waitUntilActive(timeout: .seconds(60))
        #expect(opened.clusterID == manifest.source["cluster_id"])
        #expect(opened.t == 3 && opened.n == 5, "the source's recovery split")
        for (path, data) in Fixture.sourceSecrets {
            #expect(try await target.client.readSecret(path, token: source.token) == data)
        }
    }
}
