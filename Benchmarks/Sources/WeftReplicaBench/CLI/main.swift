// weft-replica-bench: a Weft replica on SQLite against raw SQLite doing the same upserts, with
// the same synchronous setting, in the same run. Prints one JSON object on stdout; progress
// goes to stderr. See Sources/WeftReplicaBench/Library for the workloads.
//
// Usage: swift run -c release --package-path Benchmarks weft-replica-bench [options]
//
//   --documents N          documents per write-rate pass, and per batch in the batched passes (default 1000)
//   --batches N            batches per batched pass, each of --documents writes in one commit (default 10)
//   --repeats N            write-rate repeats per durability, each on fresh databases (default 5)
//   --durability D         normal, full or both (default both)
//   --memory-documents N   documents written in the memory measure (default 1000000; 0 skips)
//   --memory-sample N      resident memory sampled every N writes (default 10000)
//   --raw-memory           also measure raw SQLite's resident memory for the same writes
//   --queue-writes N       writes in the queue measure (default 100000; 0 skips)
//   --queue-documents N    documents they go to, round-robin (default 1000)
//   --probe STORE N        only N upserts to STORE (replica, batch, batch-update, raw or raw-batch) at the first --durability, then
//                          exit: for counting fsyncs under strace (strace -f -c -e trace=fsync,fdatasync)
//   --quick                a smoke run: 200 documents, 2 repeats, 20000 memory docs, 5000 queue writes

import Foundation
import Weft
import WeftReplicaBench

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

func log(_ message: String) {
    var line = "[weft-replica-bench] " + message + "\n"
    line.withUTF8 { buffer in _ = write(2, buffer.baseAddress, buffer.count) }
}

func fail(_ message: String) -> Never {
    log(message)
    exit(1)
}

// MARK: - Arguments

var documents = 1_000
var batches = 10
var repeats = 5
var durabilities: [Durability] = [.normal, .full]
var memoryDocuments = 1_000_000
var memorySample = 10_000
var rawMemory = false
var queueWrites = 100_000
var queueDocuments = 1_000
var probe: (store: String, writes: Int)?

func number(_ arguments: inout ArraySlice<String>, _ flag: String, minimum: Int) -> Int {
    guard let text = arguments.popFirst(), let value = Int(text.replacingOccurrences(of: "_", with: "")), value >= minimum
    else { fail("\(flag) needs a whole number >= \(minimum)") }
    return value
}

var arguments = CommandLine.arguments.dropFirst()
while let argument = arguments.popFirst() {
    switch argument {
    case "--documents": documents = number(&arguments, argument, minimum: 1)
    case "--batches": batches = number(&arguments, argument, minimum: 1)
    case "--repeats": repeats = number(&arguments, argument, minimum: 1)
    case "--memory-documents": memoryDocuments = number(&arguments, argument, minimum: 0)
    case "--memory-sample": memorySample = number(&arguments, argument, minimum: 1)
    case "--raw-memory": rawMemory = true
    case "--queue-writes": queueWrites = number(&arguments, argument, minimum: 0)
    case "--queue-documents": queueDocuments = number(&arguments, argument, minimum: 1)
    case "--durability":
        switch arguments.popFirst() {
        case "normal": durabilities = [.normal]
        case "full": durabilities = [.full]
        case "both": durabilities = [.normal, .full]
        default: fail("--durability needs normal, full or both")
        }
    case "--probe":
        guard let store = arguments.popFirst(), ["replica", "batch", "batch-update", "raw", "raw-batch"].contains(store) else {
            fail("--probe needs replica, batch, batch-update, raw or raw-batch")
        }
        probe = (store, number(&arguments, argument, minimum: 1))
    case "--quick":
        documents = 200
        batches = 2
        repeats = 2
        memoryDocuments = 20_000
        memorySample = 2_000
        queueWrites = 5_000
        queueDocuments = 100
    case "-h", "--help":
        print(
            "usage: weft-replica-bench [--documents N] [--batches N] [--repeats N] [--durability normal|full|both] "
                + "[--memory-documents N] [--memory-sample N] [--raw-memory] [--queue-writes N] [--queue-documents N] "
                + "[--probe replica|batch|batch-update|raw|raw-batch N] [--quick]")
        exit(0)
    default: fail("unknown argument \(argument)")
    }
}

// MARK: - Figures

func mib(_ bytes: Int) -> Double { rounded(Double(bytes) / 1_048_576, 2) }

func target(_ value: Double, _ comparison: String, _ bound: Double, _ what: String) -> [String: Any] {
    let met: Bool
    switch comparison {
    case ">=": met = value >= bound
    case "<": met = value < bound
    default: met = value <= bound
    }
    return ["value": rounded(value), "target": "\(comparison) \(bound)", "met": met, "measures": what]
}

