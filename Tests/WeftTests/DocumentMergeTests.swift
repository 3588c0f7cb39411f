import Foundation
import Testing
import Weft
import WeftCRDT
import WeftSQLite
import WeftTesting

@Suite("The one merge, and remote changes on a replica")
struct DocumentMergeTests {
    static let policies: [ConflictPolicy] = [.crdt, .lastWriterWins]

    func replicas(_ count: Int, policy: ConflictPolicy, time: ManualTimeSource) async throws -> [Replica] {
        var result = [Replica]()
        for index in 0..<count {
            var configuration = ReplicaConfiguration()
            configuration.conflictResolution = policy
            result.append(
                try await Replica(
                    storage: MemoryReplicaStorage(replicaID: ReplicaID(high: 7, low: UInt64(index + 1))),
                    configuration: configuration, timeSource: time))
        }
        return result
    }

    @Test(arguments: policies)
    func replicasConvergeWhateverTheOrder(_ policy: ConflictPolicy) async throws {
        var random = SplitMix64(seed: policy == .crdt ? 11 : 12)
        for round in 0..<20 {
            let time = ManualTimeSource(milliseconds: 1_000_000)
            let nodes = try await replicas(3, policy: policy, time: time)
            let key = DocumentKey(collection: try CollectionName("c"), id: try DocumentID("doc"))
            // Random concurrent edits, with some exchanges in between.
            for _ in 0..<12 {
                let node = nodes[Int.random(in: 0..<3, using: &random)]
                let field = ["a", "b", "c"].randomElement(using: &random) ?? "a"
                let value = Int64.random(in: 0...3, using: &random)
                time.advance(by: UInt64.random(in: 0...2, using: &random))
                switch Int.random(in: 0..<4, using: &random) {
                case 0: try await node.collection("c").upsert("doc") { $0.increment("n", by: value) }
                case 1:
                    let source = nodes[Int.random(in: 0..<3, using: &random)]
                    if let record = try await source.record(key) { try await node.applyRemote([(key, record)], through: 0) }
                default: try await node.collection("c").upsert("doc") { $0.set(field, to: .int(value)) }
                }
            }
            // Gossip every record to every replica in random orders, twice.
            for _ in 0..<2 {
                for receiver in nodes.shuffled(using: &random) {
                    for sender in nodes.shuffled(using: &random) where sender !== receiver {
                        if let record = try await sender.record(key) { try await receiver.applyRemote([(key, record)], through: 0) }
                    }
                }
            }
            let finals = try await nodes.asyncMap { try await $0.record(key) }
            #expect(finals.allSatisfy { $0 == finals[0] }, "round \(round): replicas disagree under \(policy)")
        }
    }

