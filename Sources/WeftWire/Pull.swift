// Pulling the pages of the change log after a cursor.

import WeftCRDT

/// A request for the changes after a server cursor.
public struct PullRequest: Hashable, Sendable, BinaryCodable {
    public static var binaryTypeTag: UInt8 { 66 }
    /// The server sequence of the last change the replica applied (0: none).
    public var after: UInt64
    /// The tag of that change, as the page that brought it said (``PullResponse/cursorTag``; 0:
    /// unknown, not checked). The server answers "resync" if its change at ``after`` has another
    /// tag or does not exist: its history is not the one the cursor came from.
    public var afterTag: UInt64
    /// The most changes wanted in the page.
    public var maximumChanges: UInt32
    /// The most bytes wanted in the page (at least one change is sent even if larger).
    public var maximumBytes: UInt32
    /// How long the server may hold the request open waiting for a change, in milliseconds
    /// (0: answer at once). This is the long-poll.
    public var waitMilliseconds: UInt32
    /// The replica pulling (its identity on the server, as in its pushes), or `nil` for a
    /// client that does not say.
    ///
    /// The server remembers the cursors it served each replica, so it can still check a cursor
    /// whose change the log no longer holds because the document changed again (compaction
    /// keeps one entry per document).
    public var replica: ReplicaID?
    /// Whether the client takes a large document's change as a delta over the version it
    /// already holds (``WireChange/deltaBase``). Needs ``replica``.
    public var acceptsDeltas: Bool

    /// Creates a request.
    public init(
        after: UInt64, afterTag: UInt64 = 0, maximumChanges: UInt32 = 1_000, maximumBytes: UInt32 = 1 << 20, waitMilliseconds: UInt32 = 0,
        replica: ReplicaID? = nil, acceptsDeltas: Bool = false
    ) {
        self.acceptsDeltas = acceptsDeltas && replica != nil
        self.after = after
        self.afterTag = afterTag
        self.maximumChanges = maximumChanges
        self.maximumBytes = maximumBytes
        self.waitMilliseconds = waitMilliseconds
        self.replica = replica
    }

    /// Layout: five varints: after, after tag (format version 2; absent, and 0, in version 1),
    /// maximum changes, maximum bytes, wait; then, only if there is one, the replica (16 bytes),
    /// and after it, only if deltas are accepted, a byte `01`. A message that ends after the
    /// wait names no replica.
    public func encode(to writer: inout BinaryWriter) {
        writer.writeVarint(after)
        writer.writeVarint(afterTag)
        writer.writeVarint(UInt64(maximumChanges))
        writer.writeVarint(UInt64(maximumBytes))
        writer.writeVarint(UInt64(waitMilliseconds))
        if let replica {
            writer.writeReplica(replica)
            if acceptsDeltas { writer.writeByte(1) }
        }
    }

    public init(from reader: inout BinaryReader) throws(CodecError) {
        after = try reader.readVarint()
        afterTag = reader.formatVersion >= 2 ? try reader.readVarint() : 0
        maximumChanges = try reader.readUInt32()
        maximumBytes = try reader.readUInt32()
        waitMilliseconds = try reader.readUInt32()
        replica = reader.formatVersion >= 2 && !reader.isAtEnd ? try reader.readReplica() : nil
        acceptsDeltas = replica != nil ? try reader.readTrailingFlag("delta") : false
    }
}

/// A page of changes after a cursor, in server order.
public struct PullResponse: Hashable, Sendable, BinaryCodable {
    public static var binaryTypeTag: UInt8 { 67 }
    /// The changes (document records), with strictly increasing server sequences.
    public var changes: [WireChange]
    /// The cursor to ask from next: the last change's sequence, or the request's cursor if empty.
    public var cursor: UInt64
    /// The tag of the change at ``cursor`` (the request's tag if the page is empty; 0 if the
    /// server has none), to send back as ``PullRequest/afterTag``.
    public var cursorTag: UInt64
    /// Whether more changes wait after ``cursor``.
    public var hasMore: Bool

    /// Creates a page.
    public init(changes: [WireChange], cursor: UInt64, cursorTag: UInt64 = 0, hasMore: Bool) {
        self.changes = changes
        self.cursor = cursor
        self.cursorTag = cursorTag
        self.hasMore = hasMore
    }

    /// Layout: cursor, cursor tag (format version 2; absent, and 0, in version 1), has-more
    /// byte, then the changes (see ``WireChange``); then, only if some changes are deltas, their
    /// count and, for each in order, its index in the list and its base's digest (a varint).
    public func encode(to writer: inout BinaryWriter) {
        writer.writeVarint(cursor)
        writer.writeVarint(cursorTag)
        writer.writeByte(hasMore ? 1 : 0)
        WireChange.encode(changes, to: &writer)
        WireChange.encodeDeltaSection(changes, to: &writer)
    }

    public init(from reader: inout BinaryReader) throws(CodecError) {
        cursor = try reader.readVarint()
        cursorTag = reader.formatVersion >= 2 ? try reader.readVarint() : 0
        hasMore = try Bool(from: &reader)
        changes = try WireChange.decodeList(from: &reader)
        if let last = changes.last, last.sequence != cursor {
            throw .invariantViolation(at: reader.offset, "the cursor must be the last change's sequence")
        }
        if reader.formatVersion >= 2 && !reader.isAtEnd { try WireChange.decodeDeltaSection(into: &changes, from: &reader) }
    }
}
