import Foundation
import LifeboatTesting
import Testing

/// `lifeboat etcd snapshot` and `lifeboat restore etcd` as a user runs them, against real etcd on loopback.
@Suite struct EtcdCommandTests {
    typealias CLI = CommandLineTests

    static func catalog(endpoints: [String], in directory: URL, minKeys: Int = 20) throws -> URL {
        let file = directory.appendingPathComponent("lifeboat.yaml")
        try """
        version: 1
        stores:
          - name: fleet-etcd
            kind: etcd
            method: etcd v3 snapshot
            cadence: 15m
            priority: P1
            verify:
              - prefix: /fleet/
                min_keys: \(minKeys)
            connection:
              endpoints: [\(endpoints.joined(separator: ", "))]
        """.write(to: file, atomically: true, encoding: .utf8)
        return file
    }

    static func json(_ text: String) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "not JSON: \(text)")
    }

    @Test func snapshotThenRestoreAndVerifyFromTheCommandLine() async throws {
        let directory = try RepositoryCommandTests.scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let env = RepositoryCommandTests.environment(directory.appendingPathComponent("repo"))
        #expect(try await CLI.run(["repo", "init"], environment: env).status == 0)
        let source = try await LocalEtcd.start(in: directory.appendingPathComponent("source"), options: LocalEtcd.Options(unsafeNoFsync: true))
        let catalog = try await source.whileRunning { source in
            let session = try await source.gateway().connect()
            for index in 0..<25 { try await session.put(Data("/fleet/node-\(index)".utf8), Data("node \(index) config".utf8)) }
            let catalog = try Self.catalog(endpoints: source.endpoints, in: directory)
            let snapshot = try await CLI.run(["etcd", "snapshot", "--catalog", catalog.path, "--json", "--tag", "nightly"], environment: env)
            #expect(snapshot.status == 0, "\(snapshot.stderr)")
            let summary = try Self.json(snapshot.stdout)
            #expect(summary["kind"] as? String == "etcd")
            #expect((summary["source"] as? [String: String])?["key_count"] == "25")
            // A member that still runs is refused, as in the ordered restore: nothing is written.
            let live = try #require(source.members.first)
            let over = directory.appendingPathComponent("over-live")
            let refused = try await CLI.run(["restore", "etcd", "--snapshot", "latest", "--name", live.name, "--initial-advertise-peer-urls", live.peerURL,
                                             "--data-dir", over.path], environment: env)
            #expect(refused.status == 1 && refused.stderr.contains("etcd still answers at \(live.peerURL)"), "\(refused.stderr)")
            #expect(!FileManager.default.fileExists(atPath: over.path))
            return catalog
        }

        let data = directory.appendingPathComponent("dr")
        let restored = try await CLI.run(["restore", "etcd", "--snapshot", "latest", "--store", "fleet-etcd", "--catalog", catalog.path,
                                          "--members", "3", "--data-dir", data.path, "--verify", "--json"], environment: env)
        #expect(restored.status == 0, "\(restored.stderr)")
        let outcome = try Self.json(restored.stdout)
        #expect(outcome["verified"] as? Bool == true)
        let checks = try #require(outcome["checks"] as? [[String: Any]])
        #expect(checks.contains { ($0["check"] as? String)?.contains("keys under /fleet/") == true && $0["passed"] as? Bool == true })
        #expect(checks.filter { ($0["check"] as? String)?.contains("key count = snapshot's 25") == true }.count == 3)
        let members = try #require((outcome["restore"] as? [String: Any])?["members"] as? [[String: Any]])
        #expect(members.count == 3)
        for member in members {
            #expect(FileManager.default.fileExists(atPath: "\(member["data_dir"] as? String ?? "")/member/snap/db"))
        }

        // The same data directories again: refused, untouched.
        let again = try await CLI.run(["restore", "etcd", "--snapshot", "latest", "--members", "3", "--data-dir", data.path], environment: env)
        #expect(again.status == 1, "a refusing guard exits 1, as for PostgreSQL")
        #expect(again.stderr.contains("not empty"), "\(again.stderr)")
        #expect(again.stderr.contains(data.appendingPathComponent("member1").path))

        // One member, forced over old data: moved aside during the restore, deleted once verified.
        let single = data.appendingPathComponent("member1")
        let forced = try await CLI.run(["restore", "etcd", "--snapshot", "latest", "--name", "solo", "--initial-advertise-peer-urls",
                                        "http://127.0.0.1:\(try freeLoopbackPort())", "--data-dir", single.path, "--force", "--verify"], environment: env)
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(forced.stdout.contains("ok   member"), "\(forced.stdout)")
        #expect(forced.stdout.contains("previous data (moved aside to"), "\(forced.stdout)")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: data.path).filter { $0.contains("lifeboat-previous") }
        #expect(leftovers.isEmpty)

        // The production form, as on each host of a three-member cluster: this host's member only,
        // with the whole initial cluster and its token.
        let peers = try (1...3).map { "m\($0)=http://127.0.0.1:\(try freeLoopbackPort())" }
        let second = peers[1].split(separator: "=").map(String.init)
        let onHost = data.appendingPathComponent("host-m2")
        let perHost = try await CLI.run(["restore", "etcd", "--snapshot", "latest", "--name", "m2", "--initial-advertise-peer-urls", second[1],
                                         "--initial-cluster", peers.joined(separator: ","), "--initial-cluster-token", "fleet-dr",
                                         "--data-dir", onHost.path, "--json"], environment: env)
        #expect(perHost.status == 0, "\(perHost.stderr)")
        let written = try #require(try Self.json(perHost.stdout)["restore"] as? [String: Any])
        #expect(written["initial_cluster"] as? String == peers.joined(separator: ","))
        #expect(written["cluster_token"] as? String == "fleet-dr")
        #expect(FileManager.default.fileExists(atPath: onHost.path + "/member/snap/db"))
        // An initial cluster that does not hold this member is refused before anything is written.
        let elsewhere = data.appendingPathComponent("host-m4")
        let notListed = try await CLI.run(["restore", "etcd", "--snapshot", "latest", "--name", "m4", "--initial-advertise-peer-urls", second[1],
                                           "--initial-cluster", peers.joined(separator: ","), "--data-dir", elsewhere.path], environment: env)
        #expect(notListed.status == 2 && notListed.stderr.contains("the initial cluster must list m4="), "\(notListed.stderr)")
        #expect(!FileManager.default.fileExists(atPath: elsewhere.path))
    }

    @Test func unreachableEndpointsAndBadUsageExitWithTheirCodes() async throws {
        let directory = try RepositoryCommandTests.scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let env = RepositoryCommandTests.environment(directory.appendingPathComponent("repo"))
        #expect(try await CLI.run(["repo", "init"], environment: env).status == 0)
        let dead = "http://127.0.0.1:\(try freeLoopbackPort())"
        let catalog = try Self.catalog(endpoints: [dead], in: directory)
        let snapshot = try await CLI.run(["etcd", "snapshot", "--catalog", catalog.path], environment: env)
        #expect(snapshot.status == 1)
        #expect(snapshot.stderr.contains("no etcd endpoint answered: \(dead)"), "\(snapshot.stderr)")
        #expect(snapshot.stdout.isEmpty)

        let noStore = try await CLI.run(["etcd", "snapshot", "--catalog", catalog.path, "--store", "nope"], environment: env)
        #expect(noStore.status == 2)
        let noSnapshot = try await CLI.run(["restore", "etcd", "--snapshot", "latest", "--data-dir", directory.path + "/x"], environment: env)
        #expect(noSnapshot.status == 2)
        let noDataDir = try await CLI.run(["restore", "etcd", "--snapshot", "latest"], environment: env)
        #expect(noDataDir.status == 2)
        for command in [["etcd", "snapshot", "--help"], ["restore", "etcd", "--help"]] {
            let help = try await CLI.run(command)
            #expect(help.status == 0)
            #expect(help.stdout.contains("Example"))
        }
    }
}
