import Foundation
import Testing
import Weft
import WeftCRDT
import WeftServer
import WeftSQLite
import WeftWire

/// Issue #13, point 9: a replica whose own history regresses (a restored backup, a copy on a
/// second device, commits lost to a power cut) never reuses a dot or a sequence number, and the
/// server never acknowledges a change it did not apply. And point 4: the server is the
/// authority on policies.
@Suite("Replica identity and the server's policies", .serialized)
struct IdentityTests {
    static let files = ["", "-wal", "-shm"]

    /// Copies a replica's database (with its WAL), as a backup or a second device would.
    static func copy(_ from: String, to: String) throws {
        for suffix in files {
            try? FileManager.default.removeItem(atPath: to + suffix)
            if FileManager.default.fileExists(atPath: from + suffix) {
                try FileManager.default.copyItem(atPath: from + suffix, toPath: to + suffix)
            }
        }
    }

    static func crdtService(_ directory: TemporaryDirectory) throws -> SyncService {
        SyncService(store: try SQLiteCentralStore(path: directory.path("central.sqlite")), policies: ServerPolicies(defaultPolicy: .crdt))
    }

    /// The issue's case: five versions, the file restored to its state after the first, a new
    /// write (before and after the first sync of the restored file).
    @Test(arguments: [false, true])
    func aRestoredReplicaLosesNoWrite(syncsFirst: Bool) async throws {
        let directory = TemporaryDirectory()
        let service = try Self.crdtService(directory)
        let path = directory.path("phone.sqlite")
        let backup = directory.path("backup.sqlite")
        do {
            let replica = try await Replica.open(path: path)
            let engine = SyncEngine(replica: replica, transport: InProcessTransport(service: service, database: "db"))
            try await replica.collection("notes").create("n") { $0.set("v1", to: 1) }
            _ = try await engine.syncOnce()
            try Self.copy(path, to: backup)
            for version in 2...5 {
                try await replica.collection("notes").update("n") { $0.set("v\(version)", to: .int(Int64(version))) }
                _ = try await engine.syncOnce()
            }
        }
        try Self.copy(backup, to: path)
        let restored = try await Replica.open(path: path)
        let engine = SyncEngine(replica: restored, transport: InProcessTransport(service: service, database: "db"))
        if syncsFirst { _ = try await engine.syncOnce() }
        try await restored.collection("notes").upsert("n") { $0.set("v6", to: 6) }
        _ = try await engine.syncOnce()
        _ = try await engine.syncOnce()
        let server = try #require(try await service.store.record(database: "db", key: key("notes", "n")))
        for version in 1...6 { #expect(server.body.int("v\(version)") == Int64(version), "v\(version) is missing: \(server.body)") }
        #expect(try await restored.record(key("notes", "n")) == server)
        #expect(try await restored.queuedChanges().isEmpty)
    }

    /// A file copied to a second device: both copies write, both writes survive, and the copy
    /// that spoke second takes a new identity.
    @Test func aCopiedFileTakesANewIdentity() async throws {
        let directory = TemporaryDirectory()
        let service = try Self.crdtService(directory)
        let first = directory.path("first.sqlite")
        let second = directory.path("second.sqlite")
        do {
            let replica = try await Replica.open(path: first)
            try await replica.collection("tags").create("t") { $0.insert("base", intoSet: "s") }
            _ = try await SyncEngine(replica: replica, transport: InProcessTransport(service: service, database: "db")).syncOnce()
        }
        try Self.copy(first, to: second)
        let a = try await Replica.open(path: first)
        let b = try await Replica.open(path: second)
        #expect(a.replicaID == b.replicaID, "a copy starts with the same identity")
        try await a.collection("tags").update("t") { $0.insert("from a", intoSet: "s"); $0.increment("n", by: 2) }
        try await b.collection("tags").update("t") { $0.insert("from b", intoSet: "s"); $0.increment("n", by: 3) }
        let syncA = SyncEngine(replica: a, transport: InProcessTransport(service: service, database: "db"))
        let syncB = SyncEngine(replica: b, transport: InProcessTransport(service: service, database: "db"))
        _ = try await syncA.syncOnce()
        _ = try await syncB.syncOnce()
        _ = try await syncA.syncOnce()
        #expect(a.replicaID != b.replicaID, "the second copy took a new identity")
        let server = try #require(try await service.store.record(database: "db", key: key("tags", "t")))
        #expect(server.body.set("s") == ["base", "from a", "from b"] && server.body.counter("n") == 5, "\(server.body)")
        #expect(try await a.record(key("tags", "t")) == server)
        #expect(try await b.record(key("tags", "t")) == server)
    }

    /// The server never acknowledges a push from a session that is not the replica's current one.
    @Test(arguments: CentralKind.testable)
    func aPushFromAStaleSessionIsRefused(_ central: CentralKind) async throws {
        let directory = TemporaryDirectory()
        let service = SyncService(store: try await central.make(directory))
        let replica = ReplicaID.random()
        let transport = InProcessTransport(service: service, database: "db")
        #expect(try await transport.hello(HelloRequest(replica: replica, confirmedEpoch: 0, epoch: 10)).status == .accepted)
        let change = sampleRecord("x", 1, wall: 5, replica: replica)
        let push = { (epoch: UInt64, sequence: UInt64) in
            PushRequest(replica: replica, epoch: epoch, changes: [WireChange(sequence: sequence, key: WireKey(collection: "c", id: "d"), record: change)])
        }
        #expect(try await transport.push(push(10, 1)).appliedThrough == 1)
        // A copy of the file, whose last confirmed session was none: forked, and refused.
        #expect(try await transport.hello(HelloRequest(replica: replica, confirmedEpoch: 0, epoch: 20, acknowledgedThrough: 1)).status == .forked)
        for epoch: UInt64 in [20, 0] {
            do {
                _ = try await transport.push(push(epoch, 2))
                Issue.record("a push in session \(epoch) was acknowledged")
            } catch {
                #expect(error.kind == .forked, "\(error)")
            }
        }
        // The file that continues the history may go on; a hello that repeats its session too.
        #expect(try await transport.hello(HelloRequest(replica: replica, confirmedEpoch: 10, epoch: 30, acknowledgedThrough: 1)).status == .accepted)
        #expect(try await transport.hello(HelloRequest(replica: replica, confirmedEpoch: 10, epoch: 30, acknowledgedThrough: 1)).status == .accepted)
        // A file that does not know what the server applied for it is not that continuation.
        #expect(try await transport.hello(HelloRequest(replica: replica, confirmedEpoch: 30, epoch: 40, acknowledgedThrough: 0)).status == .forked)
        #expect(try await transport.push(push(30, 2)).appliedThrough == 2)
    }

    /// Point 4: a replica configured with last-writer-wins merges pulled changes under the
    /// server's CRDT join, so its local resolution keeps the other replica's edits.
    @Test func aReplicaMergesUnderTheServersPolicies() async throws {
        let directory = TemporaryDirectory()
        let service = try Self.crdtService(directory)
        let a = try await Replica.open(path: directory.path("a.sqlite"))
        let b = try await Replica.open(path: directory.path("b.sqlite"))  // its own default: lww
        let syncA = SyncEngine(replica: a, transport: InProcessTransport(service: service, database: "db"))
        let syncB = SyncEngine(replica: b, transport: InProcessTransport(service: service, database: "db"))
        try await a.collection("stock").create("valve") { $0.increment("n", by: 10) }
        _ = try await syncA.syncOnce()
        _ = try await syncB.syncOnce()
        try await a.collection("stock").update("valve") { $0.increment("n", by: -2); $0.set("a", to: true) }
        _ = try await syncA.syncOnce()
        try await b.collection("stock").update("valve") { $0.increment("n", by: -3); $0.set("b", to: true) }
        // B pulls before it pushes: it resolves A's concurrent version itself.
        _ = try await syncB.pullAll()
        _ = try await syncB.pushAll()
        _ = try await syncA.syncOnce()
        let server = try #require(try await service.store.record(database: "db", key: key("stock", "valve")))
        #expect(server.body.counter("n") == 5 && server.body.bool("a") == true && server.body.bool("b") == true, "\(server.body)")
        #expect(b.policy(for: try CollectionName("stock")) == .crdt)
        #expect(try await a.record(key("stock", "valve")) == server)
        #expect(try await b.record(key("stock", "valve")) == server)
    }
}
