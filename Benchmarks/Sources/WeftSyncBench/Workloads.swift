// The workloads: an offline queue replayed to the server, and many replicas syncing at once.

import AsyncHTTPClient
import Foundation
import Weft
import WeftCRDT
import WeftHTTP
import WeftSQLite
import WeftServer
import WeftWire

// MARK: - Documents

/// Small work-order documents: five registers (two strings, an int, a double, a Boolean).
enum WorkOrders {
    static let collection = "workOrders"
    static let verbs = ["Inspect", "Replace", "Repair", "Clean", "Calibrate", "Test", "Install", "Check"]
    static let things = ["pump", "valve", "filter", "meter", "boiler", "fan", "panel", "sensor", "hose", "seal"]
    static let statuses = ["open", "assigned", "in_progress", "blocked", "done"]

    static func id(_ index: Int) -> String {
        let digits = String(index)
        return "wo-" + String(repeating: "0", count: max(0, 7 - digits.count)) + digits
    }

    /// The fields of document `index`: deterministic, varied like real data.
    static func fields(_ index: Int) -> [(String, Scalar)] {
        var state = UInt64(truncatingIfNeeded: index) &* 0x9E37_79B9_7F4A_7C15 &+ 0x2545_F491_4F6C_DD1D
        func next() -> UInt64 {
            state = state &+ 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        let title = "\(verbs[Int(next() % UInt64(verbs.count))]) \(things[Int(next() % UInt64(things.count))]) \(next() % 10_000)"
        return [
            ("title", .string(title)),
            ("status", .string(statuses[Int(next() % UInt64(statuses.count))])),
            ("priority", .int(Int64(next() % 5 + 1))),
            ("hours", .double(Double(next() % 2_000) / 4)),
            ("billable", .bool(next() % 2 == 0)),
        ]
    }

    /// Writes documents `range` with the batch API, `chunk` per transaction.
    static func write(_ replica: Replica, _ range: Range<Int>, chunk: Int) async throws {
        var start = range.lowerBound
        while start < range.upperBound {
            let end = min(start + chunk, range.upperBound)
            try await replica.batch { batch in
                for index in start..<end {
                    let fields = fields(index)
                    try batch.upsert(collection, id(index)) { editor in
                        for (name, value) in fields { editor.set(name, to: value) }
                    }
                }
            }
            start = end
        }
    }
}

// MARK: - Replay

struct ReplayOptions {
    var changes: Int
    /// `nil`: the engine's defaults.
    var batchEntries: Int?
    var writeChunk: Int
    var countWire: Bool
}

/// Writes `changes` documents into a fresh SQLite replica with no server, then replays the queue
/// to a fresh server with `SyncEngine.pushAll()`.
func runReplay(_ options: ReplayOptions) async throws -> [String: Any] {
    let scratch = try Scratch()
    defer { scratch.remove() }
    let server = try await BenchServer.start(storePath: scratch.file("central.sqlite"), policy: .lastWriterWins)
    do {
        let result = try await replay(options, server: server, scratch: scratch)
        await server.stop()
        return result
    } catch {
        await server.stop()
        throw error
    }
}

private func replay(_ options: ReplayOptions, server: BenchServer, scratch: Scratch) async throws -> [String: Any] {
    let clock = ContinuousClock()
    let replica = try await Replica.open(
        path: scratch.file("replica.sqlite"), configuration: ReplicaConfiguration(maxQueueBytes: 1 << 36))

    // Offline: write every document; nothing syncs.
    let writeStart = clock.now
    try await WorkOrders.write(replica, 0..<options.changes, chunk: options.writeChunk)
    let writeSeconds = seconds(clock.now - writeStart)
    let queuedBytes = try await replica.queuedBytes()

    let recorder = TransportRecorder(countWire: options.countWire)
    let http = HTTPTransport(baseURL: server.baseURL, database: BenchServer.database, token: BenchServer.token)
    let engine = SyncEngine(replica: replica, transport: MeasuringTransport(base: http, recorder: recorder))
    if let entries = options.batchEntries {
        // The byte cap must not bind before the entry cap; stay under the server's 16 MiB frame.
        await engine.setBatchLimits(entries: entries, bytes: min(12 << 20, max(1 << 20, entries * 1_024)))
    }
    let batchEntries = await engine.maximumBatchEntries
    let batchBytes = await engine.maximumBatchBytes

    // Memory from here on: what the replay adds to what is live.
    trimHeap()
    let residentBefore = residentBytes() ?? 0
    let peakWasReset = resetPeakResident()
    let sampler = MemorySampler()
    let replayStart = clock.now
    let pushed = try await engine.pushAll()
    let replaySeconds = seconds(clock.now - replayStart)
    let sampled = sampler.stop()
    let highWater = peakResidentBytes() ?? 0

    // Check that everything arrived: an empty queue and one logged change per document.
    guard pushed == options.changes else { throw BenchFailure("pushAll confirmed \(pushed) of \(options.changes) changes") }
    let left = try await replica.queuedBytes()
    guard left == 0 else { throw BenchFailure("\(left) queued bytes left after pushAll") }
    let tail = try await server.store.changes(
        database: BenchServer.database, after: UInt64(options.changes - 1), limit: 10, maxBytes: 1 << 20)
    guard tail.changes.count == 1, tail.changes[0].sequence == UInt64(options.changes), !tail.hasMore else {
        throw BenchFailure("the central change log does not end at sequence \(options.changes)")
    }
    let probe = DocumentKey(
        collection: try CollectionName(WorkOrders.collection), id: try DocumentID(WorkOrders.id(options.changes / 2)))
    let local = try await replica.record(probe)
    let central = try await server.store.record(database: BenchServer.database, key: probe)
    guard local != nil, local == central else { throw BenchFailure("\(probe) differs between the replica and the server") }

    // Diagnostic: one awaited record read, the engine's per-entry local step, timed alone.
    let reads = min(2_000, options.changes)
    let readStart = clock.now
    for index in 0..<reads {
        let key = DocumentKey(collection: try CollectionName(WorkOrders.collection), id: try DocumentID(WorkOrders.id(index)))
        guard try await replica.record(key) != nil else { throw BenchFailure("\(key) is missing") }
    }
    let readMicroseconds = seconds(clock.now - readStart) / Double(reads) * 1e6

    let seen = recorder.snapshot
    // Pushes overlap (two in flight), so their latencies would sum to more than the replay's
    // wall time; the time with a push in flight is the union of their intervals.
    let pushSeconds = secondsCovered(by: seen.pushIntervals)
    var result: [String: Any] = [
        "changes": options.changes,
        "batch_max_entries": batchEntries,
        "batch_max_bytes": batchBytes,
        "pushes": seen.pushLatencies.count,
        "changes_per_push": rounded(Double(options.changes) / Double(max(1, seen.pushLatencies.count)), 1),
        "offline_write_seconds": rounded(writeSeconds, 3),
        "offline_write_changes_per_second": Int(Double(options.changes) / writeSeconds),
        "queued_bytes": queuedBytes,
        "replay_seconds": rounded(replaySeconds, 3),
        "changes_per_second": Int(Double(options.changes) / replaySeconds),
        "push_latency": Latencies(seen.pushLatencies).json,
        // Where the replay's time goes: with a push on the wire (HTTP, server merge, central
        // commit), or with none (the engine's local work only: nextBatch, acknowledge).
        "seconds_with_a_push_in_flight": rounded(pushSeconds, 3),
        "seconds_with_no_push_in_flight": rounded(replaySeconds - pushSeconds, 3),
        "awaited_record_read_us": rounded(readMicroseconds, 1),
        "changes_per_second_of_push_time": Int(Double(options.changes) / max(pushSeconds, 1e-9)),
        "memory": [
            "resident_before_replay_mb": mib(residentBefore),
            "peak_resident_sampled_mb": mib(sampled.peak),
            "samples": sampled.samples,
            "vmhwm_mb": mib(highWater),
            "vmhwm_reset_before_replay": peakWasReset,
            "peak_mb": mib(max(sampled.peak, peakWasReset ? highWater : 0)),
            "includes_server": true,
        ] as [String: Any],
    ]
    if options.countWire { result["wire"] = wireFigures(seen.wire) }
    return result
}

func wireFigures(_ wire: WireTally) -> [String: Any] {
    func ratio(_ a: Int, _ b: Int) -> Double { rounded(Double(a) / Double(max(1, b)), 4) }
    return [
        "requests": wire.requests,
        "changes": wire.changes,
        "compressed_requests": wire.compressedRequests,
        "framed_bytes": wire.framedBytes,
        "framed_bytes_per_change": rounded(Double(wire.framedBytes) / Double(max(1, wire.changes)), 1),
        "payload_bytes": wire.payloadBytes,
        "payload_bytes_per_change": rounded(Double(wire.payloadBytes) / Double(max(1, wire.changes)), 1),
        "zstd_ratio_payload_over_framed": ratio(wire.payloadBytes, wire.framedBytes),
        "json_per_change_bytes": wire.jsonPerChangeBytes,
        "json_per_change_bytes_per_change": rounded(Double(wire.jsonPerChangeBytes) / Double(max(1, wire.changes)), 1),
        "framed_over_json_per_change": ratio(wire.framedBytes, wire.jsonPerChangeBytes),
        "json_batched_bytes": wire.jsonBatchedBytes,
        "framed_over_json_batched": ratio(wire.framedBytes, wire.jsonBatchedBytes),
        "json_batched_zstd_bytes": wire.jsonBatchedZstdBytes,
        "framed_over_json_batched_zstd": ratio(wire.framedBytes, wire.jsonBatchedZstdBytes),
        "payload_over_json_per_change": ratio(wire.payloadBytes, wire.jsonPerChangeBytes),
    ]
}

// MARK: - Server under load

struct LoadOptions {
    var replicas: Int
    var rounds: Int
    var changesPerRound: Int
    var sharedDocuments: Int
    /// `false`: rounds push only (`pushAll()`), isolating the server's push path.
    var pull = true
}

/// `replicas` SQLite replicas, each with its own HTTP client and transport, each running
/// `rounds` rounds of (write `changesPerRound` changes in one batch, then `syncOnce()`), all at
/// once against one server. One change per round increments a counter in a shared document, so
/// the replicas also merge each other's work.
func runLoad(_ options: LoadOptions) async throws -> [String: Any] {
    let scratch = try Scratch()
    defer { scratch.remove() }
    let server = try await BenchServer.start(storePath: scratch.file("central.sqlite"), policy: .crdt)
    var clients = [HTTPClient]()
    do {
        let recorder = TransportRecorder(countWire: false)
        var configuration = ReplicaConfiguration()
        configuration.conflictResolution = .crdt
        var engines = [SyncEngine]()
        for index in 0..<options.replicas {
            let replica = try await Replica.open(path: scratch.file("replica-\(index).sqlite"), configuration: configuration)
            // One client each: 50 devices means 50 connections, not one shared pool.
            let client = HTTPClient(eventLoopGroupProvider: .singleton)
            clients.append(client)
            let http = HTTPTransport(baseURL: server.baseURL, database: BenchServer.database, token: BenchServer.token, client: client)
            engines.append(SyncEngine(replica: replica, transport: MeasuringTransport(base: http, recorder: recorder)))
        }
        let clock = ContinuousClock()
        let start = clock.now
        let totals = try await withThrowingTaskGroup(of: (pushed: Int, pulled: Int, rounds: [Double]).self) { group in
            for (index, engine) in engines.enumerated() {
                group.addTask {
                    var pushed = 0
                    var pulled = 0
                    var roundSeconds = [Double]()
                    for round in 0..<options.rounds {
                        let roundStart = clock.now
                        let shared = "shared-\(round % options.sharedDocuments)"
                        try await engine.replica.batch { batch in
                            for step in 0..<max(0, options.changesPerRound - 1) {
                                let number = (index * options.rounds + round) * options.changesPerRound + step
                                let fields = WorkOrders.fields(number)
                                try batch.upsert(WorkOrders.collection, "r\(index)-" + WorkOrders.id(round * options.changesPerRound + step)) {
                                    editor in
                                    for (name, value) in fields { editor.set(name, to: value) }
                                }
                            }
                            try batch.upsert("counters", shared) { $0.increment("visits") }
                        }
                        if options.pull {
                            let report = try await engine.syncOnce()
                            pushed += report.pushed
                            pulled += report.pulled
                        } else {
                            pushed += try await engine.pushAll()
                        }
                        roundSeconds.append(seconds(clock.now - roundStart))
                    }
                    return (pushed, pulled, roundSeconds)
                }
            }
            var pushed = 0
            var pulled = 0
            var rounds = [Double]()
            for try await result in group {
                pushed += result.pushed
                pulled += result.pulled
                rounds += result.rounds
            }
            return (pushed: pushed, pulled: pulled, rounds: rounds)
        }
        let wallSeconds = seconds(clock.now - start)
        let seen = recorder.snapshot

        // Untimed: one more round each so everyone has everything, then check convergence.
        if options.pull { for engine in engines { try await engine.syncOnce() } }
        var converged = true
        for shared in 0..<min(options.sharedDocuments, options.rounds) {
            let key = DocumentKey(collection: try CollectionName("counters"), id: try DocumentID("shared-\(shared)"))
            let expected = Int64(options.replicas * stride(from: shared, to: options.rounds, by: options.sharedDocuments).underestimatedCount)
            let central = try await server.store.record(database: BenchServer.database, key: key)
            if central?.body.counter("visits") != expected { converged = false }
            if options.pull {
                for engine in engines where try await engine.replica.record(key) != central { converged = false }
            }
        }
        for client in clients { try? await client.shutdown() }
        clients = []
        await server.stop()

        let expectedPushed = options.replicas * options.rounds * options.changesPerRound
        return [
            "replicas": options.replicas,
            "mode": options.pull ? "push and pull (syncOnce)" : "push only (pushAll)",
            "rounds": options.rounds,
            "changes_per_round": options.changesPerRound,
            "wall_seconds": rounded(wallSeconds, 3),
            "pushed_changes": totals.pushed,
            "pushed_expected": expectedPushed,
            "pulled_changes": totals.pulled,
            "push_changes_per_second": Int(Double(totals.pushed) / wallSeconds),
            "pull_changes_per_second": Int(Double(totals.pulled) / wallSeconds),
            "total_changes_per_second": Int(Double(totals.pushed + totals.pulled) / wallSeconds),
            "push_latency": Latencies(seen.pushLatencies).json,
            "pull_latency": Latencies(seen.pullLatencies).json,
            "round_latency": Latencies(totals.rounds).json,
            "converged": converged,
        ]
    } catch {
        for client in clients { try? await client.shutdown() }
        await server.stop()
        throw error
    }
}

/// Throttled replay with the real clock: `changes` queued changes pushed under
/// `bytesPerSecond`; the measured rate is framed bytes sent over the replay's wall time.
func runThrottledReplay(changes: Int, bytesPerSecond: Int, burstBytes: Int) async throws -> [String: Any] {
    let scratch = try Scratch()
    defer { scratch.remove() }
    let server = try await BenchServer.start(storePath: scratch.file("central.sqlite"), policy: .lastWriterWins)
    do {
        let replica = try await Replica.open(
            path: scratch.file("replica.sqlite"), configuration: ReplicaConfiguration(maxQueueBytes: 1 << 36))
        try await WorkOrders.write(replica, 0..<changes, chunk: 5_000)
        let recorder = TransportRecorder(countWire: true)
        let http = HTTPTransport(baseURL: server.baseURL, database: BenchServer.database, token: BenchServer.token)
        let engine = SyncEngine(replica: replica, transport: MeasuringTransport(base: http, recorder: recorder))
        await engine.setBandwidthLimit(BandwidthLimit(bytesPerSecond: bytesPerSecond, burstBytes: burstBytes))
        let events = await engine.progress()
        let collected = Task {
            var last: SyncProgress?
            var count = 0
            for await event in events {
                last = event
                count += 1
                if event.entriesDone >= event.entriesTotal { break }
            }
            return (last, count)
        }
        let clock = ContinuousClock()
        let start = clock.now
        let pushed = try await engine.pushAll()
        let elapsed = seconds(clock.now - start)
        let (last, events_) = await collected.value
        guard pushed == changes else { throw BenchFailure("pushed \(pushed) of \(changes)") }
        let wire = last?.wireBytesSent ?? 0
        let rate = Double(wire) / elapsed
        // Excluding the burst the bucket starts with, which goes out at once.
        let sustained = Double(max(0, wire - burstBytes)) / elapsed
        await server.stop()
        return [
            "changes": changes, "limit_bytes_per_second": bytesPerSecond, "burst_bytes": burstBytes,
            "seconds": rounded(elapsed, 3), "framed_bytes_sent": wire, "measured_bytes_per_second": Int(rate),
            "sustained_bytes_per_second": Int(sustained),
            "measured_over_limit": rounded(rate / Double(bytesPerSecond), 4),
            "sustained_over_limit": rounded(sustained / Double(bytesPerSecond), 4),
            "progress_events": events_,
        ]
    } catch {
        await server.stop()
        throw error
    }
}

/// `replicas` in-memory replicas, each with `changes` queued documents of its own, spread over
/// the servers at `baseURLs` in turn, each with an engine pushing `batchEntries` per request.
func queuedReplicas(replicas: Int, changes: Int, baseURLs: [String], tenant: String, batchEntries: Int) async throws -> [SyncEngine] {
    var engines = [SyncEngine]()
    for index in 0..<replicas {
        let replica = try await Replica(storage: MemoryReplicaStorage(), configuration: ReplicaConfiguration(maxQueueBytes: 1 << 36))
        try await WorkOrders.write(replica, (index * changes)..<((index + 1) * changes), chunk: 1_000)
        let client = HTTPTransport(baseURL: baseURLs[index % baseURLs.count], database: tenant, token: BenchServer.token)
        let engine = SyncEngine(replica: replica, transport: client)
        await engine.setBatchLimits(entries: batchEntries, bytes: 1 << 20)
        engines.append(engine)
    }
    return engines
}

/// Runs every engine's `pushAll()` at once; the wall time, and the share of the machine's CPU
/// that was busy meanwhile (every process, PostgreSQL's too). Throws unless `expected` changes
/// were pushed.
func pushAllAtOnce(_ engines: [SyncEngine], expected: Int) async throws -> (seconds: Double, cpuBusy: Double?) {
    let clock = ContinuousClock()
    let cpuBefore = machineCPUTicks()
    let start = clock.now
    let pushed = try await withThrowingTaskGroup(of: Int.self) { group in
        for engine in engines { group.addTask { try await engine.pushAll() } }
        return try await group.reduce(0, +)
    }
    let elapsed = seconds(clock.now - start)
    let cpuBusy = busyFraction(from: cpuBefore, to: machineCPUTicks())
    guard pushed == expected else { throw BenchFailure("pushed \(pushed) of \(expected)") }
    return (elapsed, cpuBusy)
}

/// Push throughput of a central store behind `instances` Standalone servers: `replicas`
/// replicas (each its own HTTP client), spread over the servers, each pushing `changes` queued
/// documents of its own at once. Returns changes per second over the wall time of all pushes,
/// and the share of the machine's CPU that was busy meanwhile (every process, PostgreSQL's too).
func runStorePush(
    stores: [any CentralStore], tenant: String, replicas: Int, changes: Int, batchEntries: Int = 100, keepsProjection: Bool = true
) async throws -> (changesPerSecond: Int, seconds: Double, cpuBusy: Double?) {
    var servers = [BenchServer]()
    for store in stores {
        servers.append(try await BenchServer.start(store: store, policy: .lastWriterWins, databases: [tenant], keepsProjection: keepsProjection))
    }
    do {
        let engines = try await queuedReplicas(
            replicas: replicas, changes: changes, baseURLs: servers.map(\.baseURL), tenant: tenant, batchEntries: batchEntries)
        let (elapsed, cpuBusy) = try await pushAllAtOnce(engines, expected: replicas * changes)
        for server in servers { await server.stop() }
        return (Int(Double(replicas * changes) / elapsed), elapsed, cpuBusy)
    } catch {
        for server in servers { await server.stop() }
        throw error
    }
}
