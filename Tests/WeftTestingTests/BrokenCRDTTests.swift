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
