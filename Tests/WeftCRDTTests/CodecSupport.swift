// Shared helpers for the Codec* test files: fixture paths, hex, a seeded generator, the
// registry of decodable types used by the fixture manifests, and random-state builders.
//
// Everything here is namespaced under `Codec...` names so it cannot collide with helpers in
// other test files of this module.

import Foundation
import Testing
import WeftCRDT

// MARK: - Fixtures and hex

enum CodecFixtures {
    /// `<package root>/Fixtures`, found from this file's path (Tests/WeftCRDTTests/CodecSupport.swift).
    static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // WeftCRDTTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()  // package root
        .appendingPathComponent("Fixtures", isDirectory: true)

    static let golden = root.appendingPathComponent("golden", isDirectory: true)
    static let malformed = root.appendingPathComponent("malformed", isDirectory: true)

    /// Set `WEFT_REGENERATE_FIXTURES=1` to rewrite the golden files from the current encoder.
    static var regenerate: Bool { ProcessInfo.processInfo.environment["WEFT_REGENERATE_FIXTURES"] == "1" }

    static func readText(_ url: URL) throws -> String { try String(contentsOf: url, encoding: .utf8) }

    static func writeText(_ text: String, to url: URL) throws {
        try FileManager.default.createDirectory(
            at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url, options: .atomic)
    }
}

enum CodecHex {
    static func encode(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef")
        var out = ""
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return out
    }

    /// Parses hex, ignoring whitespace. Returns nil for anything else.
    static func decode(_ text: String) -> [UInt8]? {
        var nibbles = [UInt8]()
        for scalar in text.unicodeScalars {
            switch scalar {
            case " ", "\n", "\t", "\r": continue
            case "0"..."9": nibbles.append(UInt8(scalar.value - 48))
            case "a"..."f": nibbles.append(UInt8(scalar.value - 87))
            case "A"..."F": nibbles.append(UInt8(scalar.value - 55))
            default: return nil
            }
        }
        guard nibbles.count % 2 == 0 else { return nil }
        return stride(from: 0, to: nibbles.count, by: 2).map { nibbles[$0] << 4 | nibbles[$0 + 1] }
    }
}

// MARK: - Deterministic randomness

/// The codec tests' random source: WeftCRDT's SplitMix64 with a few conveniences.
struct CodecRNG: RandomNumberGenerator {
    var base: SplitMix64
    init(seed: UInt64) { base = SplitMix64(seed: seed) }
    mutating func next() -> UInt64 { base.next() }
    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
    mutating func chance(_ percent: Int) -> Bool { below(100) < percent }
    mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }
}

// MARK: - Fixed identities and stamps

enum CodecIDs {
    static let a = ReplicaID(high: 1, low: 1)
    static let b = ReplicaID(high: 2, low: 2)
    static let c = ReplicaID(high: 3, low: 3)
    static let d = ReplicaID(high: 0x0102_0304_0506_0708, low: 0x090a_0b0c_0d0e_0f10)
    static let all = [a, b, c, d]

    /// 2023-11-14T22:13:20Z, a fixed wall time for golden values.
    static let epoch: UInt64 = 1_700_000_000_000

    static func stamp(_ offset: UInt64, _ counter: UInt32 = 0, _ replica: ReplicaID) -> HLCTimestamp {
        HLCTimestamp(wallMilliseconds: epoch + offset, counter: counter, replica: replica)
    }
}

// MARK: - Type registry

/// A type the fixture manifests can name: decodes bytes and re-encodes the result.
struct CodecSubject: Sendable {
    let name: String
    let tag: UInt8
    let reencode: @Sendable ([UInt8], DecodingLimits) throws(CodecError) -> [UInt8]

    static func of<T: BinaryCodable & SendableMetatype>(_ name: String, _ type: T.Type) -> CodecSubject {
        CodecSubject(name: name, tag: T.binaryTypeTag) { (bytes, limits) throws(CodecError) -> [UInt8] in
            try T(encoded: bytes, limits: limits).encoded()
        }
    }
}

typealias CodecNestedMap = ORMap<String, ORMap<String, PNCounter>>

