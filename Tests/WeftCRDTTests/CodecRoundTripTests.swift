// Round trips of random states built from random operations over 2–4 replicas:
// decode(encode(x)) == x and encode(decode(encode(x))) == encode(x), for every codec type.

import Testing
import WeftCRDT

/// Checks both round-trip properties and counts what it saw.
struct CodecRoundTripVisitor: CodecValueVisitor {
    var checked = 0
    var failures: [String] = []
    var totalBytes = 0

    mutating func visit<T: BinaryCodable & Equatable>(_ value: T) {
        checked += 1
        let bytes = value.encoded()
        totalBytes += bytes.count
        do {
            let decoded = try T(encoded: bytes)
            if decoded != value { failures.append("decode(encode(x)) != x for \(CodecHex.encode(bytes))") }
            let again = decoded.encoded()
            if again != bytes {
                failures.append("re-encoding differs: \(CodecHex.encode(bytes)) -> \(CodecHex.encode(again))")
            }
        } catch {
            failures.append("\(error) decoding \(CodecHex.encode(bytes))")
        }
    }
}

@Suite("Codec round trips")
struct CodecRoundTripTests {
    static let statesPerType = 300

    @Test("random states round-trip exactly", arguments: CodecRegistry.subjects.map(\.name))
    func roundTrip(type name: String) {
        var rng = CodecRNG(seed: codecSeed(name, 1))
        var visitor = CodecRoundTripVisitor()
        for _ in 0..<Self.statesPerType { CodecGen.visit(name, &rng, &visitor) }
        #expect(visitor.checked == Self.statesPerType)
        #expect(
            visitor.failures.isEmpty,
            "\(visitor.failures.count) failures, first: \(visitor.failures.prefix(3))")
    }

    @Test("empty states round-trip")
    func emptyStates() throws {
        func check<T: BinaryCodable & Equatable>(_ value: T, _ hex: String) throws {
            #expect(CodecHex.encode(value.encoded()) == hex, "\(T.self)")
            #expect(try T(encoded: value.encoded()) == value, "\(T.self)")
        }
        try check(VersionVector(), "020100")
        try check(CausalContext(), "02020000")
        try check(MVRegister<String>(), "0204000000")
        try check(GCounter(), "020500")
        try check(PNCounter(), "02060000")
        try check(ORSet<String>(), "0207000000")
        try check(LWWMap<String, Int64>(), "020800")
        try check(ORMap<String, GCounter>(), "0209000000")
        try check(Document(), "020a000000")
    }

    /// The generators must reach the interesting shapes, or the round trips prove little.
    @Test("the generators reach clouds, conflicts, tombstones and concurrent versions")
    func generatorCoverage() {
        var rng = CodecRNG(seed: 42)
        var clouds = 0
        var multiDotElements = 0
        var conflicts = 0
        var tombstones = 0
        var concurrentVersions = 0
        var sharedStampRuns = 0
        var nestedDocuments = 0
        for _ in 0..<300 {
            let set = CodecGen.orSet(&rng)
            if !set.context.cloud.isEmpty { clouds += 1 }
            if set.entries.values.contains(where: { $0.count > 1 }) { multiDotElements += 1 }
            if CodecGen.mvRegister(&rng).hasConflict { conflicts += 1 }
            let map = CodecGen.lwwMap(&rng)
            if map.entries.values.contains(where: { $0.value == nil }) { tombstones += 1 }
            let walls = map.entries.values.map { "\($0.stamp.replica)/\($0.stamp.wallMilliseconds)" }
            if Set(walls).count < walls.count { sharedStampRuns += 1 }
            if CodecGen.orMap(&rng).entries.values.contains(where: { $0.count > 1 }) {
                concurrentVersions += 1
            }
            let doc = CodecGen.document(&rng)
            if doc.keys.contains(where: { doc.map($0) != nil }) { nestedDocuments += 1 }
        }
        #expect(clouds > 10)
        #expect(multiDotElements > 5)
        #expect(conflicts > 10)
        #expect(tombstones > 10)
        #expect(sharedStampRuns > 10)
        #expect(concurrentVersions > 5)
        #expect(nestedDocuments > 10)
    }

    @Test("doubles keep their exact bits, NaN payloads and signed zeros included")
    func doubleBits() throws {
        let patterns: [UInt64] = [
            0, 0x8000_0000_0000_0000, 0x7ff0_0000_0000_0000, 0x7ff8_0000_0000_0001, 0xfff4_0000_0000_00ff, 1,
            0x7fef_ffff_ffff_ffff,
        ]
        for bits in patterns {
            let register = LWWRegister(Double(bitPattern: bits), stamp: CodecIDs.stamp(0, 0, CodecIDs.a))
            let bytes = register.encoded()
            let decoded = try LWWRegister<Double>(encoded: bytes)
            #expect(decoded.value.bitPattern == bits)
            #expect(decoded.encoded() == bytes)
            let scalar = Scalar.double(Double(bitPattern: bits))
            #expect(try Scalar(encoded: scalar.encoded()) == scalar)
        }
    }

    @Test("extreme integers and counters")
    func extremes() throws {
        var vector = VersionVector()
        vector[CodecIDs.a] = .max
        vector[CodecIDs.b] = 1
        #expect(try VersionVector(encoded: vector.encoded()) == vector)
        let context = CausalContext(vector: vector, cloud: [Dot(replica: CodecIDs.c, counter: .max)])
        #expect(try CausalContext(encoded: context.encoded()) == context)
        var map = LWWMap<Int, String?>()
        map.set(.min, to: nil, at: HLCTimestamp(wallMilliseconds: .max, counter: .max, replica: CodecIDs.d))
        map.set(.max, to: "x", at: HLCTimestamp(wallMilliseconds: 0, counter: 0, replica: CodecIDs.d))
        map.set(0, to: "", at: HLCTimestamp(wallMilliseconds: .max, counter: 0, replica: CodecIDs.d))
        #expect(try LWWMap<Int, String?>(encoded: map.encoded()) == map)
        for value: Int64 in [.min, .max, 0, -1] {
            let register = LWWRegister<Int64?>(
                value, stamp: HLCTimestamp(wallMilliseconds: .max, counter: .max, replica: CodecIDs.a))
            #expect(try LWWRegister<Int64?>(encoded: register.encoded()) == register)
        }
    }

    @Test("a large map with shared key prefixes stays compact and round-trips")
    func largeLWWMap() throws {
        var map = LWWMap<String, Int64>()
        for index in 0..<5_000 {
            map.set(
                "sensor/\(index / 100)/reading/\(index % 100)", to: Int64(index),
                at: CodecIDs.stamp(UInt64(index / 10), UInt32(index % 10), CodecIDs.all[index % 3]))
        }
        let bytes = map.encoded()
        #expect(try LWWMap<String, Int64>(encoded: bytes) == map)
        #expect(bytes.count < 5_000 * 12, "\(bytes.count) bytes for 5,000 keys")
    }

    @Test("documents nest up to DecodingLimits.maximumDepth and no further")
    func documentDepth() throws {
        func nested(_ levels: Int) -> Document {
            var doc = Document()
            doc.set("leaf", to: .int(Int64(levels)), at: CodecIDs.stamp(0, 0, CodecIDs.a))
            for level in 0..<levels {
                var parent = Document()
                parent.updateMap("m", at: CodecIDs.stamp(UInt64(level + 1), 0, CodecIDs.a)) { $0 = doc }
                doc = parent
            }
            return doc
        }
        let limit = DecodingLimits.default.maximumDepth
        // `levels` nested documents below the top one: levels + 1 documents in all.
        let deepest = nested(limit - 1)
        #expect(try Document(encoded: deepest.encoded()) == deepest)
        #expect(throws: CodecError.self) { try Document(encoded: nested(limit).encoded()) }
        do {
            _ = try Document(encoded: nested(limit).encoded())
        } catch {
            #expect(error.kind == "nestingTooDeep")
        }
        let small = DecodingLimits(maximumDepth: 2)
        #expect(try Document(encoded: nested(1).encoded(), limits: small) == nested(1))
        #expect(throws: CodecError.self) { try Document(encoded: nested(2).encoded(), limits: small) }
    }
}

