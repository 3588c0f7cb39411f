import Foundation
import Testing
import Weft
import WeftCRDT
import WeftServer
import WeftSQLite

/// A replica under `durability = "normal"` opened after the machine restarted takes a new
/// identity: a power cut may have taken its file's last commits, whose writes other replicas
/// may hold, and issuing their dots again would lose one of each pair.
@Suite("A restart of the machine under durability normal")
struct RebootTests {
    @Test func aNewBootGivesANormalReplicaANewIdentityAndAFullOneKeepsIt() async throws {
        let directory = TemporaryDirectory()
        let path = directory.path("r.sqlite")
        var normal = ReplicaConfiguration()
        normal.durability = .normal
        let first = try await Replica.open(path: path, configuration: normal, boot: "boot-1")
        let original = first.replicaID
        try await first.collection("c").create("d") { $0.increment("n", by: 1) }
        // The same boot: the same identity.
        let again = try await Replica.open(path: path, configuration: normal, boot: "boot-1")
        #expect(again.replicaID == original)
        // Another boot: a new identity, the old one among the former, the queue kept.
        let rebooted = try await Replica.open(path: path, configuration: normal, boot: "boot-2")
        #expect(rebooted.replicaID != original)
        #expect(rebooted.formerIdentities.last == original)
        // It forgot what the server acknowledged to the old identity: it resyncs once.
        #expect(try await rebooted.isResyncing())
        #expect(try await rebooted.queuedChanges().count == 1)
        #expect(try await rebooted.collection("c").get("d")?.counter("n") == 1)
        // Under full a commit that returned survives a power cut: no new identity.
        var full = ReplicaConfiguration()
        full.durability = .full
        let durable = try await Replica.open(path: path, configuration: full, boot: "boot-3")
        #expect(durable.replicaID == rebooted.replicaID)
        // No boot known (a platform without one): the identity stays.
        #expect(try await Replica.open(path: path, configuration: normal, boot: nil).replicaID == rebooted.replicaID)
    }

    /// Found by the fault suite (seed 11736599638214709034): a write the server acknowledged,
    /// then lost to a store restored from a backup, while the replica's cursor was still inside
    /// the backup's history. Its machine restarted, so it took a new identity, which forgot what
    /// the server had acknowledged to the old one: the handshake could no longer show the loss,
    /// and the write stayed on the replica alone. A new identity for a restart now resyncs once.
    @Test func aWriteTheStoreLostIsPushedBackAfterARestart() async throws {
        let directory = TemporaryDirectory()
        var normal = ReplicaConfiguration()
        normal.durability = .normal
        normal.conflictResolution = .crdt
        let live = directory.path("central.sqlite")
        let before = SyncService(store: try SQLiteCentralStore(path: live), policies: ServerPolicies(defaultPolicy: .crdt))
        let path = directory.path("r.sqlite")
        let first = try await Replica.open(path: path, configuration: normal, boot: "boot-1")
        let engine = SyncEngine(replica: first, transport: InProcessTransport(service: before, database: "db"))
        _ = try await engine.syncOnce()
        try IdentityTests.copy(live, to: directory.path("backup.sqlite"))
        try await first.collection("items").create("d0") { $0.increment("n", by: 5) }
        #expect(try await engine.pushAll() == 1)  // acknowledged; the cursor stays where it was

        try IdentityTests.copy(directory.path("backup.sqlite"), to: directory.path("restored.sqlite"))
        let after = SyncService(
            store: try SQLiteCentralStore(path: directory.path("restored.sqlite")), policies: ServerPolicies(defaultPolicy: .crdt))
        let rebooted = try await Replica.open(path: path, configuration: normal, boot: "boot-2")
        _ = try await SyncEngine(replica: rebooted, transport: InProcessTransport(service: after, database: "db")).syncOnce()
        let key = DocumentKey(collection: try CollectionName("items"), id: try DocumentID("d0"))
        #expect(try await after.store.record(database: "db", key: key)?.body.counter("n") == 5, "the acknowledged write is lost")
        #expect(try await rebooted.isResyncing() == false)
    }
}
