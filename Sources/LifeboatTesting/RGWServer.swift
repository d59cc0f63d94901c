import Foundation
import LifeboatStorage

/// A single-node Ceph cluster running RGW, Ceph's S3 server (Debian's radosgw 16.2): one monitor,
/// one OSD on bluestore (a sparse file), one radosgw, no manager — all on 127.0.0.1, in a temporary
/// directory with its own `ceph.conf`, and a user whose key signs every request (SigV4).
///
/// Unlike moto, RGW is a real S3 implementation with its own differences from AWS (docs/s3.md,
/// "RGW vs S3"). Start-up takes a few seconds, so tests share one per process (`withShared`).
/// `stop()` stops every daemon by PID and removes the directory; a watchdog started with the
/// cluster does the same if this process dies without calling it.
public final class RGWServer: Sendable {
    public let endpoint: URL
    public let port: Int
    /// RGW's default zonegroup answers to any SigV4 region; us-east-1 is what clients assume.
    public let region = "us-east-1"
    public let credentials: S3Credentials
    /// The cluster's temporary directory: `ceph.conf`, data, logs, sockets.
    public let directory: URL
    /// Storage classes PUT accepts: STANDARD plus the placement classes created at start.
    public let storageClasses: [String]
    /// Monitor, OSD and radosgw, in start order.
    public let daemons: [ServerProcess]
    let watchdog: ServerProcess?
    /// Wall-clock seconds `start()` took, from nothing to an authenticated answer.
    public let startSeconds: Double

    /// Extra placement storage classes every cluster gets, for mirrors that write to cold storage.
    public static let defaultExtraStorageClasses = ["COLD"]

    private init(endpoint: URL, port: Int, credentials: S3Credentials, directory: URL, storageClasses: [String],
                 daemons: [ServerProcess], watchdog: ServerProcess?, startSeconds: Double) {
        self.endpoint = endpoint
        self.port = port
        self.credentials = credentials
        self.directory = directory
        self.storageClasses = storageClasses
        self.daemons = daemons
        self.watchdog = watchdog
        self.startSeconds = startSeconds
    }

