import Foundation
import Testing
import Weft
@testable import WeftCRDT
import WeftServer
import WeftSQLite
import WeftWire

/// Issue #14, point 9: the server does not trust what a pushed record claims to have seen of
/// other replicas. A record that claims another replica's writes the server has not seen (a
/// forged or buggy version vector or causal context) must not make the server drop that
/// replica's later writes; stale and honestly relayed records work as before.
///
/// Real SQLite replicas and a SQLite server; the forged record goes through the wire format.
@Suite("Pushed claims about other replicas", .serialized)
struct ForgedClaimTests {
    struct Setup {
        let directory = TemporaryDirectory()
        let service: SyncService
        let a: Replica
        let b: Replica
        let engineA: SyncEngine
        let engineB: SyncEngine
        let transportA: InProcessTransport

        init() async throws {
            service = SyncService(
                store: try SQLiteCentralStore(path: directory.path("central.sqlite")),
                policies: ServerPolicies(defaultPolicy: .crdt, collections: ["status": .lastWriterWins]))
            a = try await Replica.open(path: directory.path("a.sqlite"))
            b = try await Replica.open(path: directory.path("b.sqlite"))
            transportA = InProcessTransport(service: service, database: "db")
            engineA = SyncEngine(replica: a, transport: transportA)
            engineB = SyncEngine(replica: b, transport: InProcessTransport(service: service, database: "db"))
            // Both open their sessions, so each writes under its own confirmed identity.
            _ = try await engineA.syncOnce()
            _ = try await engineB.syncOnce()
        }

        /// Pushes `record` for `key` as replica A, outside A's queue.
        func pushAsA(_ record: DocumentRecord, _ key: DocumentKey, sequence: UInt64 = 1_000) async throws {
            let request = PushRequest(
                replica: a.replicaID, epoch: a.sessionEpoch,
                changes: [WireChange(sequence: sequence, key: WireKey(collection: key.collection.rawValue, id: key.id.rawValue), record: record)])
            _ = try await transportA.push(request)
        }

        func server(_ key: DocumentKey) async throws -> DocumentRecord? {
            try await service.store.record(database: "db", key: key)
        }
    }

    /// `record` claiming `counter` writes and dots of `replica`.
    static func forging(_ record: DocumentRecord, about replica: ReplicaID, counter: UInt64, context: Bool) -> DocumentRecord {
        var forged = record
        forged.version[replica] = counter
        if context {
            var vector = forged.body.context.vector
            vector[replica] = counter
            forged.body.context = CausalContext(vector: vector, cloud: forged.body.context.cloud)
        }
        return forged
    }

