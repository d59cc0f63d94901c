import Foundation
import LifeboatStorage
import LifeboatTesting
import Testing

/// The repository commands on Ceph RGW where it differs from moto and S3: Object Lock and prune,
/// refused deletes, server-side encryption, and mirrors that write to a cold storage class.
@Suite struct RGWRepositoryCommandTests {
    typealias CLI = CommandLineTests

    func environment(_ server: RGWServer) -> [String: String] {
        server.cliEnvironment.merging(["LIFEBOAT_PASSWORD": "rgw passphrase"]) { $1 }
    }

    /// Two snapshots of one store with different bytes (so the first has chunks of its own).
    func twoSnapshots(_ repo: [String], _ env: [String: String]) async throws -> [String] {
        let directory = try RepositoryCommandTests.scratch()
        var ids: [String] = []
        for size in [400_000, 600_000] {
            let input = try RepositoryCommandTests.randomFile(size, in: directory)
            let put = try await CLI.run(["put", "db", input.path] + repo, environment: env)
            #expect(put.status == 0, "\(put.stderr)")
            ids.append(put.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return ids
    }

    /// Every version and delete marker under `prefix` (ListObjectVersions), as (key, versionId, isDeleteMarker).
    func versions(_ server: RGWServer, bucket: String, prefix: String) async throws -> [(key: String, version: String, marker: Bool)] {
        let response = try await server.client().send(S3Request(method: "GET", bucket: bucket, query: [("prefix", prefix), ("versions", "")]))
        #expect(response.status == 200)
        let xml = String(decoding: response.body, as: UTF8.self)
        var found: [(key: String, version: String, marker: Bool)] = []
        for (tag, marker) in [("Version", false), ("DeleteMarker", true)] {
            for block in xml.components(separatedBy: "<\(tag)>").dropFirst() {
                guard let key = element("Key", in: block), let id = element("VersionId", in: block) else { continue }
                found.append((key, id, marker))
            }
        }
        return found
    }

    @Test(arguments: ["governance", "compliance"])
    func pruneOnAnObjectLockRepository(mode: String) async throws {
        try await RGWServer.withShared { server in
            let bucket = RGWServer.uniqueBucketName("lockprune")
            try await server.createBucket(bucket, objectLock: true)
            let env = environment(server)
            let repo = ["--repo", "s3://\(bucket)/r", server.compatibilityFlag, "--object-lock", mode, "--object-lock-days", "1"]
            let created = try await CLI.run(["repo", "init"] + repo, environment: env)
            #expect(created.status == 0, "\(created.stderr)")
            let ids = try await twoSnapshots(repo, env)

            // Prune deletes the older snapshot: S3 turns each delete into a delete marker, which the
            // lock allows; the locked versions stay until their retention ends, and prune says so.
            let pruned = try await CLI.run(["prune", "--keep-last", "1", "--grace", "0s"] + repo, environment: env)
            #expect(pruned.status == 0, "\(pruned.stderr)")
            #expect(pruned.stdout.contains("removed snapshot \(ids[0].prefix(8))"), "\(pruned.stdout)")
            #expect(pruned.stdout.contains("Object Lock") && pruned.stdout.contains(mode.uppercased()), "\(pruned.stdout)")
            let listed = try await CLI.run(["snapshots", "--json"] + repo, environment: env)
            #expect((try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]])?.compactMap { $0["id"] as? String } == [ids[1]])
            let verified = try await CLI.run(["verify", "--read-data"] + repo, environment: env)
            #expect(verified.status == 0, "\(verified.stderr)")

            // The pruned manifest's locked version is still there, behind a delete marker, and cannot be deleted.
            let manifest = try #require(try await versions(server, bucket: bucket, prefix: "r/snapshots/").filter { $0.key.hasSuffix(ids[0]) }.nilIfEmpty)
            #expect(manifest.contains { $0.marker })
            let locked = try #require(manifest.first { !$0.marker })
            let delete = S3Request(method: "DELETE", bucket: bucket, key: locked.key, query: [("versionId", locked.version)])
            #expect(try await server.client().send(delete).status == 403)
            var bypass = delete
            bypass.headers.append(("x-amz-bypass-governance-retention", "true"))
            // GOVERNANCE yields to a key allowed to bypass it; COMPLIANCE to nobody.
            #expect(try await server.client().send(bypass).status == (mode == "governance" ? 204 : 403))
        }
    }

    @Test func pruneStopsAtTheFirstRefusedDeleteAndLosesNothing() async throws {
        try await RGWServer.withShared { server in
            let bucket = RGWServer.uniqueBucketName("nodelete")
            try await server.createBucket(bucket)
            let env = environment(server)
            let repo = ["--repo", "s3://\(bucket)/r", server.compatibilityFlag]
            #expect(try await CLI.run(["repo", "init"] + repo, environment: env).status == 0)
            let ids = try await twoSnapshots(repo, env)
            // A bucket policy that refuses deletes of snapshots and data, as a retention-guarding policy
            // would (lock objects stay deletable, so the failed prune leaves no lock behind).
            let policy = #"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:DeleteObject","Resource":["arn:aws:s3:::\#(bucket)/r/snapshots/*","arn:aws:s3:::\#(bucket)/r/data/*"]}]}"#
            let put = try await server.client().send(S3Request(method: "PUT", bucket: bucket, query: [("policy", "")], body: Data(policy.utf8)))
            #expect(put.isSuccess, "HTTP \(put.status)")

            let pruned = try await CLI.run(["prune", "--keep-last", "1", "--grace", "0s"] + repo, environment: env)
            #expect(pruned.status == 1, "\(pruned.stdout)\(pruned.stderr)")
            #expect(pruned.stderr.contains("snapshots/\(ids[0])") && pruned.stderr.contains("AccessDenied"), "\(pruned.stderr)")
            // Manifests go first and the first refusal stops the run: nothing was removed.
            let listed = try await CLI.run(["snapshots", "--json"] + repo, environment: env)
            #expect((try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [Any])?.count == 2)
            let verified = try await CLI.run(["verify", "--read-data"] + repo, environment: env)
            #expect(verified.status == 0, "\(verified.stderr)")
        }
    }

    @Test func sseThatTheServerIgnoresFailsTheCommand() async throws {
        try await RGWServer.withShared { server in
            let bucket = RGWServer.uniqueBucketName("sse")
            try await server.createBucket(bucket)
            let initialised = try await CLI.run(["repo", "init", "--repo", "s3://\(bucket)/r", server.compatibilityFlag, "--sse", "s3"],
                                                environment: environment(server))
            #expect(initialised.status == 1)
            #expect(initialised.stderr.contains("unencrypted") && initialised.stderr.contains("SSE-S3"), "\(initialised.stderr)")
            let kms = try await CLI.run(["repo", "init", "--repo", "s3://\(bucket)/k", server.compatibilityFlag, "--sse", "kms",
                                         "--sse-kms-key-id", "lifeboat"], environment: environment(server))
            #expect(kms.status == 1)
            #expect(kms.stderr.contains("KMS"), "\(kms.stderr)")
        }
    }

    @Test func mirrorWritesItsStorageClass() async throws {
        try await RGWServer.withShared { server in
            let source = RGWServer.uniqueBucketName("hot"), cold = RGWServer.uniqueBucketName("cold")
            try await server.createBucket(source)
            try await server.createBucket(cold)
            let env = environment(server)
            let repo = ["--repo", "s3://\(source)/r", server.compatibilityFlag]
            #expect(try await CLI.run(["repo", "init"] + repo, environment: env).status == 0)
            _ = try await twoSnapshots(repo, env)

            let mirrored = try await CLI.run(["mirror", "--to", "s3://\(cold)/m", "--to-storage-class", "COLD"] + repo, environment: env)
            #expect(mirrored.status == 0, "\(mirrored.stderr)")
            let listing = try await server.client().send(S3Request(method: "GET", bucket: cold, query: [("list-type", "2"), ("prefix", "m/")]))
            let xml = String(decoding: listing.body, as: UTF8.self)
            let classes = xml.components(separatedBy: "<Contents>").dropFirst().map { element("StorageClass", in: $0) }
            #expect(classes.count > 5, "config, keys, two manifests and their chunks")
            #expect(classes.allSatisfy { $0 == "COLD" }, "\(classes)")
            let head = try await server.client().send(S3Request(method: "HEAD", bucket: cold, key: "m/config"))
            #expect(head.header("x-amz-storage-class") == "COLD")
            // The source keeps its own class, and the mirror reads back as a repository.
            let sourceClass = try await server.client().send(S3Request(method: "HEAD", bucket: source, key: "r/config")).header("x-amz-storage-class")
            #expect((sourceClass ?? "STANDARD") == "STANDARD")
            let onMirror = try await CLI.run(["snapshots", "--json", "--repo", "s3://\(cold)/m", server.compatibilityFlag], environment: env)
            #expect((try JSONSerialization.jsonObject(with: Data(onMirror.stdout.utf8)) as? [Any])?.count == 2)

            let unknown = try await CLI.run(["mirror", "--to", "s3://\(cold)/g", "--to-storage-class", "GLACIER"] + repo, environment: env)
            #expect(unknown.status == 1)
            #expect(unknown.stderr.contains("storage class \"GLACIER\""), "\(unknown.stderr)")
            let directory = try RepositoryCommandTests.scratch()
            let local = try await CLI.run(["mirror", "--to", directory.path, "--to-storage-class", "COLD"] + repo, environment: env)
            #expect(local.status == 2)
            #expect(local.stderr.contains("S3 mirrors only"), "\(local.stderr)")
        }
    }
}

/// The text of the first `<name>…</name>` in `xml`.
func element(_ name: String, in xml: String) -> String? {
    guard let start = xml.range(of: "<\(name)>"), let end = xml.range(of: "</\(name)>", range: start.upperBound..<xml.endIndex) else { return nil }
    return String(xml[start.upperBound..<end.lowerBound])
}

extension Array {
    var nilIfEmpty: Self? { isEmpty ? nil : self }
}
