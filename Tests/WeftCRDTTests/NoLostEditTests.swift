import Testing
import WeftCRDT

private let r1 = ReplicaID(high: 0, low: 1)
private let r2 = ReplicaID(high: 0, low: 2)

private func at(_ wall: UInt64, _ replica: ReplicaID) -> HLCTimestamp {
    HLCTimestamp(wallMilliseconds: wall, counter: 0, replica: replica)
}

/// Targeted counterexamples: an edit made after a field was removed and re-created, or two
/// writes of one field with one stamp, must survive every merge (issue #13, points 1 and 2).
@Suite("No lost edit in a document")
struct NoLostEditTests {
    /// Found by the law checker in CI on 2026-12-05 (its seed OU65K8qfweugUuz507n//qTlK4oOKl9GYCEzhMrzNuw=):
    /// B holds set `b` only as an element that came in a delta, without the set's mark, beside
    /// its own register write of `b`. A restore of another field (`assign(matching:)`) marked
    /// `b` as a set, a new write of `b` that nobody asked for; A, which had seen the element and
    /// then wrote `b` as a register, came back to an empty set hiding its write. A field that
    /// already shows what the target shows is left alone.
    @Test func aRestoreDoesNotWriteAFieldThatAlreadyAgrees() {
        var a = Document()
        a.insert("x", intoSet: "b", at: at(1, r1))
        let element = a.insert(1, intoSet: "b", at: at(2, r1))  // a delta that carries no mark
        var b = Document()
        b.set("b", to: false, at: at(1, r2))
        b.merge(element)
        #expect(b.set("b") == [1])
        // B restores field "a" (absent): "b" already shows what the target shows.
        var target = b
        target.removeField("a")
        let before = b
        _ = b.assign(matching: target, at: at(3, r2))
        #expect(b == before, "the restore wrote a field that already agreed: \(b)")
        // A, having seen the element, writes "b" as a register.
        var later = a
        later.set("b", to: 9, at: at(4, r1))
        for merged in [later.merged(with: b), b.merged(with: later)] {
            #expect(merged.int("b") == 9, "the register write is hidden: \(merged)")
        }
    }

    /// The same for a nested document (found by the Document law checker, seed
    /// `yQOG9UNaqgKA+vMyQvUTDdSvT8hH9KD9aaQBTBQjUL8=`): B removed nested document "c", then
    /// joined A's later edit inside it, so B's "c" shows a field but holds no mark. A restore of
    /// another field at B must leave "c" alone: a new mark would be a write of "c" as a nested
    /// document that A never saw, and would hide A's concurrent set in "c".
    @Test func aRestoreDoesNotMarkANestedDocumentThatAlreadyAgrees() {
        var a = Document()
        a.updateMap("c", at: at(1, r1)) { $0.set("x", to: "é", at: at(1, r1)) }
        var b = a
        b.removeField("c")
        a.updateMap("c", at: at(2, r1)) { $0.set("x", to: .null, at: at(2, r1)) }
        b.merge(a)
        #expect(b.map("c")?.scalar("x") == .null)
        var target = b
        target.removeField("a")
        let before = b
        _ = b.assign(matching: target, at: at(3, r2))
        #expect(b == before, "the restore wrote a nested document that already agreed: \(b)")
        // A, having seen all of "c", makes it a set.
        a.insert(2, intoSet: "c", at: at(4, r1))
        for merged in [a.merged(with: b), b.merged(with: a)] {
            #expect(merged.set("c") == [2], "the set is hidden: \(merged)")
        }
    }

    /// A removes the set and re-creates it with `y`; B, concurrently, adds `z` to the old set.
    @Test func anElementAddedToARecreatedSetSurvivesAConcurrentUpdateOfTheOldSet() {
        var a = Document()
        a.insert("x", intoSet: "tags", at: at(1, r1))
        var b = a
        b.insert("z", intoSet: "tags", at: at(2, r2))
        a.removeField("tags")
        a.insert("y", intoSet: "tags", at: at(3, r1))
        for merged in [a.merged(with: b), b.merged(with: a)] {
            #expect(merged.set("tags")?.contains("y") == true, "the element added after the re-creation was lost: \(merged)")
            #expect(merged.set("tags")?.contains("z") == true, "the concurrent addition was lost: \(merged)")
            #expect(merged.set("tags")?.contains("x") == false, "A removed x after seeing it: \(merged)")
        }
    }

