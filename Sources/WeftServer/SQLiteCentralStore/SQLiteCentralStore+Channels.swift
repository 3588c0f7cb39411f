import Foundation
import GRDB
import Weft
import WeftCRDT
import WeftSQLite

// The channel index (ChannelIndexedStore): written with each logged change, read by channel readers.
extension SQLiteCentralStore: ChannelIndexedStore {
    /// `channels` as the `channels` column holds them: a JSON array of strings.
    static func channelText(_ channels: [String]) -> String {
        JSONValue.array(channels.map(JSONValue.string)).text
    }

    /// The `channels` column's array, or `nil` for NULL.
    static func channelList(_ text: String?, _ what: @autoclosure () -> String) throws -> [String]? {
        guard let text else { return nil }
        do {
            return try JSONDecoder().decode([String].self, from: Data(text.utf8))
        } catch {
            throw WeftError.corrupt("the channels of \(what()) are not a JSON array of strings")
        }
    }

    /// Writes the index entries of a change logged at `sequence` (rule 1): present in
    /// `channels`, departed from the channels the index has it present in and it is no longer in.
    static func indexChannels(
        _ db: Database, _ database: String, _ key: DocumentKey, sequence: Int64, tag: Int64,
        channels: [String]
    ) throws {
        // Departed first: every channel the index holds the document present in and that it is
        // not in now (whatever the `channels` column said before: NULL while none were kept).
        let current = try String.fetchAll(
            db,
            sql:
                "SELECT channel FROM channel_entries INDEXED BY channel_entries_by_document WHERE tenant = ? AND collection = ? AND id = ? AND present = 1",
            arguments: [database, key.collection.rawValue, key.id.rawValue])
        let departed = try db.cachedStatement(
            sql:
                "UPDATE channel_entries SET sequence = ?, tag = ?, present = 0 WHERE tenant = ? AND channel = ? AND collection = ? AND id = ?"
        )
        for channel in Set(current).subtracting(channels) {
            try departed.execute(arguments: [
                sequence, tag, database, channel, key.collection.rawValue, key.id.rawValue,
            ])
        }
        let present = try db.cachedStatement(
            sql:
                "INSERT OR REPLACE INTO channel_entries (tenant, channel, collection, id, sequence, tag, present) VALUES (?, ?, ?, ?, ?, ?, 1)"
        )
        for channel in channels {
            try present.execute(arguments: [
                database, channel, key.collection.rawValue, key.id.rawValue, sequence, tag,
            ])
        }
    }

    /// `?, ?, …` for `count` parameters.
    static func placeholders(_ count: Int) -> String {
        Array(repeating: "?", count: count).joined(separator: ", ")
    }

    public func channelChanges(
        database: String, channels: Set<String>, after: UInt64, limit: Int, maxBytes: Int
    ) async throws(WeftError)
        -> ChannelPage
    {
        guard let cursor = Int64(exactly: after) else {
            throw .invalidArgument("cursor \(after) is out of range")
        }
        let names = channels.sorted()
        do {
            return try readBlocking { db in
                let head = try Row.fetchOne(
                    db, sql: "SELECT sequence, tag FROM log WHERE tenant = ? ORDER BY sequence DESC LIMIT 1",
                    arguments: [database])
                let top = (
                    sequence: UInt64(max(0, head?[0] as Int64? ?? 0)),
                    tag: UInt64(bitPattern: head?[1] as Int64? ?? 0)
                )
                guard !names.isEmpty else { return ChannelPage(entries: [], hasMore: false, head: top) }
                // One row per document: its latest entry among the reader's channels, present
                // before departed at the same sequence (`sequence * 2 + present`), with that
                // entry's tag.
                let candidates = try Row.fetchCursor(
                    db,
                    sql: """
                        SELECT collection, id, max(sequence * 2 + present) AS latest, tag FROM channel_entries INDEXED BY channel_entries_by_sequence
                        WHERE tenant = ? AND channel IN (\(Self.placeholders(names.count))) AND sequence > ? AND sequence <= ?
                        GROUP BY collection, id ORDER BY latest
                        """,
                    arguments: StatementArguments([database] + names + [cursor, Int64(top.sequence)]))
                let change = try db.cachedStatement(
                    sql: """
                        SELECT l.sequence, l.collection, l.id, d.record, length(d.record) AS bytes, l.tag,
                            l.delta, l.base_digest, l.base_sequence, d.born_after FROM log l
                        JOIN documents d ON d.tenant = l.tenant AND d.collection = l.collection AND d.id = l.id
                        WHERE l.tenant = ? AND l.collection = ? AND l.id = ?
                        """)
                let current = try db.cachedStatement(
                    sql: "SELECT channels FROM documents WHERE tenant = ? AND collection = ? AND id = ?")
                var entries = [ChannelPage.Entry]()
                var bytes = 0
                var more = false
                let wanted = max(1, limit)
                while let row = try candidates.next() {
                    if entries.count >= wanted {
                        more = true
                        break
                    }
                    let key = try SQLiteReplicaStorage.key(row)
                    let latest = try SQLiteReplicaStorage.column(row, "latest", Int64.self)
                    let tag = UInt64(bitPattern: try SQLiteReplicaStorage.column(row, "tag", Int64.self))
                    if latest % 2 == 1 {
                        guard
                            let logged = try Row.fetchOne(
                                change, arguments: [database, key.collection.rawValue, key.id.rawValue])
                        else { continue }
                        let size = try SQLiteReplicaStorage.column(logged, "bytes", Int.self)
                        if !entries.isEmpty && bytes + size > maxBytes {
                            more = true
                            break
                        }
                        entries.append(.change(try loggedChange(logged, database: database)))
                        bytes += size
                    } else {
                        // Departed from every channel of the reader it had: unless it is in one of
                        // them now (its present entry lies above the head read), it left.
                        let now = try String.fetchOne(
                            current, arguments: [database, key.collection.rawValue, key.id.rawValue])
                        if let now, let list = try Self.channelList(now, "\(database)/\(key)"),
                            list.contains(where: channels.contains)
                        {
                            continue
                        }
                        entries.append(.left(key: key, sequence: UInt64(latest / 2), tag: tag))
                    }
                }
                return ChannelPage(entries: entries, hasMore: more, head: top)
            }
        } catch {
            throw SQLiteReplicaStorage.map(error, path: path)
        }
    }

