import Foundation
import Logging
import NIOCore
import NIOSSL
import PostgresNIO
import Synchronization
import Weft
import WeftCRDT
import WeftServer

extension PostgresCentralStore {
    /// Numbers the tenant's committed changes waiting for a number (staged in `weft_pending`,
    /// or left unnumbered in the log by an older server), in commit order of the sequencer (see
    /// the type's documentation).
    ///
    /// Each run of up to ``sequencerRun`` rows is a transaction of its own, so a long backlog
    /// makes progress that stays even if a later run is cut short; a run's numbers continue
    /// from the previous run's, all above every number committed before. With `unlessBusy`, it
    /// returns at once if another sequencer of the tenant holds the lock. A sequencer that
    /// numbers nothing writes nothing, so its commit waits for no disk flush.
    ///
    /// At most ``sequencerRunsPerCall`` runs, so that a caller under a deadline (a pull) is not
    /// held by pushes that never stop; what is left waits for the next call.
    func sequence(_ database: String, unlessBusy: Bool = false) async throws {
        for _ in 0..<Self.sequencerRunsPerCall {
            guard try await sequenceRun(database, unlessBusy: unlessBusy) == Self.sequencerRun else { return }
        }
    }

    /// The most runs one ``sequence(_:unlessBusy:)`` call makes.
    static let sequencerRunsPerCall = 20

    /// The most rows one sequencer transaction numbers.
    static let sequencerRun = 5_000

