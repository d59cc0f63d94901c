import Foundation

/// Where a repository lives, parsed once: a local directory, or `s3://bucket/prefix`. The one
/// factory from a location to a backend (as restic's `location` registry): commands, mirrors and
/// the application layer all build their backends here.
public enum BackendLocation: Sendable, Hashable, CustomStringConvertible {
    case local(URL)
    case s3(bucket: String, prefix: String)

    /// Parses a location; nil for `s3://` without a bucket.
    public init?(_ text: String) {
        guard text.hasPrefix("s3://") else {
            self = .local(URL(fileURLWithPath: text))
            return
        }
        let path = text.dropFirst("s3://".count)
        let bucket = String(path.prefix { $0 != "/" })
        guard !bucket.isEmpty else { return nil }
        self = .s3(bucket: bucket, prefix: String(path.dropFirst(bucket.count).drop { $0 == "/" }).trimmingCharacters(in: CharacterSet(charactersIn: "/")))
    }

    /// The backend at this location; `s3` configures an S3 location (endpoint, credentials, …).
    public func backend(s3: (_ bucket: String, _ prefix: String) throws -> S3Configuration) throws -> any Backend {
        switch self {
        case .local(let root): return LocalDirectoryBackend(root: root)
        case .s3(let bucket, let prefix): return try S3Backend(configuration: try s3(bucket, prefix))
        }
    }

    public var description: String {
        switch self {
        case .local(let root): root.path
        case .s3(let bucket, let prefix): prefix.isEmpty ? "s3://\(bucket)" : "s3://\(bucket)/\(prefix)"
        }
    }
}
