import Foundation
import LifeboatCore
import LifeboatServer
import LifeboatConnectors
import Testing

/// `repo init`, `put`, `get`, `snapshots`, `verify`, `key …` as a user runs them, exit codes included.
@Suite struct RepositoryCommandTests {
    typealias CLI = CommandLineTests

    static func scratch() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("lifeboat-repo-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    static func environment(_ repository: URL, password: String = "test passphrase") -> [String: String] {
        ["LIFEBOAT_REPOSITORY": repository.path, "LIFEBOAT_PASSWORD": password]
    }

    /// A scratch directory holding an initialised repository at `repo`, and the environment naming it.
    static func initializedRepository() async throws -> (directory: URL, repository: URL, env: [String: String]) {
        let directory = try scratch()
        let repository = directory.appendingPathComponent("repo")
        let env = environment(repository)
        _ = try await CLI.run(["repo", "init"], environment: env)
        return (directory, repository, env)
    }

    /// Flips a byte in the middle of a file, the way rot at rest would.
    static func flipByte(in file: URL) throws {
        var bytes = try Data(contentsOf: file)
        bytes[bytes.count / 2] ^= 0x55
        try bytes.write(to: file)
    }

    static func randomFile(_ size: Int, in directory: URL, name: String = "input.bin") throws -> URL {
        let file = directory.appendingPathComponent(name)
        let random = try #require(FileHandle(forReadingAtPath: "/dev/urandom"))
        try random.readData(ofLength: size).write(to: file)
        return file
    }

    @Test func initPutGetRoundTrip() async throws {
        let directory = try Self.scratch()
        let repository = directory.appendingPathComponent("repo")
        let env = Self.environment(repository)
        let created = try await CLI.run(["repo", "init"], environment: env)
        #expect(created.status == 0, "\(created.stderr)")
        let again = try await CLI.run(["repo", "init"], environment: env)
        #expect(again.status == 1)
        #expect(again.stderr.contains("already exists"))

        let input = try Self.randomFile(2_500_000, in: directory)
        let put = try await CLI.run(["put", "dump", input.path, "--tag", "nightly", "--json"], environment: env)
        #expect(put.status == 0, "\(put.stderr)")
        let id = try #require((JSONSerialization.jsonObject(with: Data(put.stdout.utf8)) as? [String: String])?["id"])
        #expect(id.count == 32)

        let output = directory.appendingPathComponent("restored.bin")
        let get = try await CLI.run(["get", String(id.prefix(8)), output.path], environment: env)
        #expect(get.status == 0, "\(get.stderr)")
        #expect(try Data(contentsOf: output) == Data(contentsOf: input))

        let latest = try await CLI.run(["get", "latest", "--store", "dump"], environment: env)
        #expect(latest.status == 0)
        #expect(try latest.stdoutData == Data(contentsOf: input))

        let list = try await CLI.run(["snapshots", "--json"], environment: env)
        let entries = try #require(JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]])
        #expect(entries.count == 1)
        #expect(entries.first?["store"] as? String == "dump")
        #expect(entries.first?["tags"] as? [String] == ["nightly"])
        #expect(entries.first?["size"] as? Int == 2_500_000)
        #expect((entries.first?["finished"] as? String)?.hasSuffix("Z") == true, "times are RFC 3339, not seconds since 2001")

        let verify = try await CLI.run(["verify", "--read-data"], environment: env)
        #expect(verify.status == 0, "\(verify.stderr)")
        #expect(verify.stdout.contains("no problems found"))
    }

