import Foundation
import LifeboatStorage
import LifeboatTesting
import Testing

/// The repository commands on an S3 repository, against moto_server (and, where marked, Ceph RGW)
/// with SigV4 checking on.
@Suite(.serialized) struct S3RepositoryCommandTests {
    typealias CLI = CommandLineTests

    func environment(_ moto: MotoServer) -> [String: String] {
        ["AWS_ACCESS_KEY_ID": moto.credentials.accessKeyID, "AWS_SECRET_ACCESS_KEY": moto.credentials.secretAccessKey,
         "AWS_REGION": moto.region, "LIFEBOAT_S3_ENDPOINT": moto.endpoint.absoluteString, "LIFEBOAT_PASSWORD": "s3 passphrase"]
    }

    @Test(arguments: S3TestServerKind.allCases)
    func initPutGetVerifyPruneMirrorOnS3(kind: S3TestServerKind) async throws {
        try await kind.withShared { server in
            let bucket = try await server.freshBucket("cli").bucket
            let env = server.cliEnvironment.merging(["LIFEBOAT_PASSWORD": "s3 passphrase"]) { $1 }
            let repo = ["--repo", "s3://\(bucket)/lifeboat", server.compatibilityFlag]
            let created = try await CLI.run(["repo", "init"] + repo, environment: env)
            #expect(created.status == 0, "\(created.stderr)")

            let directory = try RepositoryCommandTests.scratch()
            let input = try RepositoryCommandTests.randomFile(3_000_000, in: directory)
            let put = try await CLI.run(["put", "dump", input.path] + repo, environment: env)
            #expect(put.status == 0, "\(put.stderr)")
            let id = put.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            let second = try await CLI.run(["put", "dump", input.path] + repo, environment: env)
            #expect(second.status == 0)

            let get = try await CLI.run(["get", id] + repo, environment: env)
            #expect(get.status == 0, "\(get.stderr)")
            #expect(try get.stdoutData == Data(contentsOf: input))
            #expect(try await CLI.run(["verify", "--read-data"] + repo, environment: env).status == 0)

            // Off-site copy from S3 to a directory, then prune the source: the mirror keeps both.
            let mirror = directory.appendingPathComponent("mirror")
            #expect(try await CLI.run(["mirror", "--to", mirror.path] + repo, environment: env).status == 0)
            let pruned = try await CLI.run(["prune", "--keep-last", "1", "--grace", "0s"] + repo, environment: env)
            #expect(pruned.status == 0, "\(pruned.stderr)")
            #expect(try await CLI.run(["verify", "--read-data"] + repo, environment: env).status == 0)
            var mirrorEnv = env
            mirrorEnv["LIFEBOAT_REPOSITORY"] = mirror.path
            let onMirror = try await CLI.run(["snapshots", "--json"], environment: mirrorEnv)
            #expect((try JSONSerialization.jsonObject(with: Data(onMirror.stdout.utf8)) as? [Any])?.count == 2)

            // A wrong secret is refused by SigV4 and named as such; the secret itself is never printed.
            var wrong = env
            wrong["AWS_SECRET_ACCESS_KEY"] = "definitely-not-the-secret"
            let denied = try await CLI.run(["snapshots"] + repo, environment: wrong)
            #expect(denied.status == 1)
            #expect(denied.stderr.lowercased().contains("access key"), "\(denied.stderr)")
            #expect(!denied.stderr.contains("definitely-not-the-secret"))
        }
    }

    @Test func motoWorksWithoutTheHiddenFlag() async throws {
        // moto refuses every listing with '/' in its query; the backend notices and lists without it.
        try await MotoServer.withShared { moto in
            let bucket = MotoServer.uniqueBucketName("noflag")
            try await moto.createBucket(bucket)
            let env = environment(moto)
            let repo = ["--repo", "s3://\(bucket)/lifeboat/repo"]
            let created = try await CLI.run(["repo", "init"] + repo, environment: env)
            #expect(created.status == 0, "\(created.stderr)")
            let directory = try RepositoryCommandTests.scratch()
            let input = try RepositoryCommandTests.randomFile(200_000, in: directory)
            let put = try await CLI.run(["put", "dump", input.path] + repo, environment: env)
            #expect(put.status == 0, "\(put.stderr)")
            let listed = try await CLI.run(["snapshots", "--json"] + repo, environment: env)
            #expect(listed.status == 0, "\(listed.stderr)")
            #expect((try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [Any])?.count == 1)
            let verified = try await CLI.run(["verify", "--read-data"] + repo, environment: env)
            #expect(verified.status == 0, "\(verified.stderr)")

            var wrong = env
            wrong["AWS_SECRET_ACCESS_KEY"] = "definitely-not-the-secret"
            let denied = try await CLI.run(["snapshots"] + repo, environment: wrong)
            #expect(denied.status == 1)
            #expect(denied.stderr.contains("check the access key and secret"), "\(denied.stderr)")
            #expect(!denied.stderr.contains("definitely-not-the-secret"))
        }
    }

    @Test func objectLockNeedsALockEnabledBucket() async throws {
        try await MotoServer.withShared { moto in
            let env = environment(moto)
            let plain = MotoServer.uniqueBucketName("nolock")
            try await moto.createBucket(plain)
            let refused = try await CLI.run(["repo", "init", "--repo", "s3://\(plain)/r", "--s3-moto-compatibility", "--object-lock", "compliance",
                                       "--object-lock-days", "1"], environment: env)
            #expect(refused.status != 0)
            #expect(refused.stderr.contains("Object Lock"), "\(refused.stderr)")

            let locked = MotoServer.uniqueBucketName("lock")
            try await moto.createBucket(locked, objectLock: true)
            let repo = ["--repo", "s3://\(locked)/r", "--s3-moto-compatibility", "--object-lock", "governance", "--object-lock-days", "1"]
            #expect(try await CLI.run(["repo", "init"] + repo, environment: env).status == 0)
            let directory = try RepositoryCommandTests.scratch()
            let input = try RepositoryCommandTests.randomFile(500_000, in: directory)
            #expect(try await CLI.run(["put", "locked", input.path] + repo, environment: env).status == 0)
            let head = try await moto.client().send(.init(method: "HEAD", bucket: locked, key: "r/config"))
            #expect(head.header("x-amz-object-lock-mode") == "GOVERNANCE")
            #expect(head.header("x-amz-object-lock-retain-until-date") != nil)
        }
    }
}
