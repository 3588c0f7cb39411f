import Foundation
import Synchronization
import Testing
import Weft
import WeftCRDT
import WeftServer
import WeftWire

/// Pulls of a large document's small change as a delta (`WireChange.deltaBase`), against real
/// SQLite replicas and a SQLite central store: small on the wire, the same records as whole
/// pulls, and whole records whenever the replica does not hold the base.
@Suite("Delta pulls")
struct DeltaSyncTests {
    /// Counts the framed bytes of every page, and whether a page was asked for without deltas.
    final class CountingTransport: SyncTransport {
        let base: any SyncTransport
        let pulled = Mutex(0)
        let wholeRetries = Mutex(0)
        let deltasReceived = Mutex(0)
        let lastRequest = Mutex<(after: UInt64, acceptsDeltas: Bool)?>(nil)
        /// Framed bytes of every push, and how many pushed changes were deltas.
        let pushedBytes = Mutex(0)
        let deltasPushed = Mutex(0)
        /// Plays a server that predates delta pushes: it refuses a hello that offers them.
        let olderServer = Mutex(false)
        /// Applies the next push that carries a delta and then fails as if its answer was lost.
        let loseNextDeltaAnswer = Mutex(false)
        init(_ base: any SyncTransport) { self.base = base }
        func hello(_ request: HelloRequest) async throws(SyncError) -> HelloResponse {
            // A server older than delta pushes refuses the offer's trailing byte as malformed.
            if olderServer.withLock({ $0 }) && request.offersDeltaPushes {
                throw SyncError(.rejected, "hello: 400 1 unexpected bytes after the value")
            }
            return try await base.hello(request)
        }
        func push(_ request: PushRequest) async throws(SyncError) -> PushResponse {
            let deltas = request.changes.filter { $0.deltaBase != nil }.count
            pushedBytes.withLock { $0 += WireMessage.encode(request).count }
            deltasPushed.withLock { $0 += deltas }
            let answer = try await base.push(request)
            if deltas > 0, loseNextDeltaAnswer.withLock({ lose in defer { lose = false }; return lose }) {
                throw SyncError(.unavailable, "the answer was lost")
            }
            return answer
        }
        func pull(_ request: PullRequest) async throws(SyncError) -> PullResponse {
            // A page asked for again without deltas, right after the same page with them.
            let retry = lastRequest.withLock { last in
                defer { last = (request.after, request.acceptsDeltas) }
                return !request.acceptsDeltas && last?.after == request.after && last?.acceptsDeltas == true
            }
            if retry { wholeRetries.withLock { $0 += 1 } }
            let page = try await base.pull(request)
            let size = WireMessage.encode(page).count
            pulled.withLock { $0 += size }
            let deltas = page.changes.filter { $0.deltaBase != nil }.count
            deltasReceived.withLock { $0 += deltas }
            return page
        }
    }

    struct Setup {
        let directory: TemporaryDirectory
        let store: any CentralStore
        let service: SyncService

        init(_ kind: CentralKind, policies: ServerPolicies = ServerPolicies(defaultPolicy: .crdt))
            async throws
        {
            directory = TemporaryDirectory()
            store = try await kind.make(directory)
            service = SyncService(store: store, policies: policies)
        }

        func replica(_ name: String) async throws -> (Replica, SyncEngine, CountingTransport) {
            let replica = try await Replica.open(path: directory.path("\(name).sqlite"))
            let transport = CountingTransport(InProcessTransport(service: service, database: "db"))
            return (replica, SyncEngine(replica: replica, transport: transport), transport)
        }
    }

    static func fill(_ replica: Replica, _ collection: String, _ id: String, fields: Int) async throws {
        try await replica.collection(collection).upsert(id) { editor in
            for index in 0..<fields {
                editor.set("field\(index)", to: .string("value \(index) of a large document"))
            }
        }
    }

