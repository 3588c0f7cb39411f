import Testing
import Weft
import WeftCRDT

/// Issue #13, point 6: resolving with field rules is commutative, associative and idempotent on
/// every reachable record, whatever the values (integers and doubles above 2⁵³, NaN payloads)
/// and when a field changed kind.
@Suite("Field rules are joins")
struct FieldRuleLawTests {
    static let origin = ReplicaID(high: 0, low: 9)

    /// A record that edits `base` as `replica` at `wall`.
    static func edit(_ base: DocumentRecord, _ replica: ReplicaID, wall: UInt64, _ body: (inout Document, HLCTimestamp) -> Void)
        -> DocumentRecord
    {
        let stamp = HLCTimestamp(wallMilliseconds: wall, counter: 0, replica: replica)
        var document = base.body
        body(&document, stamp)
        var version = base.version
        version.increment(replica)
        return DocumentRecord(body: document, deletion: base.deletion.merged(with: LWWRegister(false, stamp: stamp)), version: version)
    }

    static var base: DocumentRecord {
        DocumentRecord(body: Document(), deletion: LWWRegister(false, stamp: HLCTimestamp(wallMilliseconds: 1, counter: 0, replica: origin)), version: VersionVector())
    }

    static func expectLaws(_ a: DocumentRecord, _ b: DocumentRecord, _ c: DocumentRecord, _ resolver: some ConflictResolver, _ what: String) {
        #expect(a.resolved(with: b, by: resolver) == b.resolved(with: a, by: resolver), "\(what): not commutative")
        #expect(
            a.resolved(with: b, by: resolver).resolved(with: c, by: resolver)
                == a.resolved(with: b.resolved(with: c, by: resolver), by: resolver), "\(what): not associative")
        for record in [a, b, c, a.resolved(with: b, by: resolver)] {
            #expect(record.resolved(with: record, by: resolver) == record, "\(what): not idempotent")
        }
    }

    /// 2⁵³ + 1 as an integer, 2⁵³ as an integer and 2⁵³ as a double: compared through `Double`
    /// they are all equal, and ties by stamp made the order go round in a circle.
    @Test func maxOverIntegersAndDoublesAboveTwoToTheFiftyThird() {
        let rules = FieldRulesResolver(rules: ["peak": .max])
        let big: Int64 = 1 << 53
        let x = Self.edit(Self.base, ReplicaID(high: 0, low: 1), wall: 10) { $0.set("peak", to: .int(big + 1), at: $1) }
        let y = Self.edit(Self.base, ReplicaID(high: 0, low: 2), wall: 30) { $0.set("peak", to: .int(big), at: $1) }
        let z = Self.edit(Self.base, ReplicaID(high: 0, low: 3), wall: 20) { $0.set("peak", to: .double(Double(big)), at: $1) }
        Self.expectLaws(x, y, z, rules, "max over wide numbers")
        Self.expectLaws(y, z, x, rules, "max over wide numbers")
    }

    @Test func minAndMaxOverNaNPayloadsAndSignedZeros() {
        let values: [Double] = [.nan, Double(bitPattern: 0x7ff8_0000_0000_0001), -.nan, 0.0, -0.0, .infinity]
        for rule in [FieldRule.max, .min] {
            let rules = FieldRulesResolver(rules: ["v": rule])
            let records = values.enumerated().map { index, value in
                Self.edit(Self.base, ReplicaID(high: 0, low: UInt64(index + 1)), wall: UInt64(10 + index)) { $0.set("v", to: .double(value), at: $1) }
            }
            for i in records.indices {
                let (a, b, c) = (records[i], records[(i + 1) % records.count], records[(i + 2) % records.count])
                Self.expectLaws(a, b, c, rules, "\(rule) over NaN and zeros")
            }
        }
    }

    /// One version writes a register, another makes the field a counter.
    @Test func rulesWhenAFieldChangedKind() {
        let rules = FieldRulesResolver(rules: ["level": .max])
        let a = Self.edit(Self.base, ReplicaID(high: 0, low: 1), wall: 10) { $0.set("level", to: 7, at: $1) }
        let b = Self.edit(Self.base, ReplicaID(high: 0, low: 2), wall: 20) { $0.set("level", to: 9, at: $1) }
        let c = Self.edit(Self.base, ReplicaID(high: 0, low: 3), wall: 30) { $0.increment("level", by: 2, at: $1) }
        Self.expectLaws(a, b, c, rules, "max when the kind changed")
        Self.expectLaws(c, a, b, rules, "max when the kind changed")
    }

    /// A record whose field already holds two concurrent writes (a join of two versions),
    /// resolved with itself.
    @Test func resolvingARecordWithItselfChangesNothing() {
        let rules = FieldRulesResolver(rules: ["peak": .max, "first": .earliest, "low": .min])
        let a = Self.edit(Self.base, ReplicaID(high: 0, low: 1), wall: 10) { $0.set("peak", to: 3, at: $1); $0.set("first", to: "a", at: $1); $0.set("low", to: 1, at: $1) }
        let b = Self.edit(Self.base, ReplicaID(high: 0, low: 2), wall: 20) { $0.set("peak", to: 5, at: $1); $0.set("first", to: "b", at: $1); $0.set("low", to: 0, at: $1) }
        let joined = DocumentRecord(body: a.body.merged(with: b.body), deletion: a.deletion.merged(with: b.deletion), version: a.version.merged(with: b.version))
        #expect(joined.resolved(with: joined, by: rules) == joined)
    }
}
