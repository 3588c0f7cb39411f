import Foundation
import Testing

@testable import WeftCRDT

/// Arrays in the Codable bridge: a nested document keyed by positions, so concurrent insertions
/// all stay, in an order every replica agrees on, and a removal removes (issue #17).
@Suite("The Codable bridge: arrays")
struct ListBridgeTests {
    struct Part: Codable, Sendable, Equatable {
        var name: String
        @Counter var count: Int64
    }

    struct Order: Codable, Sendable, Equatable {
        var title: String
        var steps: [String]
        var parts: [Part]
        var grid: [[Int]]
        var notes: [String: [String]]
    }

    struct Steps: Codable, Sendable, Equatable {
        var steps: [String]
    }

    static func stamp(_ wall: UInt64, _ replica: ReplicaID) -> HLCTimestamp {
        HLCTimestamp(wallMilliseconds: wall, counter: 0, replica: replica)
    }

    /// The keys of list field `field`, in order (without the removed ones).
    static func keys(_ document: Document, _ field: String = "steps") -> [String] {
        guard let list = document.map(field) else { return [] }
        return ListPosition.orderedKeys(list)
    }

    @Test func arraysRoundTrip() throws {
        let order = Order(
            title: "Pump", steps: ["drain", "open", "replace", "close"],
            parts: [Part(name: "valve", count: 2), Part(name: "gasket", count: 0)], grid: [[1, 2], [], [3]],
            notes: ["ana": ["call first", "bring keys"]])
        let document = try Document(encoding: order, at: Self.stamp(1, ReplicaID(high: 1, low: 1)))
        #expect(try document.decode(Order.self) == order)
        // Through the binary codec too.
        #expect(try Document(encoded: document.encoded()).decode(Order.self) == order)
        let empty = Order(title: "", steps: [], parts: [], grid: [], notes: [:])
        #expect(try Document(encoding: empty, at: Self.stamp(1, ReplicaID(high: 1, low: 1))).decode(Order.self) == empty)
        // Keys are positions in order.
        let keys = Self.keys(document)
        #expect(keys.count == 4 && keys == keys.sorted())
    }

    /// Writing an array again keeps the keys of the elements that stay: an insertion gets a key
    /// between its neighbours', a removal removes one field, and nothing else is written.
    @Test func aWriteTouchesOnlyWhatChanged() throws {
        let replica = ReplicaID(high: 1, low: 1)
        var document = try Document(encoding: Steps(steps: ["a", "b", "c", "d"]), at: Self.stamp(1, replica))
        var copy = document
        let before = Self.keys(document)
        let delta = try document.update(from: Steps(steps: ["a", "b", "x", "c"]), at: Self.stamp(2, replica))
        let after = Self.keys(document)
        #expect(after.count == 4)
        #expect(Array(after[0..<2]) == Array(before[0..<2]) && after[3] == before[2], "kept elements keep their keys")
        #expect(after[2] > before[1] && after[2] < before[2], "the insertion sits between its neighbours")
        #expect(ListPosition.removed(try #require(document.map("steps"))) == [.string(before[3])])
        #expect(try document.decode(Steps.self).steps == ["a", "b", "x", "c"])
        // The delta brings another copy up to date.
        copy.merge(try Document(encoded: delta.encoded()))
        #expect(copy == document)
        // Writing the same array again changes nothing.
        #expect(try document.update(from: Steps(steps: ["a", "b", "x", "c"]), at: Self.stamp(3, replica)) == Document())
        // A scalar replaced by another is a new element, between the same neighbours.
        _ = try document.update(from: Steps(steps: ["a", "B", "x", "c"]), at: Self.stamp(4, replica))
        let replaced = Self.keys(document)
        #expect(replaced[0] == after[0] && Array(replaced[2...]) == Array(after[2...]))
        #expect(replaced[1] != after[1] && replaced[1] > after[0] && replaced[1] < after[2])
        #expect(try document.decode(Steps.self).steps == ["a", "B", "x", "c"])
    }

    /// Two replicas insert runs at the same place at once: both runs stay, each in one piece, in
    /// the same order on every replica.
    @Test func concurrentRunsStayWholeAndAgree() throws {
        let a = ReplicaID(high: 1, low: 1)
        let b = ReplicaID(high: 2, low: 2)
        let base = try Document(encoding: Steps(steps: ["start", "end"]), at: Self.stamp(1, a))
        var fromA = base
        _ = try fromA.update(from: Steps(steps: ["start", "a1", "a2", "a3", "end"]), at: Self.stamp(2, a))
        var fromB = base
        _ = try fromB.update(from: Steps(steps: ["start", "b1", "b2", "b3", "end"]), at: Self.stamp(3, b))
        let one = try fromA.merged(with: fromB).decode(Steps.self).steps
        let other = try fromB.merged(with: fromA).decode(Steps.self).steps
        #expect(one == other)
        #expect(one.first == "start" && one.last == "end" && one.count == 8)
        let runs = [one.joined(separator: ","), other.joined(separator: ",")]
        for run in runs {
            #expect(run.contains("a1,a2,a3") && run.contains("b1,b2,b3"), "\(run)")
        }
    }

