import Foundation

/// The Transit key that seals a transit-sealed OpenBao (the `seal "transit"` stanza, minus its token).
public struct TransitSealKey: Sendable, Hashable, Codable {
    /// The Transit provider, `http://kms.internal:8200`.
    public var address: String
    /// The Transit mount, `transit` (OpenBao writes it `transit/`).
    public var mount: String
    public var keyName: String

    public init(address: String, mount: String = "transit", keyName: String) {
        var trimmed = address
        while trimmed.hasSuffix("/") { trimmed.removeLast() }
        self.address = trimmed
        self.mount = mount.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        self.keyName = keyName
    }

    public var description: String { "\(address)/v1/\(mount)/keys/\(keyName)" }

    /// The key an OpenBao server configuration (HCL) seals with: its `seal "transit"` stanza's
    /// `address`, `mount_path` and `key_name`; nil when the file has no Transit seal (Shamir).
    /// `source` names the file in errors. The stanza's `token` is never read. The environment
    /// overrides OpenBao also honours (`BAO_TRANSIT_SEAL_KEY_NAME`, …) are not visible here.
    public static func sealStanza(in configuration: String, source: String) throws(OpenBaoError) -> TransitSealKey? {
        guard let start = configuration.range(of: #"seal\s+"transit"\s*\{"#, options: .regularExpression) else { return nil }
        guard let end = configuration[start.upperBound...].firstIndex(of: "}") else {
            throw OpenBaoError(.missingSetting, object: source, "its seal \"transit\" stanza is not closed")
        }
        var fields: [String: String] = [:]
        for line in configuration[start.upperBound..<end].split(whereSeparator: \.isNewline) {
            let parts = line.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, parts[1].hasPrefix("\""), parts[1].dropFirst().contains("\"") else { continue }
            fields[parts[0]] = String(parts[1].dropFirst().prefix { $0 != "\"" })
        }
        guard let address = fields["address"], let keyName = fields["key_name"] else {
            throw OpenBaoError(.missingSetting, object: source, "its seal \"transit\" stanza does not name both address and key_name")
        }
        return TransitSealKey(address: address, mount: fields["mount_path"] ?? "transit", keyName: keyName)
    }
}

/// Who can unseal a snapshot: the seal type and the key generation it was taken under. Recorded in
/// the manifest (fingerprints only, never key material) because the snapshot's keys travel with it:
/// restoring it anywhere needs the SOURCE's unseal keys (Shamir) or the same Transit key.
public struct SealCustody: Sendable, Hashable, Codable {
    public enum SealType: String, Sendable, Hashable, Codable { case shamir, transit }

    public var sealType: SealType
    /// Threshold and shares: the unseal split under Shamir, the recovery split under Transit.
    public var threshold: Int
    public var shares: Int
    /// Shamir: the fingerprint of the combined unseal key; nil when no key material was available at backup.
    public var fingerprint: String?
    /// Transit: the key that sealed the source, when the catalog names it.
    public var transit: TransitSealKey?
    /// Transit: the key version that sealed the snapshot's checksums (`vault:v2:…` → 2).
    public var transitKeyVersion: Int?

    public init(sealType: SealType, threshold: Int, shares: Int, fingerprint: String? = nil,
                transit: TransitSealKey? = nil, transitKeyVersion: Int? = nil) {
        self.sealType = sealType
        self.threshold = threshold
        self.shares = shares
        self.fingerprint = fingerprint
        self.transit = transit
        self.transitKeyVersion = transitKeyVersion
    }

    /// Whether the record lets a restore prove the operator's keys are the right ones before touching a target.
    public var verifiable: Bool {
        switch sealType {
        case .shamir: fingerprint != nil
        case .transit: transit != nil
        }
    }

    /// `shamir 3/5, key generation 9f2c…` or `transit http://kms:8200/v1/transit/keys/unseal (v1)`.
    public var summary: String {
        switch sealType {
        case .shamir:
            "shamir \(threshold)/\(shares), " + (fingerprint.map { "unseal-key fingerprint \($0)" } ?? "custody unverified (no unseal keys were given at backup)")
        case .transit:
            "transit " + (transit.map(\.description) ?? "key not recorded") + (transitKeyVersion.map { " (v\($0))" } ?? "")
                + ", recovery \(threshold)/\(shares)"
        }
    }

    // MARK: manifest source facts

    /// The manifest `source` entries for this record.
    public var sourceFacts: [String: String] {
        var facts = ["seal_type": sealType.rawValue, "seal_threshold": String(threshold), "seal_shares": String(shares)]
        switch sealType {
        case .shamir:
            facts["custody"] = fingerprint == nil ? "unverified" : "fingerprint"
            if let fingerprint { facts["custody_fingerprint"] = fingerprint }
        case .transit:
            facts["custody"] = transit == nil ? "unverified" : "transit"
            if let transit {
                facts["transit_address"] = transit.address
                facts["transit_mount"] = transit.mount
                facts["transit_key"] = transit.keyName
            }
            if let transitKeyVersion { facts["transit_key_version"] = String(transitKeyVersion) }
        }
        return facts
    }

    /// Reads the record back from a manifest's `source`; nil when it is not an OpenBao snapshot's.
    public init?(sourceFacts facts: [String: String]) {
        guard let type = facts["seal_type"].flatMap(SealType.init(rawValue:)),
              let threshold = facts["seal_threshold"].flatMap(Int.init), let shares = facts["seal_shares"].flatMap(Int.init) else { return nil }
        var transit: TransitSealKey?
        if let address = facts["transit_address"], let key = facts["transit_key"] {
            transit = TransitSealKey(address: address, mount: facts["transit_mount"] ?? "transit", keyName: key)
        }
        self.init(sealType: type, threshold: threshold, shares: shares, fingerprint: facts["custody_fingerprint"],
                  transit: transit, transitKeyVersion: facts["transit_key_version"].flatMap(Int.init))
    }
}
