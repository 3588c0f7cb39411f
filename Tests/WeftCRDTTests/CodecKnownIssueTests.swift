// Codec properties at the edges of Swift's own equality. Each test states the property from the
// BinaryCodable documentation. Where Swift's `==` is coarser than the bytes (String's canonical
// equivalence, Double's signed zero) the byte-identity check is a documented limitation and is
// wrapped in `withKnownIssue`; everything Weft controls is asserted outright.

import Testing
import WeftCRDT

@Suite("Codec known issues")
struct CodecKnownIssueTests {
    static let composed = "\u{00E9}"  // é, NFC: c3 a9
    static let decomposed = "e\u{0301}"  // é, NFD: 65 cc 81

    /// BinaryCodable: "deterministic: equal values encode to identical bytes".
    /// Swift's String == is canonical equivalence, so NFC and NFD spellings are == but encode differently.
    @Test("equal strings in canonically equivalent spellings encode identically")
    func canonicalEquivalence() {
        #expect(Self.composed == Self.decomposed)
        let stamp = CodecIDs.stamp(0, 0, CodecIDs.a)
        let one = LWWRegister(Self.composed, stamp: stamp)
        let two = LWWRegister(Self.decomposed, stamp: stamp)
        #expect(one == two)
        withKnownIssue("String values are compared by canonical equivalence but encoded byte for byte") {
            #expect(one.encoded() == two.encoded())
        }
    }

    /// Converged replicas must hold the same bytes, or a digest-based sync never settles.
    @Test("replicas that converge hold identical encodings")
    func convergedReplicasEncodeIdentically() {
        var a = ORSet<String>()
        var b = ORSet<String>()
        a.insert(Self.composed, by: CodecIDs.a)
        b.insert(Self.decomposed, by: CodecIDs.b)
        let ab = a.merged(with: b)
        let ba = b.merged(with: a)
        #expect(ab == ba)
        withKnownIssue("the merge keeps whichever spelling of the element it met first") {
            #expect(ab.encoded() == ba.encoded())
        }
    }

    /// Hashable requires a == b ⇒ hash(a) == hash(b), even for field names spelled differently.
    @Test("equal documents hash equally")
    func documentHashMatchesEquality() {
        var one = Document()
        var two = Document()
        one.set(Self.composed, to: .string("x"), at: CodecIDs.stamp(0, 0, CodecIDs.a))
        two.set(Self.decomposed, to: .string("x"), at: CodecIDs.stamp(0, 0, CodecIDs.a))
        #expect(one == two)
        #expect(one.hashValue == two.hashValue)
    }

    /// Scalars compare strings byte for byte, so their equality agrees with their encoding.
    @Test("scalar strings are equal exactly when their bytes are")
    func scalarStringsAreExact() {
        #expect(Scalar.string(Self.composed) != Scalar.string(Self.decomposed))
        #expect(Scalar.string(Self.composed) == Scalar.string("\u{00E9}"))
        #expect(Set([Scalar.string(Self.composed), .string(Self.decomposed)]).count == 2)
    }

    /// Double == treats 0.0 and -0.0 as equal; the encoding keeps the sign bit.
    /// (Scalar avoids this by comparing bit patterns; plain LWWRegister<Double> does not.)
    @Test("equal doubles encode identically")
    func signedZero() {
        let stamp = CodecIDs.stamp(0, 0, CodecIDs.a)
        let positive = LWWRegister(0.0, stamp: stamp)
        let negative = LWWRegister(-0.0, stamp: stamp)
        #expect(positive == negative)
        withKnownIssue("Double == ignores the sign of zero but the encoding does not") {
            #expect(positive.encoded() == negative.encoded())
        }
        // The merge still picks one winner by bytes, whatever the order.
        #expect(positive.merged(with: negative).encoded() == negative.merged(with: positive).encoded())
    }

    /// BinaryCodable: decoding "never traps or allocates more than a small multiple of the input,
    /// whatever the bytes", and CodecError: "never runs for longer than linear time in the input".
    /// LWWMap's front coding shares at most 64 bytes with the previous key, so each entry
    /// carries all but 64 bytes of its key and the output stays within a small multiple.
    @Test("LWWMap decoding stays within a small multiple of the input size")
    func lwwMapFrontCodingAmplification() throws {
        let length = 1_500
        let count = 1_500
        let prefix = String(repeating: "k", count: length - 4)
        var map = LWWMap<String, Bool>()
        for index in 0..<count {
            let key = prefix + String(10_000 + index).suffix(4)
            map.set(key, to: true, at: CodecIDs.stamp(0, UInt32(index), CodecIDs.a))
        }
        let bytes = map.encoded()
        let clock = ContinuousClock()
        let start = clock.now
        let decoded = try LWWMap<String, Bool>(encoded: bytes)
        let elapsed = start.duration(to: clock.now)
        #expect(decoded == map)
        #expect(decoded.entries.count == count)
        let keyBytes = decoded.entries.keys.reduce(0) { $0 + $1.utf8.count }
        let ratio = keyBytes / bytes.count
        print(
            "Codec: LWWMap of \(count) keys × \(length) bytes: \(bytes.count) input bytes decode to \(keyBytes) key bytes (×\(ratio)) in \(elapsed)"
        )
        #expect(ratio <= 16, "\(bytes.count) input bytes decode to \(keyBytes) bytes of keys")
    }
}
