import Foundation
import LifeboatCore
import Testing
@testable import LifeboatConnectors

@Suite struct WALChainTests {
    static let size: UInt64 = 16 << 20

    @Test func segmentNamesFollowPostgres() throws {
        // pg_walfile_name('0/4006808') on timeline 1.
        let segment = WALSegment(timeline: 1, containing: try #require(LSN("0/4006808")), segmentSize: Self.size)
        #expect(segment.name == "000000010000000000000004")
        // 256 segments of 16 MiB per "log": segment 256 is log 1, segment 0.
        #expect(WALSegment(timeline: 2, number: 256, segmentSize: Self.size).name == "000000020000000100000000")
        #expect(WALSegment(name: "0000000A00000001000000FF", segmentSize: Self.size)?.number == 511)
        #expect(WALSegment(name: "0000000A00000001000000FF", segmentSize: Self.size)?.timeline == 10)
        #expect(LSN("1/FF000028")?.description == "1/FF000028")
        #expect(LSN("nope") == nil)
    }

    @Test func theChainStopsAtTheFirstGapAndNamesItWhenNewerWALExists() {
        let names: Set<String> = ["000000010000000000000003", "000000010000000000000004", "000000010000000000000006"]
        let chain = WALChain.walk(archived: names, histories: [], baseTimeline: 1, start: LSN(2 * Self.size + 40),
                                  includedThrough: LSN(2 * Self.size + 400), segmentSize: Self.size)
        #expect(chain.first.name == "000000010000000000000002")
        #expect(chain.last?.name == "000000010000000000000004")
        #expect(chain.missing?.name == "000000010000000000000005")

        let complete = WALChain.walk(archived: names.subtracting(["000000010000000000000006"]), histories: [], baseTimeline: 1,
                                     start: LSN(2 * Self.size + 40), includedThrough: nil, segmentSize: Self.size)
        #expect(complete.last == nil, "segment 2 is neither archived nor carried by the backup")
        #expect(complete.missing?.name == "000000010000000000000002")
    }

    @Test func theChainFollowsTheNewestTimelineFromItsHistory() throws {
        // Timeline 2 branched from 1 at 0/5000100: segment 5 is read from timeline 2.
        let history = try #require(TimelineHistory(timeline: 2, text: "1\t0/5000100\tno recovery target specified\n"))
        let names: Set<String> = ["000000010000000000000003", "000000010000000000000004", "000000010000000000000005",
                                  "000000020000000000000005", "000000020000000000000006", "00000002.history"]
        let chain = WALChain.walk(archived: names, histories: [history], baseTimeline: 1, start: LSN(3 * Self.size + 40),
                                  includedThrough: nil, segmentSize: Self.size)
        #expect(chain.history.timeline == 2)
        #expect(chain.last?.name == "000000020000000000000006")
        #expect(chain.missing == nil)
        // A history that branched before the base backup started is not its future.
        let early = try #require(TimelineHistory(timeline: 3, text: "1\t0/1000000\tbranched earlier\n"))
        let other = WALChain.walk(archived: names, histories: [history, early], baseTimeline: 1, start: LSN(3 * Self.size + 40),
                                  includedThrough: nil, segmentSize: Self.size)
        #expect(other.history.timeline == 2)
    }

    @Test func waldumpTimesAndTheCommandLines() throws {
        let output = """
        rmgr: Transaction len (rec/tot):     34/    34, tx:        735, lsn: 0/03016010, prev 0/03015FD0, desc: COMMIT 2026-11-23 00:22:01.378669 UTC
        rmgr: Transaction len (rec/tot):     34/    34, tx:        736, lsn: 0/03016040, prev 0/03016010, desc: ABORT 2026-11-23 00:22:02.5 UTC
        rmgr: Transaction len (rec/tot):    405/   405, tx:        737, lsn: 0/03016070, prev 0/03016040, desc: COMMIT 2026-11-23 00:22:01.9 UTC; inval msgs: catcache 80
        """
        let time = try #require(PostgresConnector.lastTransactionTime(inWaldump: output))
        #expect(SourceTime.format(time) == "2026-11-23T00:22:02.500Z")
        #expect(formatPostgresTime(time) == "2026-11-23 00:22:02.500000+00")

        let line = WALCommandLine(executable: "/opt/life boat/lifeboat", repositoryArguments: ["--repo", "/srv/100%"], store: "db")
        #expect(line.archiveCommand == "'/opt/life boat/lifeboat' 'postgres' 'wal-push' '--store' 'db' '--repo' '/srv/100%%' %p")
        #expect(line.restoreCommand.hasSuffix("'/srv/100%%' %f %p"))
    }
}
