import Foundation
import Logging
import NIOCore
import PostgresNIO
import Weft
import WeftCRDT
import WeftServer

// The channel index (ChannelIndexedStore): written by the sequencer with each numbered change,
// read by channel readers.
extension PostgresCentralStore: ChannelIndexedStore {
    /// `channels` as a PostgreSQL array literal (`{"a","b"}`), to cast from text.
    static func channelArray(_ channels: [String]) -> String {
        "{"
            + channels.map {
                "\""
                    + $0.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(
                        of: "\"", with: "\\\"") + "\""
            }
            .joined(separator: ",") + "}"
    }

    /// The key of a stored row, or a corruption error.
    func storedKey(_ collection: String, _ id: String) throws -> DocumentKey {
        do {
            return DocumentKey(collection: try CollectionName(collection), id: try DocumentID(id))
        } catch {
            throw WeftError.corrupt("a stored key at \(location) is invalid: \(error)")
        }
    }

    /// Numbers the tenant's waiting log rows first, if any wait, so a reader sees every
    /// committed change.
    func sequenceIfWaiting(_ database: String) async throws {
        var waiting = false
        for try await exists in try await client.query(
            """
            SELECT EXISTS (SELECT 1 FROM weft_pending WHERE tenant = \(database))
                OR EXISTS (SELECT 1 FROM weft_change_log WHERE tenant = \(database) AND sequence IS NULL)
            """, logger: logger
        ).decode(Bool.self) {
            waiting = exists
        }
        if waiting { try await sequence(database) }
    }

    public func channelChanges(
        database: String, channels: Set<String>, after: UInt64, limit: Int, maxBytes: Int
    ) async throws(WeftError)
        -> ChannelPage
    {
        guard let cursor = Int64(exactly: after) else {
            throw .invalidArgument("cursor \(after) is out of range")
        }
        do {
            return try await withDeadline {
                try await self.channelPage(
                    database: database, channels: channels.sorted(), after: cursor, limit: max(1, limit),
                    maxBytes: maxBytes)
            }
        } catch {
            throw map(error)
        }
    }

