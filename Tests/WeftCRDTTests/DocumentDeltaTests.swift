import Testing
import WeftCRDT

/// `Document.delta(since:)` and `DocumentRecord.delta(since:)`: joining a version's delta over
/// an earlier version gives what joining the whole version gives, into the earlier version and
/// into any document that includes it (a replica's copy with its own unpushed edits).
@Suite("Document deltas")
struct DocumentDeltaTests {
    static let writers = [
        ReplicaID(high: 11, low: 1), ReplicaID(high: 22, low: 2), ReplicaID(high: 33, low: 3),
    ]

    /// One random edit of `document` by `writer`: registers, counters, sets, removals, nested
    /// documents, and fields changing kind.
    static func edit(
        _ document: inout Document, _ random: inout SplitMix64, writer: ReplicaID, wall: inout UInt64
    ) {
        wall += 1
        let stamp = HLCTimestamp(wallMilliseconds: wall, counter: 0, replica: writer)
        let key = "f\(random.next() % 12)"
        switch random.next() % 8 {
        case 0, 1: _ = document.set(key, to: .int(Int64(random.next() % 100)), at: stamp)
        case 2: _ = document.increment(key, by: Int64(random.next() % 5) - 2, at: stamp)
        case 3: _ = document.insert(.int(Int64(random.next() % 6)), intoSet: key, at: stamp)
        case 4: _ = document.remove(.int(Int64(random.next() % 6)), fromSet: key, at: stamp)
        case 5: _ = document.removeField(key)
        case 6:
            let inner = "n\(random.next() % 3)"
            let value = Int64(random.next() % 50)
            document.updateMap("nested", at: stamp) { nested in
                _ = nested.set(inner, to: .int(value), at: stamp)
            }
        default: _ = document.set(key, to: .string("s\(random.next() % 9)"), at: stamp)
        }
    }

    @Test("A delta joined into the base, or into a copy with other edits, gives what the whole version gives")
    func deltasJoinLikeWholeVersions() throws {
        let seed = UInt64.random(in: 1...UInt64.max)
        var random = SplitMix64(seed: seed)
        var wall: UInt64 = 1_000
        var produced = 0
        for _ in 0..<300 {
            // A shared history, then the base, then a later version by others, and a copy of the
            // base with edits of its own (a replica's unpushed writes).
            var base = Document()
            for _ in 0..<Int(random.next() % 30) {
                Self.edit(&base, &random, writer: Self.writers[Int(random.next() % 3)], wall: &wall)
            }
            var later = base
            for _ in 0..<Int(1 + random.next() % 6) {
                Self.edit(&later, &random, writer: Self.writers[Int(random.next() % 2)], wall: &wall)
            }
            // Sometimes the later version also joined a concurrent branch.
            if random.next() % 4 == 0 {
                var branch = base
                Self.edit(&branch, &random, writer: Self.writers[2], wall: &wall)
                later.merge(branch)
            }
            var local = base
            for _ in 0..<Int(random.next() % 3) {
                Self.edit(&local, &random, writer: ReplicaID(high: 44, low: 4), wall: &wall)
            }
            guard let delta = later.delta(since: base) else {
                Issue.record("no delta of a later version (seed \(seed))")
                continue
            }
            produced += 1
            var joined = base
            joined.merge(delta)
            #expect(joined == later, "base ⊔ delta == later (seed \(seed))")
            var viaDelta = local
            viaDelta.merge(delta)
            var viaWhole = local
            viaWhole.merge(later)
            #expect(viaDelta == viaWhole, "local ⊔ delta == local ⊔ later (seed \(seed))")
            // The delta travels: it encodes and decodes to itself.
            #expect(try Document(encoded: delta.encoded()) == delta, "seed \(seed)")
        }
        #expect(produced == 300)
    }

    @Test("No delta over a version that is not earlier, and a small delta for one field of a large document")
    func deltasOnlyForLaterVersionsAndSmall() throws {
        let writer = Self.writers[0]
        var wall: UInt64 = 1
        var large = Document()
        for index in 0..<10_000 {
            wall += 1
            _ = large.set(
                "k\(index)", to: .int(Int64(index)),
                at: HLCTimestamp(wallMilliseconds: wall, counter: 0, replica: writer))
        }
        var edited = large
        _ = edited.set(
            "k5000", to: .int(-1), at: HLCTimestamp(wallMilliseconds: wall + 1, counter: 0, replica: writer))
        let delta = try #require(edited.delta(since: large))
        #expect(delta.encoded().count < 100 && large.encoded().count > 100_000)
        // The other way round there is no delta (the earlier version has not seen the edit),
        // nor between concurrent versions.
        #expect(large.delta(since: edited) == nil)
        var other = large
        _ = other.set(
            "k1", to: .int(-2),
            at: HLCTimestamp(wallMilliseconds: wall + 2, counter: 0, replica: Self.writers[1]))
        #expect(other.delta(since: edited) == nil && edited.delta(since: other) == nil)
        // Records: the flag and vector travel whole; the join gives the record exactly.
        let stamp = HLCTimestamp(wallMilliseconds: wall, counter: 0, replica: writer)
        let before = DocumentRecord(
            body: large, deletion: LWWRegister(false, stamp: stamp), version: VersionVector([writer: 1]))
        let after = DocumentRecord(
            body: edited, deletion: LWWRegister(false, stamp: stamp), version: VersionVector([writer: 2]))
        let recordDelta = try #require(after.delta(since: before))
        var joined = before
        joined.merge(recordDelta)
        #expect(joined == after && recordDelta.encoded().count < 200)
    }
}
