import Foundation
@testable import LifeboatConnectors
import LifeboatCore
import LifeboatRepository
import Testing

/// Backup and cross-cluster restore between real Shamir-sealed OpenBao raft nodes (5 shares,
/// threshold 3), and the guards that refuse before the target is touched.
@Suite struct OpenBaoShamirTests {
    typealias Fixture = OpenBaoFixture

    static func connector(_ source: Fixture.Node, keys: [String]?) throws -> OpenBaoConnector {
        OpenBaoConnector(store: "openbao", address: source.server.address, token: source.token,
                         unsealKeys: try keys.map { try UnsealKeyMaterial.parse(keys: $0, source: "test keys") }, verify: Fixture.checks)
    }

    @Test func backupRecordsCustodyAndRestoresIntoAnotherClusterWithTheSourceKeys() async throws {
        let directory = try Fixture.scratch("shamir")
        defer { try? FileManager.default.removeItem(at: directory) }
        async let startedSource = Fixture.node("source", in: directory, secrets: Fixture.sourceSecrets)
        async let startedTarget = LocalOpenBao.start(in: directory.appendingPathComponent("target"), nodeID: "target")
        let (source, target) = try await (startedSource, startedTarget)
        let repository = try await Fixture.repository(in: directory)

        // Any three of the five shares (not the first three) fingerprint the key generation.
        let connector = try Self.connector(source, keys: Array(source.initResult.keys[2..<5]))
        let manifest = try await connector.backup(into: repository, point: "p1", tags: ["reason:rotation"])
        let status = try await source.client.sealStatus()
        #expect(manifest.kind == "openbao")
        #expect(manifest.point == "p1")
        #expect(manifest.tags == ["reason:rotation"])
        #expect(manifest.source["seal_type"] == "shamir")
        #expect(manifest.source["seal_threshold"] == "3")
        #expect(manifest.source["seal_shares"] == "5")
        #expect(manifest.source["cluster_id"] == status.clusterID)
        #expect(manifest.source["openbao_version"] == status.version)
        #expect(Int(manifest.source["raft_index"] ?? "") ?? 0 > 0)
        #expect(Int(manifest.source["raft_term"] ?? "") ?? 0 > 0)
        #expect(manifest.source["source_time"].flatMap { ISO8601DateFormatter.withFractions.date(from: $0) } != nil)
        let combined = try UnsealKeyMaterial.parse(keys: source.initResult.keys, source: "all").combined(threshold: 3, source: "all")
        #expect(manifest.source["custody_fingerprint"] == UnsealKeyMaterial.fingerprint(ofCombinedKey: combined))
        // No key material or token in the manifest.
        for value in manifest.source.values {
            #expect(!source.initResult.keys.contains { value.contains($0) })
            #expect(!value.contains(Data(combined).hexString))
            #expect(!value.contains(source.token))
        }

        // The source moves on after the backup; the restore must bring back the backed-up state.
        try await source.client.writeSecret("after-backup", ["x": "y"], token: source.token)

        let report = try await connector.restore(manifest, from: repository, into: OpenBaoRestoreTarget(address: target.address))
        #expect(report.bootstrappedTarget)
        // The node usually reports the bootstrap's stale 1/1 seal config; without a restart hook the combined key unseals it.
        #expect(!report.restarted)
        #expect(report.custody.hasPrefix("verified"))
        #expect(report.clusterID == status.clusterID)
        #expect(report.raftIndex == UInt64(manifest.source["raft_index"]!))
        // Two verify reads, then the credential cutover: the source's token in, the bootstrap's out.
        #expect(report.checks.map(\.check).suffix(2) == ["credential cutover: the source's token is accepted",
                                                          "credential cutover: the target's previous token is refused"])
        #expect(report.checks.count == 4)
        #expect(report.checks.last?.detail == "auth/token/lookup-self answered 403")
        #expect(report.passed, "\(report.checks)")
        let after = try await target.client.sealStatus()
        #expect(!after.sealed)
        #expect(after.t == 3 && after.n == 5, "seal config after the restore: \(after.t)/\(after.n)")
        // Data cutover: the source's secrets read back with the source's root token; later writes are not there.
        for (path, data) in Fixture.sourceSecrets {
            #expect(try await target.client.readSecret(path, token: source.token) == data)
        }
        #expect(try await target.client.readSecret("after-backup", token: source.token) == nil)

        // The target restarts sealed and the source's shares (3 of 5) unseal it: the keys travelled with the snapshot.
        try await target.restart()
        #expect(try await target.client.sealStatus().sealed)
        try await target.unseal(keys: Array(source.initResult.keys[0..<3]))
        try await target.client.waitUntilActive()
        #expect(try await target.client.readSecret("tenants/acme", token: source.token) == Fixture.sourceSecrets["tenants/acme"])
    }

    @Test func wrongKeysTamperedArchivesAndInitialisedTargetsAreRefusedUntouched() async throws {
        let directory = try Fixture.scratch("refusals")
        defer { try? FileManager.default.removeItem(at: directory) }
        async let startedSource = Fixture.node("source", in: directory, secrets: Fixture.sourceSecrets)
        async let startedOther = Fixture.node("other", in: directory, secrets: ["only-on-other": ["keep": "me"]])
        async let startedEmpty = LocalOpenBao.start(in: directory.appendingPathComponent("empty"), nodeID: "empty")
        let (source, other, empty) = try await (startedSource, startedOther, startedEmpty)
        let repository = try await Fixture.repository(in: directory)
        let manifest = try await Self.connector(source, keys: source.initResult.keys).backup(into: repository)

        // Another cluster's shares (a different key generation): refused before the target is touched.
        let wrong = try Self.connector(source, keys: Array(other.initResult.keys[0..<3]))
        let mismatch = await #expect(throws: OpenBaoError.self) {
            try await wrong.restore(manifest, from: repository, into: OpenBaoRestoreTarget(address: empty.address))
        }
        #expect(mismatch?.code == .custodyMismatch)
        #expect(try await empty.client.sealStatus().initialized == false, "the target was not initialised")

        // Two shares where three are needed: refused too.
        let short = try Self.connector(source, keys: Array(source.initResult.keys[0..<2]))
        let tooFew = await #expect(throws: OpenBaoError.self) {
            try await short.restore(manifest, from: repository, into: OpenBaoRestoreTarget(address: empty.address))
        }
        #expect(tooFew?.code == .invalidKeyMaterial)

        // An initialised target without --force: refused, its data intact.
        let right = try Self.connector(source, keys: source.initResult.keys)
        let notEmpty = await #expect(throws: OpenBaoError.self) {
            try await right.restore(manifest, from: repository, into: OpenBaoRestoreTarget(address: other.server.address, token: other.token))
        }
        #expect(notEmpty?.code == .targetNotEmpty)
        #expect(try await other.client.readSecret("only-on-other", token: other.token) == ["keep": "me"])

        // A modified archive in the repository (say, stored by an older tool that did not check):
        // restore checks the archive's own sums before touching the target.
        var archive = try await Fixture.rawSnapshot(source)
        archive = try await Self.alterStateBin(archive, in: directory)
        let forged = try await repository.put(SnapshotDescription(store: "openbao", kind: "openbao", source: manifest.source)) {
            defer { archive = Data() }
            return archive
        }
        let tampered = await #expect(throws: OpenBaoError.self) {
            try await right.restore(forged, from: repository, into: OpenBaoRestoreTarget(address: empty.address))
        }
        #expect(tampered?.code == .tamperedSnapshot)
        #expect(try await empty.client.sealStatus().initialized == false)

        // At backup: a snapshot whose SHA256SUMS does not match (corrupted in flight) gets no manifest.
        let before = try await repository.snapshotIDs().count
        let badSums = try await Self.alterSums(try await Fixture.rawSnapshot(source), in: directory)
        let status = try await source.client.sealStatus()
        let blocks = AsyncStream<Data> { continuation in
            stride(from: 0, to: badSums.count, by: 8192).forEach { continuation.yield(badSums.subdata(in: $0..<min($0 + 8192, badSums.count))) }
            continuation.finish()
        }
        let refused = await #expect(throws: OpenBaoError.self) {
            try await right.ingest(blocks, status: status, custody: try right.custodyAtBackup(status), sourceTime: "2026-01-01T00:00:00.000Z",
                                   into: repository, point: nil, tags: [], progress: nil)
        }
        #expect(refused?.code == .tamperedSnapshot)
        #expect(try await repository.snapshotIDs().count == before, "no manifest for the refused snapshot")

        // Backup without key material: custody recorded as unverified, t/n still there.
        let unverified = try await Self.connector(source, keys: nil).backup(into: repository)
        #expect(unverified.source["custody"] == "unverified")
        #expect(unverified.source["custody_fingerprint"] == nil)
        #expect(unverified.source["seal_threshold"] == "3")

        // A rollback of the same cluster (--force, the source's own token): the node may stay unsealed;
        // the data written after the snapshot is gone, the snapshot's is back.
        try await source.client.writeSecret("tenants/acme", ["db_password": "changed"], token: source.token)
        try await source.client.writeSecret("written-later", ["x": "y"], token: source.token)
        let rollback = try await right.restore(manifest, from: repository,
                                               into: OpenBaoRestoreTarget(address: source.server.address, token: source.token, force: true))
        #expect(rollback.passed, "\(rollback.checks)")
        #expect(rollback.checks.last?.detail.hasPrefix("not applicable: the target was the snapshot's own cluster") == true, "\(rollback.checks)")
        #expect(!rollback.bootstrappedTarget)
        #expect(try await source.client.readSecret("tenants/acme", token: source.token) == Fixture.sourceSecrets["tenants/acme"])
        #expect(try await source.client.readSecret("written-later", token: source.token) == nil)
    }

    /// Rewrites the archive with one byte of state.bin flipped and SHA256SUMS left as it was.
    static func alterStateBin(_ archive: Data, in directory: URL) async throws -> Data {
        try await rewrite(archive, in: directory) { folder in
            let file = folder.appendingPathComponent("state.bin")
            var state = try Data(contentsOf: file)
            state[state.count / 2] ^= 0x40
            try state.write(to: file)
        }
    }

    /// Rewrites the archive with SHA256SUMS listing a wrong hash for meta.json.
    static func alterSums(_ archive: Data, in directory: URL) async throws -> Data {
        try await rewrite(archive, in: directory) { folder in
            let file = folder.appendingPathComponent("SHA256SUMS")
            let text = try String(contentsOf: file, encoding: .utf8)
            let lines = text.split(separator: "\n").map { line in
                line.hasSuffix("meta.json") ? String(repeating: "0", count: 64) + "  meta.json" : String(line)
            }
            try (lines.joined(separator: "\n") + "\n").write(to: file, atomically: true, encoding: .utf8)
        }
    }

    static func rewrite(_ archive: Data, in directory: URL, edit: (URL) throws -> Void) async throws -> Data {
        let folder = directory.appendingPathComponent("rewrite-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let original = folder.appendingPathComponent("original.tar.gz")
        try archive.write(to: original)
        let tar = try ExternalTool.locate("tar")
        _ = try await tar.run(["-C", folder.path, "-xzf", original.path]).check("tar")
        try edit(folder)
        let output = folder.appendingPathComponent("altered.tar.gz")
        _ = try await tar.run(["-C", folder.path, "-czf", output.path, "meta.json", "state.bin", "SHA256SUMS", "SHA256SUMS.sealed"]).check("tar")
        return try Data(contentsOf: output)
    }
}

extension ISO8601DateFormatter {
    static var withFractions: ISO8601DateFormatter {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter
    }
}
