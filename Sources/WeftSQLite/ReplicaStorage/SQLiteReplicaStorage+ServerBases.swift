import Foundation
import GRDB
import Weft
import WeftCRDT

// Server bases (ReplicaStorage contract point 8): the last pulled record of each large document,
// kept in a table of its own (`server_bases`). `applyRemoteChanges` sets them.
extension SQLiteReplicaStorage {
    public func serverBaseDigests(for keys: [DocumentKey]) async throws(WeftError) -> [DocumentKey: UInt64] {
        guard !keys.isEmpty else { return [:] }
        return try await read { db in
            let statement = try db.cachedStatement(
                sql:
                    "SELECT digest FROM server_bases WHERE collection = ? AND id = ?"
            )
            var digests = [DocumentKey: UInt64]()
            for key in keys {
                if let digest = try Int64.fetchOne(
                    statement, arguments: [key.collection.rawValue, key.id.rawValue])
                {
                    digests[key] = UInt64(bitPattern: digest)
                }
            }
            return digests
        }
    }

    public func serverBases(for keys: [DocumentKey]) async throws(WeftError) -> [DocumentKey: (digest: UInt64, record: DocumentRecord)] {
        guard !keys.isEmpty else { return [:] }
        return try await read { db in
            // The base and its digest in one statement: a pull between two reads could pair a
            // record with another record's digest.
            let statement = try db.cachedStatement(
                sql: "SELECT base, digest FROM server_bases WHERE collection = ? AND id = ?")
            var bases = [DocumentKey: (digest: UInt64, record: DocumentRecord)]()
            for key in keys {
                guard let row = try Row.fetchOne(statement, arguments: [key.collection.rawValue, key.id.rawValue]) else { continue }
                let record = try Self.decodeRecord(try Self.column(row, "base", Data.self), "the server base of \(key)")
                bases[key] = (UInt64(bitPattern: try Self.column(row, "digest", Int64.self)), record)
            }
            return bases
        }
    }

    public func forgetServerBases(_ keys: [DocumentKey]) async throws(WeftError) {
        guard !keys.isEmpty else { return }
        try await write { db in
            let statement = try db.cachedStatement(
                sql:
                    "DELETE FROM server_bases WHERE collection = ? AND id = ?"
            )
            for key in keys { try statement.execute(arguments: [key.collection.rawValue, key.id.rawValue]) }
        }
    }
}
