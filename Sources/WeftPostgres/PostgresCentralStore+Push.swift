import Foundation
import Logging
import NIOCore
import NIOSSL
import PostgresNIO
import Synchronization
import Weft
import WeftCRDT
@_spi(Measuring) import WeftServer
import WeftWire

extension PostgresCentralStore {
    public func applyPush(
        database: String, replica: ReplicaID, epoch: UInt64, expectedMark: UInt64, pulledThrough: UInt64?,
        receipt: UInt64,
        changes: [(sequence: UInt64, key: DocumentKey, delta: DocumentRecord)], projector: DocumentProjector,
        merge:
            @escaping @Sendable (DocumentRecord?, DocumentKey, DocumentRecord) throws(WeftError) -> (
                record: DocumentRecord, kind: MergeKind, conflict: ConflictRecord?
            )
    ) async throws(WeftError) -> (mark: UInt64, receipt: PushReceipt) {
        guard changes.allSatisfy({ Int64(exactly: $0.sequence) != nil }) else {
            throw .invalidArgument("a sequence number is out of range")
        }
        var attempt = 0
        while true {
            attempt += 1
            do {
                let mark = try await withDeadline {
                    try await self.pushTransaction(
                        database: database, replica: replica, epoch: epoch, expectedMark: expectedMark,
                        pulledThrough: pulledThrough,
                        receipt: receipt, changes: changes, projector: projector, merge: merge)
                }
                // Number the new log rows now, unless a sequencer is already running: then it, or
                // the next one (every pull runs one first if rows wait), numbers them. Pushes
                // thus never queue behind one another on the tenant's sequencer lock, which
                // would serialize every push of a tenant across all instances.
                try? await withDeadline { try await self.sequence(database, unlessBusy: true) }
                return mark
            } catch {
                if attempt < 5, Self.isRetryable(error) { continue }
                throw map(error)
            }
        }
    }

