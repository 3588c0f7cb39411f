import Foundation
import Testing
import WeftCRDT

@testable import Weft

/// The patch a local write carries (`LocalWrite.patch`, found from the fields the editor
/// touched): joined into the record the write edited it gives the written record, and joined
/// into any later state of that record (other replicas' writes merged in) it gives that state
/// joined with the written record. So no edit is lost when a storage keeps patches instead of
/// records. Random documents with entries of several replicas, every kind of edit.
@Suite struct WritePatchTests {
    static let key = WeftTests.key("c", "d")

    /// One random edit of the editor.
    static func randomEdit(_ random: inout SeededRandom, fields: Int) -> @Sendable (inout DocumentEditor) throws(WeftError) -> Void {
        var steps = [(kind: Int, field: String, value: Int64)]()
        for _ in 0..<Int.random(in: 1...4, using: &random) {
            // Mostly existing fields, sometimes new ones.
            let field = "f\(Int.random(in: 0..<(fields + 20), using: &random))"
            steps.append((Int.random(in: 0..<7, using: &random), field, Int64.random(in: 0..<5, using: &random)))
        }
        let planned = steps
        return { editor throws(WeftError) in
            for step in planned {
                switch step.kind {
                case 0: editor.set(step.field, to: .int(step.value))
                case 1: editor.increment(step.field, by: step.value + 1)
                case 2: editor.insert(.int(step.value), intoSet: step.field)
                case 3: editor.remove(.int(step.value), fromSet: step.field)
                case 4: editor.updateMap(step.field) { map, stamp in map.set("n\(step.value)", to: .int(step.value), at: stamp) }
                case 5: editor.removeField(step.field)
                default: editor.set(step.field, to: .string("s\(step.value)"))
                }
            }
        }
    }

    /// A record written by `replicas` in turn, each edit applied to the previous record, with
    /// some replicas' writes made concurrently and joined.
    static func randomRecord(_ random: inout SeededRandom, replicas: [ReplicaID], fields: Int, wall: inout UInt64) throws -> DocumentRecord {
        var records = [DocumentKey: DocumentRecord]()
        let create: @Sendable (inout DocumentEditor) throws(WeftError) -> Void = { editor throws(WeftError) in
            for index in 0..<fields { editor.set("f\(index)", to: .int(Int64(index))) }
        }
        wall += 1
        var record = try Replica.apply(
            [Replica.Operation(key: key, expectation: .any, deleting: false, edit: create)],
            stamps: [HLCTimestamp(wallMilliseconds: wall, counter: 0, replica: replicas[0])], replicaID: replicas[0], to: &records)[0].record
        for _ in 0..<Int.random(in: 2...6, using: &random) {
            // Two replicas edit the same record concurrently; the results are joined.
            var branches = [DocumentRecord]()
            for replica in replicas.shuffled(using: &random).prefix(2) {
                wall += 1
                var given = [key: record]
                let write = try Replica.apply(
                    [Replica.Operation(key: key, expectation: .any, deleting: false, edit: randomEdit(&random, fields: fields))],
                    stamps: [HLCTimestamp(wallMilliseconds: wall, counter: 0, replica: replica)], replicaID: replica, to: &given)[0]
                branches.append(write.record)
            }
            for branch in branches { record.merge(branch) }
        }
        return record
    }

