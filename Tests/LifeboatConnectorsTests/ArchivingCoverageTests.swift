import Foundation
import Testing
@testable import LifeboatConnectors

/// What `status` calls coverage drift for a continuously archived PostgreSQL store: the server's
/// archiving settings against the catalog's promise.
@Suite struct ArchivingCoverageTests {
    let pushing = "'/usr/local/bin/lifeboat' 'postgres' 'wal-push' '--store' 'app-db' '--catalog' '/etc/lifeboat/lifeboat.yaml' %p"

    @Test func theCommandLifeboatWritesPushesIntoItsStore() {
        #expect(PostgresConnector.pushesInto(store: "app-db", pushing))
        #expect(PostgresConnector.pushesInto(store: "app-db", "lifeboat postgres wal-push --store=app-db %p"))
        #expect(PostgresConnector.pushesInto(store: "app-db", "/usr/bin/lifeboat postgres wal-push --store app-db -c /etc/lb.yaml %p"))
    }

    @Test func anotherStoreAnotherToolOrNothingDoesNot() {
        #expect(!PostgresConnector.pushesInto(store: "app-db", pushing.replacingOccurrences(of: "'app-db'", with: "'app-db-old'")))
        #expect(!PostgresConnector.pushesInto(store: "app-db", "cp %p /mnt/archive/%f"))
        #expect(!PostgresConnector.pushesInto(store: "app-db", ""))
        #expect(!PostgresConnector.pushesInto(store: "app-db", "lifeboat postgres wal-fetch --store app-db %f %p"))
    }

    @Test func eachProblemIsNamedAndTheCommandIsNeverQuoted() {
        #expect(PostgresConnector.archivingProblems(store: "app-db", ("on", "replica", pushing)).isEmpty)
        #expect(PostgresConnector.archivingProblems(store: "app-db", ("always", "logical", pushing)).isEmpty)
        let secretCommand = "LIFEBOAT_PASSWORD=hunter2 lifeboat postgres wal-push --store other %p"
        let problems = PostgresConnector.archivingProblems(store: "app-db", ("off", "minimal", secretCommand))
        #expect(problems.count == 3, "\(problems)")
        #expect(problems[0].contains("archive_mode is 'off'") && problems[1].contains("wal_level is 'minimal'") && problems[2].contains("archive_command does not run"))
        #expect(!problems.joined().contains("hunter2"), "an archive_command may hold a secret: never echoed")
    }
}
