import Foundation
import LifeboatCore
import LifeboatRepository
import LifeboatStorage
import LifeboatTesting
import Testing

/// etcd backup into the repository and restore out of it, against real etcd 3.5 members on loopback.
@Suite struct EtcdConnectorTests {
    typealias Fixture = EtcdFixture

    @Test func backupThenRestoreToOneMemberReadsBackTheSameData() async throws {
        let directory = try Fixture.scratch("one")
        defer { try? FileManager.default.removeItem(at: directory) }
        let (repository, _) = try await Fixture.repository()
        let source = try await LocalEtcd.start(in: directory.appendingPathComponent("source"), options: Fixture.options)
        let (manifest, expected, sourceHeader) = try await source.whileRunning { source in
            let expected = try await Fixture.load(source)
            let connector = EtcdConnector(store: "fleet-etcd", gateway: try source.gateway())
            let manifest = try await connector.backup(into: repository, point: "rp-1", tags: ["nightly"])
            let header = try await source.gateway().connect().count(prefix: nil).header
            return (manifest, expected, header)
        }

        #expect(manifest.kind == "etcd")
        #expect(manifest.store == "fleet-etcd")
        #expect(manifest.point == "rp-1")
        #expect(manifest.tags == ["nightly"])
        #expect(manifest.source["key_count"] == String(expected.count))
        #expect(manifest.source["revision"] == String(sourceHeader.revision))
        #expect(manifest.source["revision_exact"] == "true")
        #expect(manifest.source["transport"] == "grpc", "etcd's own snapshot RPC, not the JSON gateway")
        #expect(manifest.source["cluster_id"] == sourceHeader.clusterIDHex)
        #expect(manifest.source["member_id"] == sourceHeader.memberIDHex)
        #expect(manifest.source["member_count"] == "1")
        #expect(manifest.source["etcd_version"] == "3.5.1")
        let sourceTime = try #require(manifest.source["source_time"])
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let when = try #require(formatter.date(from: sourceTime), "source_time is ISO 8601 with fractional seconds: \(sourceTime)")
        #expect(abs(when.timeIntervalSinceNow) < 120)
        #expect(manifest.size % 512 == 32, "a whole snapshot with its trailer")

        let members = try LocalEtcd.plan(members: 1, in: directory.appendingPathComponent("restored"))
        let report = try await EtcdConnector.restore(manifest, from: repository, to: EtcdRestoreTarget(members: members))
        #expect(report.revision == sourceHeader.revision)
        #expect(report.keyCount == Int64(expected.count))
        #expect(report.setAside.isEmpty)
        let restored = try await LocalEtcd.start(restored: members, logDirectory: directory.appendingPathComponent("logs"), options: Fixture.options)
        try await restored.whileRunning { restored in
            let checks = try await EtcdConnector.verifyRestored(report, manifest: manifest, endpoints: restored.endpoints)
            #expect(checks.count == 5)
            #expect(checks.allSatisfy { $0.passed }, "\(checks)")
            let read = try await restored.gateway().connect().keyValues(prefix: nil)
            Fixture.assertSameData(read, expected, "restored member")
            let header = try await restored.gateway().connect().count(prefix: nil).header
            #expect(header.clusterIDHex != sourceHeader.clusterIDHex, "a restore makes a new cluster")

            let results = try await EtcdConnector.runChecks(
                [.etcdPrefix(prefix: "/config/", minKeys: 5), .etcdPrefix(prefix: "/app/", minKeys: 301), .manual("look at it"),
                 .file(path: "/etc/hosts")],
                against: try restored.gateway())
            #expect(results.map(\.passed) == [true, false, false])
            #expect(results[0].detail == "5 keys under /config/")
            #expect(results[1].detail == "300 keys under /app/")

            // A write after the restore: the comparison with the snapshot now fails, and says so.
            try await restored.gateway().connect().put(Data("/app/late".utf8), Data("x".utf8))
            let after = try await EtcdConnector.verifyRestored(report, manifest: manifest, endpoints: restored.endpoints)
            #expect(after.filter { !$0.passed }.map(\.detail) == ["revision \(sourceHeader.revision + 1)", "\(expected.count + 1) keys"])
        }
    }

