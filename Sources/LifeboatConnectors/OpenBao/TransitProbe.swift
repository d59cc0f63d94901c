import Foundation

/// Proves a Transit key is usable before a transit-sealed restore touches anything: the key
/// encrypts and decrypts a probe, and (given the snapshot's sealed checksums) decrypts those too —
/// which only the key that sealed the snapshot can do.
public enum TransitProbe {
    public static func check(_ key: TransitSealKey, token: String, sealedSums: (ciphertext: String, plaintext: Data)? = nil) async throws(OpenBaoError) {
        let client = OpenBaoClient(address: key.address)
        let probe = Data((0..<32).map { _ in UInt8.random(in: 0...255) })
        let encrypted = try await call(client, key, "encrypt", ["plaintext": probe.base64EncodedString()], token: token)
        guard let ciphertext = encrypted["ciphertext"] as? String else {
            throw OpenBaoError(.transitUnavailable, object: key.description, "encrypt answered without a ciphertext")
        }
        let decrypted = try await call(client, key, "decrypt", ["ciphertext": ciphertext], token: token)
        guard (decrypted["plaintext"] as? String).flatMap({ Data(base64Encoded: $0) }) == probe else {
            throw OpenBaoError(.transitUnavailable, object: key.description, "decrypt did not return what encrypt was given")
        }
        guard let sealedSums else { return }
        let opened: [String: Any]
        do {
            opened = try await call(client, key, "decrypt", ["ciphertext": sealedSums.ciphertext], token: token)
        } catch {
            throw OpenBaoError(.transitUnavailable, object: key.description,
                               "cannot decrypt the snapshot's sealed checksums: this is not the Transit key (or key version) the source was sealed with (\(error.message))")
        }
        // OpenBao writes the two lines in map order, so the sealed copy may list them the other way round.
        guard let plaintext = (opened["plaintext"] as? String).flatMap({ Data(base64Encoded: $0) }),
              lines(plaintext) == lines(sealedSums.plaintext) else {
            throw OpenBaoError(.transitUnavailable, object: key.description, "the snapshot's sealed checksums decrypt to something else: another key sealed it")
        }
    }

    static func lines(_ data: Data) -> Set<Substring> {
        Set(String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline))
    }

    static func call(_ client: OpenBaoClient, _ key: TransitSealKey, _ operation: String, _ body: [String: Any], token: String) async throws(OpenBaoError) -> [String: Any] {
        let reply: OpenBaoClient.Reply
        do {
            reply = try await client.send(.PUT, "\(key.mount)/\(operation)/\(key.keyName)", token: token, json: body, timeout: .seconds(15))
        } catch {
            throw OpenBaoError(.transitUnavailable, object: key.description, "the Transit provider is unreachable: \(error.message)")
        }
        guard reply.ok, let data = reply.json?["data"] as? [String: Any] else {
            throw OpenBaoError(.transitUnavailable, object: key.description, "\(operation) failed (\(reply.errors))")
        }
        return data
    }
}
