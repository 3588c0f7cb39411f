import Foundation
import GRDB
import Weft
import WeftCRDT
import WeftSQLite

// Sessions (the handshake) and which replicas have spoken to a database.
extension SQLiteCentralStore {
    /// The replica's session (its epoch's 64 bits, stored signed), or `nil`.
    static func session(_ db: Database, _ database: String, _ replica: Data) throws -> UInt64? {
        try Int64.fetchOne(db, sql: "SELECT epoch FROM sessions WHERE tenant = ? AND replica = ?", arguments: [database, replica])
            .map { UInt64(bitPattern: $0) }
    }

    public func hello(database: String, replica: ReplicaID, confirmedEpoch: UInt64, epoch: UInt64, acknowledgedThrough: UInt64) async throws(WeftError)
        -> (accepted: Bool, appliedThrough: UInt64, receipt: UInt64)
    {
        do {
            return try writeBlocking { db in
                let replicaBytes = Data(replica.bytes)
                let row = try Row.fetchOne(
                    db, sql: "SELECT applied_through, receipt FROM high_water WHERE tenant = ? AND replica = ?",
                    arguments: [database, replicaBytes])
                let mark = UInt64(row.map { $0[0] as Int64 } ?? 0)
                let receipt = UInt64(bitPattern: row.map { $0[1] as Int64 } ?? 0)
                if mark < acknowledgedThrough {
                    // This store lost changes it had acknowledged (restored from a backup): the
                    // replica resyncs; an older copy of its file must still be told it forked.
                    guard let raised = Int64(exactly: acknowledgedThrough) else {
                        throw WeftError.invalidArgument("acknowledgedThrough \(acknowledgedThrough) is out of range")
                    }
                    try db.execute(
                        sql: "INSERT OR REPLACE INTO sessions (tenant, replica, epoch) VALUES (?, ?, ?)",
                        arguments: [database, replicaBytes, Int64(bitPattern: epoch)])
                    try db.execute(
                        sql: """
                            INSERT INTO high_water (tenant, replica, applied_through) VALUES (?, ?, ?)
                            ON CONFLICT (tenant, replica) DO UPDATE SET applied_through = excluded.applied_through
                            """,
                        arguments: [database, replicaBytes, raised])
                    return (true, mark, receipt)
                }
                if let current = try Self.session(db, database, replicaBytes), current != confirmedEpoch, current != epoch {
                    return (false, mark, receipt)
                }
                if mark > acknowledgedThrough { return (false, mark, receipt) }
                try db.execute(
                    sql: "INSERT OR REPLACE INTO sessions (tenant, replica, epoch) VALUES (?, ?, ?)",
                    arguments: [database, replicaBytes, Int64(bitPattern: epoch)])
                return (true, mark, receipt)
            }
        } catch {
            throw SQLiteReplicaStorage.map(error, path: path)
        }
    }

    public func knownReplicas(database: String, among replicas: Set<ReplicaID>) async throws(WeftError) -> Set<ReplicaID> {
        guard !replicas.isEmpty else { return [] }
        let all = Array(replicas)
        do {
            return try readBlocking { db in
                var known = Set<ReplicaID>()
                // In chunks, well under SQLite's limit on bound parameters.
                for start in stride(from: 0, to: all.count, by: 400) {
                    let chunk = all[start..<min(start + 400, all.count)]
                    let marks = chunk.map { _ in "?" }.joined(separator: ", ")
                    var arguments: [any DatabaseValueConvertible] = [database]
                    arguments += chunk.map { Data($0.bytes) }
                    arguments.append(database)
                    arguments += chunk.map { Data($0.bytes) }
                    let rows = try Data.fetchAll(
                        db,
                        sql: """
                            SELECT replica FROM sessions WHERE tenant = ? AND replica IN (\(marks))
                            UNION SELECT replica FROM high_water WHERE tenant = ? AND replica IN (\(marks))
                            """,
                        arguments: StatementArguments(arguments))
                    for bytes in rows {
                        if let replica = ReplicaID(bytes: [UInt8](bytes)) { known.insert(replica) }
                    }
                }
                return known
            }
        } catch {
            throw SQLiteReplicaStorage.map(error, path: path)
        }
    }
}
