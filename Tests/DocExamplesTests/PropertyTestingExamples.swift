// The examples of the "Property-testing merge laws" article, compiled and run.
import Testing
import WeftCRDT
import WeftTesting

struct MaxRegister: CRDT, BinaryCodable {
    var value: Int64 = 0
    mutating func merge(_ other: MaxRegister) { value = max(value, other.value) }
    func encode(to writer: inout BinaryWriter) { writer.writeSignedVarint(value) }
    init() {}
    init(from reader: inout BinaryReader) throws(CodecError) { value = try reader.readSignedVarint() }
}

let maxModel = CRDTModel<MaxRegister>(name: "MaxRegister", initial: MaxRegister()) { random in
    let candidate = Int64.random(in: 0...4, using: &random)
    return Operation("offer \(candidate)") { state, _ in
        state.value = max(state.value, candidate)
        var delta = MaxRegister()
        delta.value = state.value
        return delta
    }
}

@Suite("Doc examples: Property-testing merge laws")
struct PropertyTestingExamples {
    @Test func maxRegisterObeysTheLaws() async {
        await CRDTLawChecker.checkAll(maxModel)
    }

    @Test func highestReadingWins() async {
        await ResolverLawChecker.check(name: "max", resolve: { max($0, $1) }) { random in
            Int.random(in: 0...5, using: &random)
        }
    }

    @Test func averageIsCaught() async {
        await withKnownIssue {
            await ResolverLawChecker.check(name: "average", resolve: { ($0 + $1) / 2 }) { random in
                Int.random(in: 0...9, using: &random)
            }
        }
    }
}

let setModel = CRDTModel<ORSet<Int64>>(name: "ORSet", initial: ORSet()) { random in
    let element = Int64.random(in: 0...3, using: &random)
    return Operation("insert \(element)", intent: Intent(target: "s", kind: "insert") { $0.contains(element) }) { state, replica in
        state.insert(element, by: replica.replica)
    }
}

// `InventoryLevels` is the resolver of the conflict-resolution article (OfflineAndConflictExamples.swift).

@Suite("Doc examples: intents and record shapes")
struct PropertyTestingShapeExamples {
    @Test func setIntentsHold() async {
        await CRDTLawChecker.checkIntent(setModel)
    }

    @Test func inventoryLevelsIsAJoinOnRecordsShapedLikeOurs() async {
        let inventory = RecordShape([
            .register("stock", values: { .int(Int64.random(in: 0...2, using: &$0)) }),
            .set("bins", values: CRDTModels.scalar),
        ])
        await ResolverLawChecker.check(resolver: InventoryLevels(), name: "inventory") { inventory.concurrentRecords(&$0) }
    }
}