    /// Creates and starts the cluster, adds `extraStorageClasses` as placement storage classes
    /// (RGW refuses any class it does not know with 400 InvalidArgument), creates a user, and
    /// checks that a request signed with a wrong secret is refused.
    public static func start(extraStorageClasses: [String] = defaultExtraStorageClasses) async throws -> RGWServer {
        let began = Date()
        let tools = try Tools.locate()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("lifeboat-rgw-\(UUID().uuidString.prefix(8).lowercased())")
        for sub in ["run", "log", "mon", "osd", "rgw"] {
            try FileManager.default.createDirectory(at: directory.appendingPathComponent(sub), withIntermediateDirectories: true)
        }
        var started: [ServerProcess] = []
        var watchdog: ServerProcess?
        do {
            let monitorPort = try freeLoopbackPort()
            var rgwPort = try freeLoopbackPort()
            while rgwPort == monitorPort || !loopbackPortIsFree(rgwPort) { rgwPort = try freeLoopbackPort() }
            let fsid = UUID().uuidString.lowercased()
            let conf = directory.appendingPathComponent("ceph.conf")
            try cephConf(fsid: fsid, directory: directory, monitorPort: monitorPort, rgwPort: rgwPort)
                .write(to: conf, atomically: true, encoding: .utf8)
            let c = ["-c", conf.path]
            let path = directory.path

            // The OSD's bluestore is made while the monitor starts (each takes seconds); the
            // monitor gets a monmap naming it and a store made from it, then runs in the foreground.
            let osdUUID = UUID().uuidString.lowercased()
            async let formatted = tools.osd.run(c + ["-i", "0", "--mkfs", "--no-mon-config", "--osd-uuid", osdUUID])
            _ = try await tools.monmaptool.run(["--create", "--clobber", "--fsid", fsid, "--addv", "a",
                                                "[v2:127.0.0.1:\(monitorPort)]", "\(path)/monmap"]).check("monmaptool")
            _ = try await tools.authtool.run(["--create-keyring", "\(path)/keyring", "--gen-key", "-n", "mon.",
                                              "--cap", "mon", "allow *"]).check("ceph-authtool")
            _ = try await tools.mon.run(c + ["--mkfs", "-i", "a", "--monmap", "\(path)/monmap"]).check("ceph-mon --mkfs")
            watchdog = try startWatchdog(directory: directory)
            started.append(try daemon("ceph-mon", tools.mon, c + ["-i", "a", "-f"], directory: directory))
            try await awaitLoopbackPort(monitorPort, timeout: 30, process: started[0])

            // The OSD: registered with the monitor, then started on its bluestore.
            let id = try await tools.ceph.run(c + ["--connect-timeout", "30", "osd", "new", osdUUID]).check("ceph osd new")
                .output.trimmingCharacters(in: .whitespacesAndNewlines)
            guard id == "0" else { throw ServerStartError(message: "the monitor gave the OSD id \(id), expected 0") }
            _ = try await formatted.check("ceph-osd --mkfs")
            started.append(try daemon("ceph-osd", tools.osd, c + ["-i", "0", "-f"], directory: directory))

            // The user and the placement storage classes go in before radosgw starts: it reads the
            // zone's placement only at start. radosgw-admin waits for the OSD on its own.
            let admin = c
            let secret = UUID().uuidString.replacingOccurrences(of: "-", with: "")
            let accessKey = "LIFEBOAT" + String(UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(12)).uppercased()
            _ = try await tools.admin.run(admin + ["user", "create", "--uid", "lifeboat-tests", "--display-name", "Lifeboat tests",
                                                   "--access-key", accessKey, "--secret", secret]).check("radosgw-admin user create")
            for storageClass in extraStorageClasses {
                _ = try await tools.admin.run(admin + ["zonegroup", "placement", "add", "--rgw-zonegroup", "default",
                                                       "--placement-id", "default-placement", "--storage-class", storageClass])
                    .check("radosgw-admin zonegroup placement add")
                _ = try await tools.admin.run(admin + ["zone", "placement", "add", "--rgw-zone", "default",
                                                       "--placement-id", "default-placement", "--storage-class", storageClass,
                                                       "--data-pool", "default.rgw.\(storageClass.lowercased()).data"])
                    .check("radosgw-admin zone placement add")
            }
            started.append(try daemon("radosgw", tools.rgw, c + ["-n", "client.rgw", "-f"], directory: directory))
            try await awaitLoopbackPort(rgwPort, timeout: 60, process: started[2])

            let server = RGWServer(
                endpoint: URL(string: "http://127.0.0.1:\(rgwPort)")!, port: rgwPort,
                credentials: S3Credentials(accessKeyID: accessKey, secretAccessKey: secret), directory: directory,
                storageClasses: ["STANDARD"] + extraStorageClasses, daemons: started, watchdog: watchdog,
                startSeconds: Date().timeIntervalSince(began))
            try await server.requireSignatureChecking()
            return server
        } catch {
            let logs = Self.logTails(directory)
            Self.stop(daemons: started, watchdog: watchdog, directory: directory)
            throw ServerStartError(message: "Ceph RGW did not start: \(error)\n\(logs)")
        }
    }