    @Test func mergeRules() throws {
        let key = DocumentKey(collection: try CollectionName("c"), id: try DocumentID("d"))
        let a = ReplicaID(high: 0, low: 1)
        let b = ReplicaID(high: 0, low: 2)
        func record(_ replica: ReplicaID, wall: UInt64, counter: UInt64, field: String, value: Int64, base: DocumentRecord? = nil)
            -> DocumentRecord
        {
            let stamp = HLCTimestamp(wallMilliseconds: wall, counter: 0, replica: replica)
            var body = base?.body ?? Document()
            body.set(field, to: .int(value), at: stamp)
            var version = base?.version ?? VersionVector()
            version[replica] = counter
            return DocumentRecord(body: body, deletion: LWWRegister(false, stamp: stamp), version: version)
        }
        let v1 = record(a, wall: 1, counter: 1, field: "x", value: 1)
        let v2 = record(a, wall: 2, counter: 2, field: "y", value: 2, base: v1)
        // Fast-forward and unchanged.
        let forward = try DocumentMerge.merge(local: v1, remote: v2, key: key, policy: .crdt)
        #expect(forward.kind == .fastForward && forward.record == v2 && forward.conflict == nil)
        let stale = try DocumentMerge.merge(local: v2, remote: v1, key: key, policy: .crdt)
        #expect(stale.kind == .unchanged && stale.record == v2)
        #expect(try DocumentMerge.merge(local: nil, remote: v1, key: key, policy: .lastWriterWins).kind == .fastForward)
        // Concurrent: crdt joins fields, lww keeps the later writer's whole version.
        let other = record(b, wall: 3, counter: 1, field: "z", value: 3, base: v1)
        let joined = try DocumentMerge.merge(local: v2, remote: other, key: key, policy: .crdt)
        #expect(joined.kind == .conflict && joined.record.body.int("y") == 2 && joined.record.body.int("z") == 3)
        let latest = try DocumentMerge.merge(local: v2, remote: other, key: key, policy: .lastWriterWins)
        #expect(latest.kind == .conflict && latest.record.body.int("z") == 3 && latest.record.body.int("y") == nil)
        #expect(latest.record.version.compare(to: v2.version) == .after && latest.record.version.compare(to: other.version) == .after)
        #expect(latest.conflict?.local == v2 && latest.conflict?.remote == other && latest.conflict?.policy == .lastWriterWins)
        // A custom policy without its resolver keeps both versions as siblings.
        let kept = try DocumentMerge.merge(local: v2, remote: other, key: key, policy: .custom(resolver: "r"))
        let siblings = try #require(try kept.record.siblingVersions())
        #expect(kept.kind == .conflict && Set(siblings) == [v2, other])

        // A server's record whose vector counts fewer writes than its body holds (it took a
        // relayed write with the relay's claims cut): a pushed version that dominates it is
        // joined there, keeping the write; a replica replaces as usual.
        let relayed = record(b, wall: 4, counter: 1, field: "w", value: 4, base: v2)
        let underclaiming = DocumentRecord(body: relayed.body, deletion: relayed.deletion, version: v2.version)
        let newer = record(a, wall: 5, counter: 3, field: "x", value: 5, base: v2)
        let keptWrite = try DocumentMerge.merge(local: underclaiming, remote: newer, key: key, policy: .crdt, joiningWhenDominated: true)
        #expect(keptWrite.kind == .joined && keptWrite.record.body.int("w") == 4 && keptWrite.record.body.int("x") == 5, "\(keptWrite)")
        #expect(try DocumentMerge.merge(local: underclaiming, remote: newer, key: key, policy: .crdt).record == newer)
        #expect(try DocumentMerge.merge(local: v1, remote: v2, key: key, policy: .crdt, joiningWhenDominated: true).kind == .fastForward)
        // A limited relay that does not dominate is resolved as concurrent, under every policy.
        for policy in [ConflictPolicy.crdt, .lastWriterWins] {
            #expect(try DocumentMerge.merge(local: v2, remote: relayed, key: key, policy: policy).kind == .fastForward)
            let cut = DocumentRecord(body: relayed.body, deletion: relayed.deletion, version: v2.version)
            #expect(try DocumentMerge.merge(local: v2, remote: cut, key: key, policy: policy).kind == .repaired)
            let resolved = try DocumentMerge.merge(local: v2, remote: cut, key: key, policy: policy, remoteClaimsLimited: true)
            #expect(resolved.kind == .conflict && resolved.record.body.int("w") == 4, "\(policy): \(resolved)")
        }
        let nothingNew = try DocumentMerge.merge(local: v2, remote: v1, key: key, policy: .lastWriterWins, remoteClaimsLimited: true)
        #expect(nothingNew.kind == .unchanged && nothingNew.conflict == nil)

        // Siblings the server still holds though this replica resolved them (the resolution
        // did not reach the server, or a restore lost it): resolved again, to be pushed. Found
        // by the fault suite: the server kept the siblings for good, every replica thinking
        // them resolved.
        var resolvers = ResolverRegistry()
        resolvers.register("r") { a, b in a.lastStamp > b.lastStamp ? a.body : b.body }
        let held = try DocumentRecord.holding(siblings: [v2, other])
        var ahead = held.version
        ahead.increment(a)
        let resolvedHere = DocumentRecord(body: other.body, deletion: other.deletion, version: ahead)
        let again = try DocumentMerge.merge(local: resolvedHere, remote: held, key: key, policy: .custom(resolver: "r"), resolvers: resolvers)
        #expect(again.kind == .resolved && again.record == resolvedHere, "\(again.kind)")
        let fresh = try DocumentMerge.merge(local: v2, remote: held, key: key, policy: .custom(resolver: "r"), resolvers: resolvers)
        #expect(fresh.kind == .resolved && fresh.record.body.int("z") == 3)
    }

    @Test func applyingAPageTwiceChangesNothingAndTheCursorPersists() async throws {
        let directory = TemporaryDirectory()
        let path = directory.path("b.sqlite")
        let a = try await Replica(storage: MemoryReplicaStorage())
        var configuration = ReplicaConfiguration()
        configuration.conflictResolution = .crdt
        let b = try await Replica.open(path: path, configuration: configuration)
        let stream = await b.changes()
        try await a.collection("c").create("x") { $0.increment("n", by: 5) }
        try await b.collection("c").create("x") { $0.increment("n", by: 2) }
        let key = DocumentKey(collection: try CollectionName("c"), id: try DocumentID("x"))
        let page = [(key: key, record: try #require(try await a.record(key)))]
        let first = try await b.applyRemote(page, through: 41)
        #expect(first.map(\.kind) == [.conflict])
        let second = try await b.applyRemote(page, through: 41)
        #expect(second.map(\.kind) == [.unchanged])
        #expect(try await b.collection("c").get("x")?.counter("n") == 7)
        let conflicts = try await b.conflicts()
        #expect(conflicts.count == 1 && conflicts[0].policy == .crdt && conflicts[0].winner.body.counter("n") == 7)
        // The local write is still queued, untouched by the remote change.
        #expect(try await b.queuedChanges().count == 1)
        var remoteSeen = false
        for await change in stream where change.origin == .remote {
            remoteSeen = change.key == key
            break
        }
        #expect(remoteSeen)
        // The cursor and the conflict log survive a restart; the cursor never moves back.
        let reopened = try await Replica.open(path: path, configuration: configuration)
        #expect(try await reopened.pullCursor() == 41)
        try await reopened.applyRemote([], through: 7)
        #expect(try await reopened.pullCursor() == 41)
        #expect(try await reopened.conflicts().count == 1)
    }
}

extension Array {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result = [T]()
        for element in self { result.append(try await transform(element)) }
        return result
    }
}
