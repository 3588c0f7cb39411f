import Testing
import WeftCRDT
import WeftTesting

private let r1 = ReplicaID(high: 0, low: 1)
private let r2 = ReplicaID(high: 0, low: 2)
private func stamp(_ wall: UInt64, _ counter: UInt32 = 0, _ replica: ReplicaID = r1) -> HLCTimestamp {
    HLCTimestamp(wallMilliseconds: wall, counter: counter, replica: replica)
}

@Suite("Classic cases")
struct ClassicCasesTests {
    @Test func concurrentAddAndRemoveOfOneElementAddWins() {
        var a = ORSet<String>()
        a.insert("x", by: r1)
        var b = a
        let removal = a.remove("x")  // r1 removes the x it saw
        let addition = b.insert("x", by: r2)  // r2 concurrently adds x again
        #expect(!a.contains("x"))
        a.merge(addition)
        b.merge(removal)
        #expect(a.contains("x"))
        #expect(b.contains("x"))
        #expect(a == b)
    }

    @Test func removeThenReAdd() {
        var a = ORSet<String>()
        a.insert("x", by: r1)
        var b = a
        a.remove("x")
        b.merge(a)
        #expect(!b.contains("x"))
        a.insert("x", by: r1)
        b.merge(a)
        #expect(b.contains("x"))
        b.remove("x")
        a.merge(b)
        #expect(!a.contains("x") && a == b)
        // The context stays compact: removals leave no tombstones behind.
        #expect(a.context.cloud.isEmpty)
        #expect(a.entries.isEmpty)
    }

    @Test func counterStateDeliveredTwiceCountsOnce() {
        var a = PNCounter()
        let delta = a.increment(by: 5, replica: r1)
        var b = PNCounter()
        b.merge(delta)
        b.merge(delta)
        b.merge(a)
        #expect(b.value == 5)
        b.increment(by: -2, replica: r2)
        a.merge(b)
        a.merge(b)
        #expect(a.value == 3)
    }

    @Test func equalWallTimesOnDifferentReplicasHaveADeterministicWinner() {
        let time = ManualTimeSource(milliseconds: 5_000)
        var clock1 = HybridLogicalClock(replica: r1, timeSource: time)
        var clock2 = HybridLogicalClock(replica: r2, timeSource: time)
        let s1 = clock1.now()
        let s2 = clock2.now()
        #expect(s1.wallMilliseconds == s2.wallMilliseconds && s1.counter == s2.counter)
        #expect(s1 != s2 && s1 < s2)  // replica ID breaks the tie
        var a = LWWRegister("from r1", stamp: s1)
        let b = LWWRegister("from r2", stamp: s2)
        var c = b
        a.merge(b)
        c.merge(LWWRegister("from r1", stamp: s1))
        #expect(a.value == "from r2" && c.value == "from r2")
    }

    @Test func wallClockSteppingBackwardsKeepsStampsIncreasing() throws {
        let time = ManualTimeSource(milliseconds: 10_000)
        var clock = HybridLogicalClock(replica: r1, timeSource: time)
        let before = clock.now()
        time.set(4_000)  // NTP steps the clock back six seconds
        let after1 = clock.now()
        let after2 = clock.now()
        #expect(before < after1 && after1 < after2)
        #expect(after2.wallMilliseconds == 10_000 && after2.counter == 2)
        time.set(10_001)
        let caughtUp = clock.now()
        #expect(caughtUp.wallMilliseconds == 10_001 && caughtUp.counter == 0)
        // Receiving a stamp also moves past it.
        let remote = stamp(10_001, 7, r2)
        let received = try clock.receive(remote)
        #expect(received > remote && received > caughtUp)
    }

    @Test func stampFromFarInTheFutureIsRefusedAndChangesNothing() throws {
        let time = ManualTimeSource(milliseconds: 1_000_000)
        var clock = HybridLogicalClock(replica: r1, timeSource: time, maximumForwardDrift: 60_000)
        let last = clock.now()
        let hourAhead = stamp(1_000_000 + 3_600_000, 0, r2)
        #expect(throws: ClockError.self) { try clock.receive(hourAhead) }
        do {
            try clock.receive(hourAhead)
        } catch {
            #expect(error.isStampTooFarAhead && error.bound == 60_000 && error.remote == hourAhead)
        }
        #expect(clock.last == last)
        // Within the bound it is absorbed.
        let slightlyAhead = stamp(1_000_000 + 59_000, 3, r2)
        let next = try clock.receive(slightlyAhead)
        #expect(next.wallMilliseconds == slightlyAhead.wallMilliseconds && next.counter == 4)
    }

