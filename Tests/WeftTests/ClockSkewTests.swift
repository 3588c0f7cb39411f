import AsyncHTTPClient
import Foundation
import Logging
import Testing
import Weft
import WeftCRDT
import WeftHTTP
import WeftServer
import WeftTesting

/// The clock-skew guard: a replica whose clock runs ahead is refused, recovers once its clock is
/// right, and cannot win every last-writer-wins conflict.
@Suite("Clock skew")
struct ClockSkewTests {
    static let serverStart: UInt64 = 1_800_000_000_000

    static func lww() -> ReplicaConfiguration {
        var configuration = ReplicaConfiguration()
        configuration.conflictResolution = .lastWriterWins
        return configuration
    }

    @Test func aReplicaAnHourAheadIsRefusedThenRecoversAndCannotWinEveryConflict() async throws {
        let serverTime = ManualTimeSource(milliseconds: Self.serverStart)
        let store = MemoryCentralStore()
        let service = SyncService(store: store, policies: ServerPolicies(defaultPolicy: .lastWriterWins), maximumClockSkew: 60_000, timeSource: serverTime)
        let aheadTime = ManualTimeSource(milliseconds: Self.serverStart + 3_600_000)
        let rightTime = ManualTimeSource(milliseconds: Self.serverStart)
        let ahead = try await Replica(storage: MemoryReplicaStorage(), configuration: Self.lww(), timeSource: aheadTime)
        let right = try await Replica(storage: MemoryReplicaStorage(), configuration: Self.lww(), timeSource: rightTime)
        let aheadEngine = SyncEngine(replica: ahead, transport: InProcessTransport(service: service, database: "db"))
        let rightEngine = SyncEngine(replica: right, transport: InProcessTransport(service: service, database: "db"))
        let key = DocumentKey(collection: try CollectionName("jobs"), id: try DocumentID("j1"))

        // Concurrent writes; the fast clock's stamp is an hour later.
        try await ahead.collection("jobs").create("j1") { $0.set("owner", to: "ahead") }
        rightTime.advance(by: 10)
        try await right.collection("jobs").create("j1") { $0.set("owner", to: "right") }
        try await rightEngine.syncOnce()

        // The fast replica is refused with a clear error, and keeps its queue.
        do {
            try await aheadEngine.syncOnce()
            Issue.record("a replica an hour ahead was not refused")
        } catch {
            #expect(error.kind == .clockSkew && error.message.contains("ahead of the server's clock"), "\(error)")
            #expect(error.serverTimeMilliseconds == Self.serverStart && error.maximumClockSkewMilliseconds == 60_000)
        }
        #expect(try await ahead.queuedChanges().count == 1)
        #expect(await aheadEngine.connectionState == .offline)
        #expect(await store.record(database: "db", key: key)?.body.string("owner") == "right", "its write did not win")

        // Still ahead: still refused, however often it tries.
        serverTime.advance(by: 1_000)
        await #expect(throws: SyncError.self) { try await aheadEngine.syncOnce() }

        // Its clock is corrected: it repairs the refused stamps and syncs.
        aheadTime.set(Self.serverStart + 1_500)
        let report = try await aheadEngine.syncOnce()
        #expect(report.pushed == 1)
        #expect(try await ahead.queuedChanges().isEmpty)
        let stored = try #require(await store.record(database: "db", key: key))
        #expect(stored.lastStamp.wallMilliseconds <= Self.serverStart + 1_000 + 60_000, "no stamp beyond the bound got in")

        // A minute later the other replica's ordinary write wins: the fixed clock no longer
        // dominates conflicts.
        serverTime.advance(by: 61_000)
        rightTime.set(Self.serverStart + 62_100)
        try await rightEngine.syncOnce()
        try await right.collection("jobs").update("j1") { $0.set("owner", to: "right again") }
        try await rightEngine.syncOnce()
        try await aheadEngine.syncOnce()
        #expect(try await ahead.collection("jobs").get("j1")?.string("owner") == "right again")
        #expect(await store.record(database: "db", key: key)?.body.string("owner") == "right again")

        // And the repaired replica's own later writes order after what it has seen.
        aheadTime.set(Self.serverStart + 62_300)
        try await ahead.collection("jobs").update("j1") { $0.set("owner", to: "ahead, later") }
        try await aheadEngine.syncOnce()
        #expect(await store.record(database: "db", key: key)?.body.string("owner") == "ahead, later")
    }

