import Foundation
import LifeboatCore

/// The value a catalog secret reference points at: an environment variable, or a file's contents
/// (without a trailing newline; relative paths from the catalog's directory).
public func resolveSecret(_ reference: SecretReference, relativeTo directory: URL?) throws(PlatformError) -> String {
    switch reference {
    case .environment(let name):
        guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else {
            throw PlatformError(.secret, object: "$\(name)", "the catalog refers to $\(name), which is not set")
        }
        return value
    case .file(let path):
        let resolved = path.hasPrefix("/") || directory == nil ? path : directory!.appendingPathComponent(path).path
        return try readSecretFile(resolved, what: "the secret the catalog refers to (\(reference))")
    }
}

/// A secret held in a file; a trailing newline is an editor's, not part of the secret.
public func readSecretFile(_ path: String, what: String) throws(PlatformError) -> String {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
        throw PlatformError(.secret, object: path, "cannot read \(what) from \(path)")
    }
    // "\r\n" is one Character in Swift: dropLast() removes either ending whole.
    let secret = text.hasSuffix("\r\n") || text.hasSuffix("\n") ? String(text.dropLast()) : text
    guard !secret.isEmpty else { throw PlatformError(.secret, object: path, "\(path) is empty; it should hold \(what)") }
    return secret
}

/// This binary's absolute path, for the commands PostgreSQL runs (`restore_command`).
public func lifeboatExecutablePath() -> String {
    if let path = Bundle.main.executablePath { return URL(fileURLWithPath: path).resolvingSymlinksInPath().path }
    return URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path
}
