import Crypto
import Foundation
@testable import LifeboatConnectors
import LifeboatCore
import LifeboatRepository
import Testing

/// The OpenBao connector's pure parts: the auto-restore decision table, key material and
/// fingerprints, and the streaming archive check (on archives the real `tar` and `gzip` write).
@Suite struct OpenBaoUnitTests {
    // MARK: auto-restore decision table, every row

    @Test(arguments: [
        // 0: a barrier Lifeboat initialised and never restored into is refused, never skipped.
        (AutoRestoreFacts(initializedNode: "http://a", unfinishedRestore: BootstrapRecord(snapshot: "abcd1234"), keys: .match), .refuse),
        // 1: an initialised barrier wins over everything, even a silent node and missing keys.
        (AutoRestoreFacts(initializedNode: "http://a", unreachableNodes: ["http://b"], keys: .missing), AutoRestoreAction.skip),
        (AutoRestoreFacts(initializedNode: "http://a", newestSnapshot: "abcd1234", keys: .match), .skip),
        // 2: a silent node: cannot prove there is no barrier.
        (AutoRestoreFacts(unreachableNodes: ["http://b"], newestSnapshot: "abcd1234", keys: .match), .refuse),
        // 3: no snapshot: abort whatever the keys.
        (AutoRestoreFacts(keys: .match), .abort),
        (AutoRestoreFacts(keys: .missing), .abort),
        (AutoRestoreFacts(keys: .unchecked), .abort),
        // 4–6: keys gone, wrong, unprovable.
        (AutoRestoreFacts(newestSnapshot: "abcd1234", keys: .missing), .refuse),
        (AutoRestoreFacts(newestSnapshot: "abcd1234", keys: .mismatch), .refuse),
        (AutoRestoreFacts(newestSnapshot: "abcd1234", keys: .unrecorded), .refuse),
        (AutoRestoreFacts(newestSnapshot: "abcd1234", keys: .unchecked), .refuse),
        // 7: the only row that restores.
        (AutoRestoreFacts(newestSnapshot: "abcd1234", keys: .match), .restore),
    ])
    func decisionTableRow(facts: AutoRestoreFacts, expected: AutoRestoreAction) {
        let decision = AutoRestoreDecision.decide(facts)
        #expect(decision.action == expected, "\(facts) → \(decision.reason)")
        #expect(decision.succeeded == (expected == .skip || expected == .restore))
        #expect(!decision.reason.isEmpty)
    }

