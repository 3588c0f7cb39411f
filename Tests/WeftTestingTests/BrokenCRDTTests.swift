import Testing
import WeftCRDT
import WeftTesting

/// A max-register whose merge, mutation, delta or codec is deliberately broken in one way.
/// Each checker must catch its flaw: this proves the checkers can fail.
struct Broken: CRDT, BinaryCodable, CustomStringConvertible {
    enum Flaw: UInt8, Sendable { case none, takeOther, average, sum, decrement, wrongDelta, lossyCodec }
    var flaw: Flaw
    var value: Int64

    mutating func merge(_ other: Broken) {
        switch flaw {
        case .takeOther: value = other.value
        case .average: value = (value + other.value) / 2
        case .sum: value += other.value
        default: value = max(value, other.value)
        }
    }

    var description: String { "\(value)" }

    func encode(to writer: inout BinaryWriter) {
        writer.writeByte(flaw.rawValue)
        writer.writeSignedVarint(flaw == .lossyCodec ? value / 2 : value)
    }

    init(flaw: Flaw, value: Int64) {
        self.flaw = flaw
        self.value = value
    }

    init(from reader: inout BinaryReader) throws(CodecError) {
        let start = reader.offset
        guard let flaw = Flaw(rawValue: try reader.readByte()) else { throw .invalidTag(0, at: start, "Flaw") }
        self.init(flaw: flaw, value: try reader.readSignedVarint())
    }

    static func model(_ flaw: Flaw) -> CRDTModel<Broken> {
        CRDTModel(name: "Broken(\(flaw))", initial: Broken(flaw: flaw, value: 0)) { random in
            let amount = Int64.random(in: 1...3, using: &random)
            return Operation("bump \(amount)") { state, _ in
                switch flaw {
                case .decrement:
                    state.value -= amount
                    return state
                case .wrongDelta:
                    state.value += amount
                    return Broken(flaw: flaw, value: amount)  // the amount, not the new state
                default:
                    state.value += amount
                    return state
                }
            }
        }
    }
}

@Suite("Each law checker catches a CRDT that breaks its law")
struct BrokenCRDTTests {
    @Test func theCorrectVersionPasses() async {
        await CRDTLawChecker.checkAll(Broken.model(.none), count: 50)
    }

    @Test func commutativityCheckerCatchesTakeOther() async {
        await withKnownIssue { await CRDTLawChecker.checkCommutativity(Broken.model(.takeOther), count: 50) }
    }

    @Test func associativityCheckerCatchesAverage() async {
        await withKnownIssue { await CRDTLawChecker.checkAssociativity(Broken.model(.average), count: 50) }
    }

    @Test func idempotenceCheckerCatchesSum() async {
        await withKnownIssue { await CRDTLawChecker.checkIdempotence(Broken.model(.sum), count: 50) }
    }

    @Test func inflationCheckerCatchesDecrement() async {
        await withKnownIssue { await CRDTLawChecker.checkInflation(Broken.model(.decrement), count: 50) }
    }

    @Test func deltaCheckerCatchesWrongDelta() async {
        await withKnownIssue { await CRDTLawChecker.checkDeltas(Broken.model(.wrongDelta), count: 50) }
    }

    @Test func convergenceCheckerCatchesSum() async {
        await withKnownIssue { await CRDTLawChecker.checkConvergence(Broken.model(.sum), count: 50) }
    }

    @Test func convergenceCheckerCatchesTakeOther() async {
        await withKnownIssue { await CRDTLawChecker.checkConvergence(Broken.model(.takeOther), count: 50) }
    }

    @Test func codecCheckerCatchesLossyCodec() async {
        await withKnownIssue { await CRDTLawChecker.checkCodecRoundTrip(Broken.model(.lossyCodec), count: 50) }
    }

    @Test func resolverCheckerPassesMax() async {
        await ResolverLawChecker.check(name: "max", resolve: { max($0, $1) }) { random in Int.random(in: 0...5, using: &random) }
    }

    @Test func resolverCheckerCatchesSubtraction() async {
        await withKnownIssue {
            await ResolverLawChecker.check(name: "minus", count: 50, resolve: { $0 - $1 }) { random in
                Int.random(in: 0...5, using: &random)
            }
        }
    }

    @Test func resolverCheckerCatchesAverage() async {
        await withKnownIssue {
            await ResolverLawChecker.check(name: "average", count: 50, resolve: { ($0 + $1) / 2 }) { random in
                Int.random(in: 0...9, using: &random)
            }
        }
    }
}