    @Test(
        "One field of a large document edited: the other replica pulls a small delta and ends with the server's record",
        arguments: CentralKind.testable)
    func aSmallChangeTravelsSmall(_ kind: CentralKind) async throws {
        let setup = try await Setup(kind)
        let (a, engineA, _) = try await setup.replica("a")
        let (b, engineB, transportB) = try await setup.replica("b")
        try await Self.fill(a, "orders", "big", fields: 5_000)
        _ = try await engineA.syncOnce()
        _ = try await engineB.syncOnce()
        let key = DocumentKey(collection: try CollectionName("orders"), id: try DocumentID("big"))
        #expect(try await b.record(key) == (try await setup.store.record(database: "db", key: key)))
        let whole = transportB.pulled.withLock { $0 }
        #expect(whole > 10_000, "the first pull brings the whole record (compressed)")

        try await a.collection("orders").update("big") { $0.set("field7", to: "changed") }
        _ = try await engineA.syncOnce()
        transportB.pulled.withLock { $0 = 0 }
        _ = try await engineB.pullAll()
        let delta = transportB.pulled.withLock { $0 }
        #expect(delta < 2_048, "one field's change pulled in \(delta) bytes")
        #expect(transportB.wholeRetries.withLock { $0 } == 0)
        let server = try #require(try await setup.store.record(database: "db", key: key))
        #expect(try await b.record(key) == server)
        #expect(try await b.collection("orders").get("big")?.string("field7") == "changed")

        // B's own unpushed edit survives a delta, and both replicas and the server converge.
        try await b.collection("orders").update("big") { $0.set("field9", to: "b's edit") }
        try await a.collection("orders").update("big") { $0.set("field8", to: "a's edit") }
        _ = try await engineA.syncOnce()
        _ = try await engineB.syncOnce()
        _ = try await engineA.syncOnce()
        let final = try #require(try await setup.store.record(database: "db", key: key))
        let (atA, atB) = (try await a.record(key), try await b.record(key))
        #expect(atA == final && atB == final)
        #expect(final.body.string("field8") == "a's edit" && final.body.string("field9") == "b's edit")
    }