    /// One push in one transaction of five statements whatever the batch size: `BEGIN`; lock
    /// the batch's documents (and read the high-water mark); read the documents; merge in
    /// Swift, then write the changed documents, the log rows, the conflicts (with `unnest`) and
    /// the high-water mark in one statement; `COMMIT`.
    func pushTransaction(
        database: String, replica: ReplicaID, epoch: UInt64, expectedMark: UInt64, pulledThrough: UInt64?,
        receipt: UInt64,
        changes: [(sequence: UInt64, key: DocumentKey, delta: DocumentRecord)], projector: DocumentProjector,
        merge:
            @escaping @Sendable (DocumentRecord?, DocumentKey, DocumentRecord) throws(WeftError) -> (
                record: DocumentRecord, kind: MergeKind, conflict: ConflictRecord?
            )
    ) async throws -> (mark: UInt64, receipt: PushReceipt) {
        let logger = logger
        let location = location
        return try await client.withTransaction(logger: logger) {
            connection -> (mark: UInt64, receipt: PushReceipt) in
            let replicaBytes = ByteBuffer(bytes: replica.bytes)

            // Serialize merges per document: a transaction-scoped advisory lock on each document
            // key (which also covers documents that do not exist yet, where a row lock could not),
            // taken in key order so that two pushes never wait on each other in a cycle. The same
            // statement reads the replica's high-water mark (its snapshot predates the locks,
            // which is fine for the mark: it only ever rises, and the write below keeps the
            // greater). The documents are read in the next statement, whose snapshot follows
            // the locks, so a merge always sees the previous holder's committed result.
            let keys = Set(changes.map(\.key)).sorted {
                ($0.collection.rawValue, $0.id.rawValue) < ($1.collection.rawValue, $1.id.rawValue)
            }
            let lockNames = keys.map {
                database + "\u{1F}" + $0.collection.rawValue + "\u{1F}" + $0.id.rawValue
            }
            var mark: Int64 = 0
            var session: Int64?
            for try await value in try await connection.query(
                """
                SELECT (SELECT count(*) FROM (
                            SELECT pg_advisory_xact_lock(hashtextextended(name, 0))
                            FROM unnest(\(lockNames)::text[]) WITH ORDINALITY AS t(name, n) ORDER BY n
                        ) AS locked),
                       (SELECT applied_through FROM weft_high_water WHERE tenant = \(database) AND replica = \(replicaBytes)),
                       (SELECT epoch FROM weft_sessions WHERE tenant = \(database) AND replica = \(replicaBytes))
                """, logger: logger
            ).decode((Int64, Int64?, Int64?).self) {
                mark = value.1 ?? 0
                session = value.2
            }
            // The replica's session must be the push's (or both absent: a replica that predates
            // the handshake); a hello racing this read is one of the same file's sessions.
            guard session == (epoch == 0 ? nil : Int64(bitPattern: epoch)) else {
                throw WeftError.forked(
                    "replica \(replica) pushed in session \(epoch), which is not its current one")
            }
            guard UInt64(max(mark, 0)) >= expectedMark else {
                throw WeftError.forked(Self.lostChanges(replica, UInt64(max(mark, 0)), expectedMark))
            }
            var newMark = max(mark, 0)
            for change in changes { newMark = max(newMark, Int64(change.sequence)) }

            // The current records, in one read.
            var current = [DocumentKey: DocumentRecord](minimumCapacity: keys.count)
            var storedChannels = [DocumentKey: [String]]()
            let rows = try await connection.query(
                """
                SELECT d.collection, d.id, d.record, d.channels FROM weft_documents d
                JOIN unnest(\(keys.map(\.collection.rawValue))::text[], \(keys.map(\.id.rawValue))::text[]) AS k(c, i)
                ON d.collection = k.c AND d.id = k.i
                WHERE d.tenant = \(database)
                """, logger: logger)
            for try await (collection, id, record, channels) in rows.decode(
                (String, String, ByteBuffer, [String]?).self)
            {
                let key: DocumentKey
                do {
                    key = DocumentKey(collection: try CollectionName(collection), id: try DocumentID(id))
                    current[key] = try DocumentRecord(encoded: Array(buffer: record))
                    if let channels { storedChannels[key] = channels }
                } catch {
                    throw WeftError.corrupt(
                        "the record of \(database)/\(collection)/\(id) at \(location) does not decode: \(error)"
                    )
                }
            }

            // What the database forgot, read after the documents (CentralStore rule 6a): a
            // tombstone forgotten before this push took its locks is gone from the read above and
            // counted here; one forgotten later cannot be, since forgetting takes the same locks.
            var collectedThrough: Int64 = 0
            for try await value in try await connection.query(
                "SELECT collected_through FROM weft_tenants WHERE tenant = \(database)", logger: logger
            ).decode(Int64.self) {
                collectedThrough = value
            }
            try Self.refuseIfTooFarBehind(pulledThrough, collectedThrough: UInt64(max(0, collectedThrough)))

            // The one merge, in batch order.
            // A staged log row carries no record (a page reads its document's), only its size,
            // and for a large document's small change its delta over the version merged into.
            var logged = [(key: DocumentKey, bytes: Int, delta: [UInt8]?, base: Int64?)]()
            // Each logged document's channels (ChannelIndexedStore rule 1), for the sequencer:
            // `nil` where the projector tracks none.
            var loggedChannels = [DocumentKey: [String]]()
            var encoded = [DocumentKey: [UInt8]]()
            var conflicts = [ConflictRecord]()
            var changed = Set<DocumentKey>()
            for change in changes {
                let local = current[change.key]
                let result = try merge(local, change.key, change.delta)
                if result.kind == .refused {
                    // Stores nothing; a live document is logged again as it is, so the pusher,
                    // which drops its copy, pulls the server's version back.
                    if let local, !local.isDeleted, !changed.contains(change.key) {
                        logged.append((change.key, local.encoded().count, nil, nil))
                        if let channels = storedChannels[change.key] { loggedChannels[change.key] = channels }
                    }
                    continue
                }
                if let conflict = result.conflict { conflicts.append(conflict) }
                guard result.record != local else { continue }
                current[change.key] = result.record
                changed.insert(change.key)
                let bytes = result.record.encoded()
                encoded[change.key] = bytes
                let delta = LogDelta.make(result.record, encodedBytes: bytes.count, over: local)
                logged.append(
                    (
                        change.key, bytes.count, delta?.bytes,
                        delta == nil ? nil : local.map { Int64(bitPattern: $0.digest) }
                    ))
                if projector.tracksChannels {
                    let channels =
                        projector.channels(database: database, key: change.key, record: result.record)
                        ?? storedChannels[change.key] ?? []
                    loggedChannels[change.key] = channels
                    storedChannels[change.key] = channels
                }
            }

            // Every write in one statement: the changed documents, their log rows in batch order
            // (staged in `weft_pending`, whose ids follow it, for the sequencer), the conflicts, and the high-water mark. Each part
            // runs exactly once, and with nothing changed its arrays are empty.
            let written = keys.filter { changed.contains($0) }
            let records = written.map { key in ByteBuffer(bytes: encoded[key] ?? []) }
            let tombstones = written.map { key in
                current[key].map { $0.isDeleted && $0.body.count == 0 } ?? false
            }
            // Each document's projection (CentralStore rule 10): '' stands for NULL (a deleted
            // document), which no projection's text is.
            let projections = written.map { key in
                current[key].flatMap { projector.projection(database: database, key: key, record: $0) } ?? ""
            }
            // NULL channels where none are tracked (an empty array where a document is in none).
            let channelColumns = written.map { key in
                projector.tracksChannels ? Self.channelArray(storedChannels[key] ?? []) : ""
            }
            let pendingChannels = logged.map { entry in loggedChannels[entry.key].map(Self.channelArray) ?? ""
            }
            let columns = conflicts.map(\.policy.logColumns)
            // The receipts are replaced under the high-water row's lock, which the upsert takes
            // (so two servers applying the replica's pushes at once link them one after the
            // other), as `PushReceipts.keep` says: a push that changes nothing keeps them, and
            // the same push applied again keeps the one its first application replaced.
            let moves = !logged.isEmpty || newMark > max(mark, 0)
            let given = Int64(bitPattern: receipt)
            var kept: (current: UInt64, previous: UInt64) = (0, 0)
            for try await value in try await connection.query(
                """
                WITH documents AS (
                    INSERT INTO weft_documents (tenant, collection, id, record, tombstone, born_after, doc, deleted, channels)
                    SELECT \(database), c, i, r, z, \(collectedThrough), NULLIF(j, '')::jsonb, CASE WHEN \(projector.keepsProjection) THEN j = '' END,
                        NULLIF(h, '')::text[]
                    FROM unnest(
                        \(written.map(\.collection.rawValue))::text[], \(written.map(\.id.rawValue))::text[], \(records)::bytea[],
                        \(tombstones)::bool[], \(projections)::text[], \(channelColumns)::text[]) AS t(c, i, r, z, j, h)
                    ON CONFLICT (tenant, collection, id) DO UPDATE SET
                        record = EXCLUDED.record, tombstone = EXCLUDED.tombstone, doc = EXCLUDED.doc, deleted = EXCLUDED.deleted,
                        channels = EXCLUDED.channels
                ), log AS (
                    INSERT INTO weft_pending (tenant, collection, doc_id, bytes, tag, delta, base_digest, channels)
                    SELECT \(database), c, i, b, g, NULLIF(d, ''::bytea), CASE WHEN d = ''::bytea THEN NULL ELSE v END, NULLIF(h, '')::text[]
                    FROM unnest(
                        \(logged.map(\.key.collection.rawValue))::text[], \(logged.map(\.key.id.rawValue))::text[],
                        \(logged.map { Int32(clamping: $0.bytes) })::int4[],
                        \(logged.map { _ in Int64(LoggedChange.newTag()) })::int8[],
                        \(logged.map { ByteBuffer(bytes: $0.delta ?? []) })::bytea[],
                        \(logged.map { $0.base ?? 0 })::int8[],
                        \(pendingChannels)::text[]
                    ) WITH ORDINALITY AS t(c, i, b, g, d, v, h, n)
                    ORDER BY n
                ), conflicts AS (
                    INSERT INTO weft_conflicts (tenant, collection, doc_id, policy, resolver, local, remote, winner)
                    SELECT \(database), c, i, p, NULLIF(v, ''), l, r, w
                    FROM unnest(
                        \(conflicts.map(\.key.collection.rawValue))::text[], \(conflicts.map(\.key.id.rawValue))::text[],
                        \(columns.map(\.policy))::text[], \(columns.map { $0.argument ?? "" })::text[],
                        \(conflicts.map { ByteBuffer(bytes: $0.local.encoded()) })::bytea[],
                        \(conflicts.map { ByteBuffer(bytes: $0.remote.encoded()) })::bytea[],
                        \(conflicts.map { ByteBuffer(bytes: $0.winner.encoded()) })::bytea[]
                    ) WITH ORDINALITY AS t(c, i, p, v, l, r, w, n)
                    ORDER BY n
                )
                INSERT INTO weft_high_water (tenant, replica, applied_through, receipt, previous_receipt)
                VALUES (\(database), \(replicaBytes), \(newMark), CASE WHEN \(moves) THEN \(given) ELSE 0 END, 0)
                ON CONFLICT (tenant, replica) DO UPDATE SET
                    applied_through = GREATEST(weft_high_water.applied_through, EXCLUDED.applied_through),
                    receipt = CASE WHEN \(moves) THEN EXCLUDED.receipt ELSE weft_high_water.receipt END,
                    previous_receipt = CASE WHEN NOT \(moves) OR weft_high_water.receipt = EXCLUDED.receipt
                        THEN weft_high_water.previous_receipt ELSE weft_high_water.receipt END
                RETURNING receipt, previous_receipt
                """, logger: logger
            ).decode((Int64, Int64).self) {
                kept = (UInt64(bitPattern: value.0), UInt64(bitPattern: value.1))
            }
            return (UInt64(newMark), PushReceipts.answer(kept: kept, receipt: receipt))
        }
    }
}
