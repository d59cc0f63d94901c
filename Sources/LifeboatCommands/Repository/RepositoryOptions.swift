import ArgumentParser
import Foundation
import LifeboatRepository
import LifeboatStorage

/// `--repo` and `--password-file`, with `$LIFEBOAT_REPOSITORY` and `$LIFEBOAT_PASSWORD` as fallbacks.
struct RepositoryOptions: ParsableArguments {
    @Option(name: [.customShort("r"), .customLong("repo")], help: ArgumentHelp("The repository: a directory, or s3://bucket/prefix (default: $LIFEBOAT_REPOSITORY).", valueName: "location"))
    var repository: String?

    @Option(help: ArgumentHelp("File holding the repository passphrase (default: $LIFEBOAT_PASSWORD).", valueName: "path"))
    var passwordFile: String?

    func location() throws -> String {
        guard let location = repository ?? ProcessInfo.processInfo.environment["LIFEBOAT_REPOSITORY"], !location.isEmpty else {
            throw CommandFailure(.usage, "no repository given: pass --repo or set LIFEBOAT_REPOSITORY")
        }
        return location
    }

    func backend() throws -> any Backend {
        let location = try location()
        if location.hasPrefix("s3://") {
            throw CommandFailure(.usage, "S3 repositories are not wired into the command line yet; use a directory")
        }
        return LocalDirectoryBackend(root: URL(fileURLWithPath: location))
    }

    func passphrase() throws -> String {
        try readSecret(file: passwordFile, environment: "LIFEBOAT_PASSWORD", prompt: "repository passphrase: ", what: "the repository passphrase",
                       flag: "--password-file")
    }

    func open() async throws -> Repository {
        try await Repository.open(backend: try backend(), passphrase: try passphrase())
    }
}

/// A secret from a file, an environment variable, or (only on a terminal) a prompt. Never echoed.
func readSecret(file: String?, environment: String, prompt: String, what: String, flag: String) throws -> String {
    if let file {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
            throw CommandFailure(.usage, "cannot read \(what) from \(file)")
        }
        // A trailing newline is an editor's, not part of the secret.
        let secret = text.hasSuffix("\r\n") ? String(text.dropLast(2)) : text.hasSuffix("\n") ? String(text.dropLast()) : text
        guard !secret.isEmpty else { throw CommandFailure(.usage, "\(file) is empty; it should hold \(what)") }
        return secret
    }
    if let value = ProcessInfo.processInfo.environment[environment], !value.isEmpty { return value }
    if isatty(STDIN_FILENO) == 1, let typed = getpass(prompt), typed.pointee != 0 {
        return String(cString: typed)
    }
    throw CommandFailure(.usage, "\(what) is needed: pass \(flag) or set \(environment)")
}
