import Crypto
import Foundation
import LifeboatTesting
import Testing
@testable import LifeboatRepository

@Suite struct ShamirTests {
    @Test func fieldArithmetic() {
        #expect(GF256.multiply(0x57, 0x83) == 0xC1) // FIPS-197's worked example
        #expect(GF256.multiply(0, 0x83) == 0)
        for a in 1...255 {
            #expect(GF256.multiply(UInt8(a), GF256.divide(1, UInt8(a))) == 1, "inverse of \(a)")
        }
    }

    @Test func everyThresholdSubsetRecombinesTheSecret() throws {
        var generator = SeededGenerator(seed: 77)
        for _ in 0..<60 {
            let secret = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let count = Int.random(in: 2...7, using: &generator)
            let threshold = Int.random(in: 2...count, using: &generator)
            let shares = try Shamir.split(secret, shares: count, threshold: threshold)
            #expect(shares.count == count)
            #expect(Set(shares.map(\.x)).count == count)
            #expect(!shares.contains { $0.x == 0 })
            #expect(shares.allSatisfy { $0.bytes.count == 33 }, "Vault layout: 32 bytes of y, then x")
            for subset in combinations(of: shares, size: threshold) {
                #expect(try Shamir.combine(subset) == secret)
            }
            if threshold > 2 {
                // Too few shares give a wrong value without any error — which is why the repository checks it.
                #expect(try Shamir.combine(Array(shares.prefix(threshold - 1))) != secret)
            }
        }
    }

    @Test func refusesBadInput() throws {
        #expect(throws: Shamir.Failure.self) { try Shamir.split([1], shares: 3, threshold: 1) }
        #expect(throws: Shamir.Failure.self) { try Shamir.split([1], shares: 2, threshold: 3) }
        #expect(throws: Shamir.Failure.self) { try Shamir.split([1], shares: 256, threshold: 3) }
        let shares = try Shamir.split([1, 2, 3], shares: 3, threshold: 2)
        #expect(throws: Shamir.Failure.self) { try Shamir.combine([shares[0], shares[0]]) }
        var short = shares[1]
        short.y.removeLast()
        #expect(throws: Shamir.Failure.self) { try Shamir.combine([shares[0], short]) }
    }

    @Test func printableSharesRoundTripAndCatchTypos() throws {
        let share = Shamir.Share(x: 0xEE, y: Array(repeating: 0xAB, count: 32))
        let printable = PrintableShare(repositoryID: "0123456789abcdef", threshold: 3, share: share)
        let text = printable.description
        #expect(text.hasPrefix("lbshare1-01234567-3-ee-abab"))
        #expect(try PrintableShare(parsing: text) == printable)
        #expect(try PrintableShare(parsing: "  \(text)\n") == printable)
        // One character changed in y: the checksum catches it.
        var typo = Array(text)
        typo[30] = typo[30] == "a" ? "b" : "a"
        #expect(throws: RepositoryError.self) { try PrintableShare(parsing: String(typo)) }
        #expect(throws: RepositoryError.self) { try PrintableShare(parsing: "hello") }
    }

    func combinations<T>(of items: [T], size: Int) -> [[T]] {
        guard size > 0 else { return [[]] }
        guard items.count >= size else { return [] }
        let head = items[0], tail = Array(items.dropFirst())
        return combinations(of: tail, size: size - 1).map { [head] + $0 } + combinations(of: tail, size: size)
    }
}

@Suite struct SealedObjectTests {
    let key = SymmetricKey(size: .bits256)

    @Test func sealsAndOpensWithAndWithoutCompression() throws {
        let compressible = Data(repeating: 0x41, count: 100_000)
        let sealed = try SealedObject.seal(compressible, binding: "chunk a", key: key, compressionLevel: 3)
        #expect(sealed[1] == SealedObject.Compression.zstd.rawValue)
        #expect(sealed.count < 1_000)
        #expect(try SealedObject.open(sealed, binding: "chunk a", key: key, maximumSize: 1 << 20) == compressible)

        let random = Data(randomBytes(10_000, seed: 1))
        let stored = try SealedObject.seal(random, binding: "chunk b", key: key, compressionLevel: 3)
        #expect(stored[1] == SealedObject.Compression.none.rawValue, "incompressible data is stored as is")
        #expect(stored.count == random.count + SealedObject.overhead)
        #expect(try SealedObject.open(stored, binding: "chunk b", key: key, maximumSize: 1 << 20) == random)

        let empty = try SealedObject.seal(Data(), binding: "chunk c", key: key, compressionLevel: 3)
        #expect(try SealedObject.open(empty, binding: "chunk c", key: key, maximumSize: 0) == Data())
    }

    @Test func anyAlterationIsRefused() throws {
        let sealed = try SealedObject.seal(Data("the secret path is secret/data/x".utf8), binding: "chunk a", key: key, compressionLevel: nil)
        for index in stride(from: 0, to: sealed.count, by: 3) {
            var altered = sealed
            altered[index] ^= 0x01
            #expect(throws: SealedObject.OpenFailure.self) { try SealedObject.open(altered, binding: "chunk a", key: key, maximumSize: 1 << 20) }
        }
        #expect(throws: SealedObject.OpenFailure.self) { try SealedObject.open(sealed.prefix(sealed.count - 1), binding: "chunk a", key: key, maximumSize: 1 << 20) }
        #expect(throws: SealedObject.OpenFailure.self) { try SealedObject.open(sealed.prefix(10), binding: "chunk a", key: key, maximumSize: 1 << 20) }
        // Bound to its name: the same bytes under another id do not open.
        #expect(throws: SealedObject.OpenFailure.self) { try SealedObject.open(sealed, binding: "chunk b", key: key, maximumSize: 1 << 20) }
        #expect(throws: SealedObject.OpenFailure.self) { try SealedObject.open(sealed, binding: "chunk a", key: SymmetricKey(size: .bits256), maximumSize: 1 << 20) }
    }

    @Test func aForgedSizeCannotExhaustMemory() throws {
        let sealed = try SealedObject.seal(Data(repeating: 0, count: 2 << 20), binding: "chunk a", key: key, compressionLevel: 3)
        #expect(throws: SealedObject.OpenFailure.self) { try SealedObject.open(sealed, binding: "chunk a", key: key, maximumSize: 1 << 20) }
    }
}
