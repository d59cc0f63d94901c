import Crypto
import CryptoExtras
import CZstd
import Foundation
import LifeboatStorage
import Testing
@testable import LifeboatRepository

/// A second reader written from docs/repository-format.md alone: it uses the cryptographic and
/// zstd primitives, never Lifeboat's own format code (SealedObject, RepositoryKeys, the Codable
/// types, Data(base64Encoded:)). It pins the answers the spec gives to what a second reader once had
/// to guess — the associated data's exact bytes (§7), base64 (§4), what `sha256` covers and the
/// absent `point` (§8), one zstd frame with its content size (§7), the share layout and checksum
/// input (§10), the documents' and locks' associated data (§11, §14) — so each test fails if the
/// code changes the format without the spec.
enum SpecReader {
    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        bytes.map { String(format: "%02x", $0) }.joined()
    }

    static func json(_ bytes: some Sequence<UInt8>) throws -> [String: Any] {
        guard let object = try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else { throw Failure("not a JSON object") }
        return object
    }

    /// §3: `YYYY-MM-DDTHH:MM:SS.mmmZ`, as writers write it.
    static func isWriterTime(_ value: Any?) -> Bool {
        guard let text = value as? String else { return false }
        return text.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/) != nil
    }

    /// §4: RFC 4648 §4 — the standard alphabet, `=` padding to a multiple of 4, nothing else.
    static func base64(_ text: String) throws -> [UInt8] {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        let characters = Array(text.utf8)
        guard characters.count % 4 == 0 else { throw Failure("base64 of \(characters.count) characters is not padded to a multiple of 4") }
        var bytes: [UInt8] = []
        for start in stride(from: 0, to: characters.count, by: 4) {
            var bits: UInt32 = 0
            var padding = 0
            for (position, character) in characters[start..<(start + 4)].enumerated() {
                if character == UInt8(ascii: "=") {
                    guard start + 4 == characters.count, position >= 2 else { throw Failure("'=' inside base64") }
                    padding += 1
                    bits <<= 6
                } else {
                    guard padding == 0, let value = alphabet.firstIndex(of: character) else { throw Failure("'\(UnicodeScalar(character))' is not base64") }
                    bits = bits << 6 | UInt32(value)
                }
            }
            bytes += [UInt8(bits >> 16 & 0xff), UInt8(bits >> 8 & 0xff), UInt8(bits & 0xff)].prefix(3 - padding)
        }
        return bytes
    }

    /// §7: `lifeboat/v1`, one space, the binding, then the object's two header bytes.
    static func associatedData(binding: String, header: some Sequence<UInt8>) -> [UInt8] {
        Array("lifeboat/v1".utf8) + [0x20] + Array(binding.utf8) + Array(header)
    }

    /// The structure of one zstd frame (RFC 8878 §3.1.1), walked block by block without decoding.
    struct ZstdFrame {
        var contentSize: UInt64?
        var dictionaryID: UInt64
        var length: Int
    }

    static func zstdFrame(_ bytes: [UInt8]) throws -> ZstdFrame {
        func little(_ offset: Int, _ count: Int) throws -> UInt64 {
            guard offset + count <= bytes.count else { throw Failure("zstd frame truncated") }
            return (0..<count).reduce(UInt64(0)) { $0 | UInt64(bytes[offset + $1]) << (8 * $1) }
        }
        guard bytes.count >= 5, try little(0, 4) == 0xFD2F_B528 else { throw Failure("no zstd frame magic") }
        let descriptor = bytes[4]
        let singleSegment = descriptor & 0x20 != 0
        var offset = 5 + (singleSegment ? 0 : 1)
        let dictionaryBytes = [0, 1, 2, 4][Int(descriptor & 0x03)]
        let dictionaryID = try little(offset, dictionaryBytes)
        offset += dictionaryBytes
        let contentBytes = [singleSegment ? 1 : 0, 2, 4, 8][Int(descriptor >> 6)]
        var contentSize: UInt64?
        if contentBytes > 0 { contentSize = try little(offset, contentBytes) + (contentBytes == 2 ? 256 : 0) }
        offset += contentBytes
        while true {
            let header = try little(offset, 3)
            offset += 3
            switch (header >> 1) & 3 {
            case 0, 2: offset += Int(header >> 3)   // raw, compressed: the block's bytes follow
            case 1: offset += 1                      // RLE: one byte
            default: throw Failure("reserved zstd block type")
            }
            guard offset <= bytes.count else { throw Failure("zstd block runs past the payload") }
            if header & 1 != 0 { break }
        }
        if descriptor & 0x04 != 0 { offset += 4 }     // content checksum
        return ZstdFrame(contentSize: contentSize, dictionaryID: dictionaryID, length: offset)
    }

    /// §7, sealed object: header, AES-256-GCM with the spec's associated data, then (0x01) exactly
    /// one zstd frame that declares its content size, no more than `maximum`.
    static func open(_ object: [UInt8], binding: String, key: SymmetricKey, maximum: Int) throws -> (plaintext: [UInt8], compression: UInt8) {
        guard object.count >= 30, object[0] == 0x01, object[1] <= 0x01 else { throw Failure("not a v1 sealed object") }
        let box = try AES.GCM.SealedBox(nonce: AES.GCM.Nonce(data: object[2..<14]), ciphertext: object[14..<(object.count - 16)],
                                        tag: object[(object.count - 16)...])
        let payload = Array(try AES.GCM.open(box, using: key, authenticating: associatedData(binding: binding, header: object[0..<2])))
        guard object[1] == 0x01 else { return (payload, 0x00) }
        let frame = try zstdFrame(payload)
        guard frame.length == payload.count else { throw Failure("more than one zstd frame (\(frame.length) of \(payload.count) bytes)") }
        guard frame.dictionaryID == 0, let size = frame.contentSize, size <= UInt64(maximum) else { throw Failure("zstd frame without its content size, or over \(maximum)") }
        var plaintext = [UInt8](repeating: 0, count: Int(size))
        let written = plaintext.withUnsafeMutableBytes { ZSTD_decompress($0.baseAddress, Int(size), payload, payload.count) }
        guard ZSTD_isError(written) == 0, written == Int(size) else { throw Failure("zstd frame does not decode to its content size") }
        return (plaintext, 0x01)
    }

    /// §3–§5 from the files of a local repository: the config, the master secret from the one key
    /// file, and the derived keys.
    struct Keys {
        var config: [String: Any]
        var id: String
        var keyID: String
        var keyFile: [String: Any]
        var keyFileText: String
        var master: [UInt8]
        var data: SymmetricKey
        var chunkID: SymmetricKey
    }

    static func keys(in directory: URL, passphrase: String) throws -> Keys {
        let config = try json(Data(contentsOf: directory.appendingPathComponent("config")))
        guard config["version"] as? Int == 1, let id = config["id"] as? String, id.utf8.count == 32 else { throw Failure("config: version or id") }
        let keyNames = try FileManager.default.contentsOfDirectory(atPath: directory.appendingPathComponent("keys").path)
        guard keyNames.count == 1, let keyID = keyNames.first else { throw Failure("expected one key file, found \(keyNames)") }
        let keyFileData = try Data(contentsOf: directory.appendingPathComponent("keys/\(keyID)"))
        let keyFile = try json(keyFileData)
        guard keyFile["kdf"] as? String == "scrypt", let scrypt = keyFile["scrypt"] as? [String: Int],
              let n = scrypt["n"], let r = scrypt["r"], let p = scrypt["p"],
              let salt = keyFile["salt"] as? String, let wrapped = keyFile["wrapped"] as? String else { throw Failure("key file fields") }
        let saltBytes = try base64(salt)
        let wrappedBytes = try base64(wrapped)
        guard saltBytes.count == 32, wrappedBytes.count == 60 else { throw Failure("salt \(saltBytes.count), wrapped \(wrappedBytes.count) bytes") }
        // §4: the passphrase's UTF-8 bytes; `wrapped` is nonce ‖ ciphertext ‖ tag; no header bytes in its associated data.
        let wrappingKey = try KDF.Scrypt.deriveKey(from: Array(passphrase.utf8), salt: saltBytes, outputByteCount: 32,
                                                   rounds: n, blockSize: r, parallelism: p)
        let master = Array(try AES.GCM.open(AES.GCM.SealedBox(combined: wrappedBytes), using: wrappingKey,
                                            authenticating: Array("lifeboat/v1 key \(keyID)".utf8)))
        let check = HMAC<SHA256>.authenticationCode(for: Array("lifeboat/v1/key-check".utf8), using: SymmetricKey(data: master))
        guard hex(Array(check).prefix(16)) == config["key_check"] as? String else { throw Failure("key_check does not match") }
        func derive(_ label: String) -> SymmetricKey {
            HKDF<SHA256>.deriveKey(inputKeyMaterial: SymmetricKey(data: master), salt: Array(id.utf8),
                                   info: Array("lifeboat/v1/\(label)".utf8), outputByteCount: 32)
        }
        return Keys(config: config, id: id, keyID: keyID, keyFile: keyFile, keyFileText: String(decoding: keyFileData, as: UTF8.self),
                    master: master, data: derive("data"), chunkID: derive("chunk-id"))
    }

    /// GF(2^8) with the AES polynomial 0x11B (§10), by shift and reduce.
    static func multiply(_ a: UInt8, _ b: UInt8) -> UInt8 {
        var x = a, y = b, product: UInt8 = 0
        for _ in 0..<8 {
            if y & 1 != 0 { product ^= x }
            x = (x << 1) ^ (x & 0x80 != 0 ? 0x1B : 0)
            y >>= 1
        }
        return product
    }

    static func inverse(_ a: UInt8) -> UInt8 {
        (0..<254).reduce(UInt8(1)) { value, _ in multiply(value, a) }   // a^254 = a^-1
    }
}

