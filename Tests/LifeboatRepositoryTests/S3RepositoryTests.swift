import Foundation
import LifeboatStorage
import LifeboatTesting
import Testing
@testable import LifeboatRepository

/// Runs `body` with the configuration of a fresh bucket on the shared moto_server (SigV4 checking on).
func withMotoBucket(_ purpose: String, _ body: (S3Configuration) async throws -> Void) async throws {
    try await MotoServer.withShared { moto in
        let bucket = MotoServer.uniqueBucketName(purpose)
        try await moto.createBucket(bucket)
        var configuration = moto.configuration(bucket: bucket, prefix: "lifeboat")
        configuration.compatibility = S3Compatibility(listWithoutSlashInQuery: true, retentionAfterMultipartComplete: true)
        try await body(configuration)
    }
}

/// Runs `body` with the configuration of a fresh bucket on the shared server of `kind` (SigV4 checking on).
func withS3Bucket(_ kind: S3TestServerKind, _ purpose: String, objectLock: Bool = false, _ body: (S3Configuration) async throws -> Void) async throws {
    try await kind.withShared { server in
        try await body(try await server.freshBucket(purpose, objectLock: objectLock, prefix: "lifeboat"))
    }
}

/// The same round trips as on memory and local disk, on an S3 repository: on moto_server and on
/// Ceph RGW, both with SigV4 checking on.
@Suite struct S3RepositoryTests {
    @Test(arguments: S3TestServerKind.allCases)
    func roundTripsOnS3(kind: S3TestServerKind) async throws {
        try await withS3Bucket(kind, "repo") { configuration in
            let backend = try S3Backend(configuration: configuration)
            let repository = try await makeRepository(backend)
            for size in [0, 1, testChunker.minimumSize, testChunker.minimumSize + 1, testChunker.maximumSize, 12_000_000] {
                let data = randomBytes(size, seed: UInt64(size) &+ 99)
                let manifest = try await repository.put(SnapshotDescription(store: "s\(size)"), read: reader(data))
                #expect(try await roundTrip(repository, manifest) == data, "\(size) bytes")
            }
            let reopened = try await Repository.open(backend: try S3Backend(configuration: configuration), passphrase: "correct horse")
            let report = try await reopened.verify(readData: true)
            #expect(report.isHealthy)
            #expect(report.snapshots == 6)
            #expect(try await backend.list(prefix: "locks/").isEmpty, "every put released its lock")
        }
    }
}
