import Foundation
import LifeboatTesting
import Testing
@testable import LifeboatStorage

/// Retry and error mapping against a scripted S3 stand-in (moto cannot be made to fail on cue):
/// a small Python HTTP server whose first path segment after the bucket picks the behaviour, and
/// which counts the requests it received per path so the tests can assert how often we retried.
@Suite struct S3RetryTests {
    static let script = #"""
        import http.server, sys, threading, time
        counts, objects, lock = {}, {}, threading.Lock()
        def error(code, message):
            return ("<?xml version='1.0' encoding='UTF-8'?><Error><Code>%s</Code><Message>%s</Message></Error>" % (code, message)).encode()
        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            def log_message(self, *args): pass
            def reply(self, status, body=b"", headers=()):
                self.send_response(status)
                for name, value in headers: self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD": self.wfile.write(body)
            def handle_any(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = self.path.split("?")[0]
                if path.startswith("/count/"):
                    return self.reply(200, str(counts.get(path[len("/count"):], 0)).encode())
                with lock:
                    counts[path] = n = counts.get(path, 0) + 1
                mode = path.split("/")[2]
                if mode == "flaky" and n <= 2: return self.reply(503, error("SlowDown", "Please reduce your request rate."))
                if mode == "flaky": return self.reply(200, b"recovered")
                if mode == "slowdown": return self.reply(503, error("SlowDown", "Please reduce your request rate."))
                if mode == "throttled": return self.reply(429, b"")
                if mode == "invalid": return self.reply(400, error("InvalidArgument", "Invalid argument."))
                if mode == "denied": return self.reply(403, error("AccessDenied", "Access Denied"))
                if mode == "hang": time.sleep(60); return self.reply(200, b"late")
                if mode == "ambiguous":
                    # Stores the first PUT but answers 500, as if the answer was lost; then behaves.
                    if self.command == "PUT":
                        with lock:
                            exists = path in objects
                            if not exists: objects[path] = body
                        if n == 1: return self.reply(500, error("InternalError", "We encountered an internal error."))
                        if exists and self.headers.get("If-None-Match") == "*": return self.reply(412, error("PreconditionFailed", "At least one of the pre-conditions you specified did not hold"))
                        return self.reply(200)
                    if self.command == "GET" and path in objects: return self.reply(200, objects[path])
                    return self.reply(404, error("NoSuchKey", "The specified key does not exist."))
                return self.reply(404, error("NoSuchKey", "The specified key does not exist."))
            do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = handle_any
        http.server.ThreadingHTTPServer.daemon_threads = True
        http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
        """#

    /// Starts the stand-in, runs `body` with a backend on it (bucket `fake`, no prefix), stops it by PID.
    func withFakeS3(retry: S3RetryPolicy, _ body: (S3Backend, _ count: (String) async throws -> Int) async throws -> Void) async throws {
        let port = try freeLoopbackPort()
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("lifeboat-fake-s3-\(port).log")
        let server = try ServerProcess(name: "fake S3", executable: "/usr/bin/env", arguments: ["python3", "-c", Self.script, String(port)], logFile: log)
        defer { server.stop() }
        try await awaitLoopbackPort(port, timeout: 20, process: server)
        let backend = try S3Backend(configuration: S3Configuration(
            endpoint: URL(string: "http://127.0.0.1:\(port)")!, region: "us-east-1", bucket: "fake",
            credentials: S3Credentials(accessKeyID: "AKIDFAKE", secretAccessKey: "fake-secret"), retry: retry))
        let counter = S3Client(endpoint: URL(string: "http://127.0.0.1:\(port)")!, region: "us-east-1",
                               credentials: S3Credentials(accessKeyID: "AKIDFAKE", secretAccessKey: "fake-secret"))
        try await body(backend) { name in
            let response = try await counter.send(S3Request(method: "GET", bucket: "count", key: "fake/\(name)"))
            return Int(String(decoding: response.body, as: UTF8.self)) ?? -1
        }
    }

    static let quick = S3RetryPolicy(maxAttempts: 4, baseDelay: .milliseconds(5), maxDelay: .milliseconds(20), requestTimeout: .seconds(5))

    @Test func transientErrorsAreRetriedUntilTheyPass() async throws {
        try await withFakeS3(retry: Self.quick) { backend, count in
            let loaded = try await backend.load("flaky/x")
            #expect(loaded == Data("recovered".utf8))
            #expect(try await count("flaky/x") == 3)
        }
    }

    @Test func slowDownAndThrottlingGiveUpAfterTheLastAttempt() async throws {
        try await withFakeS3(retry: Self.quick) { backend, count in
            let slow = try await #require(throws: BackendError.self) { _ = try await backend.load("slowdown/x") }
            #expect(slow.code == .unavailable, "a failure that outlasted the retries is transient, not an I/O error")
            #expect(slow.detail.contains("after 4 attempts"), "\(slow)")
            #expect(slow.detail.contains("SlowDown"), "\(slow)")
            #expect(try await count("slowdown/x") == 4)
            let throttled = try await #require(throws: BackendError.self) { try await backend.replace("throttled/x", data: Data("x".utf8)) }
            #expect(throttled.code == .unavailable)
            #expect(try await count("throttled/x") == 4)
        }
    }

    @Test func otherClientErrorsAreNeverRetried() async throws {
        try await withFakeS3(retry: Self.quick) { backend, count in
            let invalid = try await #require(throws: BackendError.self) { _ = try await backend.load("invalid/x") }
            #expect(invalid.code == .io)
            #expect(invalid.detail.contains("InvalidArgument"))
            #expect(try await count("invalid/x") == 1)
            let denied = try await #require(throws: BackendError.self) { try await backend.replace("denied/x", data: Data("x".utf8)) }
            #expect(denied.code == .permissionDenied)
            #expect(denied.detail.contains("AKIDFAKE") && denied.detail.contains("IAM policy"), "\(denied)")
            #expect(!denied.description.contains("fake-secret"))
            #expect(try await count("denied/x") == 1)
        }
    }

    @Test func aServerThatNeverAnswersTimesOutAndIsUnreachable() async throws {
        let retry = S3RetryPolicy(maxAttempts: 2, baseDelay: .milliseconds(5), maxDelay: .milliseconds(10), requestTimeout: .milliseconds(300))
        try await withFakeS3(retry: retry) { backend, count in
            let started = ContinuousClock.now
            let error = try await #require(throws: BackendError.self) { _ = try await backend.load("hang/x") }
            // Waiting for the server would take two minutes; 60 s leaves room for a loaded CI machine.
            #expect(ContinuousClock.now - started < .seconds(60))
            #expect(error.code == .unreachable)
            #expect(error.detail.contains("timed out"), "\(error)")
            #expect(try await count("hang/x") == 2)
        }
    }

    @Test func aCreateWhoseAnswerWasLostIsRecognisedAsOurs() async throws {
        // The first PUT is stored but answered 500; the retry meets 412 from our own object. The
        // backend reads it back and, finding our bytes, reports success rather than `.alreadyExists`.
        try await withFakeS3(retry: Self.quick) { backend, count in
            try await backend.create("ambiguous/ours", data: Data("ours".utf8))
            #expect(try await count("ambiguous/ours") == 3) // PUT (500), PUT (412), GET
            // Someone else's bytes under the name stay `.alreadyExists`.
            try await backend.create("ambiguous/theirs", data: Data("theirs".utf8))
            let error = try await #require(throws: BackendError.self) { try await backend.create("ambiguous/theirs", data: Data("mine".utf8)) }
            #expect(error.code == .alreadyExists)
        }
    }
}