enum CodecRegistry {
    static let subjects: [CodecSubject] = [
        .of("VersionVector", VersionVector.self),
        .of("CausalContext", CausalContext.self),
        .of("LWWRegister<String>", LWWRegister<String>.self),
        .of("LWWRegister<Double>", LWWRegister<Double>.self),
        .of("LWWRegister<Bool>", LWWRegister<Bool>.self),
        .of("LWWRegister<Int64?>", LWWRegister<Int64?>.self),
        .of("MVRegister<String>", MVRegister<String>.self),
        .of("GCounter", GCounter.self),
        .of("PNCounter", PNCounter.self),
        .of("ORSet<String>", ORSet<String>.self),
        .of("LWWMap<String,Int64>", LWWMap<String, Int64>.self),
        .of("LWWMap<Int,String?>", LWWMap<Int, String?>.self),
        .of("ORMap<String,GCounter>", ORMap<String, GCounter>.self),
        .of("ORMap<String,ORMap<String,PNCounter>>", CodecNestedMap.self),
        .of("Document", Document.self),
    ]

    static func subject(named name: String) -> CodecSubject? { subjects.first { $0.name == name } }
}

// MARK: - Random states built from operations

/// Runs random operations on 2–4 replicas, delivering some deltas early (which leaves gaps,
/// hence cloud dots in causal contexts) and merging whole states now and then.
struct CodecSimulation<State: CRDT> {
    var replicas: [ReplicaID]
    var states: [State]
    var wall: [UInt64]

    init(_ empty: State, rng: inout CodecRNG) {
        let count = 2 + rng.below(3)
        replicas = Array(CodecIDs.all.shuffled(using: &rng).prefix(count))
        states = Array(repeating: empty, count: count)
        wall = Array(repeating: CodecIDs.epoch, count: count)
    }

    /// A fresh stamp for replica `index`: small wall steps and counters so stamps share prefixes.
    mutating func stamp(_ index: Int, rng: inout CodecRNG) -> HLCTimestamp {
        if rng.chance(60) { wall[index] += UInt64(1 + rng.below(rng.chance(90) ? 5 : 100_000)) }
        return HLCTimestamp(
            wallMilliseconds: wall[index], counter: UInt32(rng.below(rng.chance(90) ? 4 : 70_000)),
            replica: replicas[index])
    }

    /// `operation(&state, index, &self, &rng)` mutates one replica and returns the delta.
    mutating func run(
        steps: Int, rng: inout CodecRNG,
        _ operation: (inout State, Int, inout CodecSimulation, inout CodecRNG) -> State
    ) {
        for _ in 0..<steps {
            let index = rng.below(states.count)
            if rng.chance(80) {
                var state = states[index]
                let delta = operation(&state, index, &self, &rng)
                states[index] = state
                if rng.chance(40) {
                    let other = rng.below(states.count)
                    states[other].merge(delta)
                }
            } else {
                let other = rng.below(states.count)
                states[other].merge(states[index])
            }
        }
    }

    /// One replica's state, or the join of all.
    mutating func sample(rng: inout CodecRNG) -> State {
        if rng.chance(20) {
            var joined = states[0]
            for state in states.dropFirst() { joined.merge(state) }
            return joined
        }
        return rng.pick(states)
    }
}

enum CodecGen {
    static let words = [
        "", "a", "b", "ab", "apple", "banana", "é", "e\u{0301}x", "日本語", "🎉", "user/1", "user/2",
        "user/10/name", "user/10/email", "user/11/name", "doc/é/1", String(repeating: "long", count: 40),
    ]

    static func string(_ rng: inout CodecRNG) -> String {
        if rng.chance(85) { return rng.pick(words) }
        let alphabet: [Character] = ["x", "y", "/", "0", "9", "ß", "€", "𝄞"]
        return String((0..<rng.below(12)).map { _ in rng.pick(alphabet) })
    }

    static func int64(_ rng: inout CodecRNG) -> Int64 {
        switch rng.below(5) {
        case 0: return Int64(rng.below(10))
        case 1: return -Int64(rng.below(1000))
        case 2: return rng.pick([Int64.min, Int64.max, -1, 63, 64, -64, -65])
        default: return Int64(bitPattern: rng.next())
        }
    }