    @Test(arguments: [1 as UInt64, 2, 3, 4, 5, 6, 7, 8])
    func aPatchJoinsToTheWrite(seed: UInt64) throws {
        var random = SeededRandom(seed: seed)
        let replicas = (0..<3).map { ReplicaID(high: 7, low: UInt64.random(in: 1...UInt64.max, using: &random) | UInt64($0)) }
        var wall: UInt64 = 1_000
        var patched = 0
        for _ in 0..<25 {
            let fields = Replica.patchMinimumFields + 30 + Int.random(in: 0..<40, using: &random)
            let base = try Self.randomRecord(&random, replicas: replicas, fields: fields, wall: &wall)
            // A concurrent state: another replica's write joined into the base.
            let other = replicas[Int.random(in: 0..<3, using: &random)]
            var otherGiven = [Self.key: base]
            wall += 1
            let concurrent = try Replica.apply(
                [Replica.Operation(key: Self.key, expectation: .any, deleting: false, edit: Self.randomEdit(&random, fields: fields))],
                stamps: [HLCTimestamp(wallMilliseconds: wall, counter: 0, replica: other)], replicaID: other, to: &otherGiven)[0].record
            var later = base
            later.merge(concurrent)

            let writer = replicas[Int.random(in: 0..<3, using: &random)]
            var given = [Self.key: base]
            wall += 1
            let write = try Replica.apply(
                [Replica.Operation(key: Self.key, expectation: .any, deleting: false, edit: Self.randomEdit(&random, fields: fields))],
                stamps: [HLCTimestamp(wallMilliseconds: wall, counter: 0, replica: writer)], replicaID: writer, to: &given)[0]
            #expect(given.isEmpty, "the write took the record it edited")
            #expect(base.body.count >= Replica.patchMinimumFields, "the model keeps documents large enough")
            let patch = try #require(write.patch, "a write to a document of \(base.body.count) fields carries a patch")
            patched += 1
            #expect(patch.body.count <= 4, "the patch holds the touched fields only")
            var joined = base
            joined.merge(patch)
            #expect(joined == write.record, "base ⊔ patch is the write")
            var laterJoined = later
            laterJoined.merge(patch)
            var expected = later
            expected.merge(write.record)
            #expect(laterJoined == expected, "a later state ⊔ patch is that state ⊔ the write")
            #expect(write.record.delta(since: base).map { $0.body } == patch.body, "the same delta as found over the whole record")
        }
        #expect(patched == 25)
    }

    @Test func writesThatDoNotStartFromTheStoredRecordCarryNoPatch() throws {
        let replica = ReplicaID(high: 1, low: 2)
        var records = [DocumentKey: DocumentRecord]()
        let create: @Sendable (inout DocumentEditor) throws(WeftError) -> Void = { editor throws(WeftError) in
            for index in 0..<Replica.patchMinimumFields { editor.set("f\(index)", to: .int(Int64(index))) }
        }
        let stamp = { (wall: UInt64) in HLCTimestamp(wallMilliseconds: wall, counter: 0, replica: replica) }
        let created = try Replica.apply(
            [Replica.Operation(key: Self.key, expectation: .any, deleting: false, edit: create)], stamps: [stamp(1)], replicaID: replica, to: &records)
        #expect(created[0].patch == nil, "a new document")
        let base = created[0].record
        let edit: @Sendable (inout DocumentEditor) throws(WeftError) -> Void = { $0.set("f1", to: .int(9)) }
        // A whole value written, a delete, a key written twice in one commit, a raised floor.
        struct Value: Codable { var f1: Int }
        var given = [Self.key: base]
        let replaced = try Replica.apply(
            [Replica.Operation(key: Self.key, expectation: .any, deleting: false) { editor throws(WeftError) in try editor.replace(with: Value(f1: 3)) }],
            stamps: [stamp(2)], replicaID: replica, to: &given)
        #expect(replaced[0].patch == nil)
        given = [Self.key: base]
        #expect(try Replica.apply([Replica.Operation(key: Self.key, expectation: .any, deleting: true, edit: edit)], stamps: [stamp(3)], replicaID: replica, to: &given)[0].patch == nil)
        given = [Self.key: base]
        let twice = try Replica.apply(
            [Replica.Operation(key: Self.key, expectation: .any, deleting: false, edit: edit), Replica.Operation(key: Self.key, expectation: .any, deleting: false, edit: edit)],
            stamps: [stamp(4), stamp(5)], replicaID: replica, to: &given)
        #expect(twice.allSatisfy { $0.patch == nil })
        given = [Self.key: base]
        #expect(try Replica.apply([Replica.Operation(key: Self.key, expectation: .any, deleting: false, edit: edit)], stamps: [stamp(6)], replicaID: replica, floors: [1_000], to: &given)[0].patch == nil)
        given = [Self.key: base]
        #expect(try Replica.apply([Replica.Operation(key: Self.key, expectation: .any, deleting: false, edit: edit)], stamps: [stamp(7)], replicaID: replica, to: &given)[0].patch != nil)
    }
}