    func channelPage(database: String, channels: [String], after cursor: Int64, limit: Int, maxBytes: Int)
        async throws -> ChannelPage
    {
        let logger = logger
        try await sequenceIfWaiting(database)
        // The head first: every change up to it is committed and numbered, so the entries read
        // next hold all of those the reader may see.
        var head: (sequence: UInt64, tag: UInt64) = (0, 0)
        for try await (sequence, tag) in try await client.query(
            """
            SELECT sequence, tag FROM weft_change_log WHERE tenant = \(database) AND sequence IS NOT NULL ORDER BY sequence DESC LIMIT 1
            """, logger: logger
        ).decode((Int64, Int64).self) {
            head = (UInt64(max(0, sequence)), UInt64(bitPattern: tag))
        }
        guard !channels.isEmpty, head.sequence > UInt64(max(0, cursor)) else {
            return ChannelPage(entries: [], hasMore: false, head: head)
        }
        // One row per document: its latest entry among the reader's channels, present before
        // departed at the same sequence, with that entry's tag.
        var candidates = [(key: DocumentKey, latest: Int64, tag: Int64)]()
        for try await (collection, id, latest, tag) in try await client.query(
            """
            SELECT collection, doc_id, max(sequence * 2 + present::int) AS latest,
                (array_agg(tag ORDER BY sequence * 2 + present::int DESC))[1]
            FROM weft_channel_entries
            WHERE tenant = \(database) AND channel = ANY(\(channels)::text[]) AND sequence > \(cursor) AND sequence <= \(Int64(head.sequence))
            GROUP BY collection, doc_id ORDER BY latest LIMIT \(limit + 1)
            """, logger: logger
        ).decode((String, String, Int64, Int64).self) {
            candidates.append((try storedKey(collection, id), latest, tag))
        }
        let considered = candidates.prefix(limit)
        let present = considered.filter { $0.latest % 2 == 1 }.map(\.key)
        let departed = considered.filter { $0.latest % 2 == 0 }.map(\.key)
        var changes = [DocumentKey: LoggedChange]()
        if !present.isEmpty {
            let rows = try await client.query(
                """
                SELECT l.sequence, l.collection, l.doc_id, l.tag, d.record, l.delta, l.base_digest, l.base_sequence, d.born_after
                FROM unnest(\(present.map(\.collection.rawValue))::text[], \(present.map(\.id.rawValue))::text[]) AS k(c, i)
                JOIN weft_change_log l ON l.tenant = \(database) AND l.collection = k.c AND l.doc_id = k.i
                    AND l.sequence IS NOT NULL AND l.sequence <= \(Int64(head.sequence))
                JOIN weft_documents d ON d.tenant = \(database) AND d.collection = k.c AND d.id = k.i
                -- The record is read now, the index earlier: a push committed since (whose index
                -- entries the sequencer has not written yet) may have moved the document out of
                -- the reader's channels. Such a document comes, or leaves, at its new entry.
                WHERE d.channels && \(channels)::text[]
                """, logger: logger)
            for try await row in rows.decode(
                (Int64, String, String, Int64, ByteBuffer?, ByteBuffer?, Int64?, Int64?, Int64?).self)
            {
                let change = try loggedChange(database: database, row)
                changes[change.key] = change
            }
        }
        var stillVisible = Set<DocumentKey>()
        if !departed.isEmpty {
            for try await (collection, id) in try await client.query(
                """
                SELECT d.collection, d.id FROM unnest(\(departed.map(\.collection.rawValue))::text[], \(departed.map(\.id.rawValue))::text[]) AS k(c, i)
                JOIN weft_documents d ON d.tenant = \(database) AND d.collection = k.c AND d.id = k.i
                WHERE d.channels && \(channels)::text[]
                """, logger: logger
            ).decode((String, String).self) {
                stillVisible.insert(try storedKey(collection, id))
            }
        }
        var entries = [ChannelPage.Entry]()
        var bytes = 0
        var more = candidates.count > limit
        for candidate in considered {
            if candidate.latest % 2 == 1 {
                // The entry read must still be the document's latest (else its newer one, above the
                // head, comes next time).
                guard let change = changes[candidate.key], change.sequence == UInt64(candidate.latest / 2)
                else { continue }
                if !entries.isEmpty && bytes + change.byteCount > maxBytes {
                    more = true
                    break
                }
                entries.append(.change(change))
                bytes += change.byteCount
            } else if !stillVisible.contains(candidate.key) {
                entries.append(
                    .left(
                        key: candidate.key, sequence: UInt64(candidate.latest / 2),
                        tag: UInt64(bitPattern: candidate.tag)))
            }
        }
        return ChannelPage(entries: entries, hasMore: more, head: head)
    }

    /// The logged change of a row of the log joined with its document (sequence, collection,
    /// id, tag, record, delta, base digest, base sequence, born after).
    func loggedChange(
        database: String,
        _ row: (Int64, String, String, Int64, ByteBuffer?, ByteBuffer?, Int64?, Int64?, Int64?)
    ) throws -> LoggedChange {
        let (sequence, collection, id, tag, stored, deltaBytes, baseBytes, baseSequence, bornAfter) = row
        guard let record = stored else {
            throw WeftError.corrupt(
                "the log of \(database) at \(location) names \(collection)/\(id), which has no record")
        }
        let key = try storedKey(collection, id)
        let decoded: DocumentRecord
        do {
            decoded = try DocumentRecord(encoded: Array(buffer: record))
        } catch {
            throw WeftError.corrupt(
                "a logged record of \(database)/\(key) at \(location) does not decode: \(error)")
        }
        var delta: LogDelta?
        if let deltaBytes, let baseBytes, let baseSequence {
            do {
                delta = LogDelta(
                    record: try DocumentRecord(encoded: Array(buffer: deltaBytes)),
                    baseDigest: UInt64(bitPattern: baseBytes),
                    baseSequence: UInt64(max(0, baseSequence)))
            } catch {
                throw WeftError.corrupt(
                    "the logged delta of \(database)/\(key) at \(location) does not decode: \(error)")
            }
        }
        return LoggedChange(
            sequence: UInt64(sequence), key: key, record: decoded, byteCount: record.readableBytes,
            tag: UInt64(bitPattern: tag), delta: delta,
            bornAfter: UInt64(max(0, bornAfter ?? 0)))
    }

