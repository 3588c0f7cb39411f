import Foundation
import Logging
import Synchronization
import NIOCore
import NIOSSL
import PostgresNIO
import Weft
import WeftCRDT
import WeftServer

extension PostgresCentralStore {
    /// Numbers the tenant's committed, unnumbered change-log rows, in commit order of the
    /// sequencer (see the type's documentation).
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
                try await connection.query("SELECT pg_advisory_xact_lock(hashtextextended(\(database), 7))", logger: logger)
            }
            // The committed, unnumbered rows in id order, with the tenant's counter (read after
            // the lock was taken, so current). Without a counter row (before the tenant's first
            // run, or if the row was lost) numbering continues after the largest number in the
            // log. The ids go back as an array, and `id = ANY(…)` keeps the update on the
            // primary key's index whatever the statistics say: a join the planner chose alone
            // could scan the whole log, which grows for ever, to number a few rows. The next
            // statement moves the counter on. (The counter comes first in `FROM`, so the tenants
            // table is locked before the log, in the order of the schema migrations.)
            var ids = [Int64]()
            ids.reserveCapacity(Self.sequencerRun)
            var first: Int64 = 1
            for try await (id, counter) in try await connection.query(
                """
                SELECT l.id, c.first
                FROM (
                    SELECT COALESCE(
                        (SELECT next_sequence FROM weft_tenants WHERE tenant = \(database)),
                        (SELECT max(sequence) + 1 FROM weft_change_log WHERE tenant = \(database) AND sequence IS NOT NULL),
                        1) AS first
                ) AS c
                CROSS JOIN weft_change_log l
                WHERE l.tenant = \(database) AND l.sequence IS NULL ORDER BY l.id LIMIT \(Self.sequencerRun)
                """, logger: logger
            ).decode((Int64, Int64).self) {
                ids.append(id)
                first = counter
            }
            guard !ids.isEmpty else { return 0 }
            let numbers = (0..<Int64(ids.count)).map { first + $0 }
            try await connection.query(
                """
                WITH numbered AS (
                    UPDATE weft_change_log c SET sequence = v.sequence
                    FROM unnest(\(ids)::int8[], \(numbers)::int8[]) AS v(id, sequence)
                    WHERE c.id = v.id AND c.id = ANY(\(ids)::int8[])
                )
                INSERT INTO weft_tenants (tenant, next_sequence) VALUES (\(database), \(first + Int64(ids.count)))
                ON CONFLICT (tenant) DO UPDATE SET next_sequence = EXCLUDED.next_sequence
                """, logger: logger)
            return ids.count
        }
    }
}
