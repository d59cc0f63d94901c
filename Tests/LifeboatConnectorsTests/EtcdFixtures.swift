import Foundation
import LifeboatCore
@testable import LifeboatRepository
import LifeboatStorage
import LifeboatTesting
import Testing

/// Real etcd members on loopback for the etcd tests, with a small seeded data set loaded through the gateway.
enum EtcdFixture {
    static let options = LocalEtcd.Options(unsafeNoFsync: true, startTimeout: 60)

    static func scratch(_ label: String) throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("lifeboat-etcd-\(label)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    /// `count` keys under `/app/` and a few under `/config/`, binary values of varied length, loaded
    /// 8 at a time (the gateway is CPU-bound; a few hundred keys keep the tests fast).
    static func load(_ cluster: LocalEtcd, count: Int = 300, seed: UInt64 = 7) async throws -> [(key: Data, value: Data)] {
        var generator = SeededGenerator(seed: seed)
        var pairs: [(key: Data, value: Data)] = []
        for index in 0..<count {
            let length = Int.random(in: 16...400, using: &generator)
            pairs.append((Data(String(format: "/app/key-%05d", index).utf8), Data((0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) })))
        }
        for index in 0..<5 { pairs.append((Data("/config/setting-\(index)".utf8), Data("value \(index)".utf8))) }
        let session = try await cluster.gateway().connect()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (offset, pair) in pairs.enumerated() {
                if offset >= 8 { try await group.next() }
                group.addTask { try await session.put(pair.key, pair.value) }
            }
            try await group.waitForAll()
        }
        return pairs.sorted { $0.key.lexicographicallyPrecedes($1.key) }
    }

    static func repository() async throws -> (Repository, MemoryBackend) {
        let backend = MemoryBackend()
        let repository = try await Repository.initialize(
            backend: backend, passphrase: "etcd tests",
            chunker: ChunkerParameters(minimumSize: 16 << 10, averageSize: 64 << 10, maximumSize: 256 << 10),
            scrypt: KeyFile.ScryptParameters(n: 1 << 10, r: 8, p: 1))
        return (repository, backend)
    }

    static func assertSameData(_ read: [(key: Data, value: Data)], _ expected: [(key: Data, value: Data)], _ where_: String,
                               sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(read.count == expected.count, "\(where_): \(read.count) keys, expected \(expected.count)", sourceLocation: sourceLocation)
        #expect(read.map(\.key) == expected.map(\.key), "\(where_): keys differ", sourceLocation: sourceLocation)
        #expect(read.map(\.value) == expected.map(\.value), "\(where_): values differ", sourceLocation: sourceLocation)
    }
}

/// A fault-injecting HTTP proxy in front of a real etcd: every request is forwarded, and the snapshot
/// reply is altered on the way (`flip`: one byte of the second blob changes; `truncate`: the last
/// lines are dropped). It stands for a damaged network path or a broken member.
struct EtcdFaultProxy {
    let process: ServerProcess
    let url: String

    static let script = #"""
    import base64, http.server, json, sys, urllib.request
    upstream, mode, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    class Proxy(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get('Content-Length', 0)))
            request = urllib.request.Request(upstream + self.path, data=body, method='POST',
                                             headers={k: v for k, v in self.headers.items() if k.lower() in ('content-type', 'authorization')})
            try:
                reply = urllib.request.urlopen(request)
                status, data = reply.status, reply.read()
            except urllib.error.HTTPError as error:
                status, data = error.code, error.read()
            if self.path == '/v3/maintenance/snapshot' and status == 200:
                lines = [line for line in data.split(b'\n') if line.strip()]
                if mode == 'flip':
                    item = json.loads(lines[1])
                    blob = bytearray(base64.b64decode(item['result']['blob']))
                    blob[100] ^= 0xFF
                    item['result']['blob'] = base64.b64encode(bytes(blob)).decode()
                    lines[1] = json.dumps(item).encode()
                elif mode == 'truncate':
                    lines = lines[:-2]
                data = b'\n'.join(lines) + b'\n'
            self.send_response(status)
            self.send_header('Content-Type', 'application/json')
            self.send_header('Content-Length', str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        def log_message(self, *args):
            pass
    http.server.ThreadingHTTPServer(('127.0.0.1', port), Proxy).serve_forever()
    """#

    static func start(upstream: String, mode: String, in directory: URL) async throws -> EtcdFaultProxy {
        let scriptFile = directory.appendingPathComponent("fault-proxy.py")
        try script.write(to: scriptFile, atomically: true, encoding: .utf8)
        let port = try freeLoopbackPort()
        let python = try ExternalTool.locate("python3")
        let process = try ServerProcess(name: "fault proxy", executable: python.path, arguments: [scriptFile.path, upstream, mode, String(port)],
                                        logFile: directory.appendingPathComponent("fault-proxy.log"))
        try await awaitLoopbackPort(port, timeout: 20, process: process)
        return EtcdFaultProxy(process: process, url: "http://127.0.0.1:\(port)")
    }
}
