import Testing
import WeftTesting

@testable import WeftCRDT

/// `LWWMap.merge(encoded:)` skips building the decoded map; it must behave exactly like
/// `merge(try LWWMap(encoded:))`: the same result on valid input, an error and no change otherwise.
@Suite("LWWMap.merge(encoded:)")
struct LWWMapMergeEncodedTests {
    typealias Map = LWWMap<String, Int64>

    static func randomMap(_ random: inout SplitMix64, replicas: [ReplicaID]) -> Map {
        var map = Map()
        for _ in 0..<Int.random(in: 0...12, using: &random) {
            let stamp = HLCTimestamp(
                wallMilliseconds: UInt64.random(in: 0...3, using: &random), counter: UInt32.random(in: 0...2, using: &random),
                replica: replicas.randomElement(using: &random) ?? replicas[0])
            let key = ["a", "b", "c", "d", "ab", "abc"].randomElement(using: &random) ?? "a"
            if Bool.random(using: &random) {
                map.set(key, to: Int64.random(in: 0...3, using: &random), at: stamp)
            } else {
                map.removeValue(forKey: key, at: stamp)
            }
        }
        return map
    }

    @Test func agreesWithDecodeThenMergeOnValidAndMutatedInput() {
        var random = SplitMix64(seed: 42)
        let replicas = (1...3).map { ReplicaID(high: 0, low: UInt64($0)) }
        var accepted = 0
        for round in 0..<3_000 {
            let base = Self.randomMap(&random, replicas: replicas)
            var bytes = Self.randomMap(&random, replicas: replicas).encoded()
            if round % 2 == 1, !bytes.isEmpty {  // corrupt half of the inputs
                let index = Int.random(in: 0..<bytes.count, using: &random)
                bytes[index] ^= UInt8.random(in: 1...255, using: &random)
            }
            var viaDecode = base
            var viaBytes = base
            let decoded = try? Map(encoded: bytes)
            if let decoded { viaDecode.merge(decoded) }
            do {
                try viaBytes.merge(encoded: bytes)
                accepted += 1
                #expect(decoded != nil, "merge(encoded:) accepted bytes the decoder rejects")
                #expect(viaBytes == viaDecode)
            } catch {
                #expect(decoded == nil, "merge(encoded:) rejected valid bytes: \(error)")
                #expect(viaBytes == base, "a failed merge(encoded:) changed the map")
            }
        }
        #expect(accepted > 1_500)
    }

    @Test func aKeyRepeatedInTheInputIsRejectedAndChangesNothing() throws {
        let r1 = ReplicaID(high: 0, low: 1)
        var map = Map()
        map.set("k", to: 1, at: HLCTimestamp(wallMilliseconds: 1, counter: 0, replica: r1))
        // Two entries for "k": stamp (5,0) then (5,1); the second header is a counter step of 1,
        // shares the whole previous key and carries an empty suffix.
        var source = Map()
        source.set("k", to: 7, at: HLCTimestamp(wallMilliseconds: 5, counter: 0, replica: r1))
        var bytes = source.encoded()
        bytes[2] = 2  // two entries
        bytes += [1 << 3, 2, 0, 14]  // header: counter +1; shared 2 (length byte and "k"); suffix length 0; value 7
        Self.expectRepeatedKeyRefused(bytes, by: map)
    }

    /// Both the decoder and `merge(encoded:)` into `map` refuse `bytes` for a key named twice,
    /// and the failed merge leaves the map as it was.
    static func expectRepeatedKeyRefused(_ bytes: [UInt8], by map: Map, sourceLocation: SourceLocation = #_sourceLocation) {
        var map = map
        let before = map
        for attempt in 0..<2 {
            do {
                if attempt == 0 { _ = try Map(encoded: bytes) } else { try map.merge(encoded: bytes) }
                Issue.record("a repeated key was accepted", sourceLocation: sourceLocation)
            } catch {
                #expect(error.kind == "invariantViolation" && error.detail.contains("twice"), sourceLocation: sourceLocation)
            }
        }
        #expect(map == before, sourceLocation: sourceLocation)
    }

