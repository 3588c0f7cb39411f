import Foundation
import Testing
import Weft
import WeftCRDT
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
}
