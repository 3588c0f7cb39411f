// The measurements of weft-replica-bench: each returns plain figures; the CLI prints them.

import Foundation
import Weft
import WeftCRDT
import WeftSQLite

/// One pass of writes: the total time and each write's (or each commit's) latency.
public struct WritePass: Sendable {
    public let writes: Int
    public let totalNanoseconds: Double
    public let latencies: [Double]

    /// Writes per second.
    public var rate: Double { Double(writes) / (totalNanoseconds / 1e9) }
}

/// One repeat of the write-rate workload: `documents` creates then `documents` updates, one
/// commit each, and `batches` batches of `documents` creates then the same batches of updates,
/// on each store, every store fresh.
public struct WriteRateRepeat: Sendable {
    public var replicaPerWriteCreate: WritePass
    public var replicaPerWriteUpdate: WritePass
    public var replicaBatchCreate: WritePass
    public var replicaBatchUpdate: WritePass
    public var rawPerTransactionInsert: WritePass
    public var rawPerTransactionUpdate: WritePass
    public var rawOneTransactionInsert: WritePass
    public var rawOneTransactionUpdate: WritePass
}

public enum ReplicaMeasurements {
    static let clock = ContinuousClock()

    /// Writes `documents` documents one commit each (round 0: creates; round 1: updates).
    static func replicaPerWrite(_ replica: ReplicaUnderTest, documents: Int, round: Int) async throws -> WritePass {
        var latencies = [Double]()
        latencies.reserveCapacity(documents)
        let start = clock.now
        for index in 0..<documents {
            let before = clock.now
            try await replica.upsert(index, round: round)
            latencies.append(nanoseconds(clock.now - before))
        }
        return WritePass(writes: documents, totalNanoseconds: nanoseconds(clock.now - start), latencies: latencies)
    }

    /// Writes `batches` batches of `documents` documents, one commit each (round 0: creates;
    /// round 1: updates); the latencies are the batches' commit times.
    static func replicaBatch(_ replica: ReplicaUnderTest, documents: Int, batches: Int, round: Int) async throws -> WritePass {
        var latencies = [Double]()
        let start = clock.now
        for batch in 0..<batches {
            let before = clock.now
            try await replica.batchUpsert(batch * documents..<(batch + 1) * documents, round: round)
            latencies.append(nanoseconds(clock.now - before))
        }
        return WritePass(writes: documents * batches, totalNanoseconds: nanoseconds(clock.now - start), latencies: latencies)
    }

    static func rawPerTransaction(_ raw: RawSQLite, documents: Int) throws -> WritePass {
        var latencies = [Double]()
        latencies.reserveCapacity(documents)
        let start = clock.now
        for index in 0..<documents {
            let before = clock.now
            try raw.upsert(index)
            latencies.append(nanoseconds(clock.now - before))
        }
        return WritePass(writes: documents, totalNanoseconds: nanoseconds(clock.now - start), latencies: latencies)
    }

    /// Upserts `batches` batches of `documents` rows, one transaction each.
    static func rawOneTransaction(_ raw: RawSQLite, documents: Int, batches: Int) throws -> WritePass {
        var latencies = [Double]()
        let start = clock.now
        for batch in 0..<batches {
            let before = clock.now
            try raw.upsertAll(batch * documents..<(batch + 1) * documents)
            latencies.append(nanoseconds(clock.now - before))
        }
        return WritePass(writes: documents * batches, totalNanoseconds: nanoseconds(clock.now - start), latencies: latencies)
    }

