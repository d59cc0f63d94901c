import Foundation
import LifeboatTesting
import Testing

/// `lifeboat openbao snapshot`, `lifeboat restore openbao` and `lifeboat openbao auto-restore` as a
/// user runs them, against real OpenBao raft nodes (Shamir, 5 shares, threshold 3).
@Suite struct OpenBaoCommandTests {
    typealias CLI = CommandLineTests

    @Test func snapshotRestoreAndAutoRestoreFromTheCommandLine() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("lifeboat-cli-openbao-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        async let startedSource = LocalOpenBao.start(in: directory.appendingPathComponent("source"), nodeID: "source")
        async let startedTarget = LocalOpenBao.start(in: directory.appendingPathComponent("target"), nodeID: "target")
        let (source, target) = try await (startedSource, startedTarget)
        let initResult = try await source.initialize(shares: 5, threshold: 3)
        try await source.enableKV(token: initResult.rootToken)
        try await source.client.writeSecret("demo/tenants/acme", ["db_password": "acme-secret"], token: initResult.rootToken)

        // The operator's files: `bao operator init -format=json` output and a token file.
        let keysJSON = try JSONSerialization.data(withJSONObject: ["unseal_keys_hex": initResult.keys, "unseal_threshold": 3, "unseal_shares": 5])
        try keysJSON.write(to: directory.appendingPathComponent("unseal.json"))
        try Data((initResult.rootToken + "\n").utf8).write(to: directory.appendingPathComponent("token"))
        let catalog = directory.appendingPathComponent("lifeboat.yaml")
        try """
        version: 1
        repository:
          url: repository
          password: env:LIFEBOAT_PASSWORD
        stores:
          - name: openbao
            kind: openbao
            method: raft snapshot
            cadence: 1h
            priority: P0
            verify:
              - read: secret/data/demo/tenants/acme
                field: db_password
            connection:
              address: \(source.address)
              token: file:token
              unseal_keys: file:unseal.json
        """.write(to: catalog, atomically: true, encoding: .utf8)
        let env = ["LIFEBOAT_PASSWORD": "cli openbao pass"]
        let c = ["-c", catalog.path]
        let created = try await CLI.run(["repo", "init"] + c, environment: env)
        #expect(created.status == 0, "\(created.stderr)")

        let snapshot = try await CLI.run(["openbao", "snapshot", "--store", "openbao", "--reason", "rotation", "--json"] + c, environment: env)
        #expect(snapshot.status == 0, "\(snapshot.stderr)")
        let stored = try #require(try JSONSerialization.jsonObject(with: snapshot.stdoutData) as? [String: Any])
        let facts = try #require(stored["source"] as? [String: String])
        #expect(facts["seal_type"] == "shamir")
        #expect(facts["custody"] == "fingerprint")
        #expect(stored["tags"] as? [String] == ["reason:rotation"])
        #expect(!snapshot.stdout.contains(initResult.rootToken))
        #expect(!initResult.keys.contains { snapshot.stdout.contains($0) || snapshot.stderr.contains($0) })

        // Wrong shares: refused with exit 12 before the target is touched.
        let stranger = (0..<3).map { _ in (0..<33).map { _ in String(format: "%02x", UInt8.random(in: 1...255)) }.joined() }
        let wrong = try await CLI.run(["restore", "openbao", "--snapshot", "latest", "--target", target.address]
                                      + stranger.flatMap { ["--share", $0] } + c, environment: env)
        #expect(wrong.status == 12, "\(wrong.stderr)")
        #expect(try await target.client.sealStatus().initialized == false)

        // The real restore, keys from the catalog.
        let restored = try await CLI.run(["restore", "openbao", "--snapshot", "latest", "--target", target.address, "--json"] + c, environment: env)
        #expect(restored.status == 0, "\(restored.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: restored.stdoutData) as? [String: Any])
        #expect((report["checks"] as? [[String: Any]])?.first?["passed"] as? Bool == true)
        #expect(try await target.client.readSecret("demo/tenants/acme", token: initResult.rootToken) == ["db_password": "acme-secret"])

        // A second restore into the now initialised target: refused without --force (exit 1).
        let again = try await CLI.run(["restore", "openbao", "--snapshot", "latest", "--target", target.address] + c, environment: env)
        #expect(again.status == 1)
        #expect(again.stderr.contains("--force"), "\(again.stderr)")
        // With --force, and the keys from the operator's own file (the catalog's is gone): restored again.
        try await target.client.writeSecret("demo/tenants/target-only", ["x": "y"], token: initResult.rootToken)
        let operatorKeys = directory.appendingPathComponent("operator-keys.json")
        try FileManager.default.moveItem(at: directory.appendingPathComponent("unseal.json"), to: operatorKeys)
        let forced = try await CLI.run(["restore", "openbao", "--snapshot", "latest", "--target", target.address, "--force",
                                        "--unseal-keys-file", operatorKeys.path,
                                        "--target-token-file", directory.appendingPathComponent("token").path] + c, environment: env)
        try FileManager.default.moveItem(at: operatorKeys, to: directory.appendingPathComponent("unseal.json"))
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(try await target.client.readSecret("demo/tenants/target-only", token: initResult.rootToken) == nil, "the snapshot's data replaced the target's")
        #expect(try await target.client.readSecret("demo/tenants/acme", token: initResult.rootToken) == ["db_password": "acme-secret"])

        // The guard: the catalog's node is initialised → skip, exit 0.
        let skip = try await CLI.run(["openbao", "auto-restore", "--store", "openbao", "--json"] + c, environment: env)
        #expect(skip.status == 0, "\(skip.stderr)")
        let skipped = try #require(try JSONSerialization.jsonObject(with: skip.stdoutData) as? [String: Any])
        #expect(skipped["decision"] as? String == "skip")

        // An empty node with the key file gone → refuse, exit 1, the node left uninitialised.
        let empty = try await LocalOpenBao.start(in: directory.appendingPathComponent("empty"), nodeID: "empty")
        let refuse = try await CLI.run(["openbao", "auto-restore", "--store", "openbao", "--node", empty.address,
                                        "--unseal-keys-file", directory.appendingPathComponent("gone.json").path] + c, environment: env)
        #expect(refuse.status == 1)
        #expect(refuse.stdout.hasPrefix("refuse: "), "\(refuse.stdout)")
        #expect(refuse.stdout.contains("gone.json does not exist"))
        #expect(try await empty.client.sealStatus().initialized == false)

        // An empty or binary key file is keys that did not survive either: row 4 (refuse, exit 1),
        // the decision printed, in text and as JSON; before, it was a usage error (exit 2), no decision.
        let emptyKeys = directory.appendingPathComponent("empty-keys")
        try Data().write(to: emptyKeys)
        let binaryKeys = directory.appendingPathComponent("binary-keys")
        try Data([0xff, 0xfe, 0x00, 0xc3, 0x28, 0x9f]).write(to: binaryKeys)
        for file in [emptyKeys, binaryKeys] {
            let text = try await CLI.run(["openbao", "auto-restore", "--store", "openbao", "--node", empty.address,
                                          "--unseal-keys-file", file.path] + c, environment: env)
            #expect(text.status == 1, "\(file.lastPathComponent): \(text.stderr)")
            #expect(text.stdout.hasPrefix("refuse: the stored unseal keys are gone"), "\(text.stdout)")
            #expect(text.stdout.contains(file.path), "\(text.stdout)")
            let json = try await CLI.run(["openbao", "auto-restore", "--store", "openbao", "--node", empty.address,
                                          "--unseal-keys-file", file.path, "--json"] + c, environment: env)
            #expect(json.status == 1)
            let decided = try #require(try JSONSerialization.jsonObject(with: json.stdoutData) as? [String: Any])
            #expect(decided["decision"] as? String == "refuse")
            #expect((decided["facts"] as? [String: Any])?["keys"] as? String == "missing")
        }
        #expect(try await empty.client.sealStatus().initialized == false)

        // A restore branch that fails still prints its decision document, with the error.
        let failing = try await CLI.run(["openbao", "auto-restore", "--store", "openbao", "--node", empty.address,
                                         "--token-file", directory.appendingPathComponent("no-token").path, "--json"] + c, environment: env)
        #expect(failing.status == 2, "\(failing.stderr)")
        let failed = try #require(try JSONSerialization.jsonObject(with: failing.stdoutData) as? [String: Any], "\(failing.stdout)")
        #expect(failed["decision"] as? String == "restore")
        #expect((failed["error"] as? String)?.contains("no-token") == true, "\(failed)")
        #expect(try await empty.client.sealStatus().initialized == false)
    }
}