    /// The cluster's configuration. Each setting is here for a reason found the hard way
    /// (../shared/PROTOCOLS.md, "Ceph RGW"): loopback addresses (else the OSD listens on 0.0.0.0);
    /// `ms mon client mode = crc secure` (with auth off radosgw hangs at start without it); size-1
    /// pools with few PGs and no autoscaler (one OSD, no manager); `paxos propose interval = 0.01`
    /// (the default makes start-up 13–17 s); bluestore on a sparse file without `bluestore block
    /// path` ("Too many levels of symbolic links"); `rgw crypt require ssl = false` (over plain HTTP
    /// RGW otherwise refuses every SSE request, where behind TLS it ignores SSE-S3). Ceph's parser
    /// needs the last line to end with a newline.
    static func cephConf(fsid: String, directory: URL, monitorPort: Int, rgwPort: Int) -> String {
        let d = directory.path
        return """
        [global]
        fsid = \(fsid)
        mon host = [v2:127.0.0.1:\(monitorPort)]
        mon initial members = a
        public addr = 127.0.0.1
        cluster addr = 127.0.0.1
        ms bind msgr1 = false
        auth cluster required = none
        auth service required = none
        auth client required = none
        ms mon client mode = crc secure
        run dir = \(d)/run
        admin socket = \(d)/run/$name.asok
        log file = \(d)/log/$name.log
        pid file = \(d)/run/$name.pid
        keyring = \(d)/keyring
        osd pool default size = 1
        osd pool default min size = 1
        osd pool default pg num = 8
        osd pool default pgp num = 8
        osd pool default pg autoscale mode = off
        osd crush chooseleaf type = 0
        mon allow pool size one = true
        mon allow pool delete = true
        mon warn on pool no redundancy = false
        paxos propose interval = 0.01

        [mon.a]
        mon data = \(d)/mon

        [osd.0]
        osd data = \(d)/osd
        osd objectstore = bluestore
        bluestore block create = true
        bluestore block size = 21474836480
        osd memory target = 1073741824

        [client.rgw]
        rgw frontends = beast endpoint=127.0.0.1:\(rgwPort)
        rgw data = \(d)/rgw
        rgw crypt require ssl = false

        """
    }

    /// Starts a daemon in the foreground and records its PID for the watchdog.
    static func daemon(_ name: String, _ tool: ExternalTool, _ arguments: [String], directory: URL) throws -> ServerProcess {
        let process = try ServerProcess(name: name, executable: tool.path, arguments: arguments,
                                        logFile: directory.appendingPathComponent("log/\(name).out"))
        let pids = directory.appendingPathComponent(watchdogPIDFile)
        let known = (try? String(contentsOf: pids, encoding: .utf8)) ?? ""
        try (known + "\(process.pid)\n").write(to: pids, atomically: true, encoding: .utf8)
        return process
    }

    static let watchdogPIDFile = "run/daemons.pids"

    /// A shell that waits for this process to end and then stops the daemons listed in
    /// `run/daemons.pids` and removes the directory: a test run killed outright (SIGKILL, a crash)
    /// must not leave a cluster behind. `stop()` stops the watchdog first.
    static func startWatchdog(directory: URL) throws -> ServerProcess {
        let list = "$(cat '\(directory.path)/\(watchdogPIDFile)' 2>/dev/null)"
        let script = "while kill -0 \(getpid()) 2>/dev/null; do sleep 1; done; kill -TERM \(list) 2>/dev/null; sleep 5; kill -KILL \(list) 2>/dev/null; rm -rf '\(directory.path)'"
        return try ServerProcess(name: "rgw-watchdog", executable: "/bin/sh", arguments: ["-c", script],
                                 logFile: directory.appendingPathComponent("log/watchdog.out"))
    }

    /// The tools the launcher needs, found on PATH (Debian's packages).
    struct Tools {
        var mon, osd, rgw, ceph, admin, monmaptool, authtool: ExternalTool

        static func locate() throws -> Tools {
            do {
                return Tools(mon: try .locate("ceph-mon"), osd: try .locate("ceph-osd"), rgw: try .locate("radosgw"),
                             ceph: try .locate("ceph"), admin: try .locate("radosgw-admin"),
                             monmaptool: try .locate("monmaptool"), authtool: try .locate("ceph-authtool"))
            } catch {
                throw ServerStartError(message: "Ceph RGW is not installed (\(error)): run scripts/setup (it installs radosgw ceph-mon ceph-osd ceph-common)")
            }
        }
    }

