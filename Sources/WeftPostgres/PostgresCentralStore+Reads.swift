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
    public func changes(database: String, after: UInt64, limit: Int, maxBytes: Int) async throws(WeftError)
        -> (changes: [LoggedChange], hasMore: Bool)
    {
        guard let cursor = Int64(exactly: after) else {
            throw .invalidArgument("cursor \(after) is out of range")
        }
        do {
            let page = try await withDeadline {
                try await self.page(database: database, after: cursor, limit: limit, maxBytes: maxBytes)
            }
            return (page.changes, page.hasMore)
        } catch {
            throw map(error)
        }
    }

    struct Page: Sendable {
        var changes: [LoggedChange]
        var hasMore: Bool
    }

    func page(database: String, after cursor: Int64, limit: Int, maxBytes: Int) async throws -> Page {
        let logger = logger
        do {
            try await sequenceIfWaiting(database)
            // Each entry's record is its document's (the entry is the document's latest), read by
            // primary key for each entry of the page.
            let rows = try await client.query(
                """
                SELECT l.sequence, l.collection, l.doc_id, l.tag, d.record, l.delta, l.base_digest, l.base_sequence, d.born_after
                FROM (
                    SELECT sequence, collection, doc_id, tag, delta, base_digest, base_sequence FROM weft_change_log
                    WHERE tenant = \(database) AND sequence > \(cursor) ORDER BY sequence LIMIT \(max(1, limit) + 1)
                ) AS l
                LEFT JOIN weft_documents d ON d.tenant = \(database) AND d.collection = l.collection AND d.id = l.doc_id
                ORDER BY l.sequence
                """, logger: logger)
            var page = [LoggedChange]()
            var bytes = 0
            var more = false
            for try await row in rows.decode(
                (Int64, String, String, Int64, ByteBuffer?, ByteBuffer?, Int64?, Int64?, Int64?).self)
            {
                let change = try loggedChange(database: database, row)
                if page.count >= max(1, limit) || (!page.isEmpty && bytes + change.byteCount > maxBytes) {
                    more = true
                    break
                }
                page.append(change)
                bytes += change.byteCount
            }
            return Page(changes: page, hasMore: more)
        }
    }

    public func tag(database: String, sequence: UInt64) async throws(WeftError) -> UInt64? {
        guard let position = Int64(exactly: sequence) else { return nil }
        let logger = logger
        do {
            return try await withDeadline {
                var found: UInt64?
                for try await tag in try await self.client.query(
                    "SELECT tag FROM weft_change_log WHERE tenant = \(database) AND sequence = \(position)",
                    logger: logger
                ).decode(Int64.self) {
                    found = UInt64(bitPattern: tag)
                }
                return found
            }
        } catch {
            throw map(error)
        }
    }

    public func record(database: String, key: DocumentKey) async throws(WeftError) -> DocumentRecord? {
        do {
            return try await withDeadline { try await self.readRecord(database: database, key: key) }
        } catch {
            throw map(error)
        }
    }

    func readRecord(database: String, key: DocumentKey) async throws -> DocumentRecord? {
        do {
            var found: ByteBuffer?
            for try await record in try await client.query(
                """
                SELECT record FROM weft_documents
                WHERE tenant = \(database) AND collection = \(key.collection.rawValue) AND id = \(key.id.rawValue)
                """, logger: logger
            ).decode(ByteBuffer.self) {
                found = record
            }
            return try found.map { buffer throws(WeftError) in
                do {
                    return try DocumentRecord(encoded: Array(buffer: buffer))
                } catch {
                    throw WeftError.corrupt(
                        "the record of \(database)/\(key) at \(location) does not decode: \(error)")
                }
            }
        } catch {
            throw map(error)
        }
    }

    public func conflicts(database: String, limit: Int) async throws(WeftError) -> [ConflictRecord] {
        do {
            return try await withDeadline { try await self.readConflicts(database: database, limit: limit) }
        } catch {
            throw map(error)
        }
    }

    func readConflicts(database: String, limit: Int) async throws -> [ConflictRecord] {
        do {
            var result = [ConflictRecord]()
            let rows = try await client.query(
                """
                SELECT collection, doc_id, policy, resolver, local, remote, winner FROM weft_conflicts
                WHERE tenant = \(database) ORDER BY number DESC LIMIT \(max(0, limit))
                """, logger: logger)
            for try await (collection, id, policy, resolver, local, remote, winner) in rows.decode(
                (String, String, String, String?, ByteBuffer, ByteBuffer, ByteBuffer).self)
            {
                func record(_ buffer: ByteBuffer) throws(WeftError) -> DocumentRecord {
                    do {
                        return try DocumentRecord(encoded: Array(buffer: buffer))
                    } catch {
                        throw .corrupt("a logged conflict at \(location) does not decode: \(error)")
                    }
                }
                let key: DocumentKey
                do {
                    key = DocumentKey(collection: try CollectionName(collection), id: try DocumentID(id))
                } catch {
                    throw WeftError.corrupt("a stored key at \(location) is invalid: \(error)")
                }
                result.append(
                    ConflictRecord(
                        key: key, local: try record(local), remote: try record(remote),
                        winner: try record(winner),
                        policy: try ConflictPolicy(logColumns: policy, argument: resolver)))
            }
            return result
        } catch {
            throw map(error)
        }
    }
}