    public func channelScan(database: String, channels: Set<String>?, after: UInt64, limit: Int)
        async throws(WeftError)
        -> (entries: [ChannelScanEntry], hasMore: Bool)
    {
        guard let position = Int64(exactly: after) else {
            throw .invalidArgument("position \(after) is out of range")
        }
        let limit = max(1, limit)
        let logger = logger
        do {
            return try await withDeadline {
                try await self.sequenceIfWaiting(database)
                let names = channels.map { $0.sorted() }
                if let names, names.isEmpty { return ([], false) }
                // The entries (or, for every channel, the log) after the position, each with its
                // document's channels, deletion (or record, where not projected yet) and latest
                // logged sequence.
                let source: PostgresQuery =
                    names.map { names in
                        """
                        SELECT collection, doc_id, sequence FROM weft_channel_entries
                        WHERE tenant = \(database) AND channel = ANY(\(names)::text[]) AND sequence > \(position)
                        ORDER BY sequence LIMIT \(limit + 1)
                        """
                    }
                        ?? """
                        SELECT collection, doc_id, sequence FROM weft_change_log
                        WHERE tenant = \(database) AND sequence > \(position) ORDER BY sequence LIMIT \(limit + 1)
                        """
                var rows = [(key: DocumentKey, position: Int64)]()
                for try await (collection, id, sequence) in try await self.client.query(
                    source, logger: logger
                ).decode((String, String, Int64).self) {
                    rows.append((try self.storedKey(collection, id), sequence))
                }
                let keys = Array(Set(rows.prefix(limit).map(\.key)))
                var documents = [DocumentKey: (channels: Set<String>, deleted: Bool, sequence: UInt64)]()
                if !keys.isEmpty {
                    for try await (collection, id, channels, deleted, record, sequence)
                        in try await self.client.query(
                            """
                            SELECT d.collection, d.id, d.channels, d.deleted, CASE WHEN d.deleted IS NULL THEN d.record END,
                                (SELECT l.sequence FROM weft_change_log l
                                 WHERE l.tenant = \(database) AND l.collection = d.collection AND l.doc_id = d.id AND l.sequence IS NOT NULL)
                            FROM unnest(\(keys.map(\.collection.rawValue))::text[], \(keys.map(\.id.rawValue))::text[]) AS k(c, i)
                            JOIN weft_documents d ON d.tenant = \(database) AND d.collection = k.c AND d.id = k.i
                            """, logger: logger
                        ).decode((String, String, [String]?, Bool?, ByteBuffer?, Int64?).self)
                    {
                        let key = try self.storedKey(collection, id)
                        var isDeleted = deleted ?? false
                        if deleted == nil, let record {
                            do {
                                isDeleted = try DocumentRecord(encoded: Array(buffer: record)).isDeleted
                            } catch {
                                throw WeftError.corrupt(
                                    "the record of \(database)/\(key) at \(self.location) does not decode: \(error)"
                                )
                            }
                        }
                        documents[key] = (Set(channels ?? []), isDeleted, UInt64(max(0, sequence ?? 0)))
                    }
                }
                var entries = [ChannelScanEntry]()
                for row in rows.prefix(limit) {
                    guard let document = documents[row.key] else { continue }
                    let entry = ChannelScanEntry(
                        key: row.key, position: UInt64(max(0, row.position)), sequence: document.sequence,
                        channels: document.channels,
                        deleted: document.deleted)
                    entries.append(entry)
                }
                return (ChannelScanEntry.onePerDocument(entries), rows.count > limit)
            }
        } catch {
            throw map(error)
        }
    }

    public func records(database: String, keys: [DocumentKey]) async throws(WeftError) -> [DocumentKey:
        DocumentRecord]
    {
        guard !keys.isEmpty else { return [:] }
        let logger = logger
        do {
            return try await withDeadline {
                var found = [DocumentKey: DocumentRecord]()
                for try await (collection, id, record) in try await self.client.query(
                    """
                    SELECT d.collection, d.id, d.record
                    FROM unnest(\(keys.map(\.collection.rawValue))::text[], \(keys.map(\.id.rawValue))::text[]) AS k(c, i)
                    JOIN weft_documents d ON d.tenant = \(database) AND d.collection = k.c AND d.id = k.i
                    """, logger: logger
                ).decode((String, String, ByteBuffer).self) {
                    let key = try self.storedKey(collection, id)
                    do {
                        found[key] = try DocumentRecord(encoded: Array(buffer: record))
                    } catch {
                        throw WeftError.corrupt(
                            "the record of \(database)/\(key) at \(self.location) does not decode: \(error)")
                    }
                }
                return found
            }
        } catch {
            throw map(error)
        }
    }

