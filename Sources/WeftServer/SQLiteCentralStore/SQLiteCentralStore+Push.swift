import Foundation
import GRDB
import Weft
import WeftCRDT
import WeftSQLite
import WeftWire

// Applying pushes.
extension SQLiteCentralStore {
    public func applyPush(
        database: String, replica: ReplicaID, epoch: UInt64, expectedMark: UInt64, pulledThrough: UInt64?,
        receipt: UInt64,
        changes: [(sequence: UInt64, key: DocumentKey, delta: DocumentRecord)], projector: DocumentProjector,
        merge:
            @escaping @Sendable (DocumentRecord?, DocumentKey, DocumentRecord) throws(WeftError) -> (
                record: DocumentRecord, kind: MergeKind, conflict: ConflictRecord?
            )
    ) async throws(WeftError) -> (mark: UInt64, receipt: PushReceipt) {
        do {
            let (answer, superseded) = try writeBlocking {
                db -> ((mark: UInt64, receipt: PushReceipt), UInt64) in
                let replicaBytes = Data(replica.bytes)
                guard try Self.session(db, database, replicaBytes) == (epoch == 0 ? nil : epoch) else {
                    throw WeftError.forked(
                        "replica \(replica) pushed in session \(epoch), which is not its current one")
                }
                let row = try Row.fetchOne(
                    db,
                    sql:
                        "SELECT applied_through, receipt, previous_receipt FROM high_water WHERE tenant = ? AND replica = ?",
                    arguments: [database, replicaBytes])
                let mark = UInt64(row.map { $0[0] as Int64 } ?? 0)
                let storedReceipts = (
                    current: UInt64(bitPattern: row.map { $0[1] as Int64 } ?? 0),
                    previous: UInt64(bitPattern: row.map { $0[2] as Int64 } ?? 0)
                )
                guard mark >= expectedMark else {
                    throw WeftError.forked(Self.lostChanges(replica, mark, expectedMark))
                }
                // One writer at a time: nothing is forgotten while this transaction runs.
                let collectedThrough = try Self.collectedThrough(db, database)
                try Self.refuseIfTooFarBehind(pulledThrough, collectedThrough: collectedThrough)
                let bornAfter = Int64(clamping: collectedThrough)
                // The per-change statements run through the SQLite C API (see RawStatement).
                let read = RawStatement(
                    try db.cachedStatement(
                        sql:
                            "SELECT record, channels FROM documents WHERE tenant = ? AND collection = ? AND id = ?"
                    ), in: db)
                let store = RawStatement(
                    try db.cachedStatement(
                        sql: """
                            INSERT INTO documents (tenant, collection, id, record, tombstone, born_after, doc, deleted, channels)
                            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                            ON CONFLICT (tenant, collection, id) DO UPDATE SET
                                record = excluded.record, tombstone = excluded.tombstone, doc = excluded.doc, deleted = excluded.deleted,
                                channels = excluded.channels
                            """),
                    in: db)
                // Logging a change replaces the document's entry (the unique key): the log is
                // compacted as it grows, and the new entry takes the next sequence.
                let log = try db.cachedStatement(
                    sql:
                        "INSERT OR REPLACE INTO log (tenant, collection, id, tag, delta, base_digest, base_sequence) VALUES (?, ?, ?, ?, ?, ?, ?)"
                )
                let entry = try db.cachedStatement(
                    sql: "SELECT sequence FROM log WHERE tenant = ? AND collection = ? AND id = ?")
                var superseded: UInt64 = 0
                let logConflict = try db.cachedStatement(
                    sql:
                        "INSERT INTO conflicts (tenant, collection, id, policy, resolver, local, remote, winner) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                )
                var newMark = mark
                var moved = false
                for change in changes {
                    newMark = max(newMark, change.sequence)
                    let key = change.key
                    let (local, storedChannels) = try read.run { row -> (DocumentRecord?, String?) in
                        try row.bind(database)
                        try row.bind(key.collection.rawValue)
                        try row.bind(key.id.rawValue)
                        guard try row.step() else { return (nil, nil) }
                        return (
                            try SQLiteReplicaStorage.decodeRecord(
                                try row.blob(0, "the record of \(database)/\(key)"), "\(database)/\(key)"),
                            row.isNull(1) ? nil : try row.text(1, "the channels of \(database)/\(key)")
                        )
                    }
                    let result = try merge(local, key, change.delta)
                    // A change the pusher may not make stores nothing (the service answers it
                    // as rejected); a live document is logged again as it is, so that the pusher,
                    // which drops its copy, pulls the server's version back.
                    if result.kind == .refused {
                        if let local, !local.isDeleted {
                            moved = true
                            let tag = Int64(LoggedChange.newTag())
                            try log.execute(arguments: [
                                database, key.collection.rawValue, key.id.rawValue, tag, nil, nil, nil,
                            ])
                            if let channels = try Self.channelList(storedChannels, "\(database)/\(key)") {
                                try Self.indexChannels(
                                    db, database, key, sequence: db.lastInsertedRowID, tag: tag,
                                    channels: channels)
                            }
                            superseded += 1
                        }
                        continue
                    }
                    if let conflict = result.conflict {
                        let (policy, resolver) = SQLiteReplicaStorage.policyColumns(conflict.policy)
                        let arguments: StatementArguments = [
                            database, key.collection.rawValue, key.id.rawValue,
                        ]
                        try logConflict.execute(
                            arguments: arguments + [
                                policy, resolver, Data(conflict.local.encoded()),
                                Data(conflict.remote.encoded()),
                                Data(conflict.winner.encoded()),
                            ])
                    }
                    guard result.record != local else { continue }
                    moved = true
                    let bytes = result.record.encoded()
                    let projection = projector.projection(database: database, key: key, record: result.record)
                    // The document's channels (ChannelIndexedStore rule 1): a deleted one keeps
                    // those it had.
                    let previousChannels = try Self.channelList(storedChannels, "\(database)/\(key)")
                    let channels =
                        projector.tracksChannels
                        ? projector.channels(database: database, key: key, record: result.record)
                            ?? previousChannels : nil
                    let channelsText = channels.map(Self.channelText)
                    try bytes.withUnsafeBytes { record in
                        try store.run { statement in
                            try statement.bind(database)
                            try statement.bind(key.collection.rawValue)
                            try statement.bind(key.id.rawValue)
                            try statement.bind(borrowing: record)
                            try statement.bind(result.record.isDeleted && result.record.body.count == 0)
                            try statement.bind(bornAfter)
                            if let projection {
                                try statement.bind(projection)
                            } else {
                                try statement.bindNull()
                            }
                            if projector.keepsProjection {
                                try statement.bind(projection == nil)
                            } else {
                                try statement.bindNull()
                            }
                            if let channelsText {
                                try statement.bind(channelsText)
                            } else {
                                try statement.bindNull()
                            }
                            try statement.execute()
                        }
                    }
                    // A large document's small change keeps its delta over the previous version,
                    // and where that version's entry was.
                    var deltaColumns: [DatabaseValueConvertible?] = [nil, nil, nil]
                    if let delta = LogDelta.make(result.record, encodedBytes: bytes.count, over: local),
                        let local,
                        let base = try Int64.fetchOne(
                            entry, arguments: [database, key.collection.rawValue, key.id.rawValue])
                    {
                        deltaColumns = [Data(delta.bytes), Int64(bitPattern: local.digest), base]
                    }
                    let tag = Int64(LoggedChange.newTag())
                    try log.execute(
                        arguments: StatementArguments(
                            [database, key.collection.rawValue, key.id.rawValue, tag] + deltaColumns))
                    if let channels {
                        try Self.indexChannels(
                            db, database, key, sequence: db.lastInsertedRowID, tag: tag, channels: channels)
                    }
                    if local != nil { superseded += 1 }
                }
                let kept = PushReceipts.keep(
                    stored: storedReceipts, receipt: receipt, moves: moved || newMark > mark)
                guard let markValue = Int64(exactly: newMark) else {
                    throw WeftError.invalidArgument("sequence \(newMark) is out of range")
                }
                try db.execute(
                    sql: """
                        INSERT OR REPLACE INTO high_water (tenant, replica, applied_through, receipt, previous_receipt)
                        VALUES (?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        database, replicaBytes, markValue, Int64(bitPattern: kept.current),
                        Int64(bitPattern: kept.previous),
                    ])
                return ((newMark, PushReceipts.answer(kept: kept, receipt: receipt)), superseded)
            }
            compacted.withLock { $0 += superseded }
            return answer
        } catch {
            throw SQLiteReplicaStorage.map(error, path: path)
        }
    }
}
