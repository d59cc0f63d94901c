import Foundation
import LifeboatCore
import LifeboatStorage
import LifeboatTesting
import Testing

/// The s3 and files stores as an operator drives them: `backup`, `drill`, `restore s3`,
/// `restore files`, their refusals and exit codes, against moto_server (SigV4 on) and Ceph RGW (a
/// real S3 implementation), and real trees.
@Suite(.serialized) struct BucketAndFilesCLITests {
    typealias CLI = CommandLineTests

    struct Fixture {
        var directory: URL
        var catalog: URL
        var bucket: String
        var tree: URL
        var environment: [String: String]
        var c: [String] { ["-c", catalog.path] }
    }

    /// A bucket with objects, a directory tree, and a catalog naming both (credentials by reference).
    static func fixture(_ server: any S3TestServer, label: String) async throws -> Fixture {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("lifeboat-cli-\(label)-\(UUID().uuidString.prefix(8))")
        let tree = directory.appendingPathComponent("jetstream")
        try FileManager.default.createDirectory(at: tree.appendingPathComponent("platform-events"), withIntermediateDirectories: true)
        try Data(#"{"stream":"events"}"#.utf8).write(to: tree.appendingPathComponent("platform-events/backup.json"))
        try Data(repeating: 42, count: 300_000).write(to: tree.appendingPathComponent("platform-events/1.blk"))
        try FileManager.default.createSymbolicLink(atPath: tree.appendingPathComponent("current").path, withDestinationPath: "platform-events")
        let bucket = MotoServer.uniqueBucketName("artifacts")
        try await server.createBucket(bucket, objectLock: false, versioning: false)
        let objects = try S3Backend(configuration: server.configuration(bucket: bucket, prefix: ""))
        try await objects.putObject("manifests/latest.json", data: Data(#"{"v":1}"#.utf8), headers: [("content-type", "application/json"), ("x-amz-meta-build", "42")])
        for index in 0..<5 { try await objects.putObject("blobs/\(index)", data: Data(repeating: UInt8(index), count: 10_000 * (index + 1)), headers: []) }
        let yaml = """
            version: 1
            platform: buckets-and-files
            repository:
              url: \(directory.appendingPathComponent("repo").path)
              password: env:TEST_REPOSITORY_PASSWORD
            stores:
              - name: object-store
                kind: s3
                method: bucket copy with a manifest of keys, sizes and SHA-256
                cadence: 6h
                retention: {keep_last: 5}
                priority: P1
                rpo: 6h
                rto: 2h
                verify:
                  - object: manifests/latest.json
                connection:
                  endpoint: \(server.endpoint.absoluteString)
                  region: \(server.region)
                  path_style: true
                  buckets: [\(bucket)]
                  access_key_id: env:TEST_OBJECTS_KEY
                  secret_access_key: env:TEST_OBJECTS_SECRET
              - name: nats-jetstream
                kind: files
                method: copied with hashes
                cadence: 1h
                retention: {keep_last: 5}
                priority: P2
                rpo: 1h
                rto: 4h
                verify:
                  - file: platform-events/backup.json
                connection:
                  paths: [\(tree.path)]
            """
        let catalog = directory.appendingPathComponent("lifeboat.yaml")
        try yaml.write(to: catalog, atomically: true, encoding: .utf8)
        let environment = ["TEST_REPOSITORY_PASSWORD": "bucket and files", "TEST_OBJECTS_KEY": server.credentials.accessKeyID,
                           "TEST_OBJECTS_SECRET": server.credentials.secretAccessKey]
        return Fixture(directory: directory, catalog: catalog, bucket: bucket, tree: tree, environment: environment)
    }

    static func decode<T: Decodable>(_ type: T.Type, _ result: CommandLineTests.Result) throws -> T {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode(type, from: result.stdoutData)
    }

    @Test(.timeLimit(.minutes(5)), arguments: S3TestServerKind.allCases)
    func backupDrillAndRestoreOfABucketAndATree(_ kind: S3TestServerKind) async throws {
        try await kind.withShared { server in
            let f = try await Self.fixture(server, label: "s3files-\(kind)")
            defer { try? FileManager.default.removeItem(at: f.directory) }
            let env = f.environment
            #expect(try await CLI.run(["validate"] + f.c, environment: env).status == 0)
            let created = try await CLI.run(["repo", "init"] + f.c, environment: env)
            #expect(created.status == 0, "\(created.stderr)")
            let backup = try await CLI.run(["backup", "--json"] + f.c, environment: env)
            #expect(backup.status == 0, "\(backup.stdout)\(backup.stderr)")
            let point = try Self.decode(RecoveryPoint.self, backup)
            #expect(Set(point.members.map(\.store)) == ["object-store", "nats-jetstream"])
            #expect(point.members.allSatisfy { $0.snapshot != nil && $0.error == nil })

            // The plan's steps run: a drill restores both into scratch targets and passes every gate.
            let drill = try await CLI.run(["drill", "--json"] + f.c, environment: env)
            #expect(drill.status == 0, "\(drill.stdout)\(drill.stderr)")
            let report = try Self.decode(DrillReport.self, drill)
            #expect(Set(report.steps.map(\.store)) == ["object-store", "nats-jetstream"])
            #expect(report.steps.allSatisfy { $0.outcome == .passed && $0.checks.count == 2 && $0.checks.allSatisfy(\.passed) }, "\(report.steps)")
            // The drill's scratch buckets are gone.
            let buckets = String(decoding: try await server.s3Client().send(S3Request(method: "GET")).body, as: UTF8.self)
            #expect(!buckets.contains("lb-drill-"), "\(buckets)")

            // restore s3 into the store's own (non-empty) bucket is refused; into a new one it runs and checks.
            let refused = try await CLI.run(["restore", "s3", "object-store"] + f.c, environment: env)
            #expect(refused.status == 1, "\(refused.stderr)")
            #expect(refused.stderr.contains("is not empty; nothing was changed"), "\(refused.stderr)")
            let copy = MotoServer.uniqueBucketName("restored")
            try await server.createBucket(copy, objectLock: false, versioning: false)
            let restored = try await CLI.run(["restore", "s3", "object-store", "--to-bucket", copy] + f.c, environment: env)
            #expect(restored.status == 0, "\(restored.stdout)\(restored.stderr)")
            #expect(restored.stdout.contains("6 objects") && restored.stdout.contains("ok   objects match the snapshot"), "\(restored.stdout)")
            let readBack = try await S3Backend(configuration: server.configuration(bucket: copy, prefix: "")).getObject("manifests/latest.json")
            #expect(readBack?.attributes.userMetadata == ["build": "42"])
            let forced = try await CLI.run(["restore", "s3", "object-store", "--to-bucket", copy, "--force"] + f.c, environment: env)
            #expect(forced.status == 0, "\(forced.stderr)")

            // restore files: refused over the live tree, run with --to, and with --force in place.
            let intoLive = try await CLI.run(["restore", "files", "nats-jetstream"] + f.c, environment: env)
            #expect(intoLive.status == 1 && intoLive.stderr.contains("is not empty"), "\(intoLive.stderr)")
            let elsewhere = f.directory.appendingPathComponent("elsewhere")
            let files = try await CLI.run(["restore", "files", "nats-jetstream", "--to", elsewhere.path] + f.c, environment: env)
            #expect(files.status == 0, "\(files.stdout)\(files.stderr)")
            #expect(try Data(contentsOf: elsewhere.appendingPathComponent("platform-events/1.blk")) == Data(repeating: 42, count: 300_000))
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: elsewhere.appendingPathComponent("current").path) == "platform-events")
            try Data("damaged by an incident".utf8).write(to: f.tree.appendingPathComponent("platform-events/backup.json"))
            let inPlace = try await CLI.run(["restore", "files", "nats-jetstream", "--force"] + f.c, environment: env)
            #expect(inPlace.status == 0, "\(inPlace.stderr)")
            #expect(try Data(contentsOf: f.tree.appendingPathComponent("platform-events/backup.json")) == Data(#"{"stream":"events"}"#.utf8))

            // A damaged snapshot is refused as damage (exit 3), and nothing is written to the target.
            let repo = f.directory.appendingPathComponent("repo/data")
            let chunkFiles = try FileManager.default.subpathsOfDirectory(atPath: repo.path).filter { $0.count > 60 }
            for path in chunkFiles {
                let url = repo.appendingPathComponent(path)
                var bytes = try Data(contentsOf: url)
                bytes[bytes.count / 2] ^= 0x01
                try bytes.write(to: url)
            }
            let empty = MotoServer.uniqueBucketName("never-written")
            try await server.createBucket(empty, objectLock: false, versioning: false)
            let damaged = try await CLI.run(["restore", "s3", "object-store", "--to-bucket", empty] + f.c, environment: env)
            #expect(damaged.status == 3, "\(damaged.stderr)")
            #expect(try await S3Backend(configuration: server.configuration(bucket: empty, prefix: "")).bucketIsEmpty())
            let damagedFiles = try await CLI.run(["restore", "files", "nats-jetstream", "--to", f.directory.appendingPathComponent("never").path] + f.c, environment: env)
            #expect(damagedFiles.status == 3, "\(damagedFiles.stderr)")
        }
    }

    @Test func anUnreadableFileFailsTheBackupNamingIt() async throws {
        // Root reads everything: the backup runs as nobody, who cannot read a root-only file.
        guard geteuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") else { return }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("lifeboat-cli-unreadable-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: directory) }
        let tree = directory.appendingPathComponent("tree")
        try FileManager.default.createDirectory(at: tree.appendingPathComponent("sub"), withIntermediateDirectories: true)
        try Data("readable".utf8).write(to: tree.appendingPathComponent("ok.txt"))
        try Data("secret".utf8).write(to: tree.appendingPathComponent("sub/root-only.key"))
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: tree.appendingPathComponent("sub/root-only.key").path)
        try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: directory.path)
        let catalog = directory.appendingPathComponent("lifeboat.yaml")
        try """
            version: 1
            repository: {url: \(directory.appendingPathComponent("repo").path), password: env:TEST_REPOSITORY_PASSWORD}
            stores:
              - {name: tree, kind: files, method: copy, cadence: 1h, priority: P1, verify: [{file: ok.txt}], connection: {paths: [\(tree.path)]}}
            """.write(to: catalog, atomically: true, encoding: .utf8)
        let env = ["TEST_REPOSITORY_PASSWORD": "p", "HOME": directory.path]
        #expect(try await CLI.run(["repo", "init", "-c", catalog.path], environment: env).status == 0)
        _ = try await ProcessRunner.chmodRecursive(directory.appendingPathComponent("repo"))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        process.arguments = ["--reuid=65534", "--regid=65534", "--clear-groups", CLI.binary.path, "backup", "tree", "-c", catalog.path]
        process.environment = ProcessInfo.processInfo.environment.merging(env) { $1 }
        let stderr = ChildProcess.pipe()
        process.standardError = stderr
        process.standardOutput = FileHandle.nullDevice
        try ChildProcess.launch(process)
        let output = await CLI.readToEnd(stderr.fileHandleForReading)
        await CLI.waitForExit(process)
        let text = String(decoding: output, as: UTF8.self)
        #expect(process.terminationStatus != 0, "\(text)")
        #expect(text.contains(tree.appendingPathComponent("sub/root-only.key").path), "\(text)")
        #expect(text.contains("Permission denied"), "\(text)")
    }
}

/// Small helpers for the unreadable-file test.
enum ProcessRunner {
    /// Lets any user write the repository (the backup runs as nobody).
    static func chmodRecursive(_ url: URL) async throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/chmod")
        process.arguments = ["-R", "a+rwX", url.path]
        try ChildProcess.launch(process)
        await CommandLineTests.waitForExit(process)
        return process.terminationStatus
    }
}
