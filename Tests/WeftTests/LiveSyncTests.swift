import Foundation
import Synchronization
import Testing
import Weft
import WeftCRDT
import WeftHTTP
import WeftServer
import WeftSQLite

/// Live sync over a real server on loopback: between write-behind rounds a pull waits on the
/// server, so a change pushed elsewhere arrives without waiting for the interval (an hour here).
@Suite("Live sync over HTTP", .serialized)
struct LiveSyncTests {
    /// Waits for the first change of `key` on `changes`, or fails after a minute (a guard
    /// against a hang, far above anything live sync takes: the interval is an hour).
    static func arrival(of key: DocumentKey, on changes: AsyncStream<ReplicaChange>) async -> ReplicaChange? {
        await withTaskGroup(of: ReplicaChange?.self) { group in
            group.addTask {
                for await change in changes where change.key == key && change.origin == .remote { return change }
                return nil
            }
            group.addTask {
                try? await Task.sleep(for: .seconds(60))
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }

    /// Whether a live pull waits on `server` within a minute (checked every 5 ms: a guard, not
    /// a measure).
    static func aPullWaits(on server: RunningServer) async throws -> Bool {
        for _ in 0..<12_000 {
            if await server.running.service.waitingPulls > 0 { return true }
            try await Task.sleep(for: .milliseconds(5))
        }
        return false
    }

    static func engine(_ server: RunningServer, _ path: String, _ kind: TransportKind = .asyncHTTPClient) async throws -> SyncEngine {
        let replica = try await Replica.open(path: path)
        return SyncEngine(replica: replica, transport: kind.make(server.baseURL))
    }

    @Test(arguments: TransportKind.allCases)
    func aPushedChangeArrivesWithoutWaitingForTheInterval(_ kind: TransportKind) async throws {
        let directory = TemporaryDirectory()
        let server = try await RunningServer.start(store: MemoryCentralStore())
        let reader = try await Self.engine(server, directory.path("reader.sqlite"), kind)
        let writer = try await Self.engine(server, directory.path("writer.sqlite"))
        let changes = await reader.replica.changes()
        let loop = Task { await reader.runWriteBehind(every: .seconds(3_600), clock: ContinuousClock()) }
        // The reader's live pull is waiting on the server: one request, not more.
        #expect(try await Self.aPullWaits(on: server), "no live pull waits on the server")
        #expect(await server.running.service.waitingPulls == 1)

        for round in 0..<3 {
            try await writer.replica.collection("orders").upsert("o\(round)") { $0.set("status", to: "open") }
            _ = try await writer.syncOnce()
            let key = DocumentKey(collection: try CollectionName("orders"), id: try DocumentID("o\(round)"))
            let arrived = await Self.arrival(of: key, on: changes)
            #expect(arrived != nil, "round \(round): the change did not arrive")
            #expect(try await reader.replica.collection("orders").get("o\(round)")?.string("status") == "open")
        }
        #expect(await reader.livePulled == 3)
        #expect(await server.running.service.waitingPulls <= 1)
        loop.cancel()
        await loop.value
        await server.stop()
    }

    @Test(arguments: TransportKind.allCases)
    func requestSyncPushesAtOnce(_ kind: TransportKind) async throws {
        let directory = TemporaryDirectory()
        let server = try await RunningServer.start(store: MemoryCentralStore())
        let engine = try await Self.engine(server, directory.path("replica.sqlite"), kind)
        let (rounds, roundDone) = AsyncStream<Result<SyncReport, SyncError>>.makeStream()
        let loop = Task { await engine.runWriteBehind(every: .seconds(3_600), clock: ContinuousClock()) { roundDone.yield($0) } }
        var iterator = rounds.makeAsyncIterator()
        _ = await iterator.next()  // the first round
        try await engine.replica.collection("orders").create("now") { $0.set("status", to: "open") }
        engine.requestSync()
        let round = await iterator.next()
        #expect(try round?.get().pushed == 1)
        let key = DocumentKey(collection: try CollectionName("orders"), id: try DocumentID("now"))
        #expect(try await server.store.record(database: "mydb", key: key) != nil)
        loop.cancel()
        await loop.value
        await server.stop()
    }

    /// The server goes away under a waiting live pull and comes back on the same port: the
    /// engine goes offline, retries with its backoff, and pulls live again.
    @Test(arguments: TransportKind.allCases)
    func theLivePullComesBackAfterTheServerReturns(_ kind: TransportKind) async throws {
        let directory = TemporaryDirectory()
        let store = try SQLiteCentralStore(path: directory.path("central.sqlite"))
        var server = try await RunningServer.start(store: store)
        let port = server.port
        let reader = try await Self.engine(server, directory.path("reader.sqlite"), kind)
        let states = await reader.connectionStates()
        let changes = await reader.replica.changes()
        let loop = Task {
            await reader.runWriteBehind(
                every: .seconds(3_600), backoff: Backoff(initial: .milliseconds(20), maximum: .milliseconds(200)), clock: ContinuousClock())
        }
        var seen = [ConnectionState]()
        var stateIterator = states.makeAsyncIterator()
        while let state = await stateIterator.next() {
            seen.append(state)
            if state == .online { break }
        }
        #expect(try await Self.aPullWaits(on: server), "no live pull waits on the server")
        await server.stop()
        while let state = await stateIterator.next() {
            seen.append(state)
            if state == .offline { break }
        }
        server = try await RunningServer.start(store: store, port: port)
        while let state = await stateIterator.next() {
            seen.append(state)
            if state == .online { break }
        }
        #expect(Array(seen.suffix(2)) == [.syncing, .online])
        #expect(seen.contains(.offline))
        let writer = try await Self.engine(server, directory.path("writer.sqlite"))
        try await writer.replica.collection("orders").upsert("back") { $0.set("status", to: "open") }
        _ = try await writer.syncOnce()
        let key = DocumentKey(collection: try CollectionName("orders"), id: try DocumentID("back"))
        #expect(await Self.arrival(of: key, on: changes) != nil)
        loop.cancel()
        await loop.value
        await server.stop()
    }
}
