import Foundation
import Testing
import Weft
import WeftCRDT
import WeftServer
import WeftTesting
import WeftWire

/// Issue #13, point 8: no stamp arithmetic traps or wraps, and the server checks every stamp of
/// a push.
@Suite("Clock edges")
struct ClockEdgeTests {
    let replica = ReplicaID(high: 0, low: 1)

    @Test func theClockNeverGoesBackAtTheLastMillisecond() {
        let time = ManualTimeSource(milliseconds: .max)
        var clock = HybridLogicalClock(
            replica: replica, resumingAfter: HLCTimestamp(wallMilliseconds: .max, counter: .max - 1, replica: replica), timeSource: time)
        var previous = clock.now()
        for _ in 0..<3 {
            let next = clock.now()
            #expect(next >= previous, "the clock went from \(previous) back to \(next)")
            previous = next
        }
    }

    /// A record stamped at the very end of time reaches a replica; a local write must fail with
    /// a typed error, not trap.
    @Test func aWriteAfterARecordStampedAtTheMaximumIsRefusedNotATrap() async throws {
        let replica = try await Replica(storage: MemoryReplicaStorage())
        let end = HLCTimestamp(wallMilliseconds: .max, counter: .max, replica: ReplicaID(high: 9, low: 9))
        var body = Document()
        body.set("x", to: 1, at: end)
        var version = VersionVector()
        version.increment(end.replica)
        let record = DocumentRecord(body: body, deletion: LWWRegister(false, stamp: end), version: version)
        try await replica.applyRemote([(key("jobs", "j1"), record)], through: 1)
        await #expect(throws: WeftError.self) { try await replica.collection("jobs").update("j1") { $0.set("x", to: 2) } }
        #expect(try await replica.collection("jobs").get("j1")?.int("x") == 1)
    }

    /// A record whose last stamp is now, with a nested register stamped a year ahead.
    @Test func theServerChecksNestedStamps() async throws {
        let now: UInt64 = 1_800_000_000_000
        let service = SyncService(
            store: MemoryCentralStore(), maximumClockSkew: 60_000, timeSource: ManualTimeSource(milliseconds: now))
        let writer = ReplicaID(high: 0, low: 7)
        let stamp = HLCTimestamp(wallMilliseconds: now, counter: 0, replica: writer)
        let future = HLCTimestamp(wallMilliseconds: now + 365 * 86_400_000, counter: 0, replica: writer)
        var body = Document()
        body.updateMap("site", at: stamp) { $0.set("owner", to: "me", at: future) }
        var version = VersionVector()
        version.increment(writer)
        let record = DocumentRecord(body: body, deletion: LWWRegister(false, stamp: stamp), version: version)
        let push = PushRequest(replica: writer, changes: [WireChange(sequence: 1, key: WireKey(collection: "jobs", id: "j1"), record: record)])
        do {
            _ = try await service.push(database: "db", push)
            Issue.record("a push with a stamp a year ahead was accepted")
        } catch {
            #expect(error.kind == .clockSkew, "\(error)")
        }
        #expect(try await service.store.record(database: "db", key: key("jobs", "j1")) == nil)
    }
}
