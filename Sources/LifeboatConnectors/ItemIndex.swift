import Foundation
import LifeboatCore
import LifeboatRepository

/// The index of a many-item snapshot (a bucket's objects, a tree's files): JSON lines, a header
/// first, then one record per item, each naming its own chunks. It is the snapshot's stream, so it
/// is chunked, compressed and sealed like any artefact (docs/repository-format.md).
struct ItemIndex<Header: Codable & Sendable, Record: Codable & Sendable>: Sendable {
    var header: Header
    var records: [Record]

    func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(SourceTime.format(date))
        }
        var data = try encoder.encode(header)
        data.append(0x0A)
        for record in records {
            data.append(try encoder.encode(record))
            data.append(0x0A)
        }
        return data
    }

    /// Reads an index; `snapshot` names it in the error a damaged or foreign one gives.
    static func decode(_ data: Data, snapshot: String) throws(RepositoryError) -> ItemIndex {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            guard let date = SourceTime.parse(text) else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a time: \(text)"))
            }
            return date
        }
        var lines = data.split(separator: 0x0A, omittingEmptySubsequences: true)[...]
        do {
            guard let first = lines.popFirst() else { throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "empty")) }
            let header = try decoder.decode(Header.self, from: Data(first))
            return ItemIndex(header: header, records: try lines.map { try decoder.decode(Record.self, from: Data($0)) })
        } catch {
            throw RepositoryError(.corruptObject, object: "snapshot \(snapshot)", "its index cannot be read (\(error)); it is not a snapshot this connector wrote")
        }
    }
}

/// Runs `body` for every element, at most `limit` at once; the first error cancels the rest and is thrown.
func forEachConcurrently<Element: Sendable, Result: Sendable>(
    _ elements: [Element], limit: Int, _ body: @escaping @Sendable (Element) async throws -> Result
) async throws -> [Result] {
    var results = [Result?](repeating: nil, count: elements.count)
    try await withThrowingTaskGroup(of: (Int, Result).self) { group in
        var next = 0
        while next < min(limit, elements.count) {
            let index = next
            group.addTask { (index, try await body(elements[index])) }
            next += 1
        }
        while let (index, result) = try await group.next() {
            results[index] = result
            if next < elements.count {
                let index = next
                group.addTask { (index, try await body(elements[index])) }
                next += 1
            }
        }
    }
    return results.map { $0! }
}