    /// A flag beats a catalog named with --catalog, which beats a LIFEBOAT_* variable, which beats a
    /// catalog found through $LIFEBOAT_CATALOG; a disagreement is warned about, naming the winner.
    @Test func theCommandLineBeatsTheEnvironmentAndDisagreementsAreNamed() async throws {
        let directory = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let repository = directory.appendingPathComponent("repo")
        #expect(try await CLI.run(["repo", "init"], environment: Self.environment(repository)).status == 0)
        try Data("test passphrase\n".utf8).write(to: directory.appendingPathComponent("passphrase"))
        let catalog = directory.appendingPathComponent("lifeboat.yaml")
        try "version: 1\nrepository:\n  url: repo\n  password: file:passphrase\nstores:\n  - {name: a, kind: external, method: git, priority: P1, connection: {url: \"https://x\"}}\n"
            .write(to: catalog, atomically: true, encoding: .utf8)
        let hostile = ["LIFEBOAT_PASSWORD": "not the passphrase", "LIFEBOAT_REPOSITORY": directory.appendingPathComponent("elsewhere").path]

        let named = try await CLI.run(["snapshots", "--catalog", catalog.path], environment: hostile)
        #expect(named.status == 0, "\(named.stderr)")
        #expect(named.stderr.contains("warning: LIFEBOAT_PASSWORD and the catalog's repository.password differ; using --catalog's repository.password"), "\(named.stderr)")
        #expect(named.stderr.contains("name different repositories; using --catalog's repository.url"), "\(named.stderr)")

        // Found through the environment, the catalog is the weakest source: the variables win, and say so.
        let found = try await CLI.run(["snapshots"], environment: hostile.merging(["LIFEBOAT_CATALOG": catalog.path]) { $1 })
        #expect(found.status == 10, "the variable's repository, which does not exist: \(found.stderr)")
        #expect(found.stderr.contains("using LIFEBOAT_REPOSITORY"), "\(found.stderr)")

        // With nothing named, every command reads ./lifeboat.yaml: the repository commands and the
        // platform ones alike.
        for command in [["snapshots"], ["points"], ["status"], ["restore", "--dry-run"]] {
            let local = try await CLI.run(command, in: directory)
            #expect(local.status == 0, "\(command) in the catalog's directory: \(local.stderr)")
        }

        // A flag beats both, silently.
        let flagged = try await CLI.run(["snapshots", "--repo", repository.path, "--password-file", directory.appendingPathComponent("passphrase").path,
                                         "--catalog", catalog.path], environment: hostile)
        #expect(flagged.status == 0 && !flagged.stderr.contains("warning"), "\(flagged.stderr)")
    }

    @Test func stdinStreamsIn() async throws {
        let directory = try Self.scratch()
        let env = Self.environment(directory.appendingPathComponent("repo"))
        _ = try await CLI.run(["repo", "init"], environment: env)
        let input = try Self.randomFile(700_000, in: directory)
        let process = try CLI.spawn(["put", "piped", "-"], environment: env)
        process.standardInput = try FileHandle(forReadingFrom: input)
        let stdout = ChildProcess.pipe()
        process.standardOutput = stdout
        try ChildProcess.launch(process)
        let id = String(decoding: stdout.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        await CLI.waitForExit(process)
        #expect(process.terminationStatus == 0)
        let restored = try await CLI.run(["get", id], environment: env)
        #expect(restored.status == 0)
        #expect(try restored.stdoutData == Data(contentsOf: input))
    }

    @Test func badInputGetsTheDocumentedExitCodes() async throws {
        let directory = try Self.scratch()
        let repository = directory.appendingPathComponent("repo")
        let env = Self.environment(repository)
        let nothing = try await CLI.run(["snapshots"], environment: env)
        #expect(nothing.status == 10)
        #expect(nothing.stderr.contains("no Lifeboat repository here"))

        _ = try await CLI.run(["repo", "init"], environment: env)
        let wrong = try await CLI.run(["snapshots"], environment: Self.environment(repository, password: "not it"))
        #expect(wrong.status == 12)
        #expect(wrong.stderr.contains("no key of this repository opens with the passphrase given"))
        #expect(!wrong.stderr.contains("not it"), "the passphrase is never printed")

        let unknown = try await CLI.run(["get", "deadbeef"], environment: env)
        #expect(unknown.status == 2)
        #expect(unknown.stderr.contains("snapshot deadbeef: no such snapshot"))

        var noPassword = env
        noPassword["LIFEBOAT_PASSWORD"] = nil
        let missing = try await CLI.run(["snapshots"], environment: noPassword)
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("--password-file"))
    }