    public func assignChannels(
        after: ChannelAssignmentPosition?, limit: Int, onlyUnassigned: Bool, projector: DocumentProjector
    )
        async throws(WeftError) -> (assigned: Int, last: ChannelAssignmentPosition?)
    {
        let limit = max(1, limit)
        let logger = logger
        do {
            let (assigned, last, tenants) = try await withDeadline {
                try await self.client.withTransaction(logger: logger) {
                    connection -> (Int, ChannelAssignmentPosition?, Set<String>) in
                    // The documents of this step, then each one's push lock (in order, as pushes
                    // take them), then their records, read after the locks.
                    let candidates: PostgresQuery =
                        onlyUnassigned
                        ? "SELECT tenant, collection, id FROM weft_documents WHERE channels IS NULL ORDER BY tenant, collection, id LIMIT \(limit)"
                        : """
                        SELECT tenant, collection, id FROM weft_documents
                        WHERE (tenant, collection, id) > (\(after?.database ?? ""), \(after?.key.collection.rawValue ?? ""), \(after?.key.id.rawValue ?? ""))
                        ORDER BY tenant, collection, id LIMIT \(limit)
                        """
                    var positions = [ChannelAssignmentPosition]()
                    for try await (tenant, collection, id) in try await connection.query(
                        candidates, logger: logger
                    ).decode((String, String, String).self) {
                        positions.append(
                            ChannelAssignmentPosition(
                                database: tenant, key: try self.storedKey(collection, id)))
                    }
                    guard !positions.isEmpty else { return (0, nil, []) }
                    let names = positions.map {
                        $0.database + "\u{1F}" + $0.key.collection.rawValue + "\u{1F}" + $0.key.id.rawValue
                    }
                    try await connection.query(
                        """
                        SELECT count(*) FROM (
                            SELECT pg_advisory_xact_lock(hashtextextended(name, 0)) FROM unnest(\(names)::text[]) WITH ORDINALITY AS t(name, n) ORDER BY n
                        ) AS locked
                        """, logger: logger)
                    var changed = [(position: ChannelAssignmentPosition, channels: [String], bytes: Int)]()
                    for try await (tenant, collection, id, record, stored) in try await connection.query(
                        """
                        SELECT d.tenant, d.collection, d.id, d.record, d.channels
                        FROM unnest(\(positions.map(\.database))::text[], \(positions.map(\.key.collection.rawValue))::text[],
                            \(positions.map(\.key.id.rawValue))::text[]) AS k(t, c, i)
                        JOIN weft_documents d ON d.tenant = k.t AND d.collection = k.c AND d.id = k.i
                        """, logger: logger
                    ).decode((String, String, String, ByteBuffer, [String]?).self) {
                        let key = try self.storedKey(collection, id)
                        let decoded: DocumentRecord
                        do {
                            decoded = try DocumentRecord(encoded: Array(buffer: record))
                        } catch {
                            throw WeftError.corrupt(
                                "the record of \(tenant)/\(key) at \(self.location) does not decode: \(error)"
                            )
                        }
                        let channels =
                            projector.channels(database: tenant, key: key, record: decoded) ?? stored ?? []
                        guard stored.map(Set.init) != Set(channels) else { continue }
                        changed.append(
                            (
                                ChannelAssignmentPosition(database: tenant, key: key), channels,
                                record.readableBytes
                            ))
                    }
                    if !changed.isEmpty {
                        // The new channels, and the document logged again (staged for the
                        // sequencer, which writes the index).
                        try await connection.query(
                            """
                            WITH updated AS (
                                UPDATE weft_documents d SET channels = k.h::text[]
                                FROM unnest(\(changed.map(\.position.database))::text[], \(changed.map(\.position.key.collection.rawValue))::text[],
                                    \(changed.map(\.position.key.id.rawValue))::text[], \(changed.map { Self.channelArray($0.channels) })::text[]) AS k(t, c, i, h)
                                WHERE d.tenant = k.t AND d.collection = k.c AND d.id = k.i
                            )
                            INSERT INTO weft_pending (tenant, collection, doc_id, bytes, tag, channels)
                            SELECT t, c, i, b, g, h::text[]
                            FROM unnest(\(changed.map(\.position.database))::text[], \(changed.map(\.position.key.collection.rawValue))::text[],
                                \(changed.map(\.position.key.id.rawValue))::text[], \(changed.map { Int32(clamping: $0.bytes) })::int4[],
                                \(changed.map { _ in Int64(LoggedChange.newTag()) })::int8[], \(changed.map { Self.channelArray($0.channels) })::text[])
                                WITH ORDINALITY AS k(t, c, i, b, g, h, n)
                            ORDER BY n
                            """, logger: logger)
                    }
                    return (
                        changed.count, positions.count < limit ? nil : positions.last,
                        Set(changed.map(\.position.database))
                    )
                }
            }
            for tenant in tenants {
                try? await withDeadline { try await self.sequence(tenant, unlessBusy: true) }
            }
            return (assigned, last)
        } catch {
            throw map(error)
        }
    }