    /// One sequencer transaction; how many rows it numbered (0 when the lock was busy).
    func sequenceRun(_ database: String, unlessBusy: Bool) async throws -> Int {
        let logger = logger
        return try await client.withTransaction(logger: logger) { connection -> Int in
            if unlessBusy {
                var acquired = false
                for try await locked in try await connection.query(
                    "SELECT pg_try_advisory_xact_lock(hashtextextended(\(database), 7))", logger: logger
                ).decode(Bool.self) {
                    acquired = locked
                }
                guard acquired else { return 0 }
            } else {
                try await connection.query(
                    "SELECT pg_advisory_xact_lock(hashtextextended(\(database), 7))", logger: logger)
            }
            // The rows waiting for a number, with the tenant's counter (read after the lock was
            // taken, so current): the pushes' rows staged in `weft_pending`, and rows an older
            // server inserted unnumbered into the log itself (during a rolling upgrade), each in
            // id order, the older kind first. Without a counter row (before the tenant's first
            // run, or if the row was lost) numbering continues after the largest number in the
            // log. The ids go back as arrays, and `id = ANY(…)` keeps each write on a primary
            // key whatever the statistics say: a join the planner chose alone could scan the
            // whole log, which grows for ever, to number a few rows. (The counter comes first in
            // `FROM`, so the tenants table is locked before the log, in the order of the schema
            // migrations.)
            var legacy = [Int64]()
            var staged = [Int64]()
            var first: Int64 = 1
            for try await (source, id, counter) in try await connection.query(
                """
                SELECT w.source, w.id, c.first
                FROM (
                    SELECT COALESCE(
                        (SELECT next_sequence FROM weft_tenants WHERE tenant = \(database)),
                        (SELECT max(sequence) + 1 FROM weft_change_log WHERE tenant = \(database) AND sequence IS NOT NULL),
                        1) AS first
                ) AS c
                CROSS JOIN (
                    (SELECT 0 AS source, l.id FROM weft_change_log l
                     WHERE l.tenant = \(database) AND l.sequence IS NULL ORDER BY l.id LIMIT \(Self.sequencerRun))
                    UNION ALL
                    (SELECT 1 AS source, p.id FROM weft_pending p
                     WHERE p.tenant = \(database) ORDER BY p.id LIMIT \(Self.sequencerRun))
                ) AS w
                ORDER BY w.source, w.id LIMIT \(Self.sequencerRun)
                """, logger: logger
            ).decode((Int32, Int64, Int64).self) {
                if source == 0 { legacy.append(id) } else { staged.append(id) }
                first = counter
            }
            let count = legacy.count + staged.count
            guard count > 0 else { return 0 }
            let legacyNumbers = (0..<Int64(legacy.count)).map { first + $0 }
            let stagedNumbers = (0..<Int64(staged.count)).map { first + Int64(legacy.count) + $0 }
            // Staged rows move into the log with their numbers (deleted here, inserted there);
            // older rows are numbered in place. Compaction in the same statement: the log keeps
            // one entry per document, so the entries of the documents moved here go (all of
            // them are older: the statement does not see the rows it inserts), and a document
            // staged twice in the run enters once, with its newer number. Every entry removed
            // has a newer one above it, so no reader misses the document.
            var removed = 0
            for try await gone in try await connection.query(
                """
                WITH numbered AS (
                    UPDATE weft_change_log c SET sequence = v.sequence
                    FROM unnest(\(legacy)::int8[], \(legacyNumbers)::int8[]) AS v(id, sequence)
                    WHERE c.id = v.id AND c.id = ANY(\(legacy)::int8[])
                ), moved AS (
                    DELETE FROM weft_pending p WHERE p.id = ANY(\(staged)::int8[])
                    RETURNING p.id, p.tenant, p.collection, p.doc_id, p.bytes, p.tag, p.delta, p.base_digest, p.channels
                ), ranked AS (
                    SELECT m.tenant, v.sequence, m.collection, m.doc_id, m.bytes, m.tag, m.delta, m.base_digest, m.channels,
                        count(*) OVER (PARTITION BY m.collection, m.doc_id) AS staged
                    FROM moved m JOIN unnest(\(staged)::int8[], \(stagedNumbers)::int8[]) AS v(id, sequence) ON v.id = m.id
                ), latest AS (
                    SELECT DISTINCT ON (collection, doc_id) * FROM ranked ORDER BY collection, doc_id, sequence DESC
                ), superseded AS (
                    -- Each document's entries found through the index by key (a lateral probe
                    -- per document, so no plan reads the whole log), then deleted by id.
                    DELETE FROM weft_change_log l
                    WHERE l.id IN (
                        SELECT o.id FROM latest k CROSS JOIN LATERAL (
                            SELECT x.id FROM weft_change_log x
                            WHERE x.tenant = \(database) AND x.collection = k.collection AND x.doc_id = k.doc_id
                                AND x.sequence IS NOT NULL
                        ) AS o
                    ) AND NOT (l.id = ANY(\(legacy)::int8[]))
                    RETURNING l.collection, l.doc_id, l.sequence
                ), logged AS (
                    -- A delta is over the version the push merged into, which is the entry it
                    -- supersedes only if the document was staged once in this run.
                    INSERT INTO weft_change_log (tenant, sequence, collection, doc_id, bytes, tag, delta, base_digest, base_sequence)
                    SELECT k.tenant, k.sequence, k.collection, k.doc_id, k.bytes, k.tag,
                        CASE WHEN k.staged = 1 AND b.base IS NOT NULL THEN k.delta END,
                        CASE WHEN k.staged = 1 AND b.base IS NOT NULL THEN k.base_digest END,
                        CASE WHEN k.staged = 1 AND k.delta IS NOT NULL THEN b.base END
                    FROM latest k LEFT JOIN (
                        SELECT collection, doc_id, max(sequence) AS base FROM superseded GROUP BY collection, doc_id
                    ) AS b ON b.collection = k.collection AND b.doc_id = k.doc_id
                    ORDER BY k.sequence
                ), present AS (
                    -- The channel index (ChannelIndexedStore rule 1): the document's channels
                    -- get its entry at the new sequence; channels it was in and is not now get
                    -- theirs moved there, departed. The two touch different rows.
                    INSERT INTO weft_channel_entries (tenant, channel, collection, doc_id, sequence, tag, present)
                    SELECT k.tenant, c.channel, k.collection, k.doc_id, k.sequence, k.tag, true
                    FROM latest k CROSS JOIN LATERAL unnest(k.channels) AS c(channel)
                    WHERE k.channels IS NOT NULL
                    ON CONFLICT (tenant, channel, collection, doc_id) DO UPDATE SET
                        sequence = EXCLUDED.sequence, tag = EXCLUDED.tag, present = true
                ), departed AS (
                    UPDATE weft_channel_entries e SET sequence = k.sequence, tag = k.tag, present = false
                    FROM latest k
                    WHERE k.channels IS NOT NULL AND e.tenant = k.tenant AND e.collection = k.collection AND e.doc_id = k.doc_id
                        AND e.present AND NOT (e.channel = ANY(k.channels))
                ), counter AS (
                    INSERT INTO weft_tenants (tenant, next_sequence) VALUES (\(database), \(first + Int64(count)))
                    ON CONFLICT (tenant) DO UPDATE SET next_sequence = EXCLUDED.next_sequence
                )
                SELECT (SELECT count(*) FROM superseded) + (SELECT count(*) FROM ranked) - (SELECT count(*) FROM latest)
                """, logger: logger
            ).decode(Int64.self) {
                removed = Int(gone)
            }
            if !legacy.isEmpty {
                // Rows an older server left unnumbered (a rolling upgrade from before the
                // staging table): their documents' earlier entries go too, in a statement of
                // their own, which sees what the one above numbered.
                let last = first + Int64(count)
                for try await gone in try await connection.query(
                    """
                    WITH numbered AS (
                        SELECT collection, doc_id, max(sequence) AS newest FROM weft_change_log
                        WHERE tenant = \(database) AND sequence >= \(first) AND sequence < \(last)
                        GROUP BY collection, doc_id
                    ), gone AS (
                        DELETE FROM weft_change_log l USING numbered n
                        WHERE l.tenant = \(database) AND l.collection = n.collection AND l.doc_id = n.doc_id AND l.sequence < n.newest
                        RETURNING 1
                    )
                    SELECT count(*) FROM gone
                    """, logger: logger
                ).decode(Int64.self) {
                    removed += Int(gone)
                }
            }
            if removed > 0 { compacted.withLock { $0 += UInt64(removed) } }
            return count
        }
    }
}
