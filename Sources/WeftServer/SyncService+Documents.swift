import Synchronization
import Weft
import WeftCRDT
import WeftWire

/// An error of the document API: what went wrong, and which HTTP status says so.
public struct DocumentAPIError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What went wrong.
    public enum Kind: Hashable, Sendable {
        /// The request is malformed or its body cannot be written (400).
        case badRequest
        /// No live document has that id (404).
        case notFound
        /// The document's version is not the one the request was conditional on, or a creation
        /// found it live (412).
        case preconditionFailed
        /// The written document would be over `max_document_bytes` (413).
        case tooLarge
        /// The feed's cursor is not one of this history, or behind deletions the server forgot:
        /// read the collection again (410).
        case gone
        /// The store failed (503).
        case unavailable
    }

    /// What went wrong.
    public let kind: Kind
    /// A sentence for the caller.
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}

/// What a backend write does to a document.
public enum DocumentWrite: Hashable, Sendable {
    /// The object becomes the document: fields it lacks are removed (`PUT`).
    case replace([String: JSONValue])
    /// A JSON merge patch (RFC 7396) of a live document (`PATCH`).
    case mergePatch([String: JSONValue])
    /// Deletes a live document (`DELETE`).
    case delete
}

/// What a backend write is conditional on.
public enum WriteCondition: Hashable, Sendable {
    /// Nothing.
    case none
    /// The document's current version (``SyncService/version(of:)``) is this one (`If-Match`).
    case version(String)
    /// No live document has the id (`If-None-Match: *`).
    case absent
    /// A live document has the id (`If-Match: *`).
    case exists
}

// The document API: backends read and write documents as JSON. A server-side write is a write
// like a replica's: the server's own writer identity and stamps, the one merge, the change log.
extension SyncService {
    /// The identity the server writes documents under, in every database: no replica may use it
    /// (hellos and pushes that name it are refused).
    public static let serverWriter = ReplicaID(high: 0x5745_4654_5345_5256, low: 0x4150_4900_0000_0001)

    /// The first counter of the server's writer in a record that holds none of its counters:
    /// the clock's milliseconds times 1,024. Every earlier life of the document began with a
    /// lower floor and, unless the server wrote more than 1,024 of its dots per millisecond of
    /// it, ended below this one, so no dot of the writer is issued twice.
    static func writerFloor(now: UInt64) -> UInt64 {
        now.multipliedReportingOverflow(by: 1_024).overflow ? UInt64(Int64.max) : now * 1_024
    }

    /// A document's version as the API shows it (the `ETag`): the digest of its record, 16
    /// hexadecimal digits. Any change of the record changes it.
    public static func version(of record: DocumentRecord) -> String {
        let hex = String(record.digest, radix: 16)
        return String(repeating: "0", count: max(0, 16 - hex.count)) + hex
    }

    /// The record of document `key`, live or deleted, or `nil` if the server has none.
    public func storedRecord(database: String, key: DocumentKey) async throws(DocumentAPIError) -> DocumentRecord? {
        do {
            return try await store.record(database: database, key: key)
        } catch {
            throw DocumentAPIError(.unavailable, "store: \(error)")
        }
    }

    /// A page of the live documents of `collection` matching `filters`, by id after `after`;
    /// `next` is the id to continue after, or `nil` at the end.
    public func documentPage(
        database: String, collection: CollectionName, after: DocumentID?, limit: Int, filters: [ProjectionFilter]
    ) async throws(DocumentAPIError) -> (documents: [(id: DocumentID, record: DocumentRecord)], next: DocumentID?) {
        do {
            let page = try await store.documents(
                database: database, collection: collection, after: after, limit: limit + 1, filters: filters, projector: projector)
            let shown = Array(page.prefix(limit))
            return (shown, page.count > limit ? shown.last?.id : nil)
        } catch {
            throw DocumentAPIError(.unavailable, "store: \(error)")
        }
    }

