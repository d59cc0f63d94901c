import Foundation
import LifeboatCore

/// Where `--force` moves a non-empty data directory before a restore replaces it: next to it, named
/// after the time, so an operator finds it and nothing is ever deleted on the way in.
public func setAsidePath(for directory: String, at date: Date = Date()) -> String {
    let stamp = SourceTime.format(date).replacingOccurrences(of: ":", with: "").replacingOccurrences(of: ".", with: "")
    return directory + ".lifeboat-previous-" + stamp
}
