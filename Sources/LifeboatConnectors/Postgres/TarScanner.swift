import Foundation

/// Watches a tar stream go by and keeps the contents of a few small members (`backup_label`,
/// `backup_manifest`), without buffering the rest: pg_basebackup's tar goes straight into the
/// repository, and these facts are read on the way.
struct TarScanner {
    /// Member names to keep, and the largest size kept for each.
    let wanted: [String: Int]
    private(set) var members: [String: Data] = [:]
    private var header = Data()
    /// Bytes of the current member's data still to come, and the padding after it.
    private var remaining = 0
    private var padding = 0
    private var current: String?
    private var ended = false

    init(wanted: [String: Int]) {
        self.wanted = wanted
    }

    mutating func consume(_ data: Data) {
        var index = data.startIndex
        while index < data.endIndex, !ended {
            if remaining > 0 {
                let take = min(remaining, data.endIndex - index)
                if let current { members[current, default: Data()].append(data[index..<(index + take)]) }
                remaining -= take
                index += take
                if remaining == 0 { current = nil }
            } else if padding > 0 {
                let take = min(padding, data.endIndex - index)
                padding -= take
                index += take
            } else {
                let take = min(512 - header.count, data.endIndex - index)
                header.append(data[index..<(index + take)])
                index += take
                if header.count == 512 { readHeader() }
            }
        }
    }

    private mutating func readHeader() {
        defer { header.removeAll(keepingCapacity: true) }
        let bytes = [UInt8](header)
        if bytes.allSatisfy({ $0 == 0 }) { return } // end-of-archive blocks (two of them)
        func field(_ offset: Int, _ length: Int) -> String {
            String(decoding: bytes[offset..<(offset + length)].prefix { $0 != 0 }, as: UTF8.self)
        }
        var name = field(0, 100)
        let prefix = field(345, 155)
        if !prefix.isEmpty { name = prefix + "/" + name }
        if name.hasPrefix("./") { name.removeFirst(2) }
        let sizeText = field(124, 12).trimmingCharacters(in: .whitespaces)
        let size = Int(sizeText, radix: 8) ?? 0
        remaining = size
        padding = (512 - size % 512) % 512
        if let limit = wanted[name], size <= limit {
            current = name
            members[name] = Data()
        } else {
            current = nil
        }
        if size == 0 { current = nil }
    }
}

/// The `key: value` lines of a `backup_label` (`START WAL LOCATION: 0/2000028 (file 0000…02)`).
func parseBackupLabel(_ data: Data) -> [String: String] {
    var fields: [String: String] = [:]
    for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
        guard let colon = line.firstIndex(of: ":") else { continue }
        fields[String(line[..<colon])] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
    return fields
}
