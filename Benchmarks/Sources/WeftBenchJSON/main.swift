// weft-bench-json: runs the comparison workloads (see WeftBenchWorkloads, mirroring
// Benchmarks/peers/peers.py) and prints one JSON object on stdout; progress goes to stderr.
//
// Every time is the best (minimum) wall time over --repeats runs, measured with
// ContinuousClock, in milliseconds. Only the step named in each key is inside the timed region.
//
// Usage: swift run -c release --package-path Benchmarks weft-bench-json [--repeats N] [--quick]

import WeftBenchWorkloads
import WeftCRDT

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

func log(_ message: String) {
    var line = message + "\n"
    line.withUTF8 { buffer in _ = write(2, buffer.baseAddress, buffer.count) }
}

func fail(_ message: String) -> Never {
    log("weft-bench-json: \(message)")
    exit(1)
}

func milliseconds(_ duration: Duration) -> Double {
    let (seconds, attoseconds) = duration.components
    return Double(seconds) * 1_000 + Double(attoseconds) / 1e15
}

/// Rounds to `places` decimals, for readable JSON.
func rounded(_ value: Double, _ places: Int = 3) -> Double {
    var scale = 1.0
    for _ in 0..<places { scale *= 10 }
    return (value * scale).rounded() / scale
}

// MARK: - Arguments

var repeats = 5
var quick = false
var arguments = CommandLine.arguments.dropFirst()
while let argument = arguments.popFirst() {
    switch argument {
    case "--quick": quick = true
    case "--repeats":
        guard let text = arguments.popFirst(), let value = Int(text), value >= 1 else {
            fail("--repeats needs a whole number >= 1")
        }
        repeats = value
    case "-h", "--help":
        print("usage: weft-bench-json [--repeats N] [--quick]")
        exit(0)
    default: fail("unknown argument \(argument)")
    }
}

let scale = quick ? 10 : 1
let b3Replicas = WorkloadCounts.b3Replicas / scale
let mapKeys = WorkloadCounts.mapKeys / scale
let orsetElements = WorkloadCounts.orsetElements / scale
let clock = ContinuousClock()

// MARK: - Workloads

@MainActor func runB3() throws -> (merge: Double, prepared: B3Workload.Prepared, winner: Int64) {
    log("[weft] b3: encoding \(b3Replicas) replica updates")
    let prepared = B3Workload.prepare(replicas: b3Replicas)
    var best = Double.infinity
    var winner: Int64?
    for run in 1...repeats {
        var merged = B3Workload.Map()
        let elapsed = try clock.measure { merged = try B3Workload.decodeAndMergeAll(prepared.updates) }
        let value = try B3Workload.verify(merged, replicas: b3Replicas)
        if let winner, winner != value { throw WorkloadCheckFailed("b3: value differs between repeats") }
        winner = value
        best = min(best, milliseconds(elapsed))
        log("[weft] b3: run \(run)/\(repeats) merge \(rounded(milliseconds(elapsed), 2)) ms (k=\(value))")
    }
    // Convergence check (untimed): the reverse order must settle on the same value.
    let reversed = try B3Workload.decodeAndMergeAll(Array(prepared.updates.reversed()))
    guard try B3Workload.verify(reversed, replicas: b3Replicas) == winner else {
        throw WorkloadCheckFailed("b3: replicas disagree on k")
    }
    return (best, prepared, winner!)
}

/// Times `label`'s full-state encode of A and B's decode-and-merge of A's bytes, best of
/// `repeats` each: the typed map and the Document run the same loop.
@MainActor func timeEncodeAndMerge<State>(
    _ label: String, a: State, aBytes: [UInt8], encode: (State) -> [UInt8], freshB: () throws -> State,
    merge: ([UInt8], inout State) throws -> Void, verify: (State) throws -> Void
) throws -> (encode: Double, merge: Double, bytes: Int) {
    var encodeBest = Double.infinity
    for run in 1...repeats {
        var bytes = [UInt8]()
        let elapsed = clock.measure { bytes = encode(a) }
        guard bytes == aBytes else { throw WorkloadCheckFailed("\(label): encoding is not deterministic") }
        encodeBest = min(encodeBest, milliseconds(elapsed))
        log("[weft] \(label): encode run \(run)/\(repeats) \(rounded(milliseconds(elapsed), 2)) ms (\(bytes.count) bytes)")
    }
    var mergeBest = Double.infinity
    for run in 1...repeats {
        var b = try freshB()  // untimed
        let elapsed = try clock.measure { try merge(aBytes, &b) }
        try verify(b)
        mergeBest = min(mergeBest, milliseconds(elapsed))
        log("[weft] \(label): merge run \(run)/\(repeats) \(rounded(milliseconds(elapsed), 2)) ms")
    }
    return (encodeBest, mergeBest, aBytes.count)
}

