import Foundation
import LifeboatConnectors
import LifeboatCore
import LifeboatTesting
import Testing
@testable import LifeboatCommands

/// `backup`, `points`, `drill`, `status`, `catalog --status` and the production `restore` as an
/// operator runs them, against the demo's real PostgreSQL, OpenBao and etcd.
/// Serialized: each test runs three real servers; two at once on a 2-core machine starve their start-up.
@Suite(.serialized) struct PlatformCommandLineTests {
    typealias CLI = CommandLineTests

    static func decode<T: Decodable>(_ type: T.Type, _ result: CommandLineTests.Result) throws -> T {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode(type, from: result.stdoutData)
    }

    /// The demo's three servers, seeded, with their catalog, under a new directory.
    static func demoPlatform(_ label: String) async throws -> (URL, DemoPlatform) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("lifeboat-cli-\(label)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        let platform = DemoPlatform(directory: directory)
        do {
            try await platform.start()
            try await platform.seed()
            try platform.writeCatalog()
        } catch {
            sweep(directory)
            throw error
        }
        return (directory, platform)
    }

    /// Stops every process started under `directory` (by PID, found by path) and removes it.
    static func sweep(_ directory: URL) {
        ProcessSweep.stopProcesses(mentioning: directory.path)
        try? FileManager.default.removeItem(at: directory)
    }

    @Test(.timeLimit(.minutes(5)))
    func backUpDrillThenRestoreProductionInPlanOrderWithResume() async throws {
        let (directory, platform) = try await Self.demoPlatform("platform")
        defer { Self.sweep(directory) }
        let etcd = try #require(platform.etcd)
        let postgres = try #require(platform.postgres)
        // A production restore recreates etcd's members: the catalog says where they live.
        let layout = etcd.members.map { "{name: \($0.name), peer_url: \"\($0.peerURL)\", data_directory: \($0.dataDirectory)}" }.joined(separator: ", ")
        var yaml = try String(contentsOf: platform.catalogURL, encoding: .utf8)
        let endpointsLine = "      endpoints: [\(etcd.endpoints.joined(separator: ", "))]"
        #expect(yaml.contains(endpointsLine))
        yaml = yaml.replacingOccurrences(of: endpointsLine, with: endpointsLine + "\n      members: [\(layout)]\n      cluster_token: demo-etcd")
        try yaml.write(to: platform.catalogURL, atomically: true, encoding: .utf8)
        let c = ["-c", platform.catalogURL.path]

        #expect(try await CLI.run(["validate"] + c).status == 0)
        let created = try await CLI.run(["repo", "init"] + c)
        #expect(created.status == 0, "\(created.stderr)")

        // One recovery point of all three stores.
        let backup = try await CLI.run(["backup", "--json"] + c)
        #expect(backup.status == 0, "\(backup.stderr)")
        let point = try Self.decode(RecoveryPoint.self, backup)
        #expect(Set(point.members.map(\.store)) == ["openbao", "postgres", "etcd"])
        #expect(point.members.allSatisfy { $0.snapshot != nil && $0.error == nil })
        let points = try await CLI.run(["points", "--json"] + c)
        #expect(try Self.decode([RecoveryPoint].self, points).map(\.id) == [point.id])

        // Before any drill, status flags every store as unproven (exit 6); after one, all is well.
        #expect(try await CLI.run(["status"] + c).status == 6)
        let drill = try await CLI.run(["drill", "--json", "--point", String(point.id.prefix(8))] + c)
        #expect(drill.status == 0, "\(drill.stderr)")
        let report = try Self.decode(DrillReport.self, drill)
        #expect(report.point == point.id && report.steps.map(\.store) == ["openbao", "postgres", "etcd"])
        #expect(report.steps.allSatisfy { $0.outcome == .passed && !$0.checks.isEmpty })
        let status = try await CLI.run(["status", "--json"] + c)
        #expect(status.status == 0, "\(status.stdout)\(status.stderr)")
        let stores = try Self.decode(PlatformStatus.self, status).stores
        #expect(stores.allSatisfy { $0.lastVerifiedRestore != nil && !$0.proofStale && $0.lastBackupSnapshot != nil })
        let matrix = try await CLI.run(["catalog", "--status"] + c)
        #expect(matrix.status == 0 && matrix.stdout.contains(report.finished.formatted(.iso8601.year().month().day())), "\(matrix.stdout)")

        // The platform moves on after the point: a row, a key and a secret the restore must undo.
        _ = try await Psql(postgres.socketEndpoint).output("INSERT INTO tenants (name, secret_path) VALUES ('later', 'secret/data/demo/tenants/later')", database: "app")
        try await etcd.gateway().connect().put(Data("/demo/tenants/later".utf8), Data("{}".utf8))

        // The dry run shows the exact actions and the phrase; without the phrase nothing runs.
        // Preflight: with every server still running, the dry run names every refusal at once and
        // exits 5 — PostgreSQL holds the databases (no --force), etcd's members answer and their
        // directories are not empty — exactly what the real run would meet.
        let dryRun = try await CLI.run(["restore", "--latest", "--dry-run"] + c)
        #expect(dryRun.status == 5, "\(dryRun.stderr)")
        #expect(dryRun.stdout.contains("PREFLIGHT: PostgreSQL at") && dryRun.stdout.contains("already holds app"), "\(dryRun.stdout)")
        #expect(dryRun.stdout.contains("PREFLIGHT: etcd still answers at") && dryRun.stdout.contains("of member member1 is not empty"), "\(dryRun.stdout)")
        #expect(dryRun.stdout.contains("PREFLIGHT: ") && dryRun.stdout.contains("the target is initialised and may hold data; pass --force"), "\(dryRun.stdout)")
        #expect(dryRun.stderr.contains("step 1 (openbao)") && dryRun.stderr.contains("step 2 (postgres)") && dryRun.stderr.contains("step 3 (etcd)"), "\(dryRun.stderr)")
        let forced = try await CLI.run(["restore", "--latest", "--dry-run", "--force"] + c)
        #expect(forced.status == 5 && !forced.stdout.contains("already holds app") && !forced.stdout.contains("the target is initialised")
                && forced.stdout.contains("etcd still answers"), "\(forced.stdout)")
        // --latest composes every store's newest state; its phrase names that, not one point.
        let phrase = "restore lifeboat-demo latest"
        #expect(dryRun.stdout.contains("--confirm \"\(phrase)\""), "\(dryRun.stdout)")
        #expect(dryRun.stdout.contains("into members member1 (\(etcd.members[0].dataDirectory))"), "\(dryRun.stdout)")
        let unconfirmed = try await CLI.run(["restore", "--latest", "--force", "--confirm", "restore something else"] + c)
        #expect(unconfirmed.status == 2 && unconfirmed.stderr.contains(phrase) && unconfirmed.stderr.contains("does not match"), "\(unconfirmed.stderr)")