    @Test func corruptChunkMakesGetAndVerifyFailWithoutWritingAFile() async throws {
        let directory = try Self.scratch()
        let repository = directory.appendingPathComponent("repo")
        let env = Self.environment(repository)
        _ = try await CLI.run(["repo", "init"], environment: env)
        let input = try Self.randomFile(3_000_000, in: directory)
        let id = try await CLI.run(["put", "dump", input.path], environment: env).stdout.trimmingCharacters(in: .whitespacesAndNewlines)

        // Flip a byte in the middle of one chunk file.
        let chunks = FileManager.default.enumerator(atPath: repository.appendingPathComponent("data").path)!.compactMap { $0 as? String }.filter { $0.count > 60 }
        let victim = repository.appendingPathComponent("data").appendingPathComponent(try #require(chunks.first))
        var bytes = try Data(contentsOf: victim)
        bytes[bytes.count / 2] ^= 0x55
        try bytes.write(to: victim)

        let output = directory.appendingPathComponent("out.bin")
        let get = try await CLI.run(["get", id, output.path], environment: env)
        #expect(get.status == 3)
        #expect(get.stderr.contains("data/"))
        #expect(get.stderr.contains("damaged"))
        #expect(!FileManager.default.fileExists(atPath: output.path), "no wrong file is left behind")
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.contains("lifeboat-") }.isEmpty)