/// An OR-map of OR-sets: each set has a causal context of its own, so a set removed and made
/// again hands out dots it already used. This is how `Document` worked before format version 2,
/// and the intent checker must catch it.
enum DotReusingDocument {
    typealias State = ORMap<String, ORSet<Int64>>

    static let model = CRDTModel<State>(name: "ORMap of ORSets", initial: State()) { random in
        let key = ["a", "b"].randomElement(using: &random) ?? "a"
        let value = Int64.random(in: 0...3, using: &random)
        let visible: @Sendable (State) -> Bool = { $0[key]?.contains(value) == true }
        switch Int.random(in: 0..<3, using: &random) {
        case 0:
            return Operation("insert \(value) into \(key)", intent: Intent(target: key, kind: "set", isVisible: visible)) { state, replica in
                state.update(key, by: replica.replica, default: ORSet()) { $0.insert(value, by: replica.replica) }
            }
        case 1:
            return Operation("remove \(key), then insert \(value)", intent: Intent(target: key, kind: "set", isVisible: visible)) { state, replica in
                var delta = state.removeValue(forKey: key)
                delta.merge(state.update(key, by: replica.replica, default: ORSet()) { $0.insert(value, by: replica.replica) })
                return delta
            }
        default:
            return Operation("remove \(key)") { state, _ in state.removeValue(forKey: key) }
        }
    }
}

/// The `max` rule as it was: numbers compared through `Double` (2⁵³ and 2⁵³ + 1 look equal),
/// integers compared as integers, ties to the later stamp, the whole winning body kept. Its
/// order goes round in a circle, so the result depends on the grouping.
struct DoubleCastMax: ConflictResolver {
    static func numeric(_ scalar: Scalar?) -> Double? {
        switch scalar {
        case .int(let value)?: return Double(value)
        case .double(let value)?: return value
        default: return nil
        }
    }

    func resolve(_ a: DocumentRecord, _ b: DocumentRecord) -> Document {
        let (x, y) = (a.body.scalar("peak"), b.body.scalar("peak"))
        if case .int(let i)? = x, case .int(let j)? = y, i != j { return i > j ? a.body : b.body }
        if let p = Self.numeric(x), let q = Self.numeric(y), p != q { return p > q ? a.body : b.body }
        return a.lastStamp >= b.lastStamp ? a.body : b.body
    }
}

@Suite("The intent and resolver checkers catch what they look for")
struct BrokenIntentTests {
    /// 200 random histories missed the reuse in 2 of 100 runs; the check stops at the first
    /// history that shows it, so 1,000 cost no more when it is found, and miss about 3 times in
    /// 10⁹ (0.02⁵).
    @Test func theIntentCheckerCatchesADocumentThatReusesDots() async {
        await withKnownIssue { await CRDTLawChecker.checkIntent(DotReusingDocument.model, count: 1_000) }
    }

    @Test func theDocumentPassesTheIntentCheck() async {
        await CRDTLawChecker.checkIntent(CRDTModels.document, count: 200)
    }

    static let wide: RecordShape = RecordShape(
        [.register("peak", values: { random in [Scalar.int(1 << 53), .int((1 << 53) + 1), .double(9_007_199_254_740_992)].randomElement(using: &random) ?? .null })],
        removals: 0, kindChanges: 0)

    @Test func theResolverCheckerCatchesANonTransitiveRule() async {
        await withKnownIssue {
            await ResolverLawChecker.check(resolver: DoubleCastMax(), name: "max through Double", count: 200) { Self.wide.concurrentRecords(&$0) }
        }
    }

    @Test func theShippedMaxRulePassesOnTheSameRecords() async {
        await ResolverLawChecker.check(resolver: FieldRulesResolver(rules: ["peak": .max]), name: "max", count: 200) { Self.wide.concurrentRecords(&$0) }
    }

    /// The example resolver the docs used to print: equal stocks go to the first argument.
    @Test func theResolverCheckerCatchesAnOrderDependentTie() async {
        let shape = RecordShape([.register("stock", values: { .int(Int64.random(in: 0...1, using: &$0)) }), .register("note", values: CRDTModels.scalar)])
        await withKnownIssue {
            await ResolverLawChecker.check(
                resolver: ResolverFunction { a, b in (a.body.int("stock") ?? 0) >= (b.body.int("stock") ?? 0) ? a.body : b.body },
                name: "larger stock, ties to the first", count: 200
            ) { shape.concurrentRecords(&$0) }
        }
    }

    @Test func everyShippedRuleIsAJoin() async {
        for rule in FieldRule.allCases {
            await ResolverLawChecker.check(resolver: FieldRulesResolver(rules: ["r0": rule, "r1": rule, "m": rule]), name: "\(rule)", count: 100)
        }
    }
}
