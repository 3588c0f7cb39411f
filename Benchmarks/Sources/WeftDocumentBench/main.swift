// weft-document-bench: the cost of documents as the replica uses them (edits through the
// delta-free SPI, encode, decode, join) and of set inserts through the delta API. Prints one
// line per measure: the best of 5 runs. Usage: swift run -c release weft-document-bench
import Foundation
@_spi(Editing) import WeftCRDT

func measure(_ name: String, _ repeats: Int = 5, _ body: () -> Int) {
    var best = Double.infinity
    var check = 0
    for _ in 0..<repeats {
        let start = DispatchTime.now().uptimeNanoseconds
        check &+= body()
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
        best = min(best, elapsed)
    }
    print(String(format: "%-44@ %9.2f ms  (check %d)", name as NSString, best, check))
}

let a = ReplicaID(high: 1, low: 1)
let b = ReplicaID(high: 2, low: 2)
nonisolated(unsafe) var wall: UInt64 = 1_700_000_000_000  // one thread
func stamp(_ r: ReplicaID) -> HLCTimestamp {
    wall += 1
    return HLCTimestamp(wallMilliseconds: wall, counter: 0, replica: r)
}

// 1. Small documents, as the replica writes them: 100,000 documents of 8 fields, encode and decode.
measure("100k small docs: build 8 fields (assign)") {
    var total = 0
    for i in 0..<100_000 {
        var doc = Document()
        doc.reserveCapacity(8)
        let s = stamp(a)
        for f in 0..<6 { doc.assign("f\(f)", to: .int(Int64(i + f)), at: s) }
        doc.add(1, toCounter: "n", at: s)
        doc.assign("title", to: .string("work order \(i)"), at: s)
        total &+= doc.keys.count
    }
    return total
}
var small = [[UInt8]]()
do {
    for i in 0..<100_000 {
        var doc = Document()
        let s = stamp(a)
        for f in 0..<6 { doc.assign("f\(f)", to: .int(Int64(i + f)), at: s) }
        doc.add(1, toCounter: "n", at: s)
        doc.assign("title", to: .string("work order \(i)"), at: s)
        small.append(doc.encoded())
    }
}
measure("100k small docs: decode") {
    var total = 0
    for bytes in small { total &+= (try? Document(encoded: bytes))?.keys.count ?? 0 }
    return total
}
let smallDocs = small.compactMap { try? Document(encoded: $0) }
measure("100k small docs: encode") {
    var total = 0
    for doc in smallDocs { total &+= doc.encoded().count }
    return total
}
measure("100k small docs: edit one field and encode") {
    var total = 0
    for var doc in smallDocs {
        doc.assign("f3", to: .int(7), at: stamp(b))
        total &+= doc.encoded().count
    }
    return total
}
print("bytes per small doc: \(small.reduce(0) { $0 + $1.count } / small.count)")

// 2. One large document: 100,000 register fields.
var big = Document()
do {
    let s = stamp(a)
    big.reserveCapacity(100_000)
    for i in 0..<100_000 { big.assign("k\(i)", to: .int(Int64(i)), at: s) }
}
measure("100k-field doc: encode") { big.encoded().count }
let bigBytes = big.encoded()
print("bytes for 100k-field doc: \(bigBytes.count)")
measure("100k-field doc: decode") { (try? Document(encoded: bigBytes))?.keys.count ?? 0 }
var other = Document()
do {
    let s = stamp(b)
    for i in 0..<100_000 { other.assign("k\(i)", to: .int(Int64(i + 1)), at: s) }
}
measure("100k-field doc: merge concurrent copy") { big.merged(with: other).keys.count }
measure("100k-field doc: edit one field (delta) + merge delta") {
    var copy = big
    let delta = copy.set("k5", to: 9, at: stamp(a))
    var target = big
    target.merge(delta)
    return target.keys.count
}
// 3. A set with 10,000 elements: insert all, encode, decode.
measure("set of 10k: insert") {
    var doc = Document()
    for i in 0..<10_000 { doc.insert(.int(Int64(i)), intoSet: "s", at: stamp(a)) }
    return doc.set("s")?.count ?? 0
}
