// ReplicaWrites: a Weft replica on SQLite against raw SQLite doing the same upserts (same
// table, same BLOB bytes, WAL, same synchronous setting), for both durability levels.
// The workloads are in Sources/WeftReplicaBench, shared with weft-replica-bench.
//
// - "… x1000" benchmarks run 1,000 writes per iteration (scaling factor kilo), so every figure
//   is per write: the replica committing each write, the replica committing one batch of 1,000,
//   raw SQLite with one transaction per upsert, raw SQLite with 1,000 upserts in one transaction.
// - "… latency" benchmarks run one write per iteration: their p50 wall clock is the
//   single-document commit.
// - "Replica memory" writes WEFT_REPLICA_MEMORY_DOCUMENTS documents (default 100,000) once and
//   reports the resident-memory growth.
// - "Replica queue" writes WEFT_REPLICA_QUEUE_WRITES writes (default 10,000) over 1,000
//   documents and reports the queue's bytes with coalescing and without (custom metrics).
//
// Run: swift package --package-path Benchmarks benchmark --target ReplicaWrites

import Benchmark
import Foundation
import Synchronization
import Weft
import WeftReplicaBench

/// A value made in setup, used by the iterations and dropped in teardown.
final class Slot<Value: Sendable>: Sendable {
    private let storage = Mutex<Value?>(nil)
    func set(_ value: Value?) { storage.withLock { $0 = value } }
    var value: Value {
        get throws {
            guard let value = storage.withLock({ $0 }) else { throw BenchmarkFailure("setup did not run") }
            return value
        }
    }
}

/// A counter of writes done across iterations, so creates always go to new documents.
final class Counter: Sendable {
    private let storage = Mutex(0)
    /// Reserves `count` consecutive numbers and returns the first.
    func take(_ count: Int = 1) -> Int {
        storage.withLock { value in
            defer { value += count }
            return value
        }
    }
}

func environment(_ name: String, default value: Int) -> Int {
    ProcessInfo.processInfo.environment[name].flatMap { Int($0.replacingOccurrences(of: "_", with: "")) } ?? value
}

/// Documents pre-written by the update-latency benchmarks.
let updatedDocuments = 1_000