/// Large field tables take the radix ordering (`FieldOrder`, from 256 fields); the decoder
/// refuses fields out of dot order, so a wrong order cannot pass unseen. Tables built by several
/// replicas with random ids, in random orders, with kinds mixed, encode to the same canonical
/// bytes whatever order their fields were written or merged in.
@Suite("Large field tables")
struct LargeFieldTableTests {
    @Test(
        "tables of 256 to 5,000 fields from several replicas encode canonically (more than 64 replicas: by comparison)",
        arguments: [(256, 4), (257, 4), (1_000, 4), (5_000, 4), (1_000, 100)])
    func largeTablesEncodeCanonically(fields: Int, writers: Int) throws {
        var random = CodecRNG(seed: codecSeed("large tables", UInt64(fields * 1_000 + writers)))
        let replicas = (0..<writers).map { _ in ReplicaID(high: random.next(), low: random.next()) }
        // Each replica writes its share of the fields, in its own random order.
        var parts = [Document]()
        for (number, replica) in replicas.enumerated() {
            var part = Document()
            let mine = (0..<fields).filter { $0 % replicas.count == number }.shuffled(using: &random)
            for (step, field) in mine.enumerated() {
                let stamp = HLCTimestamp(wallMilliseconds: 1_700_000_000_000 + UInt64(step), counter: 0, replica: replica)
                switch field % 3 {
                case 0: _ = part.set("f\(field)", to: .int(Int64(field)), at: stamp)
                case 1: _ = part.increment("f\(field)", by: Int64(field), at: stamp)
                default: _ = part.insert(.string("e\(field)"), intoSet: "f\(field)", at: stamp)
                }
            }
            parts.append(part)
        }
        var forward = Document()
        for part in parts { forward.merge(part) }
        var backward = Document()
        for part in parts.reversed() { backward.merge(part) }
        #expect(forward.count == fields)
        let bytes = forward.encoded()
        #expect(backward.encoded() == bytes, "the encoding depends on the merge order")
        let decoded = try Document(encoded: bytes)
        #expect(decoded == forward)
        #expect(decoded.encoded() == bytes)
    }
}
