import Foundation
import LifeboatErrors

/// A file-tree backup or restore failed on the tree's side (not the repository's).
public struct FilesError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable, CaseIterable {
        /// The catalog store or the command's arguments cannot describe a tree (usage).
        case invalidArgument = "invalid_argument"
        /// Files or directories of the tree could not be read; `paths` names every one.
        case unreadable
        /// The restore refused its target before changing anything (a non-empty directory without --force).
        case refused
        /// Reading or writing the tree failed.
        case io
    }

    public var code: Code
    public var object: String
    public var message: String
    /// Every path concerned (for `unreadable`: all of them, not just the first).
    public var paths: [String]

    public init(_ code: Code, object: String, _ message: String, paths: [String] = []) {
        self.code = code
        self.object = object
        self.message = message
        self.paths = paths
    }

    public var description: String { "\(object): \(message)" }
}

extension FilesError: LifeboatError {
    public var errorCode: String { "files.\(code.rawValue)" }
    public var errorObject: String? { object }
    public var errorMessage: String { message }
    public var exitStatus: ExitStatus {
        switch code {
        case .invalidArgument: .usage
        case .unreadable, .refused, .io: .failure
        }
    }
}