    @Test func threeMemberSourceRestoresToThreeMembersWithOneClusterID() async throws {
        let directory = try Fixture.scratch("three")
        defer { try? FileManager.default.removeItem(at: directory) }
        let (repository, _) = try await Fixture.repository()
        let dead = "http://127.0.0.1:\(try freeLoopbackPort())"
        let source = try await LocalEtcd.start(in: directory.appendingPathComponent("source"), members: 3, options: Fixture.options)
        let (manifest, expected) = try await source.whileRunning { source in
            let expected = try await Fixture.load(source, count: 200, seed: 11)
            // The first endpoint is down: the backup moves on to the next one.
            let gateway = try EtcdGateway(endpoints: [dead] + source.endpoints)
            let manifest = try await EtcdConnector(store: "etcd", gateway: gateway).backup(into: repository)
            #expect(manifest.source["endpoint"] == source.endpoints[0])
            #expect(manifest.source["member_count"] == "3")
            #expect(manifest.source["members"] == "member1,member2,member3")
            return (manifest, expected)
        }

        let members = try LocalEtcd.plan(members: 3, in: directory.appendingPathComponent("restored"), namePrefix: "dr")
        let target = EtcdRestoreTarget(members: members, clusterToken: "dr-test")
        let report = try await EtcdConnector.restore(manifest, from: repository, to: target)
        #expect(report.members.count == 3)
        let restored = try await LocalEtcd.start(restored: members, logDirectory: directory.appendingPathComponent("logs"),
                                                 options: LocalEtcd.Options(unsafeNoFsync: true, clusterToken: "dr-test"))
        try await restored.whileRunning { restored in
            let checks = try await EtcdConnector.verifyRestored(report, manifest: manifest, endpoints: restored.endpoints)
            #expect(checks.allSatisfy { $0.passed }, "\(checks)")
            #expect(checks.filter { $0.check.hasPrefix("member") && $0.check.contains("revision") }.count == 3)
            var clusterIDs = Set<String>()
            for endpoint in restored.endpoints {
                let session = try await EtcdGateway(endpoints: [endpoint]).connect()
                let (count, header) = try await session.count(prefix: nil, serializable: true)
                clusterIDs.insert(header.clusterIDHex)
                #expect(count == Int64(expected.count))
                #expect(String(header.revision) == manifest.source["revision"])
                Fixture.assertSameData(try await session.keyValues(prefix: nil), expected, endpoint)
            }
            #expect(clusterIDs.count == 1)
        }
    }

    @Test func aSnapshotWithABadTrailerIsRefusedAtBackup() async throws {
        let directory = try Fixture.scratch("tamper")
        defer { try? FileManager.default.removeItem(at: directory) }
        let (repository, _) = try await Fixture.repository()
        let source = try await LocalEtcd.start(in: directory.appendingPathComponent("source"), options: Fixture.options)
        try await source.whileRunning { source in
            _ = try await Fixture.load(source, count: 50)
            for (mode, expected) in [("flip", "does not match"), ("truncate", "still to come")] {
                let proxy = try await EtcdFaultProxy.start(upstream: source.endpoints[0], mode: mode, in: directory)
                defer { proxy.process.stop() }
                let connector = EtcdConnector(store: "etcd", gateway: try EtcdGateway(endpoints: [proxy.url]))
                let error = await #expect(throws: EtcdError.self) { try await connector.backup(into: repository) }
                #expect(error?.code == .damagedSnapshot, "\(mode): \(String(describing: error))")
                #expect(error?.message.contains(expected) == true, "\(mode): \(String(describing: error))")
            }
            #expect(try await repository.snapshotIDs().isEmpty, "no manifest is committed for a damaged snapshot")
        }
    }

    @Test func damagedSnapshotsAreRefusedAtRestoreAndTheTargetIsUntouched() async throws {
        let directory = try Fixture.scratch("damaged")
        defer { try? FileManager.default.removeItem(at: directory) }
        let (repository, backend) = try await Fixture.repository()
        let source = try await LocalEtcd.start(in: directory.appendingPathComponent("source"), options: Fixture.options)
        let manifest = try await source.whileRunning { source in
            _ = try await Fixture.load(source, count: 50)
            return try await EtcdConnector(store: "etcd", gateway: try source.gateway()).backup(into: repository)
        }
        var bytes = Data()
        try await repository.restore(manifest) { bytes.append($0) }
        let members = try LocalEtcd.plan(members: 1, in: directory.appendingPathComponent("target"))

        // A snapshot modified before it was stored: the repository's own checks pass, the trailer does not.
        var modified = bytes
        modified[modified.count / 2] ^= 0x01
        var offset = 0
        let altered = try await repository.put(SnapshotDescription(store: "etcd", kind: "etcd", source: manifest.source)) {
            guard offset < modified.count else { return nil }
            defer { offset += 100_000 }
            return modified[offset..<min(offset + 100_000, modified.count)]
        }
        let refused = await #expect(throws: EtcdError.self) {
            try await EtcdConnector.restore(altered, from: repository, to: EtcdRestoreTarget(members: members))
        }
        #expect(refused?.code == .damagedSnapshot)
        #expect(refused?.message.contains("trailer does not match") == true)
        #expect(!FileManager.default.fileExists(atPath: members[0].dataDirectory))