    /// Struct elements merge field by field: concurrent increments of one element's counter all
    /// count; an element removed while another replica edits it stays removed (a removal wins
    /// over changes inside the element), and the document still decodes.
    @Test func structElementsMergeAsFields() throws {
        struct Job: Codable, Equatable {
            var parts: [Part]
        }
        let a = ReplicaID(high: 1, low: 1)
        let b = ReplicaID(high: 2, low: 2)
        let base = try Document(encoding: Job(parts: [Part(name: "valve", count: 1), Part(name: "seal", count: 1)]), at: Self.stamp(1, a))
        var fromA = base
        var job = try fromA.decode(Job.self)
        job.parts[0].count += 2
        job.parts.remove(at: 1)
        _ = try fromA.update(from: job, at: Self.stamp(2, a))
        var fromB = base
        job = try fromB.decode(Job.self)
        job.parts[0].count += 1
        job.parts[1].name = "seal ring"
        job.parts[1].count += 5
        _ = try fromB.update(from: job, at: Self.stamp(3, b))
        for merged in [fromA.merged(with: fromB), fromB.merged(with: fromA)] {
            let result = try merged.decode(Job.self)
            #expect(result.parts == [Part(name: "valve", count: 4)], "\(result.parts)")
        }
        // The next write clears what the concurrent edit left of the removed element.
        var merged = fromA.merged(with: fromB)
        _ = try merged.update(from: try merged.decode(Job.self), at: Self.stamp(4, a))
        #expect(merged.map("parts")?.keys.count == 2, "the element left and the removed keys")
    }

    /// Histories of single insertions and removals on three replicas that merge now and then,
    /// against a model: every element inserted and not removed is there, none removed is, the
    /// replicas agree once they have merged everything, and no two elements ever change order.
    @Test(arguments: [1, 2, 3, 4, 5, 6])
    func randomHistoriesKeepEveryInsertion(_ seed: UInt64) throws {
        var random = SplitMix64(seed: seed)
        let replicas = (0..<3).map { ReplicaID(high: UInt64($0 + 1), low: seed) }
        var documents = Array(repeating: try Document(encoding: Steps(steps: ["s0", "s1"]), at: Self.stamp(1, replicas[0])), count: 3)
        var inserted: Set<String> = ["s0", "s1"]
        var removed = Set<String>()
        var orders = [[String]]()
        var wall: UInt64 = 2
        for step in 0..<240 {
            let index = Int(random.next() % 3)
            if random.next() % 5 == 0 {
                let other = Int(random.next() % 3)
                documents[index].merge(documents[other])
            } else {
                var steps = try documents[index].decode(Steps.self).steps
                if steps.isEmpty || random.next() % 3 != 0 {
                    let token = "t\(step)"
                    steps.insert(token, at: Int(random.next() % UInt64(steps.count + 1)))
                    inserted.insert(token)
                } else {
                    removed.insert(steps.remove(at: Int(random.next() % UInt64(steps.count))))
                }
                wall += 1
                let delta = try documents[index].update(from: Steps(steps: steps), at: Self.stamp(wall, replicas[index]))
                // Deltas and whole states merge alike: send this one to a random replica.
                let receiver = Int(random.next() % 3)
                if receiver != index { documents[receiver].merge(delta) }
            }
            let decoded = try documents[index].decode(Steps.self).steps
            orders.append(decoded)
            // The JSON projection shows the list as the array the app decodes (issue #18).
            let shown = documents[index].jsonValue
            let expected = JSONValue.object(["steps": .array(decoded.map { .string($0) })])
            #expect(shown == expected || (decoded.isEmpty && shown == .object(["steps": .object([:])])), "seed \(seed), step \(step): \(shown.text)")
        }
        let merged = documents[0].merged(with: documents[1]).merged(with: documents[2])
        let reversed = documents[2].merged(with: documents[1]).merged(with: documents[0])
        let result = try merged.decode(Steps.self).steps
        #expect(result == (try reversed.decode(Steps.self).steps), "merges agree")
        #expect(Set(result) == inserted.subtracting(removed), "seed \(seed)")
        #expect(result.count == Set(result).count)
        // Every order a replica saw holds in the end.
        let position = Dictionary(uniqueKeysWithValues: result.enumerated().map { ($1, $0) })
        for seen in orders {
            let kept = seen.compactMap { position[$0] }
            #expect(kept == kept.sorted(), "an order changed (seed \(seed))")
        }
    }

