import Crypto
import Foundation

/// The keys of one repository, all derived from its 32-byte master secret with HKDF-SHA-256
/// (salt: the repository id; info: a label per purpose), so one secret is all a person keeps.
public struct RepositoryKeys: Sendable {
    /// The 32 random bytes everything else derives from. Stored only wrapped (keys/), or as Shamir shares.
    public let masterSecret: SymmetricKey
    /// AES-256-GCM key sealing every chunk, manifest and lock.
    let dataKey: SymmetricKey
    /// HMAC-SHA-256 key naming chunks: ids reveal nothing about plaintext to someone without the key.
    let chunkIDKey: SymmetricKey
    /// Seeds the chunker's gear table.
    let chunkerSeed: SymmetricKey

    public init(masterSecret: SymmetricKey, repositoryID: String) {
        self.masterSecret = masterSecret
        let salt = Data(repositoryID.utf8)
        func derive(_ label: String) -> SymmetricKey {
            HKDF<SHA256>.deriveKey(inputKeyMaterial: masterSecret, salt: salt, info: Data("lifeboat/v1/\(label)".utf8), outputByteCount: 32)
        }
        dataKey = derive("data")
        chunkIDKey = derive("chunk-id")
        chunkerSeed = derive("chunker")
    }

    /// A fresh random master secret.
    public static func generateMasterSecret() -> SymmetricKey { SymmetricKey(size: .bits256) }

    /// Published in the config so a recombined or unwrapped secret can be checked before use.
    /// HMAC under a 256-bit key: reveals nothing about the key.
    public static func keyCheck(for masterSecret: SymmetricKey) -> String {
        Data(HMAC<SHA256>.authenticationCode(for: Data("lifeboat/v1/key-check".utf8), using: masterSecret)).prefix(16).hexString
    }

    /// The chunk's id: hex HMAC-SHA-256 of its plaintext.
    public func chunkID(for plaintext: some DataProtocol) -> String {
        Data(HMAC<SHA256>.authenticationCode(for: plaintext, using: chunkIDKey)).hexString
    }

    /// 256 pseudo-random 64-bit values for the chunker: SHA-256 in counter mode under the seed.
    public var gearTable: [UInt64] {
        (0..<64).flatMap { block -> [UInt64] in
            let code = Data(HMAC<SHA256>.authenticationCode(for: Data([UInt8(block)]), using: chunkerSeed))
            return (0..<4).map { index in code[(index * 8)..<(index * 8 + 8)].reduce(0) { $0 << 8 | UInt64($1) } }
        }
    }
}

extension Data {
    /// Lower-case hex, two digits a byte (ids, digests, fingerprints).
    public var hexString: String {
        let digits = Array("0123456789abcdef".utf8)
        var text = [UInt8]()
        text.reserveCapacity(count * 2)
        for byte in self {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// Parses hex in either case; nil for anything else, an odd length included.
    public init?(hexString: String) {
        guard hexString.utf8.count % 2 == 0 else { return nil }
        var bytes = [UInt8]()
        bytes.reserveCapacity(hexString.utf8.count / 2)
        var high: UInt8?
        for character in hexString.utf8 {
            let value: UInt8
            switch character {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = character - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): value = character - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): value = character - UInt8(ascii: "A") + 10
            default: return nil
            }
            if let pending = high {
                bytes.append(pending << 4 | value)
                high = nil
            } else {
                high = value
            }
        }
        self.init(bytes)
    }
}