    /// One repeat of the write-rate workload at `durability`.
    public static func writeRates(durability: Durability, documents: Int, batches: Int, payload: [UInt8]) async throws -> WriteRateRepeat {
        let perWrite = try await ReplicaUnderTest.open(durability: durability)
        defer { perWrite.remove() }
        let replicaPerWriteCreate = try await replicaPerWrite(perWrite, documents: documents, round: 0)
        let replicaPerWriteUpdate = try await replicaPerWrite(perWrite, documents: documents, round: 1)

        let batched = try await ReplicaUnderTest.open(durability: durability)
        defer { batched.remove() }
        let replicaBatchCreate = try await replicaBatch(batched, documents: documents, batches: batches, round: 0)
        let replicaBatchUpdate = try await replicaBatch(batched, documents: documents, batches: batches, round: 1)

        let rawSingle = try RawSQLite(durability: durability, payload: payload)
        defer { rawSingle.remove() }
        let rawPerTransactionInsert = try rawPerTransaction(rawSingle, documents: documents)
        let rawPerTransactionUpdate = try rawPerTransaction(rawSingle, documents: documents)

        let rawBatch = try RawSQLite(durability: durability, payload: payload)
        defer { rawBatch.remove() }
        let rawOneTransactionInsert = try rawOneTransaction(rawBatch, documents: documents, batches: batches)
        let rawOneTransactionUpdate = try rawOneTransaction(rawBatch, documents: documents, batches: batches)

        // Every store must hold the documents plus the warm-up one.
        for (name, replica, expected) in [("per-write", perWrite, documents), ("batched", batched, documents * batches)] {
            let stored = try await replica.documents.list().count
            guard stored == expected + 1 else { throw BenchmarkFailure("\(name) replica holds \(stored) documents, not \(expected + 1)") }
        }
        for (raw, expected) in [(rawSingle, documents), (rawBatch, documents * batches)] {
            let stored = try raw.count()
            guard stored == expected + 1 else { throw BenchmarkFailure("raw SQLite holds \(stored) rows, not \(expected + 1)") }
        }
        return WriteRateRepeat(
            replicaPerWriteCreate: replicaPerWriteCreate, replicaPerWriteUpdate: replicaPerWriteUpdate,
            replicaBatchCreate: replicaBatchCreate, replicaBatchUpdate: replicaBatchUpdate,
            rawPerTransactionInsert: rawPerTransactionInsert, rawPerTransactionUpdate: rawPerTransactionUpdate,
            rawOneTransactionInsert: rawOneTransactionInsert, rawOneTransactionUpdate: rawOneTransactionUpdate)
    }

    // MARK: Where a write's time goes

    /// The latencies of the storage calls one replica write makes, each timed on its own, next
    /// to the whole write and to raw SQLite doing the same calls through GRDB's async API.
    public struct WriteBreakdown: Sendable {
        /// `ReplicaCollection.upsert` of an existing document (the whole write).
        public let replicaUpdate: LatencySummary
        /// `SQLiteReplicaStorage.record(for:)`: the read before the edit.
        public let recordRead: LatencySummary
        /// `ReplicaCollection.get` of an existing document: a point read as an app makes it.
        public let pointRead: LatencySummary
        /// `SQLiteReplicaStorage.commitLocalWrites` of one write (record plus coalesced queue entry).
        public let commitOneWrite: LatencySummary
        /// `SQLiteReplicaStorage.saveLastStamp`: the clock's own transaction after the commit.
        public let saveLastStamp: LatencySummary
        /// Raw SQLite: one row read through GRDB's async `read`.
        public let rawAsyncRead: LatencySummary
        /// Raw SQLite: one upsert in its own transaction through GRDB's async `write`.
        public let rawAsyncUpsert: LatencySummary
        /// Raw SQLite: one upsert in its own transaction through GRDB's blocking `write`.
        public let rawSyncUpsert: LatencySummary
    }

    public static func breakdown(durability: Durability, documents: Int, payload: [UInt8]) async throws -> WriteBreakdown {
        let store = try await ReplicaUnderTest.open(durability: durability)
        defer { store.remove() }
        let raw = try RawSQLite(durability: durability, payload: payload)
        defer { raw.remove() }
        try await store.batchUpsert(0..<documents)
        try raw.upsertAll(0..<documents)
        let collection = try CollectionName(BenchDocuments.collection)
        let keys = try (0..<documents).map { DocumentKey(collection: collection, id: try DocumentID(BenchDocuments.id($0))) }

        var whole = [Double](), reads = [Double](), commits = [Double](), stamps = [Double](), gets = [Double]()
        var rawReads = [Double](), rawAsync = [Double](), rawSync = [Double]()
        for index in 0..<documents {
            var before = clock.now
            try await store.upsert(index, round: 1)
            whole.append(nanoseconds(clock.now - before))

            before = clock.now
            guard try await store.documents.get(BenchDocuments.id(index)) != nil else {
                throw BenchmarkFailure("\(keys[index]) does not read back")
            }
            gets.append(nanoseconds(clock.now - before))

            before = clock.now
            guard let record = try await store.storage.record(for: keys[index]) else {
                throw BenchmarkFailure("\(keys[index]) is missing")
            }
            reads.append(nanoseconds(clock.now - before))

            // The stored record stands in for both the new record and the delta: the same
            // statements and about the same bytes as a write.
            before = clock.now
            _ = try await store.storage.commitLocalWrites(
                [LocalWrite(key: keys[index], record: record)], maxQueueBytes: ReplicaUnderTest.uncappedQueue)
            commits.append(nanoseconds(clock.now - before))

            before = clock.now
            try await store.storage.saveLastStamp(record.lastStamp)
            stamps.append(nanoseconds(clock.now - before))

            before = clock.now
            guard try await raw.readAsync(index) != nil else { throw BenchmarkFailure("raw row \(index) is missing") }
            rawReads.append(nanoseconds(clock.now - before))

            before = clock.now
            try await raw.upsertAsync(index)
            rawAsync.append(nanoseconds(clock.now - before))

            before = clock.now
            try raw.upsert(index)
            rawSync.append(nanoseconds(clock.now - before))
        }
        return WriteBreakdown(
            replicaUpdate: LatencySummary(whole), recordRead: LatencySummary(reads), pointRead: LatencySummary(gets), commitOneWrite: LatencySummary(commits),
            saveLastStamp: LatencySummary(stamps), rawAsyncRead: LatencySummary(rawReads),
            rawAsyncUpsert: LatencySummary(rawAsync), rawSyncUpsert: LatencySummary(rawSync))
    }