    /// Writes document `key` as a backend asked: in the store's transaction, on the record it
    /// holds then, by the server's writer (``serverWriter``) with a stamp from the server's clock,
    /// under the collection's policy, like a replica's write (siblings resolved first). The
    /// change is logged and reaches every replica; a replica's concurrent write merges with it
    /// by the policy. Answers the record written and whether the write created the document.
    /// - Throws: ``DocumentAPIError`` (nothing was written).
    public func write(database: String, key: DocumentKey, _ operation: DocumentWrite, condition: WriteCondition) async throws(DocumentAPIError)
        -> (record: DocumentRecord, created: Bool)
    {
        let policy = policies(database).policy(for: key.collection)
        let resolvers = resolvers
        let stamp = HLCTimestamp(wallMilliseconds: timeSource.currentMilliseconds(), counter: 0, replica: Self.serverWriter)
        let limit = maximumDocumentBytes
        let outcome = Mutex<(record: DocumentRecord?, created: Bool, failure: DocumentAPIError?)>((nil, false, nil))
        let expectation: WriteExpectation
        let mode: Document.JSONWriteMode?
        var body = [String: JSONValue]()
        switch operation {
        case .replace(let object):
            (expectation, mode, body) = (condition == .absent ? .mustNotExist : condition == .none ? .any : .mustExist, .replace, object)
        case .mergePatch(let object):
            (expectation, mode, body) = (.mustExist, .mergePatch, object)
        case .delete:
            (expectation, mode) = (.mustExist, nil)
        }
        let fields = body
        // The pushed "delta" is a placeholder: the merge below makes the record from the stored one.
        let placeholder = DocumentRecord(body: Document(), deletion: LWWRegister(false, stamp: stamp), version: VersionVector())
        do {
            _ = try await store.applyPush(
                database: database, replica: Self.serverWriter, epoch: 0, expectedMark: 0, pulledThrough: Self.maximumSequence,
                receipt: PushReceipt.draw(), changes: [(1, key, placeholder)], projector: projector
            ) { local, key, _ throws(WeftError) in
                func refuse(_ failure: DocumentAPIError) -> WeftError {
                    outcome.withLock { $0.failure = failure }
                    return .invalidArgument(failure.message)
                }
                let live = local.map { !$0.isDeleted } ?? false
                switch condition {
                case .none: break
                case .absent where live:
                    throw refuse(DocumentAPIError(.preconditionFailed, "\(key) exists (If-None-Match: *)"))
                case .absent: break
                case .exists where !live:
                    throw refuse(DocumentAPIError(.preconditionFailed, "\(key) does not exist (If-Match: *)"))
                case .exists: break
                case .version(let expected):
                    guard let local, live, Self.version(of: local) == expected else {
                        throw refuse(
                            DocumentAPIError(
                                .preconditionFailed,
                                "\(key) is at version \(local.flatMap { $0.isDeleted ? nil : Self.version(of: $0) } ?? "none"), not \(expected) (If-Match): read it again"))
                    }
                }
                func edit(floor: UInt64) throws(WeftError) -> DocumentRecord {
                    do {
                        return try Replica.write(
                            local, key: key, expectation: expectation, deleting: mode == nil, stamp: stamp, writer: Self.serverWriter,
                            policy: policy, resolvers: resolvers, floor: floor
                        ) { editor throws(WeftError) in
                            if let mode { try editor.write(json: fields, mode: mode) }
                        }
                    } catch {
                        let failure = (error as? WeftError) ?? .invalidArgument("\(error)")
                        switch failure.kind {
                        case .documentNotFound: throw refuse(DocumentAPIError(.notFound, "\(key) does not exist"))
                        case .documentExists: throw refuse(DocumentAPIError(.preconditionFailed, "\(key) exists"))
                        default: throw refuse(DocumentAPIError(.badRequest, failure.message))
                        }
                    }
                }
                var record = try edit(floor: 0)
                // A write that changes nothing (the same fields again) stores nothing: the
                // version, the log and the replicas stay as they are.
                if let local, live, mode != nil, record.body == local.body {
                    outcome.withLock { $0 = (local, false, nil) }
                    return (local, .unchanged, nil)
                }
                // The server's writer counts on from a floor drawn from its clock whenever the
                // record holds none of its counters: the document may be one the server deleted
                // and forgot, whose tombstone replicas still hold with the writer's earlier dots
                // in it. (A record that holds them holds its latest.)
                if (local?.highestCounter(of: Self.serverWriter) ?? 0) == 0 {
                    record = try edit(floor: Self.writerFloor(now: stamp.wallMilliseconds))
                }
                let size = record.encoded().count
                if size > limit {
                    throw refuse(DocumentAPIError(.tooLarge, "\(key) would be \(size) bytes, over max_document_bytes = \(limit)"))
                }
                outcome.withLock { $0 = (record, !live, nil) }
                return (record, .fastForward, nil)
            }
        } catch {
            if let failure = outcome.withLock({ $0.failure }) { throw failure }
            throw DocumentAPIError(.unavailable, "store: \(error)")
        }
        wakeWaiters(database)
        let result = outcome.withLock { $0 }
        guard let record = result.record else { throw DocumentAPIError(.unavailable, "the store applied no record") }
        return (record, result.created)
    }

    /// The changes after cursor `after` (with its tag) as the feed shows them: the replicas'
    /// pull (``pull(database:_:)``), by a reader that names no replica, waiting up to `wait`
    /// milliseconds for a change if there is none.
    /// - Throws: ``DocumentAPIError/Kind/gone`` for a cursor of another history or behind
    ///   deletions the server forgot.
    public func feed(database: String, after: UInt64, tag: UInt64, limit: Int, wait: UInt32) async throws(DocumentAPIError) -> PullResponse {
        do {
            let collected = try await store.collectedThrough(database: database)
            if after > 0, after < collected {
                throw DocumentAPIError(
                    .gone,
                    "the cursor \(after) is behind deletions this server forgot (through \(collected)): read the feed again from 0, which gives every live document once")
            }
        } catch let error as DocumentAPIError {
            throw error
        } catch {
            throw DocumentAPIError(.unavailable, "store: \(error)")
        }
        do {
            return try await pull(
                database: database,
                PullRequest(after: after, afterTag: tag, maximumChanges: UInt32(clamping: limit), maximumBytes: 4 << 20, waitMilliseconds: wait),
                readerStartsAfresh: true)
        } catch {
            switch error.kind {
            case .resync, .tooFarBehind: throw DocumentAPIError(.gone, error.message)
            case .rejected: throw DocumentAPIError(.badRequest, error.message)
            default: throw DocumentAPIError(.unavailable, error.message)
            }
        }
    }
}
