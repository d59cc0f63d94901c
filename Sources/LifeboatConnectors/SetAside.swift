import Foundation
import LifeboatCore

/// Where `--force` moves a non-empty data directory before a restore replaces it: next to it, named
/// after the time, so an operator finds it and nothing is ever deleted on the way in.
public func setAsidePath(for directory: String, at date: Date = Date()) -> String {
    let stamp = SourceTime.format(date).replacingOccurrences(of: ":", with: "").replacingOccurrences(of: ".", with: "")
    return directory + ".lifeboat-previous-" + stamp
}

/// A data directory moved aside before a restore, and where it came from: putting it back never
/// parses the name.
public struct SetAsideDirectory: Sendable, Hashable {
    public var original: String
    public var moved: String
    public init(original: String, moved: String) {
        self.original = original
        self.moved = moved
    }
}