    // MARK: Memory

    /// Resident memory while `documents` distinct documents are written one commit each.
    public struct MemoryFigures: Sendable {
        public let documents: Int
        public let seconds: Double
        public let residentBefore: Int
        public let residentAfter: Int
        /// The highest resident size sampled during the writes.
        public let residentPeakSampled: Int
        /// Resident size after every `sampleEvery` writes.
        public let samples: [Int]
        public let sampleEvery: Int
        public let databaseBytes: Int
        public let queueBytes: Int
        /// The process's peak resident size so far (`VmHWM`), read at the end: a bound that also
        /// covers any spike between samples (and everything the process did before).
        public let processPeakResident: Int
        /// Iterating every document afterwards with `documents(pageSize: 500)` (replica only):
        /// the seconds, and the highest resident size sampled every 10,000 documents.
        public var iterationSeconds: Double = 0
        public var iterationResidentPeak: Int = 0
        public var iterated = 0

        public var growth: Int { residentAfter - residentBefore }
        public var peakGrowth: Int { residentPeakSampled - residentBefore }
    }

    /// Writes `documents` documents through a replica (or, with `raw`, through raw SQLite) and
    /// samples resident memory. The store is opened and warmed up before the first sample.
    public static func memory(
        durability: Durability, documents: Int, raw: Bool, payload: [UInt8], sampleEvery: Int,
        progress: (Int) -> Void = { _ in }
    ) async throws -> MemoryFigures {
        var samples = [Int]()
        let before: Int
        let start: ContinuousClock.Instant
        let databaseBytes: Int
        var queueBytes = 0
        func sample(_ written: Int) {
            if written % sampleEvery == 0 {
                samples.append(residentMemoryBytes() ?? 0)
                progress(written)
            }
        }
        if raw {
            let store = try RawSQLite(durability: durability, payload: payload)
            defer { store.remove() }
            before = residentMemoryBytes() ?? 0
            start = clock.now
            for index in 0..<documents {
                try store.upsert(index)
                sample(index + 1)
            }
            guard try store.count() == documents + 1 else { throw BenchmarkFailure("raw SQLite lost rows") }
            databaseBytes = store.directory.sizeOnDisk()
        } else {
            let store = try await ReplicaUnderTest.open(durability: durability)
            defer { store.remove() }
            before = residentMemoryBytes() ?? 0
            start = clock.now
            for index in 0..<documents {
                try await store.upsert(index)
                sample(index + 1)
            }
            queueBytes = try await store.replica.queuedBytes()
            databaseBytes = store.directory.sizeOnDisk()
            let seconds = nanoseconds(clock.now - start) / 1e9
            let after = residentMemoryBytes() ?? 0
            var figures = MemoryFigures(
                documents: documents, seconds: seconds, residentBefore: before, residentAfter: after,
                residentPeakSampled: max(samples.max() ?? 0, after), samples: samples, sampleEvery: sampleEvery,
                databaseBytes: databaseBytes, queueBytes: queueBytes, processPeakResident: peakResidentMemoryBytes() ?? 0)
            // Reading the whole collection back, page by page.
            let iterationStart = clock.now
            var peak = residentMemoryBytes() ?? 0
            var count = 0
            for try await _ in store.documents.documents(pageSize: 500) {
                count += 1
                if count % 10_000 == 0 { peak = max(peak, residentMemoryBytes() ?? 0) }
            }
            figures.iterationSeconds = nanoseconds(clock.now - iterationStart) / 1e9
            figures.iterationResidentPeak = max(peak, residentMemoryBytes() ?? 0)
            figures.iterated = count
            return figures
        }
        let seconds = nanoseconds(clock.now - start) / 1e9
        let after = residentMemoryBytes() ?? 0
        return MemoryFigures(
            documents: documents, seconds: seconds, residentBefore: before, residentAfter: after,
            residentPeakSampled: max(samples.max() ?? 0, after), samples: samples, sampleEvery: sampleEvery,
            databaseBytes: databaseBytes, queueBytes: queueBytes, processPeakResident: peakResidentMemoryBytes() ?? 0)
    }

