// L. Live sync: how long after a replica pushes a change another replica, running write-behind,
// has applied it: with live pulls (a long-poll between rounds) and with the interval alone.

import Foundation
import Weft
import WeftCRDT
import WeftHTTP
import WeftServer
import WeftURLSession

struct LiveSyncPass {
    let live: Bool
    let urlSession: Bool
    let intervalMilliseconds: Int
    let latencies: [Double]

    var json: [String: Any] {
        let sorted = latencies.sorted()
        func percentile(_ p: Double) -> Double {
            guard !sorted.isEmpty else { return .nan }
            return sorted[min(sorted.count - 1, max(0, Int((p / 100 * Double(sorted.count)).rounded(.up)) - 1))]
        }
        return [
            "live_pulls": live, "reader_transport": urlSession ? "URLSession" : "AsyncHTTPClient", "sync_interval_ms": intervalMilliseconds, "samples": latencies.count,
            "p50_ms": rounded(percentile(50), 2), "p90_ms": rounded(percentile(90), 2), "max_ms": rounded(sorted.last ?? .nan, 2),
        ]
    }
}

/// `samples` changes pushed by a writer (`syncOnce`) to a server on loopback; each latency runs
/// from just before the writer's sync to the reader's publication of the pulled change. The
/// reader runs write-behind every `interval` ms, with or without live pulls; between samples a
/// random pause puts the push at a random point of the reader's interval. The reader's transport
/// is `URLSessionTransport` when `urlSession` is set, `HTTPTransport` otherwise.
func runLiveSync(samples: Int, intervalMilliseconds: Int, live: Bool, urlSession: Bool = false) async throws -> LiveSyncPass {
    let scratch = try Scratch()
    defer { scratch.remove() }
    let server = try await BenchServer.start(storePath: scratch.file("central.sqlite"), policy: .crdt)
    func engine(_ name: String, urlSession: Bool) async throws -> SyncEngine {
        let replica = try await Replica.open(path: scratch.file("\(name).sqlite"))
        if urlSession, let url = URL(string: server.baseURL) {
            return SyncEngine(replica: replica, transport: URLSessionTransport(baseURL: url, database: BenchServer.database, token: BenchServer.token))
        }
        return SyncEngine(replica: replica, transport: HTTPTransport(baseURL: server.baseURL, database: BenchServer.database, token: BenchServer.token))
    }
    let writer = try await engine("writer", urlSession: false)
    let reader = try await engine("reader", urlSession: urlSession)
    await reader.setLivePulls(live)
    let changes = await reader.replica.changes()
    var arrivals = changes.makeAsyncIterator()
    let loop = Task { await reader.runWriteBehind(everyMilliseconds: intervalMilliseconds) }
    let documents = try writer.replica.collection("orders")
    let clock = ContinuousClock()
    var latencies = [Double]()
    for sample in 0..<samples {
        try await Task.sleep(for: .milliseconds(Int.random(in: 0..<max(1, intervalMilliseconds / 2))))
        try await documents.upsert("o\(sample)") { $0.set("status", to: "open") }
        let start = clock.now
        _ = try await writer.syncOnce()
        let wanted = "o\(sample)"
        while let change = await arrivals.next() {
            if change.origin == .remote && change.key.id.rawValue == wanted { break }
        }
        latencies.append(seconds(clock.now - start) * 1000)
    }
    loop.cancel()
    await loop.value
    await server.stop()
    return LiveSyncPass(live: live, urlSession: urlSession, intervalMilliseconds: intervalMilliseconds, latencies: latencies)
}