    public func channelScan(database: String, channels: Set<String>?, after: UInt64, limit: Int)
        async throws(WeftError)
        -> (entries: [ChannelScanEntry], hasMore: Bool)
    {
        guard let position = Int64(exactly: after) else {
            throw .invalidArgument("position \(after) is out of range")
        }
        let wanted = max(1, limit)
        do {
            return try readBlocking { db in
                let rows: [Row]
                if let channels {
                    let names = channels.sorted()
                    guard !names.isEmpty else { return ([], false) }
                    rows = try Row.fetchAll(
                        db,
                        sql: """
                            SELECT collection, id, sequence AS position FROM channel_entries
                            WHERE tenant = ? AND channel IN (\(Self.placeholders(names.count))) AND sequence > ?
                            ORDER BY sequence LIMIT ?
                            """,
                        arguments: StatementArguments([database] + names + [position, wanted + 1]))
                } else {
                    rows = try Row.fetchAll(
                        db,
                        sql:
                            "SELECT collection, id, sequence AS position FROM log WHERE tenant = ? AND sequence > ? ORDER BY sequence LIMIT ?",
                        arguments: [database, position, wanted + 1])
                }
                let document = try db.cachedStatement(
                    sql: """
                        SELECT d.channels, d.deleted, d.record, l.sequence FROM documents d
                        LEFT JOIN log l ON l.tenant = d.tenant AND l.collection = d.collection AND l.id = d.id
                        WHERE d.tenant = ? AND d.collection = ? AND d.id = ?
                        """)
                var entries = [ChannelScanEntry]()
                for row in rows.prefix(wanted) {
                    let key = try SQLiteReplicaStorage.key(row)
                    let at = UInt64(max(0, try SQLiteReplicaStorage.column(row, "position", Int64.self)))
                    guard
                        let found = try Row.fetchOne(
                            document, arguments: [database, key.collection.rawValue, key.id.rawValue])
                    else { continue }
                    let list =
                        try Self.channelList(
                            try SQLiteReplicaStorage.column(found, "channels", String?.self),
                            "\(database)/\(key)") ?? []
                    let deleted: Bool
                    if let flag = try SQLiteReplicaStorage.column(found, "deleted", Int64?.self) {
                        deleted = flag != 0
                    } else {
                        deleted = try SQLiteReplicaStorage.decodeRecord(
                            try SQLiteReplicaStorage.column(found, "record", Data.self), "\(database)/\(key)"
                        ).isDeleted
                    }
                    let sequence = UInt64(
                        max(0, try SQLiteReplicaStorage.column(found, "sequence", Int64?.self) ?? 0))
                    let entry = ChannelScanEntry(
                        key: key, position: at, sequence: sequence, channels: Set(list), deleted: deleted)
                    entries.append(entry)
                }
                return (ChannelScanEntry.onePerDocument(entries), rows.count > wanted)
            }
        } catch {
            throw SQLiteReplicaStorage.map(error, path: path)
        }
    }

    public func records(database: String, keys: [DocumentKey]) async throws(WeftError) -> [DocumentKey:
        DocumentRecord]
    {
        do {
            return try readBlocking { db in
                let read = try db.cachedStatement(
                    sql: "SELECT record FROM documents WHERE tenant = ? AND collection = ? AND id = ?")
                var found = [DocumentKey: DocumentRecord]()
                for key in keys {
                    if let bytes = try Data.fetchOne(
                        read, arguments: [database, key.collection.rawValue, key.id.rawValue])
                    {
                        found[key] = try SQLiteReplicaStorage.decodeRecord(bytes, "\(database)/\(key)")
                    }
                }
                return found
            }
        } catch {
            throw SQLiteReplicaStorage.map(error, path: path)
        }
    }

