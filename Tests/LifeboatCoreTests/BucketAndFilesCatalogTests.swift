import Foundation
import Testing
@testable import LifeboatCore

/// The connection fields of `s3` and `files` stores: what is accepted, and each refusal by line and field.
@Suite struct BucketAndFilesCatalogTests {
    typealias Loader = CatalogLoaderTests

    static func catalog(s3 connection: String = """
              endpoint: http://127.0.0.1:9000
              buckets: [platform-artifacts, platform-uploads]
              prefixes: [manifests/]
              path_style: true
              access_key_id: env:KEY
              secret_access_key: file:/run/secret
        """, files paths: String = "[/var/lib/nats/backups, /etc/platform]") -> String {
        """
        version: 1
        stores:
          - name: objects
            kind: s3
            method: bucket copy
            cadence: 6h
            priority: P1
            verify:
              - object: manifests/latest.json
                bucket: platform-artifacts
            connection:
        \(connection)
          - name: tree
            kind: files
            method: copy
            cadence: 1h
            priority: P2
            connection:
              paths: \(paths)
        """
    }

    @Test func aCompleteS3AndFilesStoreLoads() throws {
        let catalog = try CatalogLoader.load(yaml: Self.catalog(), file: "t.yaml").catalog
        guard case .s3(let s3)? = catalog.stores[0].connection, case .files(let files)? = catalog.stores[1].connection else {
            Issue.record("wrong connections")
            return
        }
        #expect(s3.buckets == ["platform-artifacts", "platform-uploads"])
        #expect(s3.prefixes == ["manifests/"])
        #expect(s3.pathStyle)
        #expect(s3.accessKeyID == .environment("KEY"))
        #expect(s3.secretAccessKey == .file("/run/secret"))
        #expect(files.paths == ["/var/lib/nats/backups", "/etc/platform"])
    }

    @Test func badS3ConnectionsAreNamedByField() {
        let loader = Loader()
        let badBucket = Self.catalog(s3: "      buckets: [Platform_Artifacts]\n      region: eu-west-1")
        loader.expectOne(badBucket, code: .badValue, field: "stores[0].connection.buckets[0]", line: "Platform_Artifacts", message: "is not a valid bucket name")
        let halfCredentials = Self.catalog(s3: "      endpoint: http://127.0.0.1:9000\n      buckets: [platform-artifacts]\n      access_key_id: env:KEY")
        loader.expectOne(halfCredentials, code: .missingField, field: "stores[0].connection.secret_access_key", line: "endpoint: http://127.0.0.1:9000",
                         message: "give both access_key_id and secret_access_key")
        let endpointWithPath = Self.catalog(s3: "      endpoint: http://127.0.0.1:9000/bucket\n      buckets: [platform-artifacts]")
        loader.expectOne(endpointWithPath, code: .badValue, field: "stores[0].connection.endpoint", line: "9000/bucket", message: "is not an S3 endpoint")
        let literal = Self.catalog(s3: "      endpoint: http://127.0.0.1:9000\n      buckets: [platform-artifacts]\n      access_key_id: AKIAEXAMPLE\n      secret_access_key: env:S")
        loader.expectOne(literal, code: .literalSecret, field: "stores[0].connection.access_key_id", line: "AKIAEXAMPLE", message: "literal value")
    }

    @Test func badFilesPathsAreNamedByField() {
        let loader = Loader()
        loader.expectOne(Self.catalog(files: "[relative/dir]"), code: .badValue, field: "stores[1].connection.paths[0]", line: "relative/dir",
                         message: "is not an absolute path")
        loader.expectOne(Self.catalog(files: "[/srv/data, /srv/data/inner]"), code: .badValue, field: "stores[1].connection.paths[1]",
                         line: "/srv/data/inner", message: "inside /srv/data")
    }
}
