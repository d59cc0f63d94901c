import Foundation
import LifeboatRepository
import LifeboatStorage
import LifeboatTesting
import Testing
@testable import LifeboatCommands
import LifeboatErrors

/// Failures classified as what they are, as a user sees them: storage that does not answer (7),
/// damage (3), a damaged key file (3, or a warning when another key opens), a wrong passphrase (12).
@Suite struct FailureExitCodeTests {
    typealias CLI = CommandLineTests

    @Test func storageThatDoesNotAnswerExitsSevenAndSaysTryAgain() async throws {
        let port = try freeLoopbackPort() // bound and released: nothing listens there
        let env = ["AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_REGION": "us-east-1",
                   "LIFEBOAT_PASSWORD": "p", "LIFEBOAT_S3_ENDPOINT": "http://127.0.0.1:\(port)"]
        for command in [["snapshots"], ["verify", "--read-data"]] {
            let result = try await CLI.run(command + ["--repo", "s3://backups/repo"], environment: env)
            #expect(result.status == 7, "\(command): \(result.stderr)")
            #expect(result.stderr.contains("127.0.0.1:\(port)"))
            #expect(result.stderr.contains("unavailable") && result.stderr.contains("transient") && result.stderr.contains("try again"), "\(result.stderr)")
            #expect(!result.stderr.contains("damaged"))
        }
    }

    @Test func damageWinsOverUnavailableWhichWinsOverOtherStorageFailures() {
        let damaged = RepositoryError(.corruptObject, object: "data/aa", "the chunk is damaged")
        let missing = RepositoryError(.missingObject, object: "data/bb", "missing")
        let unavailable = RepositoryError(.unavailable, object: "data/cc", "no answer")
        let refused = RepositoryError(.storage, object: "data/dd", "S3 refused the credentials")
        #expect(ExitStatus(problems: []) == nil)
        #expect(ExitStatus(problems: [unavailable, refused, damaged]) == .damaged)
        #expect(ExitStatus(problems: [unavailable, missing]) == .damaged)
        #expect(ExitStatus(problems: [refused, unavailable]) == .unavailable)
        #expect(ExitStatus(problems: [refused]) == .failure)
        #expect(ExitStatus.unavailable.rawValue == 7)
        #expect(ExitStatus(RepositoryError(unreachable).code) == .unavailable)
        #expect(ExitStatus(RepositoryError(BackendError(.unavailable, object: "x", "HTTP 503")).code) == .unavailable)
        #expect(ExitStatus(RepositoryError(BackendError(.permissionDenied, object: "x", "refused")).code) == .failure)
        #expect(ExitStatus(RepositoryError(BackendError(.notFound, object: "x", "gone")).code) == .damaged)
    }

    let unreachable = BackendError(.unreachable, object: "config", "connection refused")

    @Test func aDamagedKeyFileIsAWarningWhenAnotherKeyOpensAndExitThreeWhenNoneDoes() async throws {
        let directory = try RepositoryCommandTests.scratch()
        let repository = directory.appendingPathComponent("repo")
        let env = RepositoryCommandTests.environment(repository, password: "first")
        #expect(try await CLI.run(["repo", "init"], environment: env).status == 0)
        var addEnv = env
        addEnv["LIFEBOAT_NEW_PASSWORD"] = "second"
        #expect(try await CLI.run(["key", "add", "--label", "second"], environment: addEnv).status == 0)
        let keys = repository.appendingPathComponent("keys")
        let first = try #require(try await Repository.open(backend: LocalDirectoryBackend(root: repository), passphrase: "first").openedWithKey)
        let second = try #require(try FileManager.default.contentsOfDirectory(atPath: keys.path).first { $0 != first })
        let file = keys.appendingPathComponent(second)
        let intact = try Data(contentsOf: file)
        try intact.prefix(intact.count / 2).write(to: file)

        let warned = try await CLI.run(["snapshots"], environment: env)
        #expect(warned.status == 0, "\(warned.stderr)")
        #expect(warned.stderr.contains("warning") && warned.stderr.contains("keys/\(second)") && warned.stderr.contains("damaged"), "\(warned.stderr)")

        let refused = try await CLI.run(["snapshots"], environment: RepositoryCommandTests.environment(repository, password: "second"))
        #expect(refused.status == 3, "a damaged key file is damage, not a wrong passphrase: \(refused.stderr)")
        #expect(refused.stderr.contains("keys/\(second)") && refused.stderr.contains("damaged"), "\(refused.stderr)")

        // The damaged key file can be removed with an intact key, and then a wrong passphrase is 12 again.
        let removed = try await CLI.run(["key", "remove", String(second.prefix(8))], environment: env)
        #expect(removed.status == 0, "\(removed.stderr)")
        let wrong = try await CLI.run(["snapshots"], environment: RepositoryCommandTests.environment(repository, password: "second"))
        #expect(wrong.status == 12, "\(wrong.stderr)")
    }

    @Test func helpListsEveryExitCode() async throws {
        // ArgumentParser wraps the discussion at the terminal width; read it as one line.
        let text = try await CLI.run(["--help"]).stdout.replacingOccurrences(of: "\n", with: " ")
        for code in ["0 ok", "1 ", "2 ", "3 ", "4 ", "5 ", "6 ", "7 ", "10 ", "11 ", "12 ", "126 ", "130 "] {
            #expect(text.contains("· \(code)") || text.contains("Exit codes: \(code)"), "--help lists exit code \(code)")
        }
    }
}