        #expect(try await CLI.run(["verify"], environment: env).status == 0, "presence check alone passes")
        let verify = try await CLI.run(["verify", "--read-data"], environment: env)
        #expect(verify.status == 3)
        #expect(verify.stderr.contains(victim.lastPathComponent))
        let subset = try await CLI.run(["verify", "--read-data-subset", "100%", "--json"], environment: env)
        #expect(subset.status == 3)
        #expect(try await CLI.run(["verify", "--read-data-subset", "150%"], environment: env).status == 2)
    }

    /// Issue 16: the index from the command line. A put fills `LIFEBOAT_CACHE_DIR`; a damaged index
    /// object makes verify exit 3 naming it, a put still stores and restores, and `repo index
    /// rebuild` replaces it so verify passes again.
    @Test func aDamagedIndexIsReportedAndRebuilt() async throws {
        let (directory, repository, initial) = try await Self.initializedRepository()
        let cache = directory.appendingPathComponent("cache")
        var env = initial
        env["LIFEBOAT_CACHE_DIR"] = cache.path
        let input = try Self.randomFile(2_000_000, in: directory)
        #expect(try await CLI.run(["put", "dump", input.path], environment: env).status == 0)
        let indexDirectory = repository.appendingPathComponent("index")
        let objects = try FileManager.default.contentsOfDirectory(atPath: indexDirectory.path).filter { !$0.hasPrefix(".") }
        try #require(objects.count == 1)
        let cached = FileManager.default.enumerator(atPath: cache.path)?.compactMap { $0 as? String } ?? []
        #expect(cached.contains { $0.hasSuffix("index/\(objects[0])") }, "the put cached its index object: \(cached)")

        try Self.flipByte(in: indexDirectory.appendingPathComponent(objects[0]))
        let verify = try await CLI.run(["verify"], environment: env)
        #expect(verify.status == 3)
        #expect(verify.stderr.contains("index/\(objects[0])") && verify.stderr.contains("repo index rebuild"), "\(verify.stderr)")

        let second = try Self.randomFile(500_000, in: directory, name: "second.bin")
        let id = try await CLI.run(["put", "dump", second.path], environment: env).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let output = directory.appendingPathComponent("out.bin")
        #expect(try await CLI.run(["get", id, output.path], environment: env).status == 0)
        #expect(try Data(contentsOf: output) == Data(contentsOf: second))

        let rebuild = try await CLI.run(["repo", "index", "rebuild", "--json"], environment: env)
        #expect(rebuild.status == 0, "\(rebuild.stderr)")
        let report = try JSONSerialization.jsonObject(with: rebuild.stdoutData) as? [String: Int]
        let chunks = FileManager.default.enumerator(atPath: repository.appendingPathComponent("data").path)!.compactMap { $0 as? String }.filter { $0.count > 60 }
        #expect(report?["chunks"] == chunks.count)
        #expect(report?["objects_written"] == 1)
        let healthy = try await CLI.run(["verify", "--json"], environment: env)
        #expect(healthy.status == 0, "\(healthy.stdout)")
        let summary = try JSONSerialization.jsonObject(with: healthy.stdoutData) as? [String: Any]
        #expect(summary?["index_objects"] as? Int == 1)
        #expect(summary?["unindexed_chunks"] as? Int == 0)
    }

    @Test func killedPutLeavesARepositoryThatVerifies() async throws {
        let (directory, repository, env) = try await Self.initializedRepository()
        let kept = try Self.randomFile(1_000_000, in: directory, name: "kept.bin")
        #expect(try await CLI.run(["put", "kept", kept.path], environment: env).status == 0)
        let big = try Self.randomFile(48_000_000, in: directory, name: "big.bin")

        for delay in [0.05, 0.3, 0.8] {
            let process = try CLI.spawn(["put", "interrupted", big.path], environment: env)
            try ChildProcess.launch(process)
            try await Task.sleep(for: .seconds(delay))
            kill(process.processIdentifier, SIGKILL)
            await CLI.waitForExit(process)

            let verify = try await CLI.run(["verify", "--read-data"], environment: env)
            #expect(verify.status == 0, "after kill -9 at \(delay)s: \(verify.stderr)")
            let list = try await CLI.run(["snapshots", "--json"], environment: env)
            let stores = (try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]])?.compactMap { $0["store"] as? String }
            // Either the put finished before the kill (a whole snapshot) or it is simply absent.
            #expect(stores?.first == "kept")
            if process.terminationReason == .uncaughtSignal, stores?.count == 2 {
                let restored = try await CLI.run(["get", "latest", "--store", "interrupted"], environment: env)
                #expect(try restored.stdoutData == Data(contentsOf: big))
            }
        }
        #expect(try await CLI.run(["get", "latest", "--store", "kept", directory.appendingPathComponent("kept.out").path], environment: env).status == 0)
        #expect(try Data(contentsOf: directory.appendingPathComponent("kept.out")) == Data(contentsOf: kept))
    }

    /// Issue 10, item 4, as reported: the newest manifest is damaged; `get latest` must not hand back older data.
    @Test func getLatestRefusesWhenTheNewestManifestIsDamaged() async throws {
        let (directory, repository, env) = try await Self.initializedRepository()
        let older = try Self.randomFile(300_000, in: directory, name: "older.bin")
        let newer = try Self.randomFile(300_000, in: directory, name: "newer.bin")
        #expect(try await CLI.run(["put", "db", older.path], environment: env).status == 0)
        let id = try await CLI.run(["put", "db", newer.path], environment: env).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try Self.flipByte(in: repository.appendingPathComponent("snapshots/\(id)"))

        for arguments in [["get", "latest"], ["get", "latest", "--store", "db"]] {
            let get = try await CLI.run(arguments, environment: env)
            #expect(get.status == 3, "\(arguments): \(get.stderr)")
            #expect(get.stdout.isEmpty, "no bytes of any snapshot")
            #expect(get.stderr.contains("snapshots/\(id)"))
            #expect(get.stderr.contains("--skip-damaged"))
        }
        let skipping = try await CLI.run(["get", "latest", "--store", "db", "--skip-damaged"], environment: env)
        #expect(skipping.status == 0, "\(skipping.stderr)")
        #expect(try skipping.stdoutData == Data(contentsOf: older), "asked to skip: the newest readable snapshot")
        #expect(skipping.stderr.contains("skipped, damaged: snapshots/\(id)"))
        #expect(try await CLI.run(["snapshots"], environment: env).status == 3)
    }

    /// `status` reads every manifest to find each store's last backup: a damaged newest one must not
    /// make an older backup pass for the latest (exit 3, the object named; JSON and metrics say so too).
    @Test func statusNamesADamagedManifestInsteadOfReportingAnOlderBackupAsTheLast() async throws {
        let directory = try Self.scratch()
        try "status passphrase\n".write(to: directory.appendingPathComponent("passphrase"), atomically: true, encoding: .utf8)
        let catalog = directory.appendingPathComponent("lifeboat.yaml")
        try """
        repository: {url: backups, password: "file:passphrase"}
        stores:
          - {name: dump, kind: files, method: copy, cadence: 1h, rpo: 1d, priority: P0, verify: [{file: dump.sql}], connection: {paths: [/var/backups]}}
        """.write(to: catalog, atomically: true, encoding: .utf8)
        let c = ["--catalog", catalog.path]
        #expect(try await CLI.run(["repo", "init"] + c, environment: [:]).status == 0)
        let older = try Self.randomFile(50_000, in: directory, name: "older")
        let newer = try Self.randomFile(50_000, in: directory, name: "newer")
        let olderID = try await CLI.run(["put", "dump", older.path] + c, environment: [:]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let newerID = try await CLI.run(["put", "dump", newer.path] + c, environment: [:]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        // Intact, the newest is the last backup (exit 6 only because nothing was ever drilled).
        let intact = try await CLI.run(["status", "--json"] + c, environment: [:])
        #expect(intact.status == 6, "\(intact.stderr)")
        #expect(try PlatformCommandLineTests.decode(PlatformStatus.self, intact).stores.first?.lastBackupSnapshot == newerID)

        try Self.flipByte(in: directory.appendingPathComponent("backups/snapshots/\(newerID)"))
        let damaged = try await CLI.run(["status", "--json"] + c, environment: [:])
        #expect(damaged.status == 3, "\(damaged.stdout)\(damaged.stderr)")
        #expect(damaged.stderr.contains("snapshots/\(newerID)") && damaged.stderr.contains("may not be the newest"), "\(damaged.stderr)")
        let document = try PlatformCommandLineTests.decode(PlatformStatus.self, damaged)
        #expect(document.damaged == ["snapshots/\(newerID)"])
        #expect(document.stores.first?.lastBackupSnapshot == olderID, "the readable one is shown, flagged by `damaged`")
        let table = try await CLI.run(["status"] + c, environment: [:])
        #expect(table.status == 3 && table.stdout.contains("DAMAGED: snapshots/\(newerID)"), "\(table.stdout)")
        #expect(PrometheusText.render(document).contains("lifeboat_repository_damaged_objects 1"))
    }

    /// Issue 10, item 5, as reported: kill -9 a put, flip a byte in a chunk it left, put the same data again.
    @Test func aChunkLeftByAKilledPutThatRotsIsNeverReused() async throws {
        let directory = try Self.scratch()
        let repository = directory.appendingPathComponent("repo")
        let env = Self.environment(repository)
        let data = repository.appendingPathComponent("data")
        func chunkFiles() -> Set<String> {
            Set((FileManager.default.enumerator(atPath: data.path)?.compactMap { $0 as? String } ?? []).filter { $0.count > 60 && !$0.contains(".tmp-") })
        }
        var big = directory
        var leftovers: [String] = []
        for attempt in 0..<4 where leftovers.isEmpty {
            // A put that finished is no use here: start over from an empty repository.
            try? FileManager.default.removeItem(at: repository)
            _ = try await CLI.run(["repo", "init"], environment: env)
            big = try Self.randomFile(64_000_000, in: directory, name: "big\(attempt).bin")
            let process = try CLI.spawn(["put", "big", big.path], environment: env)
            try ChildProcess.launch(process)
            // Killed as soon as its first chunks are stored, however loaded the machine is.
            let deadline = Date().addingTimeInterval(60)
            while chunkFiles().isEmpty, process.isRunning, Date() < deadline { try await Task.sleep(for: .milliseconds(5)) }
            kill(process.processIdentifier, SIGKILL)
            await CLI.waitForExit(process)
            let manifests = (try? FileManager.default.contentsOfDirectory(atPath: repository.appendingPathComponent("snapshots").path)) ?? []
            if process.terminationReason == .uncaughtSignal, manifests.isEmpty {
                leftovers = chunkFiles().sorted()
            }
        }
        let victim = data.appendingPathComponent(try #require(leftovers.first, "a killed put left chunks"))
        try Self.flipByte(in: victim)

        let verify = try await CLI.run(["verify", "--read-data", "--json"], environment: env)
        #expect(verify.status == 3, "a damaged unreferenced chunk is damage: \(verify.stdout)")
        let report = try #require(JSONSerialization.jsonObject(with: Data(verify.stdout.utf8)) as? [String: Any])
        #expect(report["unreferenced_chunks_read"] as? Int == leftovers.count)
        let problems = report["problems"] as? [[String: Any]]
        #expect(problems?.count == 1)
        #expect((problems?.first?["object"] as? String)?.hasSuffix(victim.lastPathComponent) == true)

        let put = try await CLI.run(["put", "big", big.path], environment: env)
        #expect(put.status == 0, "\(put.stderr)")
        let output = directory.appendingPathComponent("big.out")
        let get = try await CLI.run(["get", "latest", "--store", "big", output.path], environment: env)
        #expect(get.status == 0, "the snapshot put reported restores: \(get.stderr)")
        #expect(try Data(contentsOf: output) == Data(contentsOf: big))
        let clean = try await CLI.run(["verify", "--read-data"], environment: env)
        #expect(clean.status == 0, "\(clean.stderr)")
    }

    @Test func keyCustodyFromTheCommandLine() async throws {
        let directory = try Self.scratch()
        let repository = directory.appendingPathComponent("repo")
        let env = Self.environment(repository)
        _ = try await CLI.run(["repo", "init"], environment: env)
        let input = try Self.randomFile(200_000, in: directory)
        let id = try await CLI.run(["put", "secrets", input.path], environment: env).stdout.trimmingCharacters(in: .whitespacesAndNewlines)

        let split = try await CLI.run(["key", "split", "--shares", "5", "--threshold", "3"], environment: env)
        #expect(split.status == 0, "\(split.stderr)")
        let shares = split.stdout.split(separator: "\n").map(String.init)
        #expect(shares.count == 5)
        #expect(shares.allSatisfy { $0.hasPrefix("lbshare1-") })

        // Break glass: three shares and a new passphrase, no old passphrase at all.
        var breakGlass = ["LIFEBOAT_REPOSITORY": repository.path, "LIFEBOAT_NEW_PASSWORD": "recovered"]
        let tooFew = try await CLI.run(["key", "combine", shares[0], shares[3]], environment: breakGlass)
        #expect(tooFew.status == 12)
        #expect(tooFew.stderr.contains("needs 3"))
        let combined = try await CLI.run(["key", "combine", shares[4], shares[1], shares[2]], environment: breakGlass)
        #expect(combined.status == 0, "\(combined.stderr)")
        breakGlass["LIFEBOAT_PASSWORD"] = "recovered"
        let get = try await CLI.run(["get", id], environment: breakGlass)
        #expect(get.status == 0)
        #expect(try get.stdoutData == Data(contentsOf: input))

        let keys = try await CLI.run(["key", "list", "--json"], environment: env)
        #expect((try JSONSerialization.jsonObject(with: Data(keys.stdout.utf8)) as? [Any])?.count == 2)
        var addEnv = env
        addEnv["LIFEBOAT_NEW_PASSWORD"] = "third"
        #expect(try await CLI.run(["key", "add", "--label", "ci"], environment: addEnv).status == 0)
    }

    @Test func pruneAndMirrorFromTheCommandLine() async throws {
        let directory = try Self.scratch()
        let repository = directory.appendingPathComponent("repo")
        let env = Self.environment(repository)
        _ = try await CLI.run(["repo", "init"], environment: env)
        var ids: [String] = []
        for index in 0..<3 {
            let input = try Self.randomFile(300_000, in: directory, name: "in\(index).bin")
            ids.append(try await CLI.run(["put", "dump", input.path], environment: env).stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        let noPolicy = try await CLI.run(["prune"], environment: env)
        #expect(noPolicy.status == 2)
        #expect(noPolicy.stderr.contains("no retention policy"))

        let mirror = directory.appendingPathComponent("offsite")
        let copied = try await CLI.run(["mirror", "--to", mirror.path, "--json"], environment: env)
        #expect(copied.status == 0, "\(copied.stderr)")
        #expect((try JSONSerialization.jsonObject(with: Data(copied.stdout.utf8)) as? [String: Any])?["copied_snapshots"] as? [String] != nil)

        let dry = try await CLI.run(["prune", "--keep-last", "1", "--grace", "0s", "--dry-run"], environment: env)
        #expect(dry.status == 0, "\(dry.stderr)")
        #expect(dry.stdout.contains("would remove 2 snapshots"))
        let pruned = try await CLI.run(["prune", "--keep-last", "1", "--grace", "0s", "--json"], environment: env)
        let report = try #require(JSONSerialization.jsonObject(with: Data(pruned.stdout.utf8)) as? [String: Any])
        #expect(Set(report["removed_snapshots"] as? [String] ?? []) == Set(ids.prefix(2)))
        #expect(try await CLI.run(["verify", "--read-data"], environment: env).status == 0)

        // Mirroring after the source lost two snapshots keeps them on the mirror.
        #expect(try await CLI.run(["mirror", "--to", mirror.path], environment: env).status == 0)
        let onMirror = try await CLI.run(["snapshots", "--json"], environment: Self.environment(mirror))
        #expect((try JSONSerialization.jsonObject(with: Data(onMirror.stdout.utf8)) as? [[String: Any]])?.count == 3)
        #expect(try await CLI.run(["verify", "--read-data"], environment: Self.environment(mirror)).status == 0)
    }

    /// 2 GiB through `put -` and `get … -`, hashed on both sides; nothing that size touches the disk but the repository.
    @Test func multiGiBStreamRoundTrip() async throws {
        let directory = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let repository = directory.appendingPathComponent("repo")
        let env = Self.environment(repository)
        _ = try await CLI.run(["repo", "init"], environment: env)
        let script = """
        set -euo pipefail
        head -c 2147483648 /dev/urandom | tee >(sha256sum | cut -d' ' -f1 > "$DIR/in.sha") | "$LIFEBOAT" put big - > "$DIR/id"
        sleep 0.5  # let the process substitution finish writing its hash
        "$LIFEBOAT" get "$(cat "$DIR/id")" - | sha256sum | cut -d' ' -f1 > "$DIR/out.sha"
        """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-c", script]
        process.environment = ProcessInfo.processInfo.environment.merging(env) { $1 }
            .merging(["DIR": directory.path, "LIFEBOAT": CLI.binary.path]) { $1 }
        try ChildProcess.launch(process)
        await CLI.waitForExit(process)
        #expect(process.terminationStatus == 0)
        let input = try String(contentsOf: directory.appendingPathComponent("in.sha"), encoding: .utf8)
        let output = try String(contentsOf: directory.appendingPathComponent("out.sha"), encoding: .utf8)
        #expect(input.count == 65)
        #expect(input == output, "2 GiB restored byte for byte")
        let snapshot = try await CLI.run(["snapshots", "--json"], environment: env)
        #expect((try JSONSerialization.jsonObject(with: Data(snapshot.stdout.utf8)) as? [[String: Any]])?.first?["size"] as? Int == 2_147_483_648)
    }

    /// The catalog's `repository:` section is enough: no --repo, no LIFEBOAT_* variables; and prune takes each store's retention from it.
    @Test func repositoryAndRetentionComeFromTheCatalog() async throws {
        let directory = try Self.scratch()
        try "catalog passphrase\n".write(to: directory.appendingPathComponent("passphrase"), atomically: true, encoding: .utf8)
        let catalog = directory.appendingPathComponent("lifeboat.yaml")
        try """
        repository:
          url: backups
          password: file:passphrase
        stores:
          - name: dump
            kind: files
            method: pg_dump piped into lifeboat put
            cadence: 1h
            retention:
              keep_last: 1
            priority: P0
            verify:
              - file: dump.sql
            connection:
              paths: [/var/backups]
          - name: keep-all
            kind: external
            method: git
            priority: P1
        """.write(to: catalog, atomically: true, encoding: .utf8)
        let catalogArgument = ["--catalog", catalog.path]
        #expect(try await CLI.run(["repo", "init"] + catalogArgument, environment: [:]).status == 0)
        #expect(FileManager.default.fileExists(atPath: directory.appendingPathComponent("backups/config").path), "relative to the catalog's directory")
        for index in 0..<3 {
            let input = try Self.randomFile(100_000, in: directory, name: "in\(index)")
            #expect(try await CLI.run(["put", index == 2 ? "keep-all" : "dump", input.path] + catalogArgument, environment: [:]).status == 0)
        }
        let pruned = try await CLI.run(["prune", "--grace", "0s", "--json"] + catalogArgument, environment: [:])
        #expect(pruned.status == 0, "\(pruned.stderr)")
        let report = try #require(JSONSerialization.jsonObject(with: Data(pruned.stdout.utf8)) as? [String: Any])
        #expect((report["removed_snapshots"] as? [String])?.count == 1, "dump keeps its last 1; keep-all has no policy and keeps everything")

        // A reference to a variable that is not set is named, not guessed around.
        let missing = directory.appendingPathComponent("env.yaml")
        try "repository:\n  url: backups\n  password: env:LIFEBOAT_TEST_UNSET_VARIABLE\nstores: []\n".write(to: missing, atomically: true, encoding: .utf8)
        let refused = try await CLI.run(["snapshots", "--catalog", missing.path], environment: [:])
        #expect(refused.status == 2)
        #expect(refused.stderr.contains("LIFEBOAT_TEST_UNSET_VARIABLE"))
    }

    @Test func twoPutProcessesAtOnceBothSucceed() async throws {
        let directory = try Self.scratch()
        let env = Self.environment(directory.appendingPathComponent("repo"))
        _ = try await CLI.run(["repo", "init"], environment: env)
        let inputs = try (0..<2).map { try Self.randomFile(6_000_000, in: directory, name: "p\($0)") }
        let processes = try inputs.enumerated().map { index, input in try CLI.spawn(["put", "parallel-\(index)", input.path], environment: env) }
        for process in processes { try ChildProcess.launch(process) }
        for process in processes {
            await CLI.waitForExit(process)
            #expect(process.terminationStatus == 0)
        }
        for (index, input) in inputs.enumerated() {
            let restored = try await CLI.run(["get", "latest", "--store", "parallel-\(index)"], environment: env)
            #expect(try restored.stdoutData == Data(contentsOf: input))
        }
        #expect(try await CLI.run(["verify", "--read-data"], environment: env).status == 0)
    }
}