    /// A scalar element replaced by another is a removal and an insertion, not a change in
    /// place: a concurrent removal of the old element does not take the new one with it, and
    /// two replicas replacing one element concurrently both keep theirs.
    @Test func aReplacedScalarIsANewElement() throws {
        let a = ReplicaID(high: 1, low: 1)
        let b = ReplicaID(high: 2, low: 2)
        let base = try Document(encoding: Steps(steps: ["a", "b", "c"]), at: Self.stamp(1, a))
        var fromA = base
        _ = try fromA.update(from: Steps(steps: ["a", "d", "c"]), at: Self.stamp(2, a))
        var fromB = base
        _ = try fromB.update(from: Steps(steps: ["a", "c"]), at: Self.stamp(3, b))
        #expect(try fromA.merged(with: fromB).decode(Steps.self).steps == ["a", "d", "c"])
        var alsoB = base
        _ = try alsoB.update(from: Steps(steps: ["a", "e", "c"]), at: Self.stamp(3, b))
        let both = try fromA.merged(with: alsoB).decode(Steps.self).steps
        #expect(both == (try alsoB.merged(with: fromA).decode(Steps.self).steps))
        #expect(Set(both) == ["a", "d", "e", "c"] && both.first == "a" && both.last == "c", "\(both)")
    }

    /// Appending or prepending one element at a time keeps keys short.
    @Test func keysStayShort() throws {
        let replica = ReplicaID(high: 1, low: 1)
        var appended = try Document(encoding: Steps(steps: []), at: Self.stamp(1, replica))
        var prepended = appended
        var steps = [String]()
        for index in 0..<600 {
            steps.append("e\(index)")
            _ = try appended.update(from: Steps(steps: steps), at: Self.stamp(UInt64(index + 2), replica))
            _ = try prepended.update(from: Steps(steps: steps.reversed()), at: Self.stamp(UInt64(index + 2), replica))
        }
        #expect(try appended.decode(Steps.self).steps == steps)
        #expect(try prepended.decode(Steps.self).steps == steps.reversed())
        let longest = (Self.keys(appended) + Self.keys(prepended)).map(\.utf8.count).max() ?? 0
        // 600 / 31 digits, a separator and an 8-character tag.
        #expect(longest <= 40, "\(longest)")
    }

    /// Dictionaries keyed by anything but strings, and nil elements, are refused with a typed
    /// error and the document unchanged; a list holding keys the encoding did not make cannot
    /// take insertions.
    @Test func whatIsRefused() throws {
        struct ByNumber: Codable { var byNumber: [Int: String] }
        struct Optionals: Codable { var steps: [String?] }
        struct Decimals: Codable { var values: Set<Double> }
        struct Blob: Codable { var data: Data }
        let stamp = Self.stamp(1, ReplicaID(high: 1, low: 1))
        var document = try Document(encoding: Steps(steps: ["a"]), at: stamp)
        let before = document
        #expect(throws: DocumentCodingError.self) { try document.update(from: ByNumber(byNumber: [1: "x"]), at: stamp) }
        #expect(throws: DocumentCodingError.self) { try document.update(from: Optionals(steps: ["a", nil]), at: stamp) }
        // Sets no scalar holds, and bytes other than [UInt8], are not lists.
        #expect(throws: DocumentCodingError.self) { try document.update(from: Decimals(values: [1.5, 2.5]), at: stamp) }
        #expect(throws: DocumentCodingError.self) { try document.update(from: Blob(data: Data([1, 2, 3])), at: stamp) }
        #expect(document == before)
        var foreign = Document()
        foreign.updateMap("steps", at: stamp) { $0.set("not a position!", to: "x", at: stamp) }
        #expect(try foreign.decode(Steps.self).steps == ["x"], "any keys read back in order")
        // Writing an array over them makes a list of the array's elements: the foreign keys are
        // no positions, so they go (recorded as removed) and the elements get positions.
        try foreign.update(from: Steps(steps: ["x", "y"]), at: stamp)
        #expect(try foreign.decode(Steps.self).steps == ["x", "y"])
        #expect(foreign.jsonValue == .object(["steps": .array([.string("x"), .string("y")])]))
    }
}