func pooled(_ passes: [WritePass]) -> LatencySummary { LatencySummary(passes.flatMap(\.latencies)) }

func rate(_ passes: [WritePass]) -> Double { median(passes.map(\.rate)) }

let payload: [UInt8]
do {
    payload = try await BenchDocuments.encodedRecord()
} catch {
    fail("could not encode the payload: \(error)")
}

if let probe, let durability = durabilities.first {
    do {
        let elapsed: Duration
        if probe.store == "raw" {
            let store = try RawSQLite(durability: durability, payload: payload)
            defer { store.remove() }
            elapsed = try ContinuousClock().measure { for index in 0..<probe.writes { try store.upsert(index) } }
        } else if probe.store == "raw-batch" {
            // Raw SQLite's side of "batch": 1,000 upserts per transaction.
            let store = try RawSQLite(durability: durability, payload: payload)
            defer { store.remove() }
            elapsed = try ContinuousClock().measure {
                for first in stride(from: 0, to: probe.writes, by: 1_000) { try store.upsertAll(first..<min(first + 1_000, probe.writes)) }
            }
        } else if probe.store == "batch" || probe.store == "batch-update" {
            // Batches of 1,000 writes to fresh documents ("batch"), or, once those are written,
            // the same documents updated ("batch-update": only the updates are timed).
            let store = try await ReplicaUnderTest.open(durability: durability)
            defer { store.remove() }
            let clock = ContinuousClock()
            var start = clock.now
            for first in stride(from: 0, to: probe.writes, by: 1_000) {
                try await store.batchUpsert(first..<min(first + 1_000, probe.writes))
            }
            if probe.store == "batch-update" {
                start = clock.now
                for first in stride(from: 0, to: probe.writes, by: 1_000) {
                    try await store.batchUpsert(first..<min(first + 1_000, probe.writes), round: 1)
                }
            }
            elapsed = clock.now - start
        } else {
            // Off the main actor, as the measured passes run.
            let writes = probe.writes
            elapsed = try await Task.detached {
                let store = try await ReplicaUnderTest.open(durability: durability)
                defer { store.remove() }
                let clock = ContinuousClock()
                let start = clock.now
                for index in 0..<writes { try await store.upsert(index) }
                return clock.now - start
            }.value
        }
        print("{\"probe\": \"\(probe.store)\", \"durability\": \"\(durability)\", \"writes\": \(probe.writes), \"seconds\": \(rounded(nanoseconds(elapsed) / 1e9))}")
        exit(0)
    } catch {
        fail("probe failed: \(error)")
    }
}

var output: [String: Any] = [:]
var targets: [String: Any] = [:]
var environment: [String: Any] = [
    "sqlite_version": (try? RawSQLite.sqliteVersion()) ?? "?",
    "processors": ProcessInfo.processInfo.activeProcessorCount,
    "payload_bytes": payload.count,
    "documents_per_pass": documents,
    "batches_per_batched_pass": batches,
    "repeats": repeats,
    "journal_mode": "wal",
]
#if os(Linux)
environment["os"] = "linux"
#elseif os(macOS)
environment["os"] = "macos"
#endif
output["environment"] = environment

