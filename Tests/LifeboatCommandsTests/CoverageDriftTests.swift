import Foundation
import LifeboatConnectors
import LifeboatCore
import LifeboatTesting
import Testing

/// `status` checks each store against what the catalog says of it: here etcd's members against the
/// catalog's `members`, on a real etcd. (PostgreSQL's archiving settings: PostgresOperatorTests;
/// OpenBao's raft health: ServeSchedulerTests.)
@Suite struct CoverageDriftTests {
    typealias CLI = CommandLineTests

    static func catalog(repository: URL, etcd: LocalEtcd, members: [EtcdMember]) -> String {
        let layout = members.map { "{name: \($0.name), peer_url: \"\($0.peerURL)\", data_directory: \($0.dataDirectory)}" }.joined(separator: ", ")
        return """
        version: 1
        platform: drift
        repository:
          url: \(repository.path)
          password: env:LIFEBOAT_PASSWORD
        stores:
          - name: etcd
            kind: etcd
            method: etcd v3 snapshot
            cadence: 15m
            retention: {keep_last: 3}
            priority: P1
            rpo: 1h
            verify:
              - {prefix: /drift/, min_keys: 1}
            connection:
              endpoints: [\(etcd.endpoints.joined(separator: ", "))]
              members: [\(layout)]
              cluster_token: lifeboat-local

        """
    }

    @Test(.timeLimit(.minutes(3)))
    func etcdMembersThatAreNotTheCatalogsAreNamed() async throws {
        let directory = try RepositoryCommandTests.scratch()
        defer { ProcessSweep.stopProcesses(mentioning: directory.path); try? FileManager.default.removeItem(at: directory) }
        let etcd = try await LocalEtcd.start(in: directory.appendingPathComponent("etcd"), options: .init(unsafeNoFsync: true))
        defer { Task { await etcd.stop() } }
        try await etcd.gateway().connect().put(Data("/drift/key".utf8), Data("value".utf8))
        let repository = directory.appendingPathComponent("repo")
        let env = ["LIFEBOAT_PASSWORD": "drift passphrase"]
        let catalog = directory.appendingPathComponent("lifeboat.yaml")
        let c = ["-c", catalog.path]

        // As the catalog says: no problem (and a backup, so RPO does not decide the exit status).
        try Self.catalog(repository: repository, etcd: etcd, members: etcd.members).write(to: catalog, atomically: true, encoding: .utf8)
        #expect(try await CLI.run(["repo", "init"] + c, environment: env).status == 0)
        #expect(try await CLI.run(["backup", "etcd"] + c, environment: env).status == 0)
        let matching = try await CLI.run(["status", "--json"] + c, environment: env)
        let fine = try #require(try PlatformCommandLineTests.decode(PlatformStatus.self, matching).stores.first)
        #expect(fine.coverageProblems == [], "\(fine.coverageProblems ?? [])")

        // The catalog names a member the cluster does not have, and misses the one it has under
        // another name: both named; status exits 6.
        let ghost = EtcdMember(name: "member9", peerURL: "http://127.0.0.1:1", dataDirectory: directory.appendingPathComponent("ghost").path)
        try Self.catalog(repository: repository, etcd: etcd, members: [ghost]).write(to: catalog, atomically: true, encoding: .utf8)
        let drifted = try await CLI.run(["status", "--json"] + c, environment: env)
        #expect(drifted.status == 6 && drifted.stderr.contains("not covered as the catalog says: etcd"), "\(drifted.stderr)")
        let problems = try #require(try PlatformCommandLineTests.decode(PlatformStatus.self, drifted).stores.first?.coverageProblems)
        #expect(problems.contains("member member9 is in the catalog but not in the cluster"), "\(problems)")
        #expect(problems.contains { $0.hasPrefix("member member1 is in the cluster but not in the catalog") }, "\(problems)")
    }
}