    /// The filter `merge(encoded:)` checks repeated slots with: exact however its bits collide
    /// (large inputs share thousands of bits between distinct slots).
    @Test("the repeated-slot filter agrees with a set", arguments: [10, 1_000, 100_000])
    func repeatedSlotFilterAgreesWithASet(count: Int) {
        var random = SplitMix64(seed: UInt64(count))
        for repeats in [false, true] {
            var filter = RepeatedSlotFilter<Int>(expected: count)
            var slots = (0..<count).map { _ in Int.random(in: Int.min...Int.max, using: &random) }
            slots = Array(Set(slots))
            if repeats { slots.insert(slots[Int.random(in: 0..<slots.count, using: &random)], at: Int.random(in: 0...slots.count, using: &random)) }
            for slot in slots { filter.add(slot) }
            #expect(filter.hasRepeats() == repeats)
        }
    }

    @Test func aKeyRepeatedInALargeInputIsRejected() throws {
        let r1 = ReplicaID(high: 0, low: 1)
        var map = Map()
        var source = Map()
        for index in 0..<20_000 {
            map.set("k\(index)", to: 1, at: HLCTimestamp(wallMilliseconds: 1, counter: UInt32(index), replica: r1))
            source.set("k\(index)", to: 2, at: HLCTimestamp(wallMilliseconds: 2, counter: UInt32(index), replica: r1))
        }
        var merged = map
        try merged.merge(encoded: source.encoded())
        #expect(merged == source)
        // The last entry again, one counter later: the same key twice.
        let bytes = source.encoded()
        var repeated = bytes
        repeated[2...4] = []  // the entry count (3 bytes for 20,000) is rewritten below
        var count = BinaryWriter()
        count.writeVarint(20_001)
        repeated.insert(contentsOf: count.bytes, at: 2)
        // header: counter +1; shared 7 (length byte and "k19999"); empty suffix; value 3
        repeated += [1 << 3, 7, 0, 6]
        Self.expectRepeatedKeyRefused(repeated, by: map)
    }

    /// Large maps are ordered by a radix sort of packed stamps, ties (one stamp, several keys)
    /// by key bytes; stamps too far apart to pack take the comparison sort. Either way the
    /// bytes depend only on the map (not on the order its keys were written in) and decode,
    /// in canonical order, to the same map.
    @Test("large maps encode canonically", arguments: [false, true])
    func largeMapsEncodeCanonically(farApart: Bool) throws {
        var random = SplitMix64(seed: farApart ? 7 : 8)
        let replicas = (1...5).map { _ in ReplicaID(high: UInt64.random(in: 0...UInt64.max, using: &random), low: 1) }
        var writes = [(String, Int64, HLCTimestamp)]()
        for index in 0..<3_000 {
            let wall: UInt64 = farApart && index % 2 == 0 ? UInt64.max / 2 : 1_700_000_000_000 + UInt64(index / 60)
            let stamp = HLCTimestamp(
                wallMilliseconds: wall, counter: UInt32(index % 3), replica: replicas[index % replicas.count])
            writes.append(("key \(Int.random(in: 0..<2_000, using: &random))", Int64(index), stamp))
        }
        var forward = Map()
        for (key, value, stamp) in writes { forward.set(key, to: value, at: stamp) }
        var backward = Map()
        for (key, value, stamp) in writes.reversed() { backward.set(key, to: value, at: stamp) }
        #expect(forward == backward)
        let bytes = forward.encoded()
        #expect(backward.encoded() == bytes, "the encoding depends on the order keys were written")
        let decoded = try Map(encoded: bytes)
        #expect(decoded == forward)
        #expect(decoded.encoded() == bytes)
    }
}
