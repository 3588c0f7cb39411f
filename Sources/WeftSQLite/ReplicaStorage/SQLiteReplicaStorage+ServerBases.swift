import Foundation
import GRDB
import Weft
import WeftCRDT

// Server bases (ReplicaStorage contract point 8): the last pulled record of each large document,
// kept beside the document's own record. `applyRemoteChanges` sets them.
extension SQLiteReplicaStorage {
    public func serverBaseDigests(for keys: [DocumentKey]) async throws(WeftError) -> [DocumentKey: UInt64] {
        guard !keys.isEmpty else { return [:] }
        return try await read { db in
            let statement = try db.cachedStatement(
                sql:
                    "SELECT base_digest FROM documents WHERE collection = ? AND id = ? AND base_digest IS NOT NULL"
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

    public func serverBases(for keys: [DocumentKey]) async throws(WeftError) -> [DocumentKey: DocumentRecord]
    {
        guard !keys.isEmpty else { return [:] }
        return try await read { db in
            let statement = try db.cachedStatement(
                sql: "SELECT base FROM documents WHERE collection = ? AND id = ? AND base IS NOT NULL")
            var bases = [DocumentKey: DocumentRecord]()
            for key in keys {
                if let data = try Data.fetchOne(
                    statement, arguments: [key.collection.rawValue, key.id.rawValue])
                {
                    bases[key] = try Self.decodeRecord(data, "the server base of \(key)")
                }
            }
            return bases
        }
    }

    public func forgetServerBases(_ keys: [DocumentKey]) async throws(WeftError) {
        guard !keys.isEmpty else { return }
        try await write { db in
            let statement = try db.cachedStatement(
                sql:
                    "UPDATE documents SET base = NULL, base_digest = NULL WHERE collection = ? AND id = ? AND base IS NOT NULL"
            )
            for key in keys { try statement.execute(arguments: [key.collection.rawValue, key.id.rawValue]) }
        }
    }
}