    /// The user's own key must work and a wrong secret must be refused, or no test proves anything about signing.
    func requireSignatureChecking() async throws {
        let right = try await client(retry: S3RetryPolicy(maxAttempts: 5, baseDelay: .milliseconds(200))).send(S3Request(method: "GET"))
        guard right.status == 200 else {
            throw ServerStartError(message: "RGW refused its own user's ListBuckets: HTTP \(right.status) \(String(decoding: right.body, as: UTF8.self).prefix(300))")
        }
        try await requireWrongSecretRefused(name: "RGW")
    }

    /// A client for this server (path-style).
    public func client(credentials: S3Credentials? = nil, retry: S3RetryPolicy = S3RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(50))) -> S3Client {
        S3Client(endpoint: endpoint, region: region, credentials: credentials ?? self.credentials, retry: retry)
    }

    /// A backend configuration for `bucket` on this server, with RGW's compatibility settings.
    public func configuration(bucket: String, prefix: String = "") -> S3Configuration {
        S3Configuration(endpoint: endpoint, region: region, bucket: bucket, prefix: prefix, credentials: credentials,
                        retry: S3RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(50), requestTimeout: .seconds(120)),
                        compatibility: .rgw)
    }

    /// Creates a bucket, optionally with Object Lock (which turns versioning on) or with versioning alone.
    public func createBucket(_ name: String, objectLock: Bool = false, versioning: Bool = false) async throws {
        try await createTestBucket(client(), name, objectLock: objectLock, versioning: versioning, server: "RGW")
    }

    /// A fresh bucket name, unique within this server.
    public static func uniqueBucketName(_ purpose: String) -> String { MotoServer.uniqueBucketName(purpose) }

    /// Resident memory of each daemon in bytes (from /proc), keyed by daemon name.
    public func residentMemory() -> [String: Int] {
        var result: [String: Int] = [:]
        for daemon in daemons {
            guard let status = try? String(contentsOfFile: "/proc/\(daemon.pid)/status", encoding: .utf8),
                  let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
                  let kilobytes = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first.flatMap({ Int($0) }) else { continue }
            result[daemon.name] = kilobytes * 1024
        }
        return result
    }

    /// Stops radosgw, the OSD and the monitor by PID (SIGTERM, SIGKILL after a grace period) and
    /// removes the directory.
    public func stop() { Self.stop(daemons: daemons, watchdog: watchdog, directory: directory) }

    static func stop(daemons: [ServerProcess], watchdog: ServerProcess?, directory: URL) {
        watchdog?.stop(grace: 1)
        // All at once (each takes ~2 s to shut down), newest first; then wait for each.
        for daemon in daemons.reversed() where daemon.isRunning { kill(daemon.pid, SIGTERM) }
        for daemon in daemons.reversed() { daemon.stop(grace: 15) }
        try? FileManager.default.removeItem(at: directory)
    }

    /// The last lines of every daemon's log, for a start-up failure.
    static func logTails(_ directory: URL) -> String {
        let logs = directory.appendingPathComponent("log")
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: logs.path)) ?? []).sorted()
        return names.compactMap { name -> String? in
            guard let text = try? String(contentsOf: logs.appendingPathComponent(name), encoding: .utf8), !text.isEmpty else { return nil }
            return "--- \(name)\n" + text.split(separator: "\n").suffix(8).joined(separator: "\n")
        }.joined(separator: "\n")
    }

    // MARK: one cluster per test process

    private static let shared = SharedServer<RGWServer>(start: { try await RGWServer.start() }, stop: { $0.stop() })

    /// Runs `body` with the process-wide cluster, starting it for the first user and stopping it
    /// (by PID) when the last concurrent user is done.
    public static func withShared<T: Sendable>(_ body: (RGWServer) async throws -> T) async throws -> T {
        try await shared.with(body)
    }
}