do {
    var writeRates: [String: Any] = [:]
    for durability in durabilities {
        var runs = [WriteRateRepeat]()
        for run in 1...repeats {
            log("write rates, \(durability): repeat \(run)/\(repeats) (\(documents) documents; \(batches) batches of \(documents))")
            runs.append(
                try await ReplicaMeasurements.writeRates(durability: durability, documents: documents, batches: batches, payload: payload))
        }
        let replicaCreate = rate(runs.map(\.replicaPerWriteCreate))
        let replicaUpdate = rate(runs.map(\.replicaPerWriteUpdate))
        let replicaBatchCreate = rate(runs.map(\.replicaBatchCreate))
        let replicaBatchUpdate = rate(runs.map(\.replicaBatchUpdate))
        let rawTxnInsert = rate(runs.map(\.rawPerTransactionInsert))
        let rawTxnUpdate = rate(runs.map(\.rawPerTransactionUpdate))
        let rawOneInsert = rate(runs.map(\.rawOneTransactionInsert))
        let rawOneUpdate = rate(runs.map(\.rawOneTransactionUpdate))
        let latencyReplicaCreate = pooled(runs.map(\.replicaPerWriteCreate))
        let latencyReplicaUpdate = pooled(runs.map(\.replicaPerWriteUpdate))
        let latencyRawInsert = pooled(runs.map(\.rawPerTransactionInsert))
        let latencyRawUpdate = pooled(runs.map(\.rawPerTransactionUpdate))
        let batchCommitMS = median(runs.flatMap { $0.replicaBatchCreate.latencies.map { $0 / 1e6 } })

        let name = durability.rawValue
        writeRates[name] = [
            "synchronous": durability == .full ? "FULL" : "NORMAL",
            "writes_per_second_median": [
                "replica_one_commit_per_write_create": rounded(replicaCreate, 0),
                "replica_one_commit_per_write_update": rounded(replicaUpdate, 0),
                "replica_batch_of_\(documents)_create": rounded(replicaBatchCreate, 0),
                "replica_batch_of_\(documents)_update": rounded(replicaBatchUpdate, 0),
                "raw_one_transaction_per_upsert_insert": rounded(rawTxnInsert, 0),
                "raw_one_transaction_per_upsert_update": rounded(rawTxnUpdate, 0),
                "raw_\(documents)_upserts_in_one_transaction_insert": rounded(rawOneInsert, 0),
                "raw_\(documents)_upserts_in_one_transaction_update": rounded(rawOneUpdate, 0),
            ],
            "replica_batch_of_\(documents)_commit_ms_median": rounded(batchCommitMS),
            "single_write_latency": [
                "replica_create": latencyReplicaCreate.microseconds,
                "replica_update": latencyReplicaUpdate.microseconds,
                "raw_insert": latencyRawInsert.microseconds,
                "raw_update": latencyRawUpdate.microseconds,
                "samples_each": latencyReplicaCreate.count,
            ],
            "ratios": [
                "replica_per_write_over_raw_one_transaction_create": rounded(replicaCreate / rawOneInsert),
                "replica_per_write_over_raw_one_transaction_update": rounded(replicaUpdate / rawOneUpdate),
                "replica_per_write_over_raw_transaction_per_upsert_create": rounded(replicaCreate / rawTxnInsert),
                "replica_per_write_over_raw_transaction_per_upsert_update": rounded(replicaUpdate / rawTxnUpdate),
                "replica_batch_over_raw_one_transaction_create": rounded(replicaBatchCreate / rawOneInsert),
                "replica_batch_over_raw_one_transaction_update": rounded(replicaBatchUpdate / rawOneUpdate),
                "replica_p50_over_raw_p50_create": rounded(latencyReplicaCreate.p50 / latencyRawInsert.p50),
                "replica_p50_over_raw_p50_update": rounded(latencyReplicaUpdate.p50 / latencyRawUpdate.p50),
            ],
        ] as [String: Any]
        log("write breakdown, \(durability): \(documents) documents")
        let breakdown = try await ReplicaMeasurements.breakdown(durability: durability, documents: documents, payload: payload)
        var rates = writeRates[name] as! [String: Any]
        rates["write_breakdown_us"] = [
            "method": "one update of an existing document, and each storage call it makes timed alone (p50 / p90 in microseconds); raw rows: GRDB on the same database layout",
            "replica_upsert_whole": breakdown.replicaUpdate.microseconds,
            "storage_record_read": breakdown.recordRead.microseconds,
            "replica_get": breakdown.pointRead.microseconds,
            "storage_commit_one_write": breakdown.commitOneWrite.microseconds,
            "storage_save_last_stamp": breakdown.saveLastStamp.microseconds,
            "raw_async_read": breakdown.rawAsyncRead.microseconds,
            "raw_async_upsert_own_transaction": breakdown.rawAsyncUpsert.microseconds,
            "raw_sync_upsert_own_transaction": breakdown.rawSyncUpsert.microseconds,
        ] as [String: Any]
        writeRates[name] = rates

        targets["batched_writes_\(name)"] = target(
            replicaBatchCreate / rawOneInsert, ">=", 0.5,
            "Replica.batch of \(documents) creates over raw SQLite with \(documents) upserts in one transaction, \(batches) batches a pass (median rates)")
        targets["batched_writes_\(name)_one_commit_per_write"] = target(
            replicaCreate / rawOneInsert, ">=", 0.5,
            "replica upsert (one commit per write) over raw SQLite with \(documents) upserts in one transaction")
        targets["single_write_p50_\(name)_create"] = target(
            latencyReplicaCreate.p50 / latencyRawInsert.p50, "<=", 1.5,
            "p50 of one replica upsert creating a document over p50 of one raw upsert in its own transaction")
        targets["point_read_p50_\(name)"] = target(
            breakdown.pointRead.p50 / breakdown.replicaUpdate.p50, "<=", 1.0,
            "p50 of ReplicaCollection.get of an existing document over p50 of one replica upsert updating a document (issue #16: a point read below a write)")
        targets["single_write_p50_\(name)_update"] = target(
            latencyReplicaUpdate.p50 / latencyRawUpdate.p50, "<=", 1.5,
            "p50 of one replica upsert updating a document over p50 of one raw upsert replacing a row")
    }
    output["write_rates"] = writeRates

    if queueWrites > 0 {
        log("queue: \(queueWrites) writes over \(queueDocuments) documents")
        let queue = try await ReplicaMeasurements.queue(writes: queueWrites, documents: queueDocuments, durability: .normal) {
            phase, done in log("queue, \(phase): \(done)/\(queueWrites)")
        }
        output["queue"] = [
            "writes": queue.writes,
            "documents": queue.documents,
            "durability": "normal",
            "coalesced_bytes": queue.coalescedBytes,
            "coalesced_entries": queue.coalescedEntries,
            "uncoalesced_bytes": queue.uncoalescedBytes,
            "uncoalesced_entries": queue.uncoalescedEntries,
            "uncoalesced_over_coalesced": rounded(Double(queue.uncoalescedBytes) / Double(queue.coalescedBytes), 2),
            "entry_bytes_first_write": queue.firstEntryBytes,
            "entry_bytes_later_write": queue.laterEntryBytes,
            "coalescing_writes_per_second": rounded(Double(queue.writes) / queue.coalescedSeconds, 0),
            "drained_writes_per_second_including_drain": rounded(Double(queue.writes) / queue.drainedSeconds, 0),
            "method": "coalesced: queuedBytes() after all writes with nothing sent; uncoalesced: sum of each write's own entry byteCount, from a replica drained (nextBatch + acknowledge) after every write",
        ] as [String: Any]
    }

    if memoryDocuments > 0 {
        var memory: [String: Any] = [:]
        var stores = [false]
        if rawMemory { stores.append(true) }
        for raw in stores {
            let label = raw ? "raw_sqlite" : "replica"
            log("memory, \(label): \(memoryDocuments) documents")
            let figures = try await ReplicaMeasurements.memory(
                durability: .normal, documents: memoryDocuments, raw: raw, payload: payload, sampleEvery: memorySample
            ) { written in
                if written % max(memorySample, memoryDocuments / 10) == 0 {
                    log("memory, \(label): \(written)/\(memoryDocuments), resident \(mib(residentMemoryBytes() ?? 0)) MiB")
                }
            }
            memory[label] = [
                "documents": figures.documents,
                "durability": "normal",
                "seconds": rounded(figures.seconds, 1),
                "writes_per_second": rounded(Double(figures.documents) / figures.seconds, 0),
                "resident_before_mib": mib(figures.residentBefore),
                "resident_after_mib": mib(figures.residentAfter),
                "resident_peak_sampled_mib": mib(figures.residentPeakSampled),
                "process_peak_resident_vmhwm_mib": mib(figures.processPeakResident),
                "growth_mib": mib(figures.growth),
                "peak_growth_mib": mib(figures.peakGrowth),
                "sample_every": figures.sampleEvery,
                "samples_mib": figures.samples.map(mib),
                "database_bytes_on_disk": figures.databaseBytes,
                "queue_bytes": figures.queueBytes,
            ] as [String: Any]
            if !raw {
                memory["replica_iteration"] = [
                    "documents": figures.iterated, "seconds": rounded(figures.iterationSeconds, 1),
                    "resident_peak_sampled_mib": mib(figures.iterationResidentPeak),
                    "method": "collection.documents(pageSize: 500) over every document just written, resident set sampled every 10,000",
                ] as [String: Any]
                targets["iteration_resident_mb_\(figures.documents)_documents"] = target(
                    Double(figures.iterationResidentPeak) / 1e6, "<", 100,
                    "resident memory in MB (10^6 bytes), whole process, while documents(pageSize: 500) iterates the \(figures.documents) documents")
                targets["memory_growth_\(figures.documents)_documents"] = target(
                    Double(figures.peakGrowth) / 1e6, "<", 50,
                    "resident memory growth in MB (10^6 bytes; highest sample minus before) while \(figures.documents) documents are written one commit each")
            }
        }
        memory["method"] = "resident set from /proc/self/statm, read after the store is opened and warmed up, then every sample_every writes and at the end"
        output["memory"] = memory
    }
    output["targets"] = targets
} catch {
    fail("failed: \(error)")
}

do {
    let data = try JSONSerialization.data(withJSONObject: output, options: [.prettyPrinted, .sortedKeys])
    print(String(decoding: data, as: UTF8.self))
} catch {
    fail("could not encode the figures: \(error)")
}