    public func channelFingerprint() async throws(WeftError) -> Int64? {
        let logger = logger
        do {
            return try await withDeadline {
                var found: Int64?
                for try await value in try await self.client.query(
                    "SELECT value FROM weft_settings WHERE name = 'channel_fingerprint'", logger: logger
                ).decode(Int64.self) {
                    found = value
                }
                return found
            }
        } catch {
            throw map(error)
        }
    }

    public func saveChannelFingerprint(_ fingerprint: Int64) async throws(WeftError) {
        let logger = logger
        do {
            try await withDeadline {
                try await self.client.query(
                    """
                    INSERT INTO weft_settings (name, value) VALUES ('channel_fingerprint', \(fingerprint))
                    ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value
                    """, logger: logger)
            }
        } catch {
            throw map(error)
        }
    }

    public func channelTemplates() async throws(WeftError) -> ServerChannels? {
        let logger = logger
        let location = location
        do {
            return try await withDeadline {
                var found: String?
                for try await text in try await self.client.query(
                    "SELECT text FROM weft_settings WHERE name = 'channel_templates'", logger: logger
                ).decode(String?.self) {
                    found = text
                }
                guard let found else { return nil }
                guard let channels = ServerChannels(text: found) else {
                    throw WeftError.corrupt("the channel templates kept at \(location) do not parse")
                }
                return channels
            }
        } catch {
            throw map(error)
        }
    }

    public func saveChannelTemplates(_ channels: ServerChannels) async throws(WeftError) {
        let logger = logger
        let text = channels.text
        do {
            try await withDeadline {
                try await self.client.query(
                    """
                    INSERT INTO weft_settings (name, text) VALUES ('channel_templates', \(text))
                    ON CONFLICT (name) DO UPDATE SET text = EXCLUDED.text
                    """, logger: logger)
            }
        } catch {
            throw map(error)
        }
    }

    public func channelViewKey() async throws(WeftError) -> [UInt8] {
        let logger = logger
        let location = location
        let fresh = ByteBuffer(bytes: (0..<32).map { _ in UInt8.random(in: 0...255) })
        do {
            return try await withDeadline {
                // The first server to ask makes it; every other reads that one. The read is a
                // statement of its own: one in the insert's statement would not see a row another
                // server committed while the insert waited on it.
                try await self.client.query(
                    "INSERT INTO weft_settings (name, bytes) VALUES ('channel_view_key', \(fresh)) ON CONFLICT (name) DO NOTHING",
                    logger: logger)
                var found: [UInt8]?
                for try await bytes in try await self.client.query(
                    "SELECT bytes FROM weft_settings WHERE name = 'channel_view_key'", logger: logger
                ).decode(ByteBuffer?.self) {
                    found = bytes.map { Array(buffer: $0) }
                }
                guard let found, found.count == 32 else {
                    throw WeftError.corrupt("the channel view key at \(location) is missing or not 32 bytes")
                }
                return found
            }
        } catch {
            throw map(error)
        }
    }
}
