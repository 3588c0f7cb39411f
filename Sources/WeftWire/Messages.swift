import WeftCRDT

/// A document's address on the wire: collection and id as text.
///
/// The wire checks only their length (1–128 and 1–256 UTF-8 bytes); the receiver validates the
/// characters with its own rules.
public struct WireKey: Hashable, Sendable, CustomStringConvertible {
    /// The collection name.
    public var collection: String
    /// The document id.
    public var id: String

    /// Creates a key.
    public init(collection: String, id: String) {
        self.collection = collection
        self.id = id
    }

    public var description: String { "\(collection)/\(id)" }

    func encode(to writer: inout BinaryWriter) {
        writer.writeString(collection)
        writer.writeString(id)
    }

    init(from reader: inout BinaryReader) throws(CodecError) {
        let start = reader.offset
        collection = try reader.readString()
        guard (1...128).contains(collection.utf8.count) else {
            throw .invariantViolation(at: start, "collection name must be 1–128 bytes")
        }
        let idStart = reader.offset
        id = try reader.readString()
        guard (1...256).contains(id.utf8.count) else { throw .invariantViolation(at: idStart, "document id must be 1–256 bytes") }
    }
}

/// One change on the wire: a sequence number, a document and its record (or record delta).
///
/// In a push the sequence is the replica's queue sequence and the record is the change's delta;
/// in a pull page it is the server sequence and the document's record. Either way the receiver
/// applies the record by a join.
public struct WireChange: Hashable, Sendable {
    /// The replica-local sequence (push) or the server sequence (pull).
    public var sequence: UInt64
    /// The document.
    public var key: WireKey
    /// The record or record delta.
    public var record: DocumentRecord

    /// Creates a change.
    public init(sequence: UInt64, key: WireKey, record: DocumentRecord) {
        self.sequence = sequence
        self.key = key
        self.record = record
    }

    /// Layout: count, then per change: the sequence as its increase over the previous one (the
    /// first absolute), key, record body.
    static func encode(_ changes: [WireChange], to writer: inout BinaryWriter) {
        writer.writeVarint(UInt64(changes.count))
        var previous: UInt64 = 0
        for change in changes {
            writer.writeVarint(change.sequence &- previous)
            previous = change.sequence
            change.key.encode(to: &writer)
            change.record.encode(to: &writer)
        }
    }

    /// Reads a list written by ``encode(_:to:)``; sequences must be positive and strictly increase.
    static func decodeList(from reader: inout BinaryReader) throws(CodecError) -> [WireChange] {
        let count = try reader.readCount(minimumElementSize: 8)
        var changes = [WireChange]()
        changes.reserveCapacity(count)
        var previous: UInt64 = 0
        for index in 0..<count {
            let start = reader.offset
            let step = try reader.readVarint()
            guard index == 0 || step > 0 else { throw .nonCanonical(at: start, "sequence numbers must increase") }
            let (sequence, overflow) = previous.addingReportingOverflow(step)
            guard !overflow, sequence > 0 else { throw .valueOutOfRange(at: start, "sequence out of range") }
            previous = sequence
            let key = try WireKey(from: &reader)
            let record = try DocumentRecord(from: &reader)
            changes.append(WireChange(sequence: sequence, key: key, record: record))
        }
        return changes
    }
}

/// A replica's batch of queued changes, in sequence order.
public struct PushRequest: Hashable, Sendable, BinaryCodable {
    public static var binaryTypeTag: UInt8 { 64 }
    /// The pushing replica.
    public var replica: ReplicaID
    /// The changes (record deltas), with strictly increasing queue sequence numbers.
    public var changes: [WireChange]

    /// Creates a push.
    public init(replica: ReplicaID, changes: [WireChange]) {
        self.replica = replica
        self.changes = changes
    }

    /// Layout: replica, then the changes (see ``WireChange``).
    public func encode(to writer: inout BinaryWriter) {
        writer.writeReplica(replica)
        WireChange.encode(changes, to: &writer)
    }

    public init(from reader: inout BinaryReader) throws(CodecError) {
        replica = try reader.readReplica()
        changes = try WireChange.decodeList(from: &reader)
    }
}

/// The server's answer to a push, sent only after the batch is durable.
public struct PushResponse: Hashable, Sendable, BinaryCodable {
    public static var binaryTypeTag: UInt8 { 65 }
    /// Every change of this replica up to this sequence is applied (or was rejected for good,
    /// see ``rejected``); the replica may drop those queue entries.
    public var appliedThrough: UInt64
    /// Changes the server refuses for good, with the reason (for the dead-letter table).
    public var rejected: [Rejection]

    /// A change refused for good.
    public struct Rejection: Hashable, Sendable {
        /// The change's sequence number.
        public var sequence: UInt64
        /// Why it was refused.
        public var reason: String

        /// Creates a rejection.
        public init(sequence: UInt64, reason: String) {
            self.sequence = sequence
            self.reason = reason
        }
    }