    @Test func decisionReasonsNameTheCause() {
        #expect(AutoRestoreDecision.decide(AutoRestoreFacts(newestSnapshot: "abcd1234", keys: .missing, keysDetail: "/run/keys does not exist"))
            .reason.contains("/run/keys does not exist"))
        #expect(AutoRestoreDecision.decide(AutoRestoreFacts(unreachableNodes: ["http://b:8200"])).reason.contains("http://b:8200"))
        #expect(AutoRestoreDecision.decide(AutoRestoreFacts()).reason.contains("never initialises"))
    }

    // MARK: a node's own seal stanza

    @Test func readsTheTransitKeyFromAServerConfiguration() throws {
        let hcl = """
        storage "raft" { path = "/var/lib/openbao" }
        seal "transit" {
          address    = "https://kms.internal:8200/"
          token      = "s.secret-token"
          key_name   = "otherkey"
          mount_path = "transit-prod/"
        }
        """
        let key = try #require(try TransitSealKey.sealStanza(in: hcl, source: "openbao.hcl"))
        #expect(key == TransitSealKey(address: "https://kms.internal:8200", mount: "transit-prod", keyName: "otherkey"))
        #expect(try TransitSealKey.sealStanza(in: "seal \"transit\" {\n address = \"http://k:8200\"\n key_name = \"k\"\n}", source: "f")?.mount == "transit")
        #expect(try TransitSealKey.sealStanza(in: "storage \"raft\" {}\n", source: "f") == nil, "a Shamir node")
        let incomplete = #expect(throws: OpenBaoError.self) { try TransitSealKey.sealStanza(in: "seal \"transit\" { address = \"http://k\" }", source: "f") }
        #expect(incomplete?.message.contains("key_name") == true)
        #expect(incomplete?.message.contains("secret") == false)
    }

    // MARK: key material

    static func split(_ key: [UInt8], _ n: Int = 5, _ t: Int = 3) throws -> [String] {
        try Shamir.split(key, shares: n, threshold: t).map { Data($0.bytes).hexString }
    }

    static func randomKey() -> [UInt8] { (0..<32).map { _ in UInt8.random(in: 0...255) } }

    @Test func parsesHexBase64AndInitJSONToTheSameKey() throws {
        let key = Self.randomKey()
        let shares = try Shamir.split(key, shares: 5, threshold: 3)
        let hex = shares.map { Data($0.bytes).hexString }
        let base64 = shares.map { Data($0.bytes).base64EncodedString() }

        let lines = try UnsealKeyMaterial.parse("# three of five\n\(hex[0])\n\n\(base64[2])\n\(hex[4])\n", source: "file")
        #expect(try lines.combined(threshold: 3, source: "file") == key)

        let cli = try JSONSerialization.data(withJSONObject: ["unseal_keys_b64": base64, "unseal_keys_hex": hex, "unseal_threshold": 3, "root_token": "s.x"])
        #expect(try UnsealKeyMaterial.parse(String(decoding: cli, as: UTF8.self), source: "cli").combined(threshold: 3, source: "cli") == key)
        let api = try JSONSerialization.data(withJSONObject: ["keys": hex, "keys_base64": base64, "root_token": "s.x"])
        #expect(try UnsealKeyMaterial.parse(String(decoding: api, as: UTF8.self), source: "api").combined(source: "api") == key)

        let combined = try UnsealKeyMaterial.parse(Data(key).hexString, source: "combined")
        #expect(try combined.combined(threshold: 3, source: "combined") == key)
        #expect(try UnsealKeyMaterial.parse(keys: [Data(key).base64EncodedString()], source: "b64").combined(source: "b64") == key)
    }

    @Test func fingerprintIdentifiesTheGenerationWithoutRevealingIt() throws {
        let key = Self.randomKey()
        let fingerprint = UnsealKeyMaterial.fingerprint(ofCombinedKey: key)
        #expect(fingerprint.count == 32)
        #expect(fingerprint == UnsealKeyMaterial.fingerprint(ofCombinedKey: key))
        #expect(fingerprint != UnsealKeyMaterial.fingerprint(ofCombinedKey: Self.randomKey()))
        #expect(!Data(key).hexString.contains(fingerprint))
        // Any three of the five shares give the same fingerprint; a different split of the same key too.
        let shares = try Self.split(key)
        let a = try UnsealKeyMaterial.parse(keys: Array(shares[0..<3]), source: "a").combined(threshold: 3, source: "a")
        let b = try UnsealKeyMaterial.parse(keys: Array(shares[2..<5]), source: "b").combined(threshold: 3, source: "b")
        let other = try UnsealKeyMaterial.parse(keys: Array(try Self.split(key).prefix(3)), source: "c").combined(threshold: 3, source: "c")
        #expect(UnsealKeyMaterial.fingerprint(ofCombinedKey: a) == fingerprint)
        #expect(UnsealKeyMaterial.fingerprint(ofCombinedKey: b) == fingerprint)
        #expect(UnsealKeyMaterial.fingerprint(ofCombinedKey: other) == fingerprint)
    }

    @Test func tooFewMistypedOrMalformedKeysAreRefused() throws {
        let shares = try Self.split(Self.randomKey())
        let two = try UnsealKeyMaterial.parse(keys: Array(shares[0..<2]), source: "two")
        #expect(throws: OpenBaoError.self) { try two.combined(threshold: 3, source: "two") }

        // Four shares, one mistyped: the threshold-sized subsets disagree.
        var typo = Array(shares[0..<4])
        let last = typo[3]
        typo[3] = String(last.prefix(10)) + (last.dropFirst(10).first == "0" ? "1" : "0") + String(last.dropFirst(11))
        let error = #expect(throws: OpenBaoError.self) {
            try UnsealKeyMaterial.parse(keys: typo, source: "typo").combined(threshold: 3, source: "typo")
        }
        #expect(error?.code == .invalidKeyMaterial)

        #expect(throws: OpenBaoError.self) { try UnsealKeyMaterial.parse("not a key", source: "junk") }
        #expect(throws: OpenBaoError.self) { try UnsealKeyMaterial.parse(keys: ["abcd"], source: "short") }
        #expect(throws: OpenBaoError.self) { try UnsealKeyMaterial.parse("{\"root_token\":\"s.x\"}", source: "json") }
        // Errors never echo the key text.
        let refused = #expect(throws: OpenBaoError.self) { try UnsealKeyMaterial.parse(keys: [shares[0] + "ff"], source: "long") }
        #expect(refused.map { !$0.description.contains(shares[0]) } ?? false)
    }

    @Test func unsealKeysFollowTheThresholdTheNodeReports() throws {
        let key = Self.randomKey()
        let material = try UnsealKeyMaterial.parse(keys: Array(try Self.split(key).prefix(3)), source: "s")
        // A node reporting a stale 1/1 config gets the combined key itself.
        #expect(try material.unsealKeys(threshold: 1, shares: 1, source: "s") == [Data(key).hexString])
        // A node reporting 3/5 gets three shares that recombine to the key.
        let three = try material.unsealKeys(threshold: 3, shares: 5, source: "s")
        #expect(try UnsealKeyMaterial.parse(keys: three, source: "s").combined(source: "s") == key)
        // From a combined key alone, fresh shares are split for a 3/5 node.
        let fresh = try UnsealKeyMaterial(combinedKey: key).unsealKeys(threshold: 3, shares: 5, source: "k")
        #expect(fresh.count == 3)
        #expect(try UnsealKeyMaterial.parse(keys: fresh, source: "k").combined(source: "k") == key)
    }

    @Test func custodyRoundTripsThroughManifestFacts() {
        let shamir = SealCustody(sealType: .shamir, threshold: 3, shares: 5, fingerprint: "00112233445566778899aabbccddeeff")
        #expect(SealCustody(sourceFacts: shamir.sourceFacts) == shamir)
        #expect(shamir.sourceFacts["custody"] == "fingerprint")
        let unverified = SealCustody(sealType: .shamir, threshold: 3, shares: 5)
        #expect(unverified.sourceFacts["custody"] == "unverified")
        #expect(!unverified.verifiable)
        let transit = SealCustody(sealType: .transit, threshold: 1, shares: 1,
                                  transit: TransitSealKey(address: "http://kms:8200/", mount: "transit/", keyName: "unseal"), transitKeyVersion: 2)
        #expect(SealCustody(sourceFacts: transit.sourceFacts) == transit)
        #expect(transit.sourceFacts["transit_address"] == "http://kms:8200")
        #expect(transit.sourceFacts["transit_mount"] == "transit")
    }

    @Test func catalogTransitStanzaBuildsTheConnector() throws {
        let yaml = """
        version: 1
        stores:
          - name: openbao
            kind: openbao
            method: raft snapshot
            cadence: 1h
            priority: P0
            verify:
              - read: secret/data/app
            connection:
              address: http://127.0.0.1:8200
              token: env:BAO_TOKEN
              transit:
                address: http://kms.internal:8200
                key_name: autounseal
                token: env:TRANSIT_TOKEN
        """
        let store = try #require(try CatalogLoader.load(yaml: yaml, file: "t.yaml").catalog.store(named: "openbao"))
        let connector = try OpenBaoConnector(store: store, token: "t", unsealKeys: nil, transitToken: "tt")
        #expect(connector.transit == TransitSealKey(address: "http://kms.internal:8200", mount: "transit", keyName: "autounseal"))
        #expect(connector.verify == [.openbaoRead(path: "secret/data/app", field: nil)])
        guard case .openbao(let connection)? = store.connection else { Issue.record("no connection"); return }
        #expect(connection.transit?.token == .environment("TRANSIT_TOKEN"))

        // key_name is required.
        let missingKey = yaml.replacingOccurrences(of: "        key_name: autounseal\n", with: "")
        #expect(throws: CatalogError.self) { try CatalogLoader.load(yaml: missingKey, file: "t.yaml") }
    }

    // MARK: the archive check

    /// A raft-snapshot-shaped gzip tar written by the real `tar`; `edit` may alter files after SHA256SUMS is written.
    static func archive(stateSize: Int = 40_000, edit: (URL) throws -> Void = { _ in }) async throws -> Data {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("lifeboat-archive-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var generator = SystemRandomNumberGenerator()
        let state = Data((0..<stateSize).map { _ in UInt8.random(in: 0...255, using: &generator) })
        let meta = Data(#"{"Version":1,"ID":"bolt-snapshot","Index":1234,"Term":7,"Size":\#(stateSize)}"#.utf8)
        try state.write(to: directory.appendingPathComponent("state.bin"))
        try meta.write(to: directory.appendingPathComponent("meta.json"))
        let sums = "\(Data(SHA256.hash(data: meta)).hexString)  meta.json\n\(Data(SHA256.hash(data: state)).hexString)  state.bin\n"
        try Data(sums.utf8).write(to: directory.appendingPathComponent("SHA256SUMS"))
        try Data("\u{0A}\u{10}vault:v3:QUJDREVGR0hJSktMTU5PUFFSU1RVVldY".utf8).write(to: directory.appendingPathComponent("SHA256SUMS.sealed"))
        try edit(directory)
        let tar = try ExternalTool.locate("tar")
        let output = directory.appendingPathComponent("snapshot.tar.gz")
        _ = try await tar.run(["--format=ustar", "-C", directory.path, "-czf", output.path, "meta.json", "state.bin", "SHA256SUMS", "SHA256SUMS.sealed"]).check("tar")
        return try Data(contentsOf: output)
    }

    static func check(_ data: Data, blockSize: Int) throws(OpenBaoError) -> RaftSnapshotFacts {
        let check = RaftSnapshotCheck(object: "test archive")
        var offset = 0
        while offset < data.count {
            try check.consume(data.subdata(in: offset..<min(offset + blockSize, data.count)))
            offset += blockSize
        }
        return try check.finish()
    }

    @Test func acceptsAnIntactArchiveInAnyBlockSize() async throws {
        let data = try await Self.archive()
        for blockSize in [1, 511, 4096, 1 << 20] {
            let facts = try Self.check(data, blockSize: blockSize)
            #expect(facts.index == 1234)
            #expect(facts.term == 7)
            #expect(facts.stateSize == 40_000)
            #expect(facts.transitKeyVersion == 3)
        }
    }

    @Test func refusesAlteredTruncatedAndForeignArchives() async throws {
        // state.bin changed after SHA256SUMS was written.
        let altered = try await Self.archive { directory in
            var state = try Data(contentsOf: directory.appendingPathComponent("state.bin"))
            state[100] ^= 0x01
            try state.write(to: directory.appendingPathComponent("state.bin"))
        }
        let error = #expect(throws: OpenBaoError.self) { try Self.check(altered, blockSize: 4096) }
        #expect(error?.code == .tamperedSnapshot)
        #expect(error?.message.contains("state.bin") == true)

        // SHA256SUMS itself edited.
        let badSums = try await Self.archive { directory in
            try Data(("0" + String(repeating: "a", count: 63) + "  meta.json\n").utf8).write(to: directory.appendingPathComponent("SHA256SUMS"))
        }
        #expect(throws: OpenBaoError.self) { try Self.check(badSums, blockSize: 4096) }

        // No SHA256SUMS at all.
        let noSums = try await Self.archive { directory in
            try Data().write(to: directory.appendingPathComponent("SHA256SUMS"))
        }
        #expect(throws: OpenBaoError.self) { try Self.check(noSums, blockSize: 4096) }

        // Truncated stream, and something that is not gzip.
        let intact = try await Self.archive()
        #expect(throws: OpenBaoError.self) { try Self.check(intact.prefix(intact.count - 100), blockSize: 4096) }
        #expect(throws: OpenBaoError.self) { try Self.check(Data("just some text, not an archive".utf8), blockSize: 7) }
    }
}
