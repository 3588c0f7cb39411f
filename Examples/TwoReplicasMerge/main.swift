// Two replicas edit the same document while apart, then exchange deltas and merge.
// Run with `make demo`.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import WeftCRDT

let alice = ReplicaID(high: 0xA11CE, low: 1)
let bob = ReplicaID(high: 0xB0B, low: 2)
var aliceClock = HybridLogicalClock(replica: alice)
var bobClock = HybridLogicalClock(replica: bob)

// A shared starting point: Alice creates the work order and Bob receives it.
var aliceDoc = Document()
var shared = aliceDoc.set("title", to: "Replace valve on pump 7", at: aliceClock.now())
shared.merge(aliceDoc.set("status", to: "open", at: aliceClock.now()))
shared.merge(aliceDoc.insert("plumbing", intoSet: "tags", at: aliceClock.now()))
var bobDoc = Document()
bobDoc.merge(shared)

func show(_ name: String, _ doc: Document) {
    let tags = (doc.set("tags") ?? []).map(\.description).sorted().joined(separator: ", ")
    print("  \(name): title=\(doc.string("title") ?? "-"), status=\(doc.string("status") ?? "-"), "
        + "hours=\(doc.counter("hours") ?? 0), tags=[\(tags)]")
}

print("Both replicas start from the same work order:")
show("alice", aliceDoc)
show("bob  ", bobDoc)

// Offline, each edits the same document. Deltas are what sync would ship.
var aliceDeltas = [Document]()
aliceDeltas.append(aliceDoc.set("status", to: "in progress", at: aliceClock.now()))
aliceDeltas.append(aliceDoc.increment("hours", by: 2, at: aliceClock.now()))
aliceDeltas.append(aliceDoc.remove("plumbing", fromSet: "tags", at: aliceClock.now()))

var bobDeltas = [Document]()
bobDeltas.append(bobDoc.increment("hours", by: 3, at: bobClock.now()))
bobDeltas.append(bobDoc.insert("urgent", intoSet: "tags", at: bobClock.now()))
bobDeltas.append(bobDoc.set("status", to: "waiting for parts", at: bobClock.now()))

print("\nAfter editing apart:")
show("alice", aliceDoc)
show("bob  ", bobDoc)

// Reconnect: each receives the other's deltas, encoded and decoded as they would travel.
do {
    for delta in bobDeltas { aliceDoc.merge(try Document(encoded: delta.encoded())) }
    for delta in aliceDeltas.reversed() { bobDoc.merge(try Document(encoded: delta.encoded())) }
} catch {
    print("decoding failed: \(error)")
    exit(1)
}

let bytes = aliceDeltas.map { $0.encoded().count } + bobDeltas.map { $0.encoded().count }
print("\nAfter exchanging \(bytes.count) deltas (\(bytes.reduce(0, +)) bytes in all):")
show("alice", aliceDoc)
show("bob  ", bobDoc)
print("\nConverged: \(aliceDoc == bobDoc ? "yes" : "NO")")
if case .register(let status)? = aliceDoc["status"] {
    print("Counters add up (2 + 3); of the two concurrent status writes, the one with the greater")
    print("HLC stamp (\(status.stamp)) wins on both; Alice's removal of \"plumbing\" and Bob's")
    print("addition of \"urgent\" both survive.")
}
if aliceDoc != bobDoc { exit(1) }