        // The run: OpenBao and PostgreSQL restored and gated; etcd still runs, so its step refuses
        // before touching anything and the run stops there (exit 5), naming the step.
        let first = try await CLI.run(["restore", "--latest", "--force", "--confirm", phrase] + c)
        #expect(first.status == 5, "\(first.stdout)\(first.stderr)")
        #expect(first.stderr.contains("step 3 (etcd)") && first.stderr.contains("still answers") && first.stderr.contains("--from-step 3"), "\(first.stderr)")
        #expect(try await Psql(postgres.socketEndpoint).value("SELECT count(*) FROM tenants WHERE name = 'later'", database: "app") == "0")
        #expect(try await etcd.gateway().connect().keyValues(prefix: Data("/demo/tenants/later".utf8)).count == 1, "etcd untouched")

        // Stop etcd as the message says, resume at step 3: its data directories are rebuilt,
        // checked by a temporary start and handed over stopped.
        await etcd.stop()
        let resumed = try await CLI.run(["restore", "--latest", "--force", "--from-step", "3", "--confirm", phrase] + c)
        #expect(resumed.status == 0, "\(resumed.stdout)\(resumed.stderr)")
        #expect(resumed.stdout.contains("restored and checked, then stopped"), "\(resumed.stdout)")
        #expect(!FileManager.default.fileExists(atPath: platform.directory.appendingPathComponent(".lifeboat/restore-journal.json").path))
        let aside = try FileManager.default.contentsOfDirectory(atPath: URL(fileURLWithPath: etcd.members[0].dataDirectory).deletingLastPathComponent().path)
        #expect(aside.contains { $0.hasPrefix("member1.lifeboat-previous-") }, "the old data directory is kept aside: \(aside)")
        let restarted = try await LocalEtcd.start(restored: etcd.members, logDirectory: directory.appendingPathComponent("etcd-restarted"))
        defer { Task { await restarted.stop() } }
        let session = try await restarted.gateway().connect()
        #expect(try await session.keyValues(prefix: Data("/demo/tenants/".utf8)).map { String(decoding: $0.key, as: UTF8.self) }
            == DemoPlatform.tenants.map { "/demo/tenants/\($0)" })
        await restarted.stop()

        // Both production runs are evidence: the one that stopped at etcd (failed there), and the
        // resumed one whose etcd gate passed; status shows the newest as a production restore.
        let after = try Self.decode(PlatformStatus.self, try await CLI.run(["status", "--json"] + c))
        #expect(after.lastDrill?.kind == "production" && after.lastDrill?.passed == true, "steps 1-2 skipped by --from-step count neither way: \(String(describing: after.lastDrill))")
        let etcdStatus = try #require(after.stores.first { $0.store == "etcd" })
        #expect(etcdStatus.lastDrillPassed == true && !etcdStatus.proofStale, "the resumed run proved etcd")
        #expect(after.stores.first { $0.store == "openbao" }?.lastDrillPassed == true, "the first run proved openbao")
        await platform.stopServers()
    }

    /// Each store on a cadence of its own (no joint backup): PostgreSQL, then OpenBao, then etcd
    /// three times, then PostgreSQL again. `restore --latest` and `drill` compose them: each store at
    /// the newest state the consistency rule allows, and the dry run says why.
    @Test(.timeLimit(.minutes(5)))
    func perStoreBackupsComposeIntoOneRestore() async throws {
        let (directory, platform) = try await Self.demoPlatform("cadences")
        defer { Self.sweep(directory) }
        let c = ["-c", platform.catalogURL.path]
        #expect(try await CLI.run(["repo", "init"] + c).status == 0)
        let before = Date()

        func backup(_ store: String) async throws -> String {
            let result = try await CLI.run(["backup", store, "--json"] + c)
            #expect(result.status == 0, "\(result.stderr)")
            return try #require(try Self.decode(RecoveryPoint.self, result).member(store)?.snapshot)
        }
        let postgres1 = try await backup("postgres")
        let openbao = try await backup("openbao")
        var etcd: [String] = []
        for round in 0..<3 {
            try await platform.etcd!.gateway().connect().put(Data("/demo/round".utf8), Data("\(round)".utf8))
            etcd.append(try await backup("etcd"))
        }
        _ = try await backup("postgres")

        // The servers run, so the preflight refuses (exit 5); the plan is printed all the same.
        let dryRun = try await CLI.run(["restore", "--dry-run", "--json", "--force"] + c)
        #expect(dryRun.status == 5 && dryRun.stderr.contains("preflight"), "\(dryRun.stdout)\(dryRun.stderr)")
        let plan = try #require(try JSONSerialization.jsonObject(with: dryRun.stdoutData) as? [String: Any])
        #expect(plan["confirmation"] as? String == "restore lifeboat-demo latest")
        let steps = try #require(plan["steps"] as? [[String: Any]])
        func step(_ store: String) throws -> [String: Any] { try #require(steps.first { $0["store"] as? String == store }) }
        #expect(try step("openbao")["snapshot"] as? String == openbao)
        #expect((try step("openbao")["reason"] as? String)?.contains("the newest available") == true)
        #expect(try step("etcd")["snapshot"] as? String == etcd[2], "etcd depends on nothing: its newest")
        #expect(try step("postgres")["snapshot"] as? String == postgres1, "the later postgres backup is newer than openbao's data")
        let postgres = try step("postgres")
        #expect((postgres["reason"] as? String)?.contains("rewound because of openbao") == true, "\(postgres)")
        #expect((try step("etcd")["preflight"] as? [String])?.contains { $0.contains("names none: set connection.members") } == true)
        #expect((try step("postgres")["consistency"] as? String)?.contains("stays in the repository, not restored") == true)

        // Every choice carries its data time, its age against the store's RPO (the demo's: 1h, 1h, 15m).
        for (store, rpo) in [("openbao", 3600.0), ("postgres", 3600.0), ("etcd", 900.0)] {
            let chosen = try step(store)
            #expect(chosen["dataTime"] is String && chosen["rpo"] as? Double == rpo, "\(store): \(chosen)")
            #expect((chosen["dataAge"] as? Double).map { $0 >= 0 && $0 < Date().timeIntervalSince(before) + 1 } == true, "\(store): \(chosen)")
        }
        // A pin from the command line: etcd at its first snapshot, the rest by the rule.
        let pinned = try await CLI.run(["restore", "--dry-run", "--json", "--force", "--snapshot", "etcd=\(etcd[0].prefix(8))"] + c)
        #expect(pinned.status == 5, "preflight still refuses: \(pinned.stderr)")
        let pinnedSteps = try #require((try JSONSerialization.jsonObject(with: pinned.stdoutData) as? [String: Any])?["steps"] as? [[String: Any]])
        let pinnedEtcd = try #require(pinnedSteps.first { $0["store"] as? String == "etcd" })
        #expect(pinnedEtcd["snapshot"] as? String == etcd[0] && (pinnedEtcd["reason"] as? String)?.contains("pinned with --snapshot etcd=") == true, "\(pinnedEtcd)")
        #expect(pinnedSteps.first { $0["store"] as? String == "openbao" }?["snapshot"] as? String == openbao)
        let unknownPin = try await CLI.run(["restore", "--dry-run", "--snapshot", "etcd"] + c)
        #expect(unknownPin.status == 2 && unknownPin.stderr.contains("store=id"), "\(unknownPin.stderr)")

        // A drill of the same composition passes every gate.
        let drill = try await CLI.run(["drill", "--json"] + c)
        #expect(drill.status == 0, "\(drill.stdout)\(drill.stderr)")
        let report = try Self.decode(DrillReport.self, drill)
        #expect(report.point == "latest" && report.steps.allSatisfy { $0.outcome == .passed })
        #expect(report.steps.first { $0.store == "etcd" }?.snapshot == etcd[2])

        // Before every backup: nothing restorable; the dry run says which store and exits 5.
        let early = try await CLI.run(["restore", "--dry-run", "--time", SourceTime.format(before.addingTimeInterval(-60))] + c)
        #expect(early.status == 5, "\(early.stdout)\(early.stderr)")
        #expect(early.stdout.contains("WILL STOP HERE") && early.stderr.contains("step 1 (openbao)"), "\(early.stdout)\(early.stderr)")

        // Issue 10, item 4, from the command line: etcd's newest manifest rots. Choosing the newest
        // refuses (exit 3, the object named) in the dry run and in a drill, rather than taking
        // etcd's older snapshot as its latest; --skip-damaged says what it skipped and goes on.
        let rotten = directory.appendingPathComponent("repository/snapshots/\(etcd[2])")
        #expect(FileManager.default.fileExists(atPath: rotten.path), "the demo catalog's repository lives under the platform directory")
        try RepositoryCommandTests.flipByte(in: rotten)
        let refusedPlan = try await CLI.run(["restore", "--dry-run", "--force"] + c)
        #expect(refusedPlan.status == 3 && refusedPlan.stderr.contains("snapshots/\(etcd[2])") && refusedPlan.stderr.contains("--skip-damaged"),
                "\(refusedPlan.stdout)\(refusedPlan.stderr)")
        let refusedDrill = try await CLI.run(["drill"] + c)
        #expect(refusedDrill.status == 3 && refusedDrill.stderr.contains("snapshots/\(etcd[2])"), "\(refusedDrill.stdout)\(refusedDrill.stderr)")
        let skipping = try await CLI.run(["restore", "--dry-run", "--json", "--force", "--skip-damaged"] + c)
        #expect(skipping.status == 5 && skipping.stderr.contains("skipped, damaged: snapshots/\(etcd[2])"), "\(skipping.stderr)")
        let skippedSteps = try #require((try JSONSerialization.jsonObject(with: skipping.stdoutData) as? [String: Any])?["steps"] as? [[String: Any]])
        #expect(skippedSteps.first { $0["store"] as? String == "etcd" }?["snapshot"] as? String == etcd[1], "asked to skip: the newest readable one")
        await platform.stopServers()
    }

    /// An instant between two OpenBao snapshots (issue 13): OpenBao takes the older one, PostgreSQL
    /// is rewound to its data time although a newer PostgreSQL backup precedes the instant, etcd takes
    /// its newest at or before it. Then the real run for an instant before every backup stops before
    /// touching anything, and a dry run with targets that are down names each of them at once.
    @Test(.timeLimit(.minutes(5)))
    func anInstantBetweenTwoOpenBaoSnapshotsAndTargetsThatAreDown() async throws {
        let (directory, platform) = try await Self.demoPlatform("instant")
        defer { Self.sweep(directory) }
        let c = ["-c", platform.catalogURL.path]
        #expect(try await CLI.run(["repo", "init"] + c).status == 0)
        func backup(_ store: String) async throws -> String {
            let result = try await CLI.run(["backup", store, "--json"] + c)
            #expect(result.status == 0, "\(result.stderr)")
            return try #require(try Self.decode(RecoveryPoint.self, result).member(store)?.snapshot)
        }
        let before = Date().addingTimeInterval(-1)
        let postgres1 = try await backup("postgres")
        let openbao1 = try await backup("openbao")
        let postgres2 = try await backup("postgres")  // newer than openbao1's data
        let etcd1 = try await backup("etcd")
        try await Task.sleep(for: .seconds(1.1))
        let instant = SourceTime.format(Date())
        try await Task.sleep(for: .seconds(1.1))
        _ = try await backup("openbao")
        _ = try await backup("postgres")
        _ = try await backup("etcd")

        let dryRun = try await CLI.run(["restore", "--dry-run", "--json", "--force", "--time", instant] + c)
        #expect(dryRun.status == 5 && dryRun.stderr.contains("preflight"), "the servers run: \(dryRun.stderr)")
        let plan = try #require(try JSONSerialization.jsonObject(with: dryRun.stdoutData) as? [String: Any])
        #expect(plan["confirmation"] as? String == "restore lifeboat-demo \(instant)")
        let steps = try #require(plan["steps"] as? [[String: Any]])
        func step(_ store: String) throws -> [String: Any] { try #require(steps.first { $0["store"] as? String == store }) }
        let openbaoStep = try step("openbao")
        #expect(openbaoStep["snapshot"] as? String == openbao1, "the older OpenBao snapshot: \(openbaoStep)")
        #expect(try step("etcd")["snapshot"] as? String == etcd1)
        let postgres = try step("postgres")
        #expect(postgres["snapshot"] as? String == postgres1 && postgres["snapshot"] as? String != postgres2, "\(postgres)")
        #expect((postgres["reason"] as? String)?.contains("rewound because of openbao") == true, "\(postgres)")

        // Nothing restorable before every backup: the real run stops at step 1, nothing touched.
        let early = SourceTime.format(before.addingTimeInterval(-60))
        let stopped = try await CLI.run(["restore", "--time", early, "--force", "--confirm", "restore lifeboat-demo \(early)"] + c)
        #expect(stopped.status == 5 && stopped.stderr.contains("step 1 (openbao)"), "\(stopped.stdout)\(stopped.stderr)")
        let openbao = try #require(platform.openbao)
        #expect(try await openbao.client.sealStatus().sealed == false, "OpenBao untouched")

        // Targets that are down: the preflight names every one it cannot check, in one run.
        await platform.stopServers()
        let down = try await CLI.run(["restore", "--dry-run", "--time", instant] + c)
        #expect(down.status == 5, "\(down.stdout)\(down.stderr)")
        #expect(down.stderr.contains("step 1 (openbao)") && down.stderr.contains("step 2 (postgres)"), "\(down.stderr)")
        #expect(down.stdout.components(separatedBy: "PREFLIGHT: ").count - 1 >= 2, "\(down.stdout)")
    }
}
