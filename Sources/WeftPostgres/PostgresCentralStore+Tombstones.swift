import Foundation
import Logging
import NIOCore
import PostgresNIO
import Weft
import WeftCRDT
import WeftServer

// Forgetting tombstones (CentralStore rule 9): `weft_documents.tombstone` marks the records that
// may go, `weft_pull_positions` gives each named replica's acknowledged cursor, and
// `weft_tenants.collected_through` how far each tenant forgot.
extension PostgresCentralStore {
    public var collectedTombstones: UInt64 { collected.withLock { $0 } }

    public func collectedThrough(database: String) async throws(WeftError) -> UInt64 {
        let logger = logger
        do {
            return try await withDeadline {
                var through: Int64 = 0
                for try await value in try await self.client.query(
                    "SELECT collected_through FROM weft_tenants WHERE tenant = \(database)", logger: logger
                ).decode(Int64.self) {
                    through = value
                }
                return UInt64(max(0, through))
            }
        } catch {
            throw map(error)
        }
    }

    /// A step first decodes, once, records written before the `tombstone` column existed; then
    /// forgets tombstones tenant by tenant. A tenant is skipped while its sequencer runs (the
    /// step takes the sequencer's lock, without waiting), and so is a document a push holds
    /// (the step takes each document's push lock, without waiting): a push that comes after
    /// finds the document gone, and the tenant's `collected_through` already raised.
    public func collectTombstones(pulledSince: UInt64, limit: Int) async throws(WeftError) -> (
        removed: Int, passFinished: Bool
    ) {
        let limit = max(1, limit)
        do {
            if try await withDeadline(nil, { try await self.classifyRecords(limit: limit) }) == limit {
                return (0, false)
            }
            let logger = logger
            let tenants = try await withDeadline {
                var names = [String]()
                for try await tenant in try await self.client.query(
                    "SELECT DISTINCT tenant FROM weft_documents WHERE tombstone", logger: logger
                ).decode(String.self) {
                    names.append(tenant)
                }
                return names
            }
            var removed = 0
            for tenant in tenants where removed < limit {
                let budget = limit - removed
                removed += try await withDeadline {
                    try await self.collectTombstones(
                        of: tenant, pulledSince: Int64(clamping: pulledSince), limit: budget)
                }
            }
            collected.withLock { $0 += UInt64(removed) }
            return (removed, removed < limit)
        } catch {
            throw map(error)
        }
    }

    /// Sets `tombstone` on up to `limit` records that have none; answers how many it looked at.
    func classifyRecords(limit: Int) async throws -> Int {
        let logger = logger
        let location = location
        var tenants = [String]()
        var collections = [String]()
        var ids = [String]()
        var flags = [Bool]()
        for try await (tenant, collection, id, record) in try await client.query(
            "SELECT tenant, collection, id, record FROM weft_documents WHERE tombstone IS NULL LIMIT \(limit)",
            logger: logger
        ).decode((String, String, String, ByteBuffer).self) {
            let decoded: DocumentRecord
            do {
                decoded = try DocumentRecord(encoded: Array(buffer: record))
            } catch {
                throw WeftError.corrupt(
                    "the record of \(tenant)/\(collection)/\(id) at \(location) does not decode: \(error)")
            }
            tenants.append(tenant)
            collections.append(collection)
            ids.append(id)
            flags.append(decoded.isDeleted && decoded.body.count == 0)
        }
        guard !tenants.isEmpty else { return 0 }
        // A push that wrote the record meanwhile set the column itself: it is left alone.
        try await client.query(
            """
            UPDATE weft_documents d SET tombstone = t.z
            FROM unnest(\(tenants)::text[], \(collections)::text[], \(ids)::text[], \(flags)::bool[]) AS t(n, c, i, z)
            WHERE d.tenant = t.n AND d.collection = t.c AND d.id = t.i AND d.tombstone IS NULL
            """, logger: logger)
        return tenants.count
    }