        // A damaged chunk in the repository.
        let chunkID = manifest.chunks[manifest.chunks.count / 2].id
        let victim = "data/\(chunkID.prefix(2))/\(chunkID)"
        var sealed = try await backend.load(victim)
        sealed[sealed.count - 5] ^= 0x01
        await backend.corrupt(victim, with: sealed)
        let corrupt = await #expect(throws: RepositoryError.self) {
            try await EtcdConnector.restore(manifest, from: repository, to: EtcdRestoreTarget(members: members))
        }
        #expect(corrupt?.code == .corruptObject)
        #expect(!FileManager.default.fileExists(atPath: members[0].dataDirectory))

        // Not an etcd snapshot at all.
        var once = true
        let artefact = try await repository.put(SnapshotDescription(store: "notes")) {
            defer { once = false }
            return once ? Data("hello".utf8) : nil
        }
        let wrong = await #expect(throws: EtcdError.self) {
            try await EtcdConnector.restore(artefact, from: repository, to: EtcdRestoreTarget(members: members))
        }
        #expect(wrong?.code == .wrongSnapshot)
    }

    @Test func aNonEmptyDataDirectoryIsRefusedUnlessForcedAndForceLosesNothing() async throws {
        let directory = try Fixture.scratch("force")
        defer { try? FileManager.default.removeItem(at: directory) }
        let (repository, _) = try await Fixture.repository()
        let source = try await LocalEtcd.start(in: directory.appendingPathComponent("source"), options: Fixture.options)
        let (manifest, expected) = try await source.whileRunning { source in
            let expected = try await Fixture.load(source, count: 40)
            return (try await EtcdConnector(store: "etcd", gateway: try source.gateway()).backup(into: repository), expected)
        }
        let members = try LocalEtcd.plan(members: 2, in: directory.appendingPathComponent("target"))
        let keep = URL(fileURLWithPath: members[0].dataDirectory).appendingPathComponent("keep.txt")
        try FileManager.default.createDirectory(atPath: members[0].dataDirectory, withIntermediateDirectories: true)
        try Data("old data".utf8).write(to: keep)

        let refused = await #expect(throws: EtcdError.self) {
            try await EtcdConnector.restore(manifest, from: repository, to: EtcdRestoreTarget(members: members))
        }
        #expect(refused?.code == .dataDirectoryNotEmpty)
        #expect(refused?.description.contains(members[0].dataDirectory) == true)
        #expect(try Data(contentsOf: keep) == Data("old data".utf8))
        #expect(!FileManager.default.fileExists(atPath: members[1].dataDirectory))

        // Forced, but the second member cannot be written (its parent is a file): the first member's
        // old data comes back and nothing restored stays behind.
        var blocked = members
        let blocker = directory.appendingPathComponent("blocker")
        try Data().write(to: blocker)
        blocked[1].dataDirectory = blocker.appendingPathComponent("member2").path
        await #expect(throws: EtcdError.self) {
            try await EtcdConnector.restore(manifest, from: repository, to: EtcdRestoreTarget(members: blocked, force: true))
        }
        #expect(try Data(contentsOf: keep) == Data("old data".utf8))
        #expect(try FileManager.default.contentsOfDirectory(atPath: members[0].dataDirectory) == ["keep.txt"])

        let report = try await EtcdConnector.restore(manifest, from: repository, to: EtcdRestoreTarget(members: members, force: true))
        #expect(report.setAside.count == 1)
        #expect(try Data(contentsOf: URL(fileURLWithPath: report.setAside[0]).appendingPathComponent("keep.txt")) == Data("old data".utf8))
        let restored = try await LocalEtcd.start(restored: members, logDirectory: directory.appendingPathComponent("logs"), options: Fixture.options)
        try await restored.whileRunning { restored in
            Fixture.assertSameData(try await restored.gateway().connect().keyValues(prefix: nil), expected, "forced restore")
        }
        try EtcdConnector.discardSetAside(report)
        #expect(!FileManager.default.fileExists(atPath: report.setAside[0]))
    }

    @Test func unreachableEndpointsAreNamed() async throws {
        let (repository, _) = try await Fixture.repository()
        let first = "http://127.0.0.1:\(try freeLoopbackPort())", second = "http://127.0.0.1:\(try freeLoopbackPort())"
        let connector = EtcdConnector(store: "etcd", gateway: try EtcdGateway(endpoints: [first, second]))
        let started = Date()
        let error = await #expect(throws: EtcdError.self) { try await connector.backup(into: repository) }
        #expect(error?.code == .unreachable)
        #expect(error?.description.contains(first) == true && error?.description.contains(second) == true, "\(String(describing: error))")
        #expect(error?.description.contains("connection refused") == true, "\(String(describing: error))")
        // Refused at once on an idle machine (well under a second); the bound leaves room for a loaded CI
        // machine while still failing if a dead endpoint were retried until a deadline.
        #expect(Date().timeIntervalSince(started) < 30, "a refused port fails without waiting for a deadline")
        await #expect(throws: EtcdError.self) { try await EtcdConnector.runChecks([.etcdPrefix(prefix: "/", minKeys: 1)], against: connector.gateway) }
        #expect(throws: EtcdError.self) { try EtcdGateway(endpoints: ["127.0.0.1:2379"]) }
    }

    @Test func authenticatedClusterNeedsTheRightPasswordWhichNeverShows() async throws {
        let directory = try Fixture.scratch("auth")
        defer { try? FileManager.default.removeItem(at: directory) }
        let (repository, _) = try await Fixture.repository()
        let password = "s3cret-etcd-pw"
        let source = try await LocalEtcd.start(in: directory.appendingPathComponent("source"), options: Fixture.options)
        let (manifest, expected) = try await source.whileRunning { source in
            let expected = try await Fixture.load(source, count: 30)
            let session = try await source.gateway().connect()
            try await session.enableAuthentication(rootPassword: password)

            let anonymous = await #expect(throws: EtcdError.self) {
                try await EtcdConnector(store: "etcd", gateway: try source.gateway()).backup(into: repository)
            }
            #expect(anonymous?.code == .authentication)
            let wrong = await #expect(throws: EtcdError.self) {
                try await EtcdConnector(store: "etcd", gateway: try source.gateway(username: "root", password: "wrong-pw")).backup(into: repository)
            }
            #expect(wrong?.code == .authentication)
            #expect(wrong?.description.contains("wrong-pw") == false)

            let manifest = try await EtcdConnector(store: "etcd", gateway: try source.gateway(username: "root", password: password)).backup(into: repository)
            #expect(manifest.source["username"] == "root")
            #expect(manifest.source["transport"] == "grpc", "the gateway's token works as the RPC's metadata")
            #expect(!manifest.source.values.contains { $0.contains(password) })
            return (manifest, expected)
        }
        let members = try LocalEtcd.plan(members: 1, in: directory.appendingPathComponent("restored"))
        let report = try await EtcdConnector.restore(manifest, from: repository, to: EtcdRestoreTarget(members: members))
        let restored = try await LocalEtcd.start(restored: members, logDirectory: directory.appendingPathComponent("logs"), options: Fixture.options)
        try await restored.whileRunning { restored in
            // Users and auth travel inside the snapshot.
            await #expect(throws: EtcdError.self) { try await restored.gateway().connect() }
            let checks = try await EtcdConnector.verifyRestored(report, manifest: manifest, endpoints: restored.endpoints, username: "root", password: password)
            #expect(checks.allSatisfy { $0.passed }, "\(checks)")
            let read = try await restored.gateway(username: "root", password: password).connect().keyValues(prefix: nil)
            Fixture.assertSameData(read, expected, "restored with auth")
        }
    }

    @Test func restoreTargetsAreCheckedBeforeAnythingIsTouched() throws {
        let one = EtcdMember(name: "a", peerURL: "http://127.0.0.1:2380", dataDirectory: "/tmp/a")
        #expect(throws: Never.self) { try EtcdRestoreTarget(members: [one]).validate() }
        #expect(throws: EtcdError.self) { try EtcdRestoreTarget(members: []).validate() }
        #expect(throws: EtcdError.self) { try EtcdRestoreTarget(members: [one, one]).validate() }
        #expect(throws: EtcdError.self) { try EtcdRestoreTarget(members: [one], initialCluster: "b=http://127.0.0.1:2380").validate() }
        #expect(throws: EtcdError.self) { try EtcdRestoreTarget(members: [one], initialCluster: "a=http://127.0.0.1:9999").validate() }
        var noPort = one
        noPort.peerURL = "http://127.0.0.1"
        #expect(throws: EtcdError.self) { try EtcdRestoreTarget(members: [noPort]).validate() }
        var sameDirectory = one
        sameDirectory.name = "b"
        sameDirectory.peerURL = "http://127.0.0.1:2381"
        #expect(throws: EtcdError.self) { try EtcdRestoreTarget(members: [one, sameDirectory]).validate() }
        // A member restored here with others restored elsewhere.
        let elsewhere = EtcdRestoreTarget(members: [one], initialCluster: "a=http://127.0.0.1:2380,b=http://10.0.0.2:2380")
        #expect(throws: Never.self) { try elsewhere.validate() }
    }
}