    static func double(_ rng: inout CodecRNG) -> Double {
        switch rng.below(4) {
        case 0:
            return rng.pick([
                0.0, -0.0, 1.5, -2.25, .infinity, -.infinity, .leastNonzeroMagnitude,
                .greatestFiniteMagnitude,
            ])
        default: return Double(Int64(bitPattern: rng.next()) >> 20) / 1024
        }
    }

    static func scalar(_ rng: inout CodecRNG) -> Scalar {
        switch rng.below(6) {
        case 0: return .null
        case 1: return .bool(rng.chance(50))
        case 2: return .int(int64(&rng))
        case 3: return .double(double(&rng))
        case 4: return .string(string(&rng))
        default: return .bytes((0..<rng.below(6)).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
        }
    }

    static func versionVector(_ rng: inout CodecRNG) -> VersionVector {
        var vector = VersionVector()
        for replica in CodecIDs.all.shuffled(using: &rng).prefix(rng.below(5)) {
            vector[replica] = rng.chance(80) ? UInt64(1 + rng.below(200)) : rng.next() | 1
        }
        return vector
    }

    static func causalContext(_ rng: inout CodecRNG) -> CausalContext {
        var cloud = Set<Dot>()
        for _ in 0..<rng.below(8) {
            cloud.insert(Dot(replica: rng.pick(CodecIDs.all), counter: UInt64(1 + rng.below(40))))
        }
        return CausalContext(vector: versionVector(&rng), cloud: cloud)
    }

    static func gCounter(_ rng: inout CodecRNG) -> GCounter {
        var sim = CodecSimulation(GCounter(), rng: &rng)
        sim.run(steps: rng.below(20), rng: &rng) { state, index, sim, rng in
            state.increment(
                by: UInt64(rng.below(rng.chance(90) ? 10 : 1_000_000)), replica: sim.replicas[index])
        }
        return sim.sample(rng: &rng)
    }

    static func pnCounter(_ rng: inout CodecRNG) -> PNCounter {
        var sim = CodecSimulation(PNCounter(), rng: &rng)
        sim.run(steps: rng.below(20), rng: &rng) { state, index, sim, rng in
            state.increment(by: Int64(rng.below(200)) - 100, replica: sim.replicas[index])
        }
        return sim.sample(rng: &rng)
    }

    static func lwwRegister<V: BinaryCodable & Equatable & Sendable>(
        _ rng: inout CodecRNG, _ value: (inout CodecRNG) -> V
    ) -> LWWRegister<V> {
        var sim = CodecSimulation(
            LWWRegister(value(&rng), stamp: CodecIDs.stamp(0, 0, CodecIDs.a)), rng: &rng)
        sim.run(steps: rng.below(10), rng: &rng) { state, index, sim, rng in
            state.set(value(&rng), at: sim.stamp(index, rng: &rng))
        }
        return sim.sample(rng: &rng)
    }

    static func mvRegister(_ rng: inout CodecRNG) -> MVRegister<String> {
        var sim = CodecSimulation(MVRegister<String>(), rng: &rng)
        sim.run(steps: rng.below(16), rng: &rng) { state, index, sim, rng in
            state.set(string(&rng), by: sim.replicas[index])
        }
        return sim.sample(rng: &rng)
    }

    static func orSet(_ rng: inout CodecRNG) -> ORSet<String> {
        var sim = CodecSimulation(ORSet<String>(), rng: &rng)
        sim.run(steps: rng.below(30), rng: &rng) { state, index, sim, rng in
            let element = string(&rng)
            return rng.chance(65) ? state.insert(element, by: sim.replicas[index]) : state.remove(element)
        }
        return sim.sample(rng: &rng)
    }

    static func orSetScalar(_ rng: inout CodecRNG) -> ORSet<Scalar> {
        var sim = CodecSimulation(ORSet<Scalar>(), rng: &rng)
        sim.run(steps: rng.below(12), rng: &rng) { state, index, sim, rng in
            let element = scalar(&rng)
            return rng.chance(70) ? state.insert(element, by: sim.replicas[index]) : state.remove(element)
        }
        return sim.sample(rng: &rng)
    }

    static func lwwMap(_ rng: inout CodecRNG) -> LWWMap<String, Int64> {
        var sim = CodecSimulation(LWWMap<String, Int64>(), rng: &rng)
        sim.run(steps: rng.below(40), rng: &rng) { state, index, sim, rng in
            let key = string(&rng)
            let stamp = sim.stamp(index, rng: &rng)
            return rng.chance(75)
                ? state.set(key, to: int64(&rng), at: stamp) : state.removeValue(forKey: key, at: stamp)
        }
        return sim.sample(rng: &rng)
    }

    static func lwwMapIntKeys(_ rng: inout CodecRNG) -> LWWMap<Int, String?> {
        var sim = CodecSimulation(LWWMap<Int, String?>(), rng: &rng)
        sim.run(steps: rng.below(30), rng: &rng) { state, index, sim, rng in
            let key = Int(int64(&rng) % 300)
            let stamp = sim.stamp(index, rng: &rng)
            if rng.chance(20) { return state.removeValue(forKey: key, at: stamp) }
            return state.set(key, to: rng.chance(30) ? nil : string(&rng), at: stamp)
        }
        return sim.sample(rng: &rng)
    }

    static func orMap(_ rng: inout CodecRNG) -> ORMap<String, GCounter> {
        var sim = CodecSimulation(ORMap<String, GCounter>(), rng: &rng)
        sim.run(steps: rng.below(30), rng: &rng) { state, index, sim, rng in
            let key = string(&rng)
            let replica = sim.replicas[index]
            if rng.chance(25) { return state.removeValue(forKey: key) }
            let amount = UInt64(rng.below(9))
            return state.update(key, by: replica, default: GCounter()) {
                $0.increment(by: amount, replica: replica)
            }
        }
        return sim.sample(rng: &rng)
    }

    static func nestedMap(_ rng: inout CodecRNG) -> CodecNestedMap {
        var sim = CodecSimulation(CodecNestedMap(), rng: &rng)
        sim.run(steps: rng.below(25), rng: &rng) { state, index, sim, rng in
            let outer = rng.pick(["x", "y", "é"])
            let inner = string(&rng)
            let replica = sim.replicas[index]
            if rng.chance(15) { return state.removeValue(forKey: outer) }
            let amount = Int64(rng.below(20)) - 10
            let removeInner = rng.chance(20)
            return state.update(outer, by: replica, default: ORMap()) { map in
                if removeInner {
                    map.removeValue(forKey: inner)
                } else {
                    map.update(inner, by: replica, default: PNCounter()) {
                        $0.increment(by: amount, replica: replica)
                    }
                }
            }
        }
        return sim.sample(rng: &rng)
    }

    static func document(_ rng: inout CodecRNG, depth: Int = 0) -> Document {
        var sim = CodecSimulation(Document(), rng: &rng)
        sim.run(steps: rng.below(depth == 0 ? 24 : 8), rng: &rng) { state, index, sim, rng in
            let key = rng.pick(["title", "n", "tags", "meta", "é", ""])
            let stamp = sim.stamp(index, rng: &rng)
            switch rng.below(depth < 2 ? 7 : 6) {
            case 0, 1: return state.set(key, to: scalar(&rng), at: stamp)
            case 2: return state.increment(key, by: Int64(rng.below(11)) - 5, at: stamp)
            case 3: return state.insert(scalar(&rng), intoSet: key, at: stamp)
            case 4:
                let element =
                    state.set(key).flatMap { $0.sorted { $0.description < $1.description }.first } ?? .null
                return state.remove(element, fromSet: key, at: stamp)
            case 5: return state.removeField(key)
            default:
                let nested = document(&rng, depth: depth + 1)
                return state.updateMap(key, at: stamp) { $0 = nested }
            }
        }
        return sim.sample(rng: &rng)
    }

    /// A random state of the named registry type, encoded with its envelope.
    static func encoding(of name: String, _ rng: inout CodecRNG) -> [UInt8] {
        var visitor = CodecEncodingVisitor()
        visit(name, &rng, &visitor)
        return visitor.bytes
    }

    /// Builds a random state of the named registry type and hands it to `visitor`.
    static func visit(_ name: String, _ rng: inout CodecRNG, _ visitor: inout some CodecValueVisitor) {
        switch name {
        case "VersionVector": visitor.visit(versionVector(&rng))
        case "CausalContext": visitor.visit(causalContext(&rng))
        case "LWWRegister<String>": visitor.visit(lwwRegister(&rng, string))
        case "LWWRegister<Double>": visitor.visit(lwwRegister(&rng, double))
        case "LWWRegister<Bool>":
            visitor.visit(lwwRegister(&rng) { (rng: inout CodecRNG) -> Bool in rng.chance(50) })
        case "LWWRegister<Int64?>":
            visitor.visit(
                lwwRegister(&rng) { (rng: inout CodecRNG) -> Int64? in rng.chance(30) ? nil : int64(&rng) })
        case "MVRegister<String>": visitor.visit(mvRegister(&rng))
        case "GCounter": visitor.visit(gCounter(&rng))
        case "PNCounter": visitor.visit(pnCounter(&rng))
        case "ORSet<String>": visitor.visit(orSet(&rng))
        case "LWWMap<String,Int64>": visitor.visit(lwwMap(&rng))
        case "LWWMap<Int,String?>": visitor.visit(lwwMapIntKeys(&rng))
        case "ORMap<String,GCounter>": visitor.visit(orMap(&rng))
        case "ORMap<String,ORMap<String,PNCounter>>": visitor.visit(nestedMap(&rng))
        case "Document": visitor.visit(document(&rng))
        default: fatalError("no generator for \(name)")
        }
    }
}

/// Receives a generated value with its static type.
protocol CodecValueVisitor {
    mutating func visit<T: BinaryCodable & Equatable>(_ value: T)
}

struct CodecEncodingVisitor: CodecValueVisitor {
    var bytes: [UInt8] = []
    mutating func visit<T: BinaryCodable & Equatable>(_ value: T) { bytes = value.encoded() }
}

/// A stable 64-bit seed from a name (FNV-1a), so each type gets its own reproducible stream.
func codecSeed(_ name: String, _ salt: UInt64 = 0) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325 ^ salt
    for byte in name.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
    return hash
}