let benchmarks: @Sendable () -> Void = {
    let perWrite = Benchmark.Configuration(
        metrics: [.wallClock, .throughput, .cpuTotal],
        timeUnits: .microseconds,
        warmupIterations: 1,
        scalingFactor: .kilo,
        maxDuration: .seconds(3),
        maxIterations: 50
    )
    let latency = Benchmark.Configuration(
        metrics: [.wallClock, .throughput],
        timeUnits: .microseconds,
        warmupIterations: 10,
        maxDuration: .seconds(2),
        maxIterations: 5_000
    )

    let payload = Slot<[UInt8]>()

    for durability in Durability.allCases {
        let suffix = "(\(durability.rawValue))"

        // MARK: Rates, per write, 1,000 writes per iteration

        do {
            let replica = Slot<ReplicaUnderTest>()
            let counter = Counter()
            Benchmark("Replica upsert, one commit per write x1000 \(suffix)", configuration: perWrite) { benchmark in
                let store = try replica.value
                let first = counter.take(benchmark.scaledIterations.count)
                for index in benchmark.scaledIterations { try await store.upsert(first + index) }
            } setup: {
                replica.set(try await ReplicaUnderTest.open(durability: durability))
            } teardown: {
                try? replica.value.remove()
                replica.set(nil)
            }
        }
        do {
            let replica = Slot<ReplicaUnderTest>()
            let counter = Counter()
            Benchmark("Replica batch of 1000, one commit x1000 \(suffix)", configuration: perWrite) { benchmark in
                let store = try replica.value
                let first = counter.take(benchmark.scaledIterations.count)
                try await store.batchUpsert(first..<(first + benchmark.scaledIterations.count))
            } setup: {
                replica.set(try await ReplicaUnderTest.open(durability: durability))
            } teardown: {
                try? replica.value.remove()
                replica.set(nil)
            }
        }
        do {
            let raw = Slot<RawSQLite>()
            let counter = Counter()
            Benchmark("Raw SQLite upsert, one transaction per upsert x1000 \(suffix)", configuration: perWrite) { benchmark in
                let store = try raw.value
                let first = counter.take(benchmark.scaledIterations.count)
                for index in benchmark.scaledIterations { try store.upsert(first + index) }
            } setup: {
                raw.set(try RawSQLite(durability: durability, payload: try await payloadBytes(payload)))
            } teardown: {
                try? raw.value.remove()
                raw.set(nil)
            }
        }
        do {
            let raw = Slot<RawSQLite>()
            let counter = Counter()
            Benchmark("Raw SQLite 1000 upserts in one transaction x1000 \(suffix)", configuration: perWrite) { benchmark in
                let store = try raw.value
                let first = counter.take(benchmark.scaledIterations.count)
                try store.upsertAll(first..<(first + benchmark.scaledIterations.count))
            } setup: {
                raw.set(try RawSQLite(durability: durability, payload: try await payloadBytes(payload)))
            } teardown: {
                try? raw.value.remove()
                raw.set(nil)
            }
        }

        // MARK: Single-document commit latency

        do {
            let replica = Slot<ReplicaUnderTest>()
            let counter = Counter()
            Benchmark("Replica upsert latency, create \(suffix)", configuration: latency) { _ in
                try await replica.value.upsert(counter.take())
            } setup: {
                replica.set(try await ReplicaUnderTest.open(durability: durability))
            } teardown: {
                try? replica.value.remove()
                replica.set(nil)
            }
        }
        do {
            let replica = Slot<ReplicaUnderTest>()
            let counter = Counter()
            Benchmark("Replica upsert latency, update \(suffix)", configuration: latency) { _ in
                let write = counter.take()
                try await replica.value.upsert(write % updatedDocuments, round: 1 + write / updatedDocuments)
            } setup: {
                let store = try await ReplicaUnderTest.open(durability: durability)
                try await store.batchUpsert(0..<updatedDocuments)
                replica.set(store)
            } teardown: {
                try? replica.value.remove()
                replica.set(nil)
            }
        }
        do {
            let raw = Slot<RawSQLite>()
            let counter = Counter()
            Benchmark("Raw SQLite upsert latency, insert \(suffix)", configuration: latency) { _ in
                try raw.value.upsert(counter.take())
            } setup: {
                raw.set(try RawSQLite(durability: durability, payload: try await payloadBytes(payload)))
            } teardown: {
                try? raw.value.remove()
                raw.set(nil)
            }
        }
        do {
            let raw = Slot<RawSQLite>()
            let counter = Counter()
            Benchmark("Raw SQLite upsert latency, update \(suffix)", configuration: latency) { _ in
                try raw.value.upsert(counter.take() % updatedDocuments)
            } setup: {
                let store = try RawSQLite(durability: durability, payload: try await payloadBytes(payload))
                try store.upsertAll(0..<updatedDocuments)
                raw.set(store)
            } teardown: {
                try? raw.value.remove()
                raw.set(nil)
            }
        }
    }

    // MARK: Memory and queue (normal durability)

    let memoryDocuments = environment("WEFT_REPLICA_MEMORY_DOCUMENTS", default: 100_000)
    Benchmark(
        "Replica memory, \(memoryDocuments) documents one commit each (normal)",
        configuration: .init(
            metrics: [.peakMemoryResidentDelta, .peakMemoryResident, .wallClock],
            timeUnits: .seconds, warmupIterations: 0, maxDuration: .seconds(1), maxIterations: 1)
    ) { benchmark in
        let store = try await ReplicaUnderTest.open(durability: .normal)
        defer { store.remove() }
        benchmark.startMeasurement()
        for index in 0..<memoryDocuments { try await store.upsert(index) }
        benchmark.stopMeasurement()
    }

    let queueWrites = environment("WEFT_REPLICA_QUEUE_WRITES", default: 10_000)
    Benchmark(
        "Replica queue, \(queueWrites) writes over 1000 documents (normal)",
        configuration: .init(
            metrics: [
                .custom("queue bytes, coalesced", polarity: .prefersSmaller, useScalingFactor: false),
                .custom("queue bytes, without coalescing", polarity: .prefersSmaller, useScalingFactor: false),
            ],
            warmupIterations: 0, maxDuration: .seconds(1), maxIterations: 1)
    ) { benchmark in
        let figures = try await ReplicaMeasurements.queue(writes: queueWrites, documents: 1_000, durability: .normal)
        benchmark.measurement(.custom("queue bytes, coalesced", polarity: .prefersSmaller, useScalingFactor: false), figures.coalescedBytes)
        benchmark.measurement(
            .custom("queue bytes, without coalescing", polarity: .prefersSmaller, useScalingFactor: false), figures.uncoalescedBytes)
    }
}

/// The raw baseline's BLOB (the encoded record Weft stores for the same document), made once.
func payloadBytes(_ slot: Slot<[UInt8]>) async throws -> [UInt8] {
    if let bytes = try? slot.value { return bytes }
    let bytes = try await BenchDocuments.encodedRecord()
    slot.set(bytes)
    return bytes
}