    @Test(
        "A replica whose cursor passed the base's entry without holding it gets the whole record",
        arguments: CentralKind.testable)
    func aMissingBaseBringsTheWholeRecord(_ kind: CentralKind) async throws {
        let setup = try await Setup(kind)
        let (a, engineA, _) = try await setup.replica("a")
        // x, then the large document, then y.
        try await a.collection("orders").create("x") { $0.set("n", to: 1) }
        _ = try await engineA.syncOnce()
        try await Self.fill(a, "orders", "big", fields: 5_000)
        _ = try await engineA.syncOnce()
        try await a.collection("orders").create("y") { $0.set("n", to: 2) }
        _ = try await engineA.syncOnce()
        // C reads one change per page: x; then the document changes (its entry moves past y);
        // then C reads y, passing where the document's old entry was, without having it.
        let (c, engineC, transportC) = try await setup.replica("c")
        await engineC.setPageSize(1)
        let first = try await setup.service.pull(database: "db", PullRequest(after: 0, maximumChanges: 1))
        #expect(first.changes.map(\.key.id) == ["x"])
        try await c.applyRemote(
            [(key("orders", "x"), first.changes[0].record)], through: first.cursor, tag: first.cursorTag)
        try await a.collection("orders").update("big") { $0.set("field1", to: "changed") }
        _ = try await engineA.syncOnce()
        _ = try await engineC.pullAll()
        #expect(
            transportC.wholeRetries.withLock { $0 } == 1,
            "the delta was refused once, and the page came whole")
        let server = try #require(try await setup.store.record(database: "db", key: key("orders", "big")))
        #expect(try await c.record(key("orders", "big")) == server)
    }

    @Test(
        "Last-writer-wins collections and clients that do not take deltas get whole records",
        arguments: CentralKind.testable)
    func wholeRecordsWhereDeltasDoNotApply(_ kind: CentralKind) async throws {
        let setup = try await Setup(
            kind, policies: ServerPolicies(defaultPolicy: .crdt, collections: ["prices": .lastWriterWins]))
        let (a, engineA, _) = try await setup.replica("a")
        let (b, engineB, transportB) = try await setup.replica("b")
        try await Self.fill(a, "prices", "big", fields: 5_000)
        try await Self.fill(a, "orders", "big", fields: 5_000)
        _ = try await engineA.syncOnce()
        _ = try await engineB.syncOnce()
        try await a.collection("prices").update("big") { $0.set("field3", to: "changed") }
        _ = try await engineA.syncOnce()
        transportB.pulled.withLock { $0 = 0 }
        _ = try await engineB.pullAll()
        #expect(transportB.pulled.withLock { $0 } > 10_000, "last writer wins: the whole record")
        #expect(
            try await b.record(key("prices", "big"))
                == (try await setup.store.record(database: "db", key: key("prices", "big"))))
        // An older client (no delta flag) pulling past the document's previous entry.
        try await a.collection("orders").update("big") { $0.set("field3", to: "changed") }
        _ = try await engineA.syncOnce()
        let log = try await setup.store.changes(database: "db", after: 0, limit: 100, maxBytes: 1 << 30)
            .changes
        let entry = try #require(log.last)
        #expect(entry.key.id.rawValue == "big" && entry.delta != nil)
        let after = entry.sequence - 1
        let old = try await setup.service.pull(
            database: "db", PullRequest(after: after, replica: ReplicaID(high: 1, low: 9)))
        #expect(old.changes.first?.deltaBase == nil && old.changes.first?.record == entry.record)
        let new = try await setup.service.pull(
            database: "db",
            PullRequest(after: after, replica: ReplicaID(high: 1, low: 9), acceptsDeltas: true))
        #expect(
            new.changes.first?.deltaBase != nil
                && (new.changes.first.map {
                    WireMessage.encode(PullResponse(changes: [$0], cursor: $0.sequence, hasMore: false)).count
                } ?? .max) < 2_048)
    }

    /// Three replicas edit large documents at random (registers, counters, sets, removals),
    /// sync in random order with random page sizes (so cursors pass entries compaction moved),
    /// and end equal to the server, on every store.
    @Test(
        "Random edits of large documents by three replicas converge through delta pulls",
        arguments: CentralKind.testable)
    func randomEditsConverge(_ kind: CentralKind) async throws {
        let setup = try await Setup(kind)
        let seed = UInt64.random(in: 1...UInt64.max)
        var random = SplitMix64(seed: seed)
        var nodes = [(Replica, SyncEngine, CountingTransport)]()
        for name in ["a", "b", "c"] { nodes.append(try await setup.replica(name)) }
        try await Self.fill(nodes[0].0, "orders", "d0", fields: 400)
        try await Self.fill(nodes[0].0, "orders", "d1", fields: 400)
        _ = try await nodes[0].1.syncOnce()
        for step in 0..<120 {
            let (replica, engine, _) = nodes[Int(random.next() % 3)]
            let id = "d\(random.next() % 2)"
            let field = "field\(random.next() % 40)"
            let choice = random.next() % 5
            let value = Int64(random.next() % 1_000)
            if random.next() % 3 == 0 {
                await engine.setPageSize(UInt32(1 + random.next() % 3))
                _ = try await engine.syncOnce()
            } else {
                try await replica.collection("orders").upsert(id) { editor in
                    switch choice {
                    case 0: editor.set(field, to: .int(value))
                    case 1: editor.increment("visits", by: 1)
                    case 2: editor.insert(.int(value % 7), intoSet: "tags")
                    case 3: editor.removeField(field)
                    default: editor.set(field, to: .string("step \(step)"))
                    }
                }
            }
        }
        for _ in 0..<2 {
            for (_, engine, _) in nodes {
                await engine.setPageSize(1_000)
                _ = try await engine.syncOnce()
            }
        }
        for id in ["d0", "d1"] {
            let server = try await setup.store.record(database: "db", key: key("orders", id))
            for (index, (replica, _, _)) in nodes.enumerated() {
                let local = try await replica.record(key("orders", id))
                #expect(local == server, "replica \(index) differs on \(id) (seed \(seed))")
            }
        }
        let retries = nodes.map { $0.2.wholeRetries.withLock { $0 } }.reduce(0, +)
        let deltas = try await setup.store.changes(database: "db", after: 0, limit: 100, maxBytes: 1 << 30)
            .changes.filter { $0.delta != nil }
        let received = nodes.map { $0.2.deltasReceived.withLock { $0 } }.reduce(0, +)
        #expect(
            !deltas.isEmpty && received > 0,
            "deltas kept \(deltas.count), received \(received), whole retries \(retries) (seed \(seed))")
    }
}