@MainActor func runMap() throws -> (encode: Double, merge: Double, bytes: Int) {
    log("[weft] map: building replicas A and B with \(mapKeys) keys")
    let prepared = MapWorkload.prepare(keys: mapKeys)
    return try timeEncodeAndMerge(
        "map", a: prepared.a, aBytes: prepared.aBytes, encode: MapWorkload.encode, freshB: { try MapWorkload.freshB(prepared) },
        merge: MapWorkload.decodeAndMerge, verify: { try MapWorkload.verify($0, keys: mapKeys) })
}

@MainActor func runDocumentMap() throws -> (encode: Double, merge: Double, bytes: Int) {
    log("[weft] document map: building documents A and B with \(mapKeys) fields")
    let prepared = DocumentMapWorkload.prepare(keys: mapKeys)
    return try timeEncodeAndMerge(
        "document map", a: prepared.a, aBytes: prepared.aBytes, encode: DocumentMapWorkload.encode,
        freshB: { try DocumentMapWorkload.freshB(prepared) }, merge: DocumentMapWorkload.decodeAndMerge,
        verify: { try DocumentMapWorkload.verify($0, keys: mapKeys) })
}

@MainActor func runORSet() throws -> (merge: Double, survivors: Int) {
    log("[weft] orset: building two replicas of a \(orsetElements)-element set")
    let prepared = ORSetWorkload.prepare(elements: orsetElements)
    var best = Double.infinity
    for run in 1...repeats {
        var left = prepared.left
        let elapsed = clock.measure { ORSetWorkload.merge(prepared.right, into: &left) }
        try ORSetWorkload.verify(left, prepared)
        best = min(best, milliseconds(elapsed))
        log("[weft] orset: merge run \(run)/\(repeats) \(rounded(milliseconds(elapsed), 2)) ms")
    }
    return (best, prepared.expectedSurvivors)
}

// MARK: - Output

/// A tiny JSON writer: the values here are numbers, booleans, strings and nested objects.
enum JSON {
    case number(Double)
    case integer(Int)
    case bool(Bool)
    case string(String)
    case object([(String, JSON)])

    func render(indent: Int = 0) -> String {
        switch self {
        case .number(let value): return value.isFinite ? "\(value)" : "null"
        case .integer(let value): return "\(value)"
        case .bool(let value): return value ? "true" : "false"
        case .string(let value):
            var out = "\""
            for scalar in value.unicodeScalars {
                switch scalar {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                default:
                    if scalar.value < 0x20 {
                        let hex = String(scalar.value, radix: 16)
                        out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                    } else {
                        out.unicodeScalars.append(scalar)
                    }
                }
            }
            return out + "\""
        case .object(let members):
            if members.isEmpty { return "{}" }
            let pad = String(repeating: " ", count: indent + 2)
            let lines = members.map { "\(pad)\(JSON.string($0.0).render()): \($0.1.render(indent: indent + 2))" }
            return "{\n" + lines.joined(separator: ",\n") + "\n" + String(repeating: " ", count: indent) + "}"
        }
    }
}

do {
    let start = clock.now
    let b3 = try runB3()
    let map = try runMap()
    let documentMap = try runDocumentMap()
    let orset = try runORSet()
    log("[weft] total wall time \(rounded(milliseconds(clock.now - start) / 1000, 1)) s")

    let output = JSON.object([
        ("b3_merge_ms", .number(rounded(b3.merge))),
        ("b3_bytes_per_update", .number(rounded(b3.prepared.meanBytesPerUpdate, 2))),
        ("map_update_bytes", .integer(map.bytes)),
        ("map_encode_ms", .number(rounded(map.encode))),
        ("map_merge_ms", .number(rounded(map.merge))),
        ("doc_map_update_bytes", .integer(documentMap.bytes)),
        ("doc_map_encode_ms", .number(rounded(documentMap.encode))),
        ("doc_map_merge_ms", .number(rounded(documentMap.merge))),
        ("orset_merge_ms", .number(rounded(orset.merge))),
        ("orset_elements_per_sec", .number((Double(orsetElements) / (orset.merge / 1000)).rounded())),
        (
            "extra",
            .object([
                ("b3_total_update_bytes", .integer(b3.prepared.totalBytes)),
                ("b3_winner_value", .integer(Int(b3.winner))),
                ("orset_survivors", .integer(orset.survivors)),
                ("update_format", .string("value.encoded() (Weft binary format v\(BinaryFormat.version))")),
            ])
        ),
        (
            "counts",
            .object([
                ("b3_replicas", .integer(b3Replicas)),
                ("map_keys", .integer(mapKeys)),
                ("orset_elements", .integer(orsetElements)),
                ("repeats", .integer(repeats)),
                ("quick", .bool(quick)),
            ])
        ),
    ])
    print(output.render())
} catch {
    fail("\(error)")
}
