import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// The few XML documents S3 speaks: parsed into a small tree with Foundation's XMLParser (no new
/// package), built by hand for the one body we send.
enum S3XML {
    final class Element {
        let name: String
        var text = ""
        var children: [Element] = []

        init(name: String) { self.name = name }

        func child(_ name: String) -> Element? { children.first { $0.name == name } }
        func all(_ name: String) -> [Element] { children.filter { $0.name == name } }
    }

    /// The root element, or nil when `data` is not well-formed XML.
    ///
    /// Only text that starts like XML and is valid UTF-8 reaches Foundation's parser: on Linux it
    /// traps (SIGILL) on some binary input instead of failing, which an object's bytes once did.
    static func parse(_ data: Data) -> Element? {
        guard let first = data.first(where: { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }), first == UInt8(ascii: "<"),
              String(data: data, encoding: .utf8) != nil else { return nil }
        let parser = XMLParser(data: data)
        let builder = TreeBuilder()
        parser.delegate = builder
        parser.shouldProcessNamespaces = false
        parser.shouldResolveExternalEntities = false
        guard parser.parse() else { return nil }
        return builder.root
    }

    private final class TreeBuilder: NSObject, XMLParserDelegate {
        var root: Element?
        var stack: [Element] = []

        func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
                    qualifiedName qName: String?, attributes attributeDict: [String: String] = [:]) {
            let element = Element(name: elementName)
            if let parent = stack.last { parent.children.append(element) } else { root = element }
            stack.append(element)
        }

        func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName qName: String?) {
            _ = stack.popLast()
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) {
            stack.last?.text += string
        }
    }

    /// One page of ListObjectsV2.
    struct ListPage {
        var objects: [ListedObject]
        var isTruncated: Bool
        var nextContinuationToken: String?
    }

    /// One `Contents` entry of a listing.
    struct ListedObject {
        var key: String
        var size: Int
        var modified: Date
        var etag: String
        var storageClass: String?
    }

    static func listPage(_ data: Data) -> ListPage? {
        guard let root = parse(data), root.name == "ListBucketResult" else { return nil }
        var objects: [ListedObject] = []
        for contents in root.all("Contents") {
            guard let key = contents.child("Key")?.text,
                  let size = contents.child("Size").flatMap({ Int($0.text.trimmingCharacters(in: .whitespaces)) }),
                  let modified = contents.child("LastModified").flatMap({ S3Time.parseISO8601($0.text.trimmingCharacters(in: .whitespaces)) })
            else { return nil }
            objects.append(ListedObject(key: key, size: size, modified: modified, etag: contents.child("ETag")?.text ?? "",
                                        storageClass: contents.child("StorageClass")?.text))
        }
        let truncated = root.child("IsTruncated")?.text.trimmingCharacters(in: .whitespaces).lowercased() == "true"
        let token = root.child("NextContinuationToken")?.text
        return ListPage(objects: objects, isTruncated: truncated, nextContinuationToken: token.flatMap { $0.isEmpty ? nil : $0 })
    }

    /// Body of CompleteMultipartUpload: parts in ascending number order.
    static func completeMultipartUpload(_ parts: [(number: Int, etag: String)]) -> Data {
        var xml = #"<?xml version="1.0" encoding="UTF-8"?><CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">"#
        for part in parts.sorted(by: { $0.number < $1.number }) {
            xml += "<Part><PartNumber>\(part.number)</PartNumber><ETag>\(escape(part.etag))</ETag></Part>"
        }
        xml += "</CompleteMultipartUpload>"
        return Data(xml.utf8)
    }

    /// Body of CreateBucket outside us-east-1 (where S3 wants no body).
    static func createBucketConfiguration(region: String) -> Data {
        Data(#"<?xml version="1.0" encoding="UTF-8"?><CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><LocationConstraint>\#(escape(region))</LocationConstraint></CreateBucketConfiguration>"#.utf8)
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
