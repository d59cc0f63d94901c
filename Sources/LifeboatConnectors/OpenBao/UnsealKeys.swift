import Crypto
import Foundation
import LifeboatRepository

/// Unseal key material an operator holds for a Shamir-sealed OpenBao: shares (33 bytes each when
/// the key was split into n > 1 shares) or the combined 32-byte key. Never printed, never stored:
/// Lifeboat keeps only its fingerprint.
public struct UnsealKeyMaterial: Sendable {
    /// Shares as OpenBao issues them (`y ‖ x`).
    public private(set) var shares: [Shamir.Share]
    /// A combined key (or the single key of a 1-of-1 initialisation).
    public private(set) var combinedKey: [UInt8]?

    /// The length of OpenBao's unseal key (an AES-256 key).
    public static let keyLength = 32

    public init(shares: [Shamir.Share] = [], combinedKey: [UInt8]? = nil) {
        self.shares = shares
        self.combinedKey = combinedKey
    }

    /// Parses a key file: the JSON of `bao operator init -format=json` (or of `PUT sys/init`), or
    /// one key per line in hex or base64 (blank lines and `#` comments ignored).
    public static func parse(_ text: String, source: String) throws(OpenBaoError) -> UnsealKeyMaterial {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.hasPrefix("{") {
            guard let json = (try? JSONSerialization.jsonObject(with: Data(trimmed.utf8))) as? [String: Any] else {
                throw OpenBaoError(.invalidKeyMaterial, object: source, "looks like JSON but does not parse")
            }
            // `bao operator init -format=json` writes unseal_keys_hex/_b64; the API writes keys/keys_base64.
            for field in ["unseal_keys_hex", "keys", "unseal_keys_b64", "keys_base64"] {
                if let keys = json[field] as? [String], !keys.isEmpty { return try parse(keys: keys, source: source) }
            }
            throw OpenBaoError(.invalidKeyMaterial, object: source, "the JSON holds no unseal keys (expected unseal_keys_hex, unseal_keys_b64, keys or keys_base64)")
        }
        let lines = trimmed.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
        guard !lines.isEmpty else { throw OpenBaoError(.invalidKeyMaterial, object: source, "holds no keys") }
        return try parse(keys: lines, source: source)
    }

    /// Parses keys given one by one (hex or base64), e.g. `--share` arguments.
    public static func parse(keys: [String], source: String) throws(OpenBaoError) -> UnsealKeyMaterial {
        var material = UnsealKeyMaterial()
        for (index, text) in keys.enumerated() {
            guard let bytes = decode(text) else {
                throw OpenBaoError(.invalidKeyMaterial, object: source, "key \(index + 1) is neither hex nor base64")
            }
            switch bytes.count {
            case keyLength:
                guard material.combinedKey == nil || material.combinedKey == bytes else {
                    throw OpenBaoError(.invalidKeyMaterial, object: source, "holds two different 32-byte keys; give one key generation at a time")
                }
                material.combinedKey = bytes
            case keyLength + 1:
                let share = Shamir.Share(x: bytes[keyLength], y: Array(bytes[0..<keyLength]))
                guard share.x != 0 else { throw OpenBaoError(.invalidKeyMaterial, object: source, "key \(index + 1) is not a valid share (x = 0)") }
                if !material.shares.contains(share) { material.shares.append(share) }
            default:
                throw OpenBaoError(.invalidKeyMaterial, object: source,
                                   "key \(index + 1) is \(bytes.count) bytes; an OpenBao unseal share is 33 bytes and a combined key 32")
            }
        }
        guard material.combinedKey == nil || material.shares.isEmpty else {
            throw OpenBaoError(.invalidKeyMaterial, object: source, "mixes shares and a combined key; give one or the other")
        }
        return material
    }

    /// Hex is tried first: a 64-digit hex key is also valid base64, but never meant as such.
    static func decode(_ text: String) -> [UInt8]? {
        if let hex = Data(hexString: text) { return Array(hex) }
        if let base64 = Data(base64Encoded: text) { return Array(base64) }
        return nil
    }

    /// The combined 32-byte key. With `threshold` (from the snapshot's custody record) fewer shares
    /// are refused, and surplus shares must all agree — a mistyped share is caught here, not by the server.
    public func combined(threshold: Int? = nil, source: String) throws(OpenBaoError) -> [UInt8] {
        if let combinedKey { return combinedKey }
        guard shares.count >= 2 else {
            throw OpenBaoError(.invalidKeyMaterial, object: source,
                               shares.isEmpty ? "holds no keys" : "holds 1 share; at least \(max(threshold ?? 2, 2)) are needed")
        }
        if let threshold, shares.count < threshold {
            throw OpenBaoError(.invalidKeyMaterial, object: source, "holds \(shares.count) shares; the snapshot's key generation needs \(threshold)")
        }
        do {
            let key = try Shamir.combine(shares)
            if let threshold, threshold >= 2, shares.count > threshold {
                // Every threshold-sized subset of consistent shares recombines to the same key.
                for subset in Self.subsets(of: shares.count, size: threshold).prefix(64) {
                    guard try Shamir.combine(subset.map { shares[$0] }) == key else {
                        throw OpenBaoError(.invalidKeyMaterial, object: source,
                                           "the shares do not agree with each other: one is mistyped or from another key generation")
                    }
                }
            }
            return key
        } catch let error as OpenBaoError {
            throw error
        } catch {
            throw OpenBaoError(.invalidKeyMaterial, object: source, "the shares cannot be combined: \(error)")
        }
    }

    static func subsets(of count: Int, size: Int) -> [[Int]] {
        guard size <= count, size > 0 else { return [] }
        var result: [[Int]] = []
        var current: [Int] = []
        func walk(_ start: Int) {
            if current.count == size { result.append(current); return }
            guard start < count, result.count < 64 else { return }
            for index in start..<count {
                current.append(index)
                walk(index + 1)
                current.removeLast()
            }
        }
        walk(0)
        return result
    }

    /// Identifies a key generation without revealing it: HMAC-SHA-256 keyed by the combined key over
    /// a fixed label, first 16 bytes in hex. Equal fingerprints ⇔ the same unseal key.
    public static func fingerprint(ofCombinedKey key: [UInt8]) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Data(fingerprintLabel.utf8), using: SymmetricKey(data: key))
        return Data(mac).prefix(16).hexString
    }

    static let fingerprintLabel = "lifeboat/v1 openbao unseal-key fingerprint"

    /// Keys to send to `sys/unseal` for a node reporting threshold `t` of `n`: the combined key
    /// itself when t is 1 (a 1-of-1 node, or one still reporting a stale 1/1 seal config after a
    /// restore), else `t` shares — the operator's own when they have enough, otherwise fresh shares
    /// split from the combined key (any split of the same key unseals).
    public func unsealKeys(threshold t: Int, shares n: Int, source: String) throws(OpenBaoError) -> [String] {
        let key = try combined(threshold: nil, source: source)
        if t <= 1 { return [Data(key).hexString] }
        if shares.count >= t, combinedKey == nil { return shares.prefix(t).map { Data($0.bytes).hexString } }
        do {
            return try Shamir.split(key, shares: max(n, t), threshold: t).prefix(t).map { Data($0.bytes).hexString }
        } catch {
            throw OpenBaoError(.invalidKeyMaterial, object: source, "cannot split the key for a \(t)-of-\(n) node: \(error)")
        }
    }
}