    /// Creates a response.
    public init(appliedThrough: UInt64, rejected: [Rejection] = []) {
        self.appliedThrough = appliedThrough
        self.rejected = rejected
    }

    /// Layout: applied-through, count, then `(sequence, reason)` pairs.
    public func encode(to writer: inout BinaryWriter) {
        writer.writeVarint(appliedThrough)
        writer.writeVarint(UInt64(rejected.count))
        for rejection in rejected {
            writer.writeVarint(rejection.sequence)
            writer.writeString(rejection.reason)
        }
    }

    public init(from reader: inout BinaryReader) throws(CodecError) {
        appliedThrough = try reader.readVarint()
        let count = try reader.readCount(minimumElementSize: 2)
        rejected = []
        for _ in 0..<count {
            rejected.append(Rejection(sequence: try reader.readVarint(), reason: try reader.readString()))
        }
    }
}

/// A request for the changes after a server cursor.
public struct PullRequest: Hashable, Sendable, BinaryCodable {
    public static var binaryTypeTag: UInt8 { 66 }
    /// The server sequence of the last change the replica applied (0: none).
    public var after: UInt64
    /// The most changes wanted in the page.
    public var maximumChanges: UInt32
    /// The most bytes wanted in the page (at least one change is sent even if larger).
    public var maximumBytes: UInt32
    /// How long the server may hold the request open waiting for a change, in milliseconds
    /// (0: answer at once). This is the long-poll.
    public var waitMilliseconds: UInt32

    /// Creates a request.
    public init(after: UInt64, maximumChanges: UInt32 = 1_000, maximumBytes: UInt32 = 1 << 20, waitMilliseconds: UInt32 = 0) {
        self.after = after
        self.maximumChanges = maximumChanges
        self.maximumBytes = maximumBytes
        self.waitMilliseconds = waitMilliseconds
    }

    /// Layout: four varints.
    public func encode(to writer: inout BinaryWriter) {
        writer.writeVarint(after)
        writer.writeVarint(UInt64(maximumChanges))
        writer.writeVarint(UInt64(maximumBytes))
        writer.writeVarint(UInt64(waitMilliseconds))
    }

    public init(from reader: inout BinaryReader) throws(CodecError) {
        after = try reader.readVarint()
        maximumChanges = try reader.readUInt32()
        maximumBytes = try reader.readUInt32()
        waitMilliseconds = try reader.readUInt32()
    }
}

/// A page of changes after a cursor, in server order.
public struct PullResponse: Hashable, Sendable, BinaryCodable {
    public static var binaryTypeTag: UInt8 { 67 }
    /// The changes (document records), with strictly increasing server sequences.
    public var changes: [WireChange]
    /// The cursor to ask from next: the last change's sequence, or the request's cursor if empty.
    public var cursor: UInt64
    /// Whether more changes wait after ``cursor``.
    public var hasMore: Bool

    /// Creates a page.
    public init(changes: [WireChange], cursor: UInt64, hasMore: Bool) {
        self.changes = changes
        self.cursor = cursor
        self.hasMore = hasMore
    }

    /// Layout: cursor, has-more byte, then the changes (see ``WireChange``).
    public func encode(to writer: inout BinaryWriter) {
        writer.writeVarint(cursor)
        writer.writeByte(hasMore ? 1 : 0)
        WireChange.encode(changes, to: &writer)
    }

    public init(from reader: inout BinaryReader) throws(CodecError) {
        cursor = try reader.readVarint()
        hasMore = try Bool(from: &reader)
        changes = try WireChange.decodeList(from: &reader)
        if let last = changes.last, last.sequence != cursor {
            throw .invariantViolation(at: reader.offset, "the cursor must be the last change's sequence")
        }
    }
}

/// Encoding and decoding of whole messages: envelope, frame and limits.
public enum WireMessage {
    /// The framed bytes of `message`.
    public static func encode<M: BinaryCodable>(_ message: M) -> [UInt8] {
        WireFrame.encode(BinaryFormat.encode(message))
    }

    /// Decodes a framed message, enforcing `limits` on the frame, the decompressed payload, the
    /// number of changes and the CRDT payloads.
    public static func decode<M: BinaryCodable>(_ type: M.Type, from frame: [UInt8], limits: WireLimits = .default)
        throws(WireError) -> M
    {
        let payload = try WireFrame.decode(frame, limits: limits)
        let message: M
        do {
            message = try BinaryFormat.decode(M.self, from: payload, limits: limits.decoding)
        } catch {
            throw error.kind == "tooLarge" ? .tooLarge("message: \(error)") : .malformed("message: \(error)")
        }
        let changes: Int
        switch message {
        case let push as PushRequest: changes = push.changes.count
        case let page as PullResponse: changes = page.changes.count
        default: changes = 0
        }
        guard changes <= limits.maximumChanges else {
            throw .tooLarge("\(changes) changes in one message, over the limit of \(limits.maximumChanges)")
        }
        return message
    }
}
