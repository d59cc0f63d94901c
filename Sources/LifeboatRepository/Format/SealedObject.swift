import CZstd
import Crypto
import Foundation

/// The envelope of every encrypted object (chunks, snapshot manifests, locks), format v1:
///
///     byte 0      format version (1)
///     byte 1      compression of the plaintext: 0 none, 1 zstd
///     bytes 2…13  AES-256-GCM nonce (random)
///     …           ciphertext
///     last 16     GCM tag
///
/// The associated data binds the object to what it claims to be (`chunk <id>`, `snapshot <id>`)
/// plus the two header bytes, so a swapped, renamed or re-flagged object fails to open.
enum SealedObject {
    static let version: UInt8 = 1
    static let headerSize = 2 + 12
    static let overhead = headerSize + 16

    enum Compression: UInt8 { case none = 0, zstd = 1 }

    static func associatedData(binding: String, compression: Compression) -> Data {
        Data("lifeboat/v1 \(binding)".utf8) + [version, compression.rawValue]
    }

    /// Compresses (when it helps) and seals `plaintext`.
    static func seal(_ plaintext: some DataProtocol & ContiguousBytes, binding: String, key: SymmetricKey, compressionLevel: Int32?) throws -> Data {
        var compression = Compression.none
        var payload: Data?
        if let compressionLevel, let compressed = zstdCompress(plaintext, level: compressionLevel), compressed.count < plaintext.count {
            compression = .zstd
            payload = compressed
        }
        let nonce = AES.GCM.Nonce()
        let aad = associatedData(binding: binding, compression: compression)
        let box: AES.GCM.SealedBox
        if let payload {
            box = try AES.GCM.seal(payload, using: key, nonce: nonce, authenticating: aad)
        } else {
            box = try AES.GCM.seal(plaintext, using: key, nonce: nonce, authenticating: aad)
        }
        var object = Data([version, compression.rawValue])
        object.reserveCapacity(overhead + box.ciphertext.count)
        object.append(contentsOf: nonce)
        object.append(box.ciphertext)
        object.append(box.tag)
        return object
    }

    /// Why an object could not be opened; the repository turns this into an error naming the object.
    enum OpenFailure: Error {
        case truncated
        case unknownVersion(UInt8)
        case unknownCompression(UInt8)
        case authenticationFailed
        case decompressionFailed(String)
    }

    /// Authenticates, decrypts and decompresses; never returns bytes that failed authentication.
    static func open(_ object: Data, binding: String, key: SymmetricKey, maximumSize: Int) throws(OpenFailure) -> Data {
        guard object.count >= overhead else { throw .truncated }
        let start = object.startIndex
        guard object[start] == version else { throw .unknownVersion(object[start]) }
        guard let compression = Compression(rawValue: object[start + 1]) else { throw .unknownCompression(object[start + 1]) }
        let payload: Data
        do {
            let nonce = try AES.GCM.Nonce(data: object[(start + 2)..<(start + headerSize)])
            let box = try AES.GCM.SealedBox(nonce: nonce, ciphertext: object[(start + headerSize)..<(object.endIndex - 16)],
                                            tag: object[(object.endIndex - 16)...])
            payload = try AES.GCM.open(box, using: key, authenticating: associatedData(binding: binding, compression: compression))
        } catch {
            throw .authenticationFailed
        }
        switch compression {
        case .none: return payload
        case .zstd: return try zstdDecompress(payload, maximumSize: maximumSize)
        }
    }

    static func zstdCompress(_ input: some ContiguousBytes, level: Int32) -> Data? {
        input.withUnsafeBytes { source -> Data? in
            let bound = ZSTD_compressBound(source.count)
            var output = Data(count: bound)
            let written = output.withUnsafeMutableBytes { destination in
                ZSTD_compress(destination.baseAddress, bound, source.baseAddress, source.count, level)
            }
            guard ZSTD_isError(written) == 0 else { return nil }
            output.count = written
            return output
        }
    }

    static func zstdDecompress(_ input: Data, maximumSize: Int) throws(OpenFailure) -> Data {
        let result: Result<Data, OpenFailure> = input.withUnsafeBytes { source in
            let declared = ZSTD_getFrameContentSize(source.baseAddress, source.count)
            guard declared != ZSTD_CONTENTSIZE_ERROR, declared != ZSTD_CONTENTSIZE_UNKNOWN else {
                return .failure(.decompressionFailed("no content size in the zstd frame"))
            }
            // Refuse before allocating: a forged size must not exhaust memory.
            guard declared <= UInt64(maximumSize) else {
                return .failure(.decompressionFailed("declares \(declared) bytes, more than the \(maximumSize) allowed"))
            }
            var output = Data(count: Int(declared))
            let written = output.withUnsafeMutableBytes { destination in
                ZSTD_decompress(destination.baseAddress, Int(declared), source.baseAddress, source.count)
            }
            guard ZSTD_isError(written) == 0, written == Int(declared) else {
                return .failure(.decompressionFailed(ZSTD_isError(written) != 0 ? String(cString: ZSTD_getErrorName(written)) : "short output"))
            }
            return .success(output)
        }
        return try result.get()
    }
}