    @Test func counterOverflowInOneMillisecondBorrowsTheNextMillisecond() {
        let time = ManualTimeSource(milliseconds: 50)
        var clock = HybridLogicalClock(
            replica: r1, resumingAfter: stamp(50, UInt32.max - 1), timeSource: time)
        let a = clock.now()
        let b = clock.now()
        #expect(a.counter == UInt32.max && b.wallMilliseconds == 51 && b.counter == 0 && a < b)
    }

    @Test func versionVectorsCompare() {
        var a = VersionVector()
        var b = VersionVector()
        #expect(a.compare(to: b) == .equal)
        a.increment(r1)
        #expect(a.compare(to: b) == .after && b.compare(to: a) == .before)
        b.increment(r2)
        #expect(a.compare(to: b) == .concurrent)
        let joined = a.merged(with: b)
        #expect(a.compare(to: joined) == .before && joined.compare(to: b) == .after)
        #expect(joined[r1] == 1 && joined[r2] == 1 && joined.counters.count == 2)
        #expect(VersionVector([r1: 0]) == VersionVector())
    }

    @Test func causalContextFoldsContiguousDotsIntoTheVector() {
        var context = CausalContext()
        context.insert(Dot(replica: r1, counter: 3))
        context.insert(Dot(replica: r1, counter: 2))
        #expect(context.cloud.count == 2 && context.vector[r1] == 0)
        context.insert(Dot(replica: r1, counter: 1))
        #expect(context.cloud.isEmpty && context.vector[r1] == 3)
        #expect(context.nextDot(for: r1) == Dot(replica: r1, counter: 4))
        var other = CausalContext()
        other.insert(Dot(replica: r1, counter: 6))
        context.merge(other)
        #expect(context.contains(Dot(replica: r1, counter: 6)) && !context.contains(Dot(replica: r1, counter: 5)))
        #expect(context.isNormalized)
    }

    @Test func mvRegisterKeepsConcurrentValues() {
        var a = MVRegister<String>()
        var b = MVRegister<String>()
        a.set("red", by: r1)
        b.set("blue", by: r2)
        a.merge(b)
        #expect(a.values == ["red", "blue"] && a.hasConflict)
        a.set("purple", by: r1)  // resolving: a write that saw both replaces both
        b.merge(a)
        #expect(b.values == ["purple"] && !b.hasConflict)
    }

    @Test func orMapRemovalKeepsAConcurrentUpdate() {
        var a = ORMap<String, PNCounter>()
        a.update("x", by: r1, default: PNCounter()) { $0.increment(by: 1, replica: r1) }
        var b = a
        let removal = a.removeValue(forKey: "x")
        let update = b.update("x", by: r2, default: PNCounter()) { $0.increment(by: 10, replica: r2) }
        a.merge(update)
        b.merge(removal)
        #expect(a == b)
        #expect(a["x"]?.value == 11)  // update wins, with the updater's whole value
        // A removal that saw the update removes it.
        let second = a.removeValue(forKey: "x")
        b.merge(second)
        #expect(b["x"] == nil && a == b)
    }

    @Test func replicaIDTextFormRoundTripsAndRejectsJunk() {
        let id = ReplicaID(high: 0x0123_4567_89ab_cdef, low: 0xfedc_ba98_7654_3210)
        #expect(id.description == "01234567-89ab-cdef-fedc-ba9876543210")
        #expect(ReplicaID(id.description) == id)
        #expect(ReplicaID("01234567-89AB-CDEF-FEDC-BA9876543210") == id)
        for junk in ["", "01234567-89ab-cdef-fedc-ba987654321", "01234567x89ab-cdef-fedc-ba9876543210",
            "g1234567-89ab-cdef-fedc-ba9876543210", String(repeating: "0", count: 10_000)] {
            #expect(ReplicaID(junk) == nil)
        }
        var random = SplitMix64(seed: 7)
        #expect(ReplicaID.random(using: &random) != ReplicaID.random(using: &random))
    }
}