    /// Forgets up to `limit` of `tenant`'s tombstones at or below its stable point, in one
    /// transaction; answers how many.
    func collectTombstones(of tenant: String, pulledSince: Int64, limit: Int) async throws -> Int {
        let logger = logger
        return try await client.withTransaction(logger: logger) { connection -> Int in
            var free = false
            for try await locked in try await connection.query(
                "SELECT pg_try_advisory_xact_lock(hashtextextended(\(tenant), 7))", logger: logger
            ).decode(Bool.self) {
                free = locked
            }
            guard free else { return 0 }
            var stable = Int64.max
            for try await lowest in try await connection.query(
                "SELECT min(after) FROM weft_pull_positions WHERE tenant = \(tenant) AND pulled_at >= \(pulledSince)",
                logger: logger
            ).decode(Int64?.self) {
                if let lowest { stable = lowest }
            }
            // Tombstones whose one entry is at or below the stable point.
            var collections = [String]()
            var ids = [String]()
            for try await (collection, id) in try await connection.query(
                """
                SELECT d.collection, d.id FROM weft_documents d
                WHERE d.tenant = \(tenant) AND d.tombstone
                    AND EXISTS (SELECT 1 FROM weft_change_log l
                        WHERE l.tenant = \(tenant) AND l.collection = d.collection AND l.doc_id = d.id AND l.sequence <= \(stable))
                    AND NOT EXISTS (SELECT 1 FROM weft_change_log l
                        WHERE l.tenant = \(tenant) AND l.collection = d.collection AND l.doc_id = d.id
                            AND (l.sequence > \(stable) OR l.sequence IS NULL))
                LIMIT \(limit)
                """, logger: logger
            ).decode((String, String).self) {
                collections.append(collection)
                ids.append(id)
            }
            guard !collections.isEmpty else { return 0 }
            // The documents' push locks (PostgresCentralStore+Push), without waiting.
            let names = zip(collections, ids).map { tenant + "\u{1F}" + $0 + "\u{1F}" + $1 }
            var lockedCollections = [String]()
            var lockedIDs = [String]()
            for try await (collection, id) in try await connection.query(
                """
                SELECT t.c, t.i FROM unnest(\(names)::text[], \(collections)::text[], \(ids)::text[]) AS t(n, c, i)
                WHERE pg_try_advisory_xact_lock(hashtextextended(t.n, 0))
                """, logger: logger
            ).decode((String, String).self) {
                lockedCollections.append(collection)
                lockedIDs.append(id)
            }
            guard !lockedCollections.isEmpty else { return 0 }
            // A new statement, so its snapshot follows the locks: a push that committed before
            // them shows (as a changed record, or a staged entry the sequencer has not numbered).
            var removed = 0
            for try await count in try await connection.query(
                """
                WITH gone AS (
                    DELETE FROM weft_documents d USING unnest(\(lockedCollections)::text[], \(lockedIDs)::text[]) AS k(c, i)
                    WHERE d.tenant = \(tenant) AND d.collection = k.c AND d.id = k.i AND d.tombstone
                        AND NOT EXISTS (SELECT 1 FROM weft_pending p
                            WHERE p.tenant = \(tenant) AND p.collection = d.collection AND p.doc_id = d.id)
                        AND NOT EXISTS (SELECT 1 FROM weft_change_log l
                            WHERE l.tenant = \(tenant) AND l.collection = d.collection AND l.doc_id = d.id
                                AND (l.sequence > \(stable) OR l.sequence IS NULL))
                    RETURNING d.collection, d.id
                ), entries AS (
                    DELETE FROM weft_change_log l USING gone g
                    WHERE l.tenant = \(tenant) AND l.collection = g.collection AND l.doc_id = g.id
                    RETURNING l.sequence
                ), channels AS (
                    DELETE FROM weft_channel_entries e USING gone g
                    WHERE e.tenant = \(tenant) AND e.collection = g.collection AND e.doc_id = g.id
                ), raised AS (
                    UPDATE weft_tenants SET collected_through = GREATEST(collected_through, (SELECT coalesce(max(sequence), 0) FROM entries))
                    WHERE tenant = \(tenant)
                    RETURNING collected_through
                ), departures AS (
                    -- Departures at or below what the tenant forgot (ChannelIndexedStore rule 8).
                    DELETE FROM weft_channel_entries e
                    WHERE e.tenant = \(tenant) AND NOT e.present AND e.sequence <= (SELECT max(collected_through) FROM raised)
                )
                SELECT count(*) FROM gone
                """, logger: logger
            ).decode(Int64.self) {
                removed = Int(count)
            }
            return removed
        }
    }
}