    public func assignChannels(
        after: ChannelAssignmentPosition?, limit: Int, onlyUnassigned: Bool, projector: DocumentProjector
    )
        async throws(WeftError) -> (assigned: Int, last: ChannelAssignmentPosition?)
    {
        let limit = max(1, limit)
        do {
            let (assigned, last, relogged) = try writeBlocking {
                db -> (Int, ChannelAssignmentPosition?, UInt64) in
                let rows: [Row]
                if onlyUnassigned {
                    rows = try Row.fetchAll(
                        db,
                        sql:
                            "SELECT tenant, collection, id, record, channels FROM documents WHERE channels IS NULL LIMIT ?",
                        arguments: [limit])
                } else {
                    rows = try Row.fetchAll(
                        db,
                        sql: """
                            SELECT tenant, collection, id, record, channels FROM documents
                            WHERE (tenant, collection, id) > (?, ?, ?) ORDER BY tenant, collection, id LIMIT ?
                            """,
                        arguments: [
                            after?.database ?? "", after?.key.collection.rawValue ?? "",
                            after?.key.id.rawValue ?? "", limit,
                        ])
                }
                let update = try db.cachedStatement(
                    sql: "UPDATE documents SET channels = ? WHERE tenant = ? AND collection = ? AND id = ?")
                let log = try db.cachedStatement(
                    sql:
                        "INSERT OR REPLACE INTO log (tenant, collection, id, tag, delta, base_digest, base_sequence) VALUES (?, ?, ?, ?, NULL, NULL, NULL)"
                )
                var assigned = 0
                var last: ChannelAssignmentPosition?
                for row in rows {
                    let tenant = try SQLiteReplicaStorage.column(row, "tenant", String.self)
                    let key = try SQLiteReplicaStorage.key(row)
                    last = ChannelAssignmentPosition(database: tenant, key: key)
                    let record = try SQLiteReplicaStorage.decodeRecord(
                        try SQLiteReplicaStorage.column(row, "record", Data.self), "\(tenant)/\(key)")
                    let stored = try Self.channelList(
                        try SQLiteReplicaStorage.column(row, "channels", String?.self), "\(tenant)/\(key)")
                    let channels =
                        projector.channels(database: tenant, key: key, record: record) ?? stored ?? []
                    guard stored.map(Set.init) != Set(channels) else { continue }
                    try update.execute(arguments: [
                        Self.channelText(channels), tenant, key.collection.rawValue, key.id.rawValue,
                    ])
                    let tag = Int64(LoggedChange.newTag())
                    try log.execute(arguments: [tenant, key.collection.rawValue, key.id.rawValue, tag])
                    try Self.indexChannels(
                        db, tenant, key, sequence: db.lastInsertedRowID, tag: tag, channels: channels)
                    assigned += 1
                }
                return (assigned, rows.count < limit ? nil : last, UInt64(assigned))
            }
            compacted.withLock { $0 += relogged }
            return (assigned, last)
        } catch {
            throw SQLiteReplicaStorage.map(error, path: path)
        }
    }

    public func channelFingerprint() async throws(WeftError) -> Int64? {
        do {
            return try readBlocking { db in
                try Int64.fetchOne(
                    db, sql: "SELECT value FROM log_settings WHERE name = 'channel_fingerprint'")
            }
        } catch {
            throw SQLiteReplicaStorage.map(error, path: path)
        }
    }

    public func saveChannelFingerprint(_ fingerprint: Int64) async throws(WeftError) {
        do {
            try writeBlocking { db in
                try db.execute(
                    sql:
                        "INSERT OR REPLACE INTO log_settings (name, value) VALUES ('channel_fingerprint', ?)",
                    arguments: [fingerprint])
            }
        } catch {
            throw SQLiteReplicaStorage.map(error, path: path)
        }
    }

    public func channelViewKey() async throws(WeftError) -> [UInt8] {
        var fresh = [UInt8](repeating: 0, count: 32)
        for index in fresh.indices { fresh[index] = UInt8.random(in: 0...255) }
        let made = fresh
        do {
            return try writeBlocking { db in
                try db.execute(
                    sql: "INSERT OR IGNORE INTO secrets (name, bytes) VALUES ('channel_view_key', ?)",
                    arguments: [Data(made)])
                guard
                    let bytes = try Data.fetchOne(
                        db, sql: "SELECT bytes FROM secrets WHERE name = 'channel_view_key'"),
                    bytes.count == 32
                else { throw WeftError.corrupt("the channel view key at \(path) is missing or not 32 bytes") }
                return [UInt8](bytes)
            }
        } catch {
            throw SQLiteReplicaStorage.map(error, path: path)
        }
    }
}