// MARK: - Golden values

/// A small deterministic value per type, stored as `Fixtures/golden/<file>.hex`.
struct CodecGolden: Sendable {
    let file: String
    let subject: String
    /// The encoding of the value built by the current code.
    let encode: @Sendable () -> [UInt8]
    /// Decodes `bytes` and checks the result equals the value.
    let decodesToValue: @Sendable ([UInt8]) throws(CodecError) -> Bool

    static func of<T: BinaryCodable & Equatable & SendableMetatype>(
        _ file: String, _ subject: String, _ make: @escaping @Sendable () -> T
    ) -> CodecGolden {
        CodecGolden(
            file: file, subject: subject, encode: { make().encoded() },
            decodesToValue: { (bytes) throws(CodecError) -> Bool in try T(encoded: bytes) == make() })
    }
}

enum CodecGoldenValues {
    typealias IDs = CodecIDs

    static let all: [CodecGolden] = [
        .of("VersionVector", "VersionVector") {
            VersionVector([IDs.a: 3, IDs.b: 1, IDs.c: 300])
        },
        .of("CausalContext", "CausalContext") {
            // (a,1…2) and (b,1) contiguous; (a,4) and (c,2) arrived out of order.
            CausalContext(
                vector: VersionVector([IDs.a: 2, IDs.b: 1]),
                cloud: [Dot(replica: IDs.a, counter: 4), Dot(replica: IDs.c, counter: 2)])
        },
        .of("LWWRegister_String", "LWWRegister<String>") {
            var register = LWWRegister("draft", stamp: IDs.stamp(0, 0, IDs.a))
            register.set("héllo", at: IDs.stamp(5, 1, IDs.b))
            return register
        },
        .of("LWWRegister_Double", "LWWRegister<Double>") {
            LWWRegister(-1.5, stamp: IDs.stamp(1, 2, IDs.c))
        },
        .of("LWWRegister_OptionalInt64", "LWWRegister<Int64?>") {
            LWWRegister<Int64?>(-42, stamp: IDs.stamp(2, 0, IDs.a))
        },
        .of("MVRegister_String", "MVRegister<String>") {
            var a = MVRegister<String>()
            var b = MVRegister<String>()
            a.set("red", by: IDs.a)
            b.merge(a)
            a.set("green", by: IDs.a)  // concurrent with b's write
            b.set("blue", by: IDs.b)
            a.merge(b)
            return a
        },
        .of("GCounter", "GCounter") {
            var counter = GCounter()
            counter.increment(by: 5, replica: IDs.a)
            counter.increment(by: 130, replica: IDs.b)
            return counter
        },
        .of("PNCounter", "PNCounter") {
            var counter = PNCounter()
            counter.increment(by: 10, replica: IDs.a)
            counter.increment(by: -3, replica: IDs.b)
            counter.increment(by: -1, replica: IDs.a)
            return counter
        },
        .of("ORSet_String", "ORSet<String>") {
            var a = ORSet<String>()
            var b = ORSet<String>()
            a.insert("apple", by: IDs.a)  // (a,1)
            a.insert("banana", by: IDs.a)  // (a,2)
            b.insert("cherry", by: IDs.b)  // (b,1)
            b.insert("apple", by: IDs.b)  // (b,2), concurrent with (a,1): apple keeps both dots
            b.merge(a)
            a.remove("banana")
            a.merge(b)  // banana stays removed: a has seen (a,2) and dropped it
            return a
        },
        .of("LWWMap_String_Int64", "LWWMap<String,Int64>") {
            var map = LWWMap<String, Int64>()
            map.set("user/alice", to: 1, at: IDs.stamp(0, 0, IDs.a))
            map.set("user/alina", to: -2, at: IDs.stamp(0, 0, IDs.a))  // same stamp: ordered by key bytes
            map.set("user/bob", to: 300, at: IDs.stamp(0, 3, IDs.a))
            map.set("user/dave", to: 5, at: IDs.stamp(0, 3, IDs.a))
            map.set("user/carol", to: 7, at: IDs.stamp(200, 0, IDs.b))
            map.removeValue(forKey: "user/bob", at: IDs.stamp(9, 1, IDs.a))  // a tombstone
            return map
        },
        .of("ORMap_String_GCounter", "ORMap<String,GCounter>") {
            var a = ORMap<String, GCounter>()
            var b = ORMap<String, GCounter>()
            a.update("likes", by: IDs.a, default: GCounter()) { $0.increment(by: 1, replica: IDs.a) }
            a.update("views", by: IDs.a, default: GCounter()) { $0.increment(by: 7, replica: IDs.a) }
            a.update("gone", by: IDs.a, default: GCounter()) { $0.increment(by: 1, replica: IDs.a) }
            b.merge(a)
            a.removeValue(forKey: "gone")
            b.update("likes", by: IDs.b, default: GCounter()) { $0.increment(by: 2, replica: IDs.b) }
            a.update("likes", by: IDs.a, default: GCounter()) { $0.increment(by: 1, replica: IDs.a) }
            a.merge(b)  // "likes" now has two concurrent versions
            return a
        },
        .of("ORMap_String_ORMap_String_PNCounter", "ORMap<String,ORMap<String,PNCounter>>") {
            var map = CodecNestedMap()
            map.update("row", by: IDs.a, default: ORMap()) { inner in
                inner.update("x", by: IDs.a, default: PNCounter()) { $0.increment(by: -4, replica: IDs.a) }
            }
            return map
        },
        .of("Document", "Document") {
            var doc = Document()
            doc.set("title", to: "Pump 7", at: IDs.stamp(0, 0, IDs.a))
            doc.increment("visits", by: 2, at: IDs.stamp(1, 0, IDs.a))
            doc.insert("valve", intoSet: "tags", at: IDs.stamp(2, 0, IDs.a))
            doc.updateMap("specs", at: IDs.stamp(3, 0, IDs.b)) { specs in
                specs.set("rpm", to: 1450, at: IDs.stamp(3, 0, IDs.b))
                specs.set("ok", to: true, at: IDs.stamp(3, 1, IDs.b))
            }
            return doc
        },
    ]
}