    /// The case, under CRDT join (set elements and a counter) and under last writer
    /// wins: A pushes a record claiming a million writes of B; B, offline meanwhile, edits and
    /// pushes. B's edit is on the server, and B equals the server.
    @Test(arguments: [false, true])
    func aForgedClaimDoesNotEraseAnotherReplicasWrites(lastWriterWins: Bool) async throws {
        let setup = try await Setup()
        let (a, b) = (setup.a, setup.b)
        let collection = lastWriterWins ? "status" : "tags"
        let document = key(collection, "d")
        try await b.collection(collection).create("d") {
            $0.insert("b1", intoSet: "s")
            $0.set("state", to: "open")
        }
        _ = try await setup.engineB.syncOnce()
        _ = try await setup.engineA.syncOnce()
        // B edits offline.
        try await b.collection(collection).update("d") {
            $0.insert("b2", intoSet: "s")
            $0.increment("n", by: 5)
            $0.set("state", to: "closed")
        }
        // A forges: its own copy, claiming B's writes up to a million (version and context).
        let copy = try #require(try await a.record(document))
        try await setup.pushAsA(Self.forging(copy, about: b.replicaID, counter: 1_000_000, context: true), document)
        #expect(await setup.service.limitedClaims == 1)
        let limited = try #require(try await setup.server(document))
        #expect(limited.version[b.replicaID] < 1_000_000, "the server stored the forged claim: \(limited.version)")

        _ = try await setup.engineB.syncOnce()
        _ = try await setup.engineB.syncOnce()
        let server = try #require(try await setup.server(document))
        #expect(server.body.set("s")?.contains("b2") == true, "B's element is gone: \(server.body)")
        #expect(server.body.string("state") == "closed", "B's later write is gone: \(server.body)")
        if !lastWriterWins { #expect(server.body.counter("n") == 5, "B's increment is gone: \(server.body)") }
        #expect(try await b.record(document) == server)
        #expect(try await b.queuedChanges().isEmpty)
    }

    /// A claim in the body's causal context alone (the version honest): under CRDT join, a
    /// context that covers B's next dots would remove B's new element as seen and dropped.
    @Test func aForgedContextDoesNotRemoveAnotherReplicasElements() async throws {
        let setup = try await Setup()
        let (a, b) = (setup.a, setup.b)
        let document = key("tags", "d")
        try await b.collection("tags").create("d") { $0.insert("b1", intoSet: "s") }
        _ = try await setup.engineB.syncOnce()
        _ = try await setup.engineA.syncOnce()
        try await a.collection("tags").update("d") { $0.insert("a1", intoSet: "s") }
        try await b.collection("tags").update("d") { $0.insert("b2", intoSet: "s") }
        // A's own edit, with a context that also claims B's next hundred dots.
        let mine = try #require(try await a.record(document))
        try await setup.pushAsA(Self.forging(mine, about: b.replicaID, counter: mine.body.context.vector[b.replicaID] + 100, context: true).withVersion(of: mine), document)
        _ = try await setup.engineB.syncOnce()
        _ = try await setup.engineA.syncOnce()
        _ = try await setup.engineB.syncOnce()
        let server = try #require(try await setup.server(document))
        for element in ["b1", "a1", "b2"] {
            #expect(server.body.set("s")?.contains(.string(element)) == true, "\(element) is gone: \(server.body)")
        }
        #expect(try await b.record(document) == server)
    }

    /// A stale record (an older copy of the document, pushed late) changes nothing, and limits
    /// nothing: it claims only what the server had seen.
    @Test func aStaleRecordChangesNothing() async throws {
        let setup = try await Setup()
        let (a, b) = (setup.a, setup.b)
        let document = key("tags", "d")
        try await b.collection("tags").create("d") { $0.insert("b1", intoSet: "s") }
        _ = try await setup.engineB.syncOnce()
        _ = try await setup.engineA.syncOnce()
        let stale = try #require(try await a.record(document))
        try await b.collection("tags").update("d") { $0.insert("b2", intoSet: "s") }
        _ = try await setup.engineB.syncOnce()
        let before = try #require(try await setup.server(document))
        try await setup.pushAsA(stale, document)
        #expect(try await setup.server(document) == before)
        #expect(await setup.service.limitedClaims == 0)
    }

    /// Records relayed honestly (A pulls B's writes through the server, edits, pushes; and
    /// the other way round) are taken as they are: nothing is limited, every edit survives,
    /// and both replicas equal the server.
    @Test(arguments: [false, true])
    func honestRelaysAreTakenAsTheyAre(lastWriterWins: Bool) async throws {
        let setup = try await Setup()
        let (a, b) = (setup.a, setup.b)
        let collection = lastWriterWins ? "status" : "tags"
        let document = key(collection, "d")
        try await b.collection(collection).create("d") { $0.insert("b1", intoSet: "s") }
        for round in 0..<6 {
            _ = try await setup.engineB.syncOnce()
            _ = try await setup.engineA.syncOnce()
            try await a.collection(collection).update("d") { $0.insert(.string("a\(round)"), intoSet: "s") }
            try await b.collection(collection).update("d") { $0.insert(.string("b\(round)"), intoSet: "s"); $0.removeField("gone") }
            if round % 2 == 0 { _ = try await setup.engineA.syncOnce() }
        }
        for _ in 0..<2 {
            _ = try await setup.engineA.syncOnce()
            _ = try await setup.engineB.syncOnce()
        }
        #expect(await setup.service.limitedClaims == 0)
        let server = try #require(try await setup.server(document))
        #expect(try await a.record(document) == server)
        #expect(try await b.record(document) == server)
        if !lastWriterWins {
            for round in 0..<6 {
                #expect(server.body.set("s")?.contains(.string("a\(round)")) == true)
                #expect(server.body.set("s")?.contains(.string("b\(round)")) == true)
            }
        }
    }
}

extension DocumentRecord {
    /// This record with `other`'s version vector.
    fileprivate func withVersion(of other: DocumentRecord) -> DocumentRecord {
        var copy = self
        copy.version = other.version
        return copy
    }
}
