import Crypto
import Foundation
import LifeboatErrors

/// Shamir's secret sharing over GF(2^8) with the AES polynomial 0x11B, byte by byte — the
/// construction of hashicorp/vault `shamir/shamir.go` (and OpenBao). A share is `y₀…y_{L−1} ‖ x`.
public enum Shamir {
    public struct Share: Sendable, Hashable {
        /// The evaluation point, never 0.
        public var x: UInt8
        public var y: [UInt8]

        public init(x: UInt8, y: [UInt8]) {
            self.x = x
            self.y = y
        }

        /// Vault's byte layout: the y values followed by x.
        public var bytes: [UInt8] { y + [x] }
    }

    public enum Failure: Error, Equatable, CustomStringConvertible {
        case badParameters(String)
        case mismatchedShares(String)

        public var description: String {
            switch self {
            case .badParameters(let text), .mismatchedShares(let text): text
            }
        }
    }

    /// Splits `secret` into `count` shares, any `threshold` of which recombine it.
    public static func split(_ secret: [UInt8], shares count: Int, threshold: Int) throws(Failure) -> [Share] {
        guard 2 <= threshold, threshold <= count, count <= 255 else {
            throw .badParameters("need 2 ≤ threshold ≤ shares ≤ 255 (got \(threshold) of \(count))")
        }
        guard !secret.isEmpty else { throw .badParameters("the secret is empty") }
        var generator = SystemRandomNumberGenerator()
        let xs = Array((1...255).map(UInt8.init).shuffled(using: &generator).prefix(count))
        var shares = xs.map { Share(x: $0, y: []) }
        for byte in secret {
            // A random polynomial of degree threshold−1 whose constant term is the byte.
            let coefficients = [byte] + (1..<threshold).map { _ in UInt8.random(in: 0...255, using: &generator) }
            for index in shares.indices {
                shares[index].y.append(evaluate(coefficients, at: shares[index].x))
            }
        }
        return shares
    }

    /// Recombines shares (Lagrange interpolation at 0). Fewer than the threshold give a wrong
    /// value without any error — callers must check the result against a known check value.
    public static func combine(_ shares: [Share]) throws(Failure) -> [UInt8] {
        guard shares.count >= 2 else { throw .mismatchedShares("at least 2 shares are needed") }
        guard Set(shares.map(\.x)).count == shares.count else { throw .mismatchedShares("two shares have the same x: one share was given twice") }
        let length = shares[0].y.count
        guard shares.allSatisfy({ $0.y.count == length }) else { throw .mismatchedShares("the shares have different lengths: they come from different splits") }
        var secret = [UInt8](repeating: 0, count: length)
        for (j, share) in shares.enumerated() {
            // Basis polynomial at 0: Π_{m≠j} x_m / (x_j ⊕ x_m)
            var basis: UInt8 = 1
            for (m, other) in shares.enumerated() where m != j {
                basis = GF256.multiply(basis, GF256.divide(other.x, share.x ^ other.x))
            }
            for index in 0..<length {
                secret[index] ^= GF256.multiply(share.y[index], basis)
            }
        }
        return secret
    }

    static func evaluate(_ coefficients: [UInt8], at x: UInt8) -> UInt8 {
        coefficients.reversed().reduce(UInt8(0)) { GF256.multiply($0, x) ^ $1 }
    }
}

/// Arithmetic in GF(2^8) modulo x^8 + x^4 + x^3 + x + 1 (0x11B), by log/exp tables with generator 3.
enum GF256 {
    static let (exp, log): ([UInt8], [UInt8]) = {
        var exp = [UInt8](repeating: 0, count: 510)
        var log = [UInt8](repeating: 0, count: 256)
        var value: UInt8 = 1
        for power in 0..<255 {
            exp[power] = value
            exp[power + 255] = value
            log[Int(value)] = UInt8(power)
            // value × 3 = value × 2 ⊕ value, reducing by 0x1B when the top bit falls out
            let doubled = (value << 1) ^ ((value & 0x80) != 0 ? 0x1B : 0)
            value = doubled ^ value
        }
        return (exp, log)
    }()

    static func multiply(_ a: UInt8, _ b: UInt8) -> UInt8 {
        guard a != 0, b != 0 else { return 0 }
        return exp[Int(log[Int(a)]) + Int(log[Int(b)])]
    }

    static func divide(_ a: UInt8, _ b: UInt8) -> UInt8 {
        precondition(b != 0, "division by zero in GF(256)")
        guard a != 0 else { return 0 }
        return exp[Int(log[Int(a)]) + 255 - Int(log[Int(b)])]
    }
}

/// The printable form of a repository key share:
///
///     lbshare1-<repository id, first 8>-<threshold>-<x, 2 hex>-<y, hex>-<checksum, 8 hex>
///
/// The checksum (SHA-256 of everything before it) catches a typo in one share; the threshold lets
/// `key combine` say how many shares are missing; the repository id catches a share of another repository.
public struct PrintableShare: Sendable, Hashable, CustomStringConvertible {
    public var repositoryPrefix: String
    public var threshold: Int
    public var share: Shamir.Share

    public init(repositoryID: String, threshold: Int, share: Shamir.Share) {
        repositoryPrefix = String(repositoryID.prefix(8))
        self.threshold = threshold
        self.share = share
    }

    public var description: String {
        let body = "lbshare1-\(repositoryPrefix)-\(threshold)-\(Data([share.x]).hexString)-\(Data(share.y).hexString)"
        return "\(body)-\(Self.checksum(body))"
    }

    static func checksum(_ body: String) -> String {
        Data(SHA256.hash(data: Data(body.utf8))).prefix(4).hexString
    }

    public init(parsing text: String) throws(RepositoryError) {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        let parts = trimmed.split(separator: "-").map(String.init)
        guard parts.count == 6, parts[0] == "lbshare1" else {
            throw RepositoryError(.invalidShares, "'\(trimmed.prefix(12))…' is not a Lifeboat key share (they start with lbshare1-)")
        }
        let body = parts[0..<5].joined(separator: "-")
        guard Self.checksum(body) == parts[5].lowercased() else {
            throw RepositoryError(.invalidShares, "share with x=\(parts[3]) fails its checksum: it was copied wrongly")
        }
        guard let threshold = Int(parts[2]), let x = Data(hexString: parts[3]), x.count == 1, x[0] != 0,
              let y = Data(hexString: parts[4]), !y.isEmpty else {
            throw RepositoryError(.invalidShares, "share with x=\(parts[3]) is malformed")
        }
        repositoryPrefix = parts[1]
        self.threshold = threshold
        share = Shamir.Share(x: x[0], y: Array(y))
    }
}

extension Shamir.Failure: LifeboatError {
    public var errorCode: String { "repository.invalid_shares" }
    public var errorObject: String? { nil }
    public var errorMessage: String { description }
    public var exitStatus: ExitStatus { .wrongKey }
}