    @Test func aClockThatStepsBackKeepsItsWritesInOrder() async throws {
        let time = ManualTimeSource(milliseconds: Self.serverStart)
        let service = SyncService(store: MemoryCentralStore(), policies: ServerPolicies(defaultPolicy: .lastWriterWins), timeSource: ManualTimeSource(milliseconds: Self.serverStart))
        let replica = try await Replica(storage: MemoryReplicaStorage(), configuration: Self.lww(), timeSource: time)
        let engine = SyncEngine(replica: replica, transport: InProcessTransport(service: service, database: "db"))
        let jobs = try replica.collection("jobs")
        try await jobs.create("j1") { $0.set("step", to: 1) }
        let first = try #require(try await replica.record(DocumentKey(collection: try CollectionName("jobs"), id: try DocumentID("j1"))))
        // The device's clock jumps ten minutes back (an NTP correction, a user setting it).
        time.set(Self.serverStart - 600_000)
        try await jobs.update("j1") { $0.set("step", to: 2) }
        let second = try #require(try await replica.record(DocumentKey(collection: try CollectionName("jobs"), id: try DocumentID("j1"))))
        #expect(second.lastStamp > first.lastStamp, "the hybrid clock never goes back")
        #expect(second.body.int("step") == 2, "the later write wins locally")
        #expect(try await engine.syncOnce().pushed == 1, "a clock behind the server's is never refused")
        let other = try await Replica(storage: MemoryReplicaStorage(), configuration: Self.lww())
        try await SyncEngine(replica: other, transport: InProcessTransport(service: service, database: "db")).syncOnce()
        #expect(try await other.collection("jobs").get("j1")?.int("step") == 2)
    }

    @Test func theHTTPServerAnswers409WithItsClockAndCountsTheRefusal() async throws {
        var configuration = ServerConfiguration()
        configuration.port = 0
        configuration.tokens = [ServerToken(token: RunningServer.writeToken, databases: ["mydb"], access: .readWrite)]
        let service = SyncService(
            store: MemoryCentralStore(), maximumClockSkew: 60_000, timeSource: ManualTimeSource(milliseconds: Self.serverStart))
        var quiet = Logger(label: "weft.test.server")
        quiet.logLevel = .critical
        let running = try await RunningStandalone.start(service: service, configuration: configuration, logger: quiet)
        let replica = try await Replica(
            storage: MemoryReplicaStorage(), timeSource: ManualTimeSource(milliseconds: Self.serverStart + 3_600_000))
        try await replica.collection("c").create("d") { $0.set("v", to: 1) }
        let transport = HTTPTransport(
            baseURL: "http://127.0.0.1:\(running.port)", database: "mydb", token: RunningServer.writeToken, timeout: .seconds(60))
        do {
            try await SyncEngine(replica: replica, transport: transport).syncOnce()
            Issue.record("the push was not refused")
        } catch {
            #expect(error.kind == .clockSkew, "\(error)")
            #expect(error.serverTimeMilliseconds == Self.serverStart && error.maximumClockSkewMilliseconds == 60_000)
        }
        let metrics = try await HTTPClient.shared.execute(HTTPClientRequest(url: "http://127.0.0.1:\(running.port)/metrics"), timeout: .seconds(60))
        let text = String(buffer: try await metrics.body.collect(upTo: 1 << 16))
        #expect(text.contains("weft_clock_skew_rejections_total 1"), "\(text)")
        await running.stop()
    }

    @Test func aLocalWriteOrdersAfterARecordStampedAheadOfTheLocalClock() async throws {
        let time = ManualTimeSource(milliseconds: Self.serverStart)
        let replica = try await Replica(storage: MemoryReplicaStorage(), configuration: Self.lww(), timeSource: time)
        // A record from a replica whose clock is 90 s ahead: more than the local drift bound,
        // so the local clock does not follow it.
        let fast = ReplicaID(high: 7, low: 7)
        var body = Document()
        let stamp = HLCTimestamp(wallMilliseconds: Self.serverStart + 90_000, counter: 0, replica: fast)
        body.set("owner", to: "fast", at: stamp)
        var version = VersionVector()
        version.increment(fast)
        let key = DocumentKey(collection: try CollectionName("jobs"), id: try DocumentID("j1"))
        try await replica.applyRemote([(key, DocumentRecord(body: body, deletion: LWWRegister(false, stamp: stamp), version: version))], through: 1)
        try await replica.collection("jobs").update("j1") { $0.set("owner", to: "local") }
        #expect(try await replica.collection("jobs").get("j1")?.string("owner") == "local", "the later local write wins")
    }
}