    /// The same with a nested document: the field added after the re-creation survives.
    @Test func aFieldOfARecreatedNestedDocumentSurvivesAConcurrentUpdateOfTheOldOne() {
        var a = Document()
        a.updateMap("site", at: at(1, r1)) { $0.set("name", to: "Plant", at: at(1, r1)) }
        var b = a
        b.updateMap("site", at: at(2, r2)) { $0.set("floor", to: 3, at: at(2, r2)) }
        a.removeField("site")
        a.updateMap("site", at: at(3, r1)) { $0.set("gate", to: "north", at: at(3, r1)) }
        for merged in [a.merged(with: b), b.merged(with: a)] {
            #expect(merged.map("site")?.string("gate") == "north", "the field added after the re-creation was lost: \(merged)")
            #expect(merged.map("site")?.int("floor") == 3, "the concurrent update was lost: \(merged)")
        }
    }

    /// A re-created counter counts from zero; its increments are not hidden by the old tally.
    @Test func incrementsOfARecreatedCounterAreNotHiddenByTheOldTally() {
        var a = Document()
        a.increment("n", by: 5, at: at(1, r1))
        var b = a
        b.increment("n", by: 1, at: at(2, r2))
        a.removeField("n")
        a.increment("n", by: 2, at: at(3, r1))
        #expect(a.counter("n") == 2)
        for merged in [a.merged(with: b), b.merged(with: a)] {
            // A removed its own 5 after seeing it; B's concurrent 1 and A's new 2 both count.
            #expect(merged.counter("n") == 3, "\(merged)")
        }
    }

    /// A removal and re-creation of the whole document's fields by one replica, merged with a
    /// replica that saw only the old fields: nothing added afterwards disappears.
    @Test func reusingNoIdentityAfterManyRemovals() {
        var a = Document()
        var b = Document()
        for round in 0..<5 {
            let wall = UInt64(10 * round + 1)
            a.insert(.int(Int64(round)), intoSet: "s", at: at(wall, r1))
            a.updateMap("m", at: at(wall, r1)) { $0.set("k\(round)", to: .int(Int64(round)), at: at(wall, r1)) }
            a.increment("c", by: 1, at: at(wall, r1))
            b.merge(a)
            b.insert(.int(100 + Int64(round)), intoSet: "s", at: at(wall + 1, r2))
            a.removeField("s")
            a.removeField("m")
            a.removeField("c")
        }
        a.insert(.int(7), intoSet: "s", at: at(100, r1))
        a.updateMap("m", at: at(100, r1)) { $0.set("last", to: true, at: at(100, r1)) }
        a.increment("c", by: 1, at: at(100, r1))
        let merged = a.merged(with: b)
        #expect(merged.set("s")?.contains(.int(7)) == true, "\(merged)")
        #expect(merged.map("m")?.bool("last") == true, "\(merged)")
        #expect(merged.counter("c") == 1, "\(merged)")
        #expect(merged == b.merged(with: a))
    }

    /// Two writes of one field with one stamp (one edit closure): the second wins, here and
    /// after any merge.
    @Test func theLastOfTwoWritesWithOneStampWins() {
        for (first, second) in [("closed", "open"), ("open", "closed")] {
            var doc = Document()
            let stamp = at(5, r1)
            doc.set("status", to: .string(first), at: stamp)
            doc.set("status", to: .string(second), at: stamp)
            #expect(doc.string("status") == second)
            var nested = Document()
            nested.updateMap("m", at: stamp) { map in
                map.set("status", to: .string(first), at: stamp)
                map.set("status", to: .string(second), at: stamp)
            }
            #expect(nested.map("m")?.string("status") == second)
            var other = Document()
            other.set("title", to: "t", at: at(1, r2))
            #expect(doc.merged(with: other).string("status") == second)
            #expect(other.merged(with: doc).string("status") == second)
        }
    }
}