@Suite struct SpecReaderTests {
    typealias Spec = SpecReader

    func bytes(_ directory: URL, _ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: directory.appendingPathComponent(name)))
    }

    /// The committed fixture, read with the spec's rules only; plausible other readings fail.
    @Test func theCommittedFixtureDecodesByTheSpecAlone() throws {
        let directory = FixtureTests.directory
        let keys = try Spec.keys(in: directory, passphrase: FixtureTests.passphrase)

        // §4: standard base64 with padding (a 32-byte salt is 44 characters ending in '='); the
        // JSON text escapes '/' as "\/" (§1), and the fixture's `wrapped` holds a '/'.
        let salt = try #require(keys.keyFile["salt"] as? String)
        let wrapped = try #require(keys.keyFile["wrapped"] as? String)
        #expect(salt.count == 44 && salt.hasSuffix("=") && wrapped.count == 80)
        #expect(wrapped.contains("/") && keys.keyFileText.contains(#"\/"#))
        #expect(!keys.keyFileText.replacingOccurrences(of: #"\/"#, with: "").contains("/"), "every '/' is escaped")
        #expect(throws: SpecReader.Failure.self) { try Spec.base64(String(salt.dropLast())) }   // unpadded is not the format
        #expect(Spec.isWriterTime(keys.keyFile["created"]) && Spec.isWriterTime(keys.config["created"]))

        // §8: the manifest, under exactly the associated data of §7.
        let snapshotNames = try FileManager.default.contentsOfDirectory(atPath: directory.appendingPathComponent("snapshots").path)
        let snapshotID = try #require(snapshotNames.first)
        let sealedManifest = try bytes(directory, "snapshots/\(snapshotID)")
        let (manifestText, manifestCompression) = try Spec.open(sealedManifest, binding: "snapshot \(snapshotID)", key: keys.data, maximum: 256 << 20)
        #expect(manifestCompression == 0x01, "the fixture's manifest is compressed: its zstd frame was checked")
        // Other plausible associated data does not authenticate: no header bytes, a NUL or no
        // space as separator, a slash instead of the space after lifeboat/v1.
        let header = Array(sealedManifest[0..<2])
        let box = try AES.GCM.SealedBox(nonce: AES.GCM.Nonce(data: sealedManifest[2..<14]), ciphertext: sealedManifest[14..<(sealedManifest.count - 16)],
                                        tag: sealedManifest[(sealedManifest.count - 16)...])
        for wrong in [Array("lifeboat/v1 snapshot \(snapshotID)".utf8),
                      Array("lifeboat/v1 snapshot \(snapshotID)".utf8) + [0] + header,
                      Array("lifeboat/v1 snapshot \(snapshotID) ".utf8) + header,
                      Array("lifeboat/v1snapshot \(snapshotID)".utf8) + header,
                      Array("lifeboat/v1/snapshot \(snapshotID)".utf8) + header] {
            #expect(throws: (any Error).self) { try AES.GCM.open(box, using: keys.data, authenticating: wrong) }
        }
        #expect(Spec.associatedData(binding: "snapshot \(snapshotID)", header: header)
                == Array("lifeboat/v1 snapshot \(snapshotID)".utf8) + [0x01, manifestCompression])

        let manifest = try Spec.json(manifestText)
        #expect(!manifest.keys.contains("point"), "a snapshot outside a recovery point has no point field, not null")
        #expect(manifest["id"] as? String == snapshotID && manifest["version"] as? Int == 1)
        #expect(Spec.isWriterTime(manifest["started"]) && Spec.isWriterTime(manifest["finished"]))

        // §6/§7: every chunk, one zstd frame each, its HMAC and size; the artefact is their concatenation.
        let chunker = try #require(keys.config["chunker"] as? [String: Int])
        let maximum = try #require(chunker["max"])
        let chunks = try #require(manifest["chunks"] as? [[String: Any]])
        #expect(chunks.count > 1)
        var artefact: [UInt8] = []
        for chunk in chunks {
            let id = try #require(chunk["id"] as? String)
            let (plaintext, compression) = try Spec.open(try bytes(directory, "data/\(id.prefix(2))/\(id)"), binding: "chunk \(id)", key: keys.data, maximum: maximum)
            #expect(compression == 0x01, "the fixture's text compresses")
            #expect(Spec.hex(HMAC<SHA256>.authenticationCode(for: plaintext, using: keys.chunkID)) == id)
            #expect(plaintext.count == chunk["size"] as? Int)
            artefact += plaintext
        }
        #expect(Data(artefact) == FixtureTests.content)
        // `sha256` and `size` cover the artefact: the chunks' plaintexts, concatenated in order.
        #expect(manifest["sha256"] as? String == Spec.hex(SHA256.hash(data: artefact)))
        #expect((manifest["size"] as? NSNumber)?.intValue == artefact.count)
    }

    /// Points, reports, locks and key shares, written by today's code into a copy of the fixture,
    /// read by the spec's rules.
    @Test func pointsReportsLocksAndSharesWrittenTodayFollowTheSpec() async throws {
        let copy = FileManager.default.temporaryDirectory.appendingPathComponent("lifeboat-spec-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: FixtureTests.directory, to: copy)
        defer { try? FileManager.default.removeItem(at: copy) }
        let repository = try await Repository.open(backend: LocalDirectoryBackend(root: copy), passphrase: FixtureTests.passphrase)
        let keys = try Spec.keys(in: copy, passphrase: FixtureTests.passphrase)

        // §11: documents bound to `points <id>` / `evidence <id>` (the prefix's name) plus the header bytes.
        struct Document: Codable { var version = 1; var id: String; var platform = "spec"; var started = Date(); var note: String }
        for namespace in DocumentNamespace.allCases {
            let id = Repository.newDocumentID()
            try await repository.writeDocument(Document(id: id, note: String(repeating: "compressible ", count: 50)), in: namespace, id: id)
            let sealed = try bytes(copy, "\(namespace.rawValue)/\(id)")
            let (text, compression) = try Spec.open(sealed, binding: "\(namespace.rawValue) \(id)", key: keys.data, maximum: 64 << 20)
            #expect(compression == 0x01)
            let document = try Spec.json(text)
            #expect(document["id"] as? String == id && Spec.isWriterTime(document["started"]))
            let other = namespace == .points ? "evidence" : "points"
            #expect(throws: (any Error).self) { try Spec.open(sealed, binding: "\(other) \(id)", key: keys.data, maximum: 64 << 20) }
        }

        // §14: a lock is bound to `lock <id>` (singular), never compressed, and gone afterwards.
        let locks = copy.appendingPathComponent("locks")
        try await repository.withLock(exclusive: false, purpose: "spec test") {
            let names = try FileManager.default.contentsOfDirectory(atPath: locks.path).filter { !$0.hasPrefix(".tmp-") }
            let id = try #require(names.first)
            #expect(names.count == 1 && id.utf8.count == 32)
            let (text, compression) = try Spec.open(try bytes(locks, id), binding: "lock \(id)", key: keys.data, maximum: 64 << 10)
            #expect(compression == 0x00)
            let lock = try Spec.json(text)
            #expect(Set(lock.keys) == ["created", "exclusive", "hostname", "pid", "purpose", "refreshed"])
            #expect(lock["exclusive"] as? Bool == false && lock["purpose"] as? String == "spec test" && lock["pid"] as? Int == Int(getpid()))
            #expect(Spec.isWriterTime(lock["created"]) && Spec.isWriterTime(lock["refreshed"]))
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: locks.path).isEmpty)

        // §10: lbshare1-<P>-<k decimal>-<x 2 hex>-<y 64 hex>-<checksum of the text before the last '-'>.
        let shares = try repository.splitMasterSecret(shares: 12, threshold: 11).map(\.description)
        var parsed: [(x: UInt8, y: [UInt8])] = []
        for share in shares {
            let match = try #require(share.wholeMatch(of: /lbshare1-([0-9a-f]{8})-([0-9]+)-([0-9a-f]{2})-([0-9a-f]{64})-([0-9a-f]{8})/), "\(share)")
            #expect(match.1 == keys.id.prefix(8))
            #expect(match.2 == "11", "the threshold in decimal, not hex (0b)")
            let body = String(share[..<share.lastIndex(of: "-")!])
            #expect(String(match.5) == Spec.hex(Array(SHA256.hash(data: Array(body.utf8))).prefix(4)))
            let x = try #require(UInt8(String(match.3), radix: 16))
            #expect(x != 0)
            let y = stride(from: 0, to: 64, by: 2).map { UInt8(String(match.4.dropFirst($0).prefix(2)), radix: 16)! }
            parsed.append((x, y))
        }
        // Lagrange at 0 over any 11: basis_j = Π x_m / (x_m ⊕ x_j).
        for subset in [Array(parsed.prefix(11)), Array(parsed.suffix(11))] {
            var secret = [UInt8](repeating: 0, count: 32)
            for (j, share) in subset.enumerated() {
                var basis: UInt8 = 1
                for (m, other) in subset.enumerated() where m != j {
                    basis = Spec.multiply(basis, Spec.multiply(other.x, Spec.inverse(other.x ^ share.x)))
                }
                for index in 0..<32 { secret[index] ^= Spec.multiply(share.y[index], basis) }
            }
            #expect(secret == keys.master)
        }
    }

    /// §7's rules for zstd, from the reader's side: objects built by the spec (not by Lifeboat's
    /// writer) with one frame open; several frames, a frame without its content size, or one
    /// declaring more than the maximum are refused as damaged.
    @Test func lifeboatReadsOneZstdFrameWithItsContentSizeAndNothingElse() throws {
        let key = SymmetricKey(size: .bits256)
        let plaintext = Array(String(repeating: "one zstd frame, content size in its header. ", count: 200).utf8)
        func seal(_ payload: [UInt8], compression: UInt8) throws -> Data {
            let header: [UInt8] = [0x01, compression]
            let box = try AES.GCM.seal(payload, using: key, nonce: AES.GCM.Nonce(),
                                       authenticating: Spec.associatedData(binding: "chunk spec", header: header))
            return Data(header + Array(box.nonce) + Array(box.ciphertext) + Array(box.tag))
        }
        func compress(contentSize: Bool) -> [UInt8] {
            let context = ZSTD_createCCtx()
            defer { ZSTD_freeCCtx(context) }
            _ = ZSTD_CCtx_setParameter(context, ZSTD_c_contentSizeFlag, contentSize ? 1 : 0)
            var output = [UInt8](repeating: 0, count: ZSTD_compressBound(plaintext.count))
            let written = output.withUnsafeMutableBytes { ZSTD_compress2(context, $0.baseAddress, $0.count, plaintext, plaintext.count) }
            return Array(output.prefix(written))
        }
        let one = compress(contentSize: true)
        #expect(try Spec.zstdFrame(one).contentSize == UInt64(plaintext.count))
        #expect(try SealedObject.open(seal(one, compression: 1), binding: "chunk spec", key: key, maximumSize: 1 << 20) == Data(plaintext))
        #expect(try SealedObject.open(seal(plaintext, compression: 0), binding: "chunk spec", key: key, maximumSize: 1 << 20) == Data(plaintext))

        let unsized = compress(contentSize: false)
        #expect(try Spec.zstdFrame(unsized).contentSize == nil && Spec.zstdFrame(unsized).length == unsized.count)
        #expect(throws: SealedObject.OpenFailure.self) { try SealedObject.open(seal(unsized, compression: 1), binding: "chunk spec", key: key, maximumSize: 1 << 20) }
        #expect(throws: SealedObject.OpenFailure.self) { try SealedObject.open(seal(one + one, compression: 1), binding: "chunk spec", key: key, maximumSize: 1 << 20) }
        #expect(throws: SealedObject.OpenFailure.self) { try SealedObject.open(seal(one, compression: 1), binding: "chunk spec", key: key, maximumSize: plaintext.count - 1) }
        // Lifeboat's own writer makes exactly the frame the spec describes.
        let written = Array(try SealedObject.seal(plaintext, binding: "chunk spec", key: key, compressionLevel: 3))
        let (opened, compression) = try Spec.open(written, binding: "chunk spec", key: key, maximum: plaintext.count)
        #expect(compression == 0x01 && opened == plaintext)
    }
}