    // MARK: Queue

    /// The offline queue after `writes` writes spread round-robin over `documents` documents.
    public struct QueueFigures: Sendable {
        public let writes: Int
        public let documents: Int
        /// `queuedBytes()` of the replica that coalesces (nothing sent).
        public let coalescedBytes: Int
        public let coalescedEntries: Int
        /// The sum of the byte counts each write's own entry had, from a replica whose queue is
        /// drained (`nextBatch` then `acknowledge`) after every write.
        public let uncoalescedBytes: Int
        public let uncoalescedEntries: Int
        /// The byte count of a create's entry and of a later write's entry (first document).
        public let firstEntryBytes: Int
        public let laterEntryBytes: Int
        public let coalescedSeconds: Double
        public let drainedSeconds: Double
    }

    public static func queue(
        writes: Int, documents: Int, durability: Durability, progress: (String, Int) -> Void = { _, _ in }
    ) async throws -> QueueFigures {
        let step = max(1, writes / 10)

        let coalescing = try await ReplicaUnderTest.open(durability: durability)
        defer { coalescing.remove() }
        // The warm-up write left an entry; drain it so only the measured writes count.
        try await drain(coalescing)
        var start = clock.now
        for write in 0..<writes {
            try await coalescing.upsert(write % documents, round: write / documents)
            if (write + 1) % step == 0 { progress("coalescing", write + 1) }
        }
        let coalescedSeconds = nanoseconds(clock.now - start) / 1e9
        let coalescedBytes = try await coalescing.replica.queuedBytes()
        let entries = try await coalescing.replica.queuedChanges()
        guard entries.reduce(0, { $0 + $1.byteCount }) == coalescedBytes else {
            throw BenchmarkFailure("queuedBytes() differs from the sum of the entries' byteCount")
        }

        let drained = try await ReplicaUnderTest.open(durability: durability)
        defer { drained.remove() }
        try await drain(drained)
        var uncoalescedBytes = 0
        var uncoalescedEntries = 0
        var firstEntryBytes = 0
        var laterEntryBytes = 0
        start = clock.now
        for write in 0..<writes {
            try await drained.upsert(write % documents, round: write / documents)
            let batch = try await drained.storage.nextBatch(maxBytes: .max, maxEntries: 1_000)
            guard batch.count == 1, let entry = batch.last else {
                throw BenchmarkFailure("a drained queue held \(batch.count) entries after one write")
            }
            uncoalescedBytes += entry.byteCount
            uncoalescedEntries += 1
            if write == 0 { firstEntryBytes = entry.byteCount }
            if write == documents { laterEntryBytes = entry.byteCount }
            try await drained.storage.acknowledge(through: entry.sequence)
            if (write + 1) % step == 0 { progress("drained", write + 1) }
        }
        let drainedSeconds = nanoseconds(clock.now - start) / 1e9
        guard try await drained.replica.queuedBytes() == 0 else { throw BenchmarkFailure("the drained queue is not empty") }

        return QueueFigures(
            writes: writes, documents: documents, coalescedBytes: coalescedBytes, coalescedEntries: entries.count,
            uncoalescedBytes: uncoalescedBytes, uncoalescedEntries: uncoalescedEntries,
            firstEntryBytes: firstEntryBytes, laterEntryBytes: laterEntryBytes,
            coalescedSeconds: coalescedSeconds, drainedSeconds: drainedSeconds)
    }

    /// Sends (acknowledges) everything queued.
    static func drain(_ replica: ReplicaUnderTest) async throws {
        while true {
            let batch = try await replica.storage.nextBatch(maxBytes: .max, maxEntries: 10_000)
            guard let last = batch.last else { return }
            try await replica.storage.acknowledge(through: last.sequence)
        }
    }
}
