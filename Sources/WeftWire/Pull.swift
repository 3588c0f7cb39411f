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
    /// Whether the client handles a server that forgets tombstones: it takes the answer "too
    /// far behind" (HTTP 410, `Weft-Error: too-far-behind`) as a cue to resync, and sends
    /// ``resyncingFrom`` while it does. A server that collected tombstones refuses a pull from a
    /// client that does not say so and whose cursor is behind them, without asking it to resync.
    /// Needs ``replica``.
    public var handlesCollection: Bool
    /// For a pull that is part of a resync, the cursor the replica had when the resync began: the
    /// answer then says whether the server forgot deletions after it
    /// (``PullResponse/ResyncAnswer/tooFarBehind``) and which documents were created again since
    /// (``PullResponse/ResyncAnswer/createdAgain``). Needs ``handlesCollection``.
    public var resyncingFrom: UInt64?

    /// Creates a request.
    public init(
        after: UInt64, afterTag: UInt64 = 0, maximumChanges: UInt32 = 1_000, maximumBytes: UInt32 = 1 << 20, waitMilliseconds: UInt32 = 0,
        replica: ReplicaID? = nil, acceptsDeltas: Bool = false, handlesCollection: Bool = false, resyncingFrom: UInt64? = nil
    ) {
        self.acceptsDeltas = acceptsDeltas && replica != nil
        self.handlesCollection = (handlesCollection || resyncingFrom != nil) && replica != nil
        self.resyncingFrom = replica != nil ? resyncingFrom : nil
        self.after = after
        self.afterTag = afterTag
        self.maximumChanges = maximumChanges
        self.maximumBytes = maximumBytes
        self.waitMilliseconds = waitMilliseconds
        self.replica = replica
    }

    /// Layout: five varints: after, after tag (format version 2; absent, and 0, in version 1),
    /// maximum changes, maximum bytes, wait; then, only if there is one, the replica (16 bytes),
    /// and after it, only if one is set, a flags byte: `01` deltas accepted, `02` handles
    /// collection, `04` resyncing, followed (if `04`) by the resync's cursor, a varint. A message
    /// that ends after the wait names no replica; one that ends after the replica sets no flag.
    public func encode(to writer: inout BinaryWriter) {
        writer.writeVarint(after)
        writer.writeVarint(afterTag)
        writer.writeVarint(UInt64(maximumChanges))
        writer.writeVarint(UInt64(maximumBytes))
        writer.writeVarint(UInt64(waitMilliseconds))
        if let replica {
            writer.writeReplica(replica)
            let flags: UInt8 = (acceptsDeltas ? 1 : 0) | (handlesCollection ? 2 : 0) | (resyncingFrom != nil ? 4 : 0)
            if flags != 0 { writer.writeByte(flags) }
            if let resyncingFrom { writer.writeVarint(resyncingFrom) }
        }
    }

    public init(from reader: inout BinaryReader) throws(CodecError) {
        after = try reader.readVarint()
        afterTag = reader.formatVersion >= 2 ? try reader.readVarint() : 0
        maximumChanges = try reader.readUInt32()
        maximumBytes = try reader.readUInt32()
        waitMilliseconds = try reader.readUInt32()
        replica = reader.formatVersion >= 2 && !reader.isAtEnd ? try reader.readReplica() : nil
        let start = reader.offset
        let flags = replica != nil ? try reader.readTrailingFlags("pull", allowed: 7) : 0
        guard flags & 4 == 0 || flags & 2 != 0 else { throw .nonCanonical(at: start, "a resyncing pull (04) handles collection (02)") }
        acceptsDeltas = flags & 1 != 0
        handlesCollection = flags & 2 != 0
        resyncingFrom = flags & 4 != 0 ? try reader.readVarint() : nil
    }
}

/// A page of changes after a cursor, in server order.
public struct PullResponse: Hashable, Sendable, BinaryCodable {
    public static var binaryTypeTag: UInt8 { 67 }
    /// The changes (document records), with strictly increasing server sequences.
    public var changes: [WireChange]
    /// The cursor to ask from next: the last change's sequence, or the request's cursor if empty;
    /// on a page that reaches the end of the log, possibly higher: the last sequence of a
    /// tombstone the server forgot (no change has it, and its tag is 0).
    public var cursor: UInt64
    /// The tag of the change at ``cursor`` (the request's tag if the page is empty; 0 if the
    /// server has none), to send back as ``PullRequest/afterTag``.
    public var cursorTag: UInt64
    /// Whether more changes wait after ``cursor``.
    public var hasMore: Bool
    /// In answer to a pull that is part of a resync (``PullRequest/resyncingFrom``), what the
    /// replica needs to know about tombstones the server forgot; `nil` otherwise.
    public var resync: ResyncAnswer?

    /// What a page of a resync says about forgotten tombstones.
    public struct ResyncAnswer: Hashable, Sendable {
        /// Whether the server forgot deletions logged after the resync's cursor: then the
        /// replica's documents the server no longer sends were deleted there, and the replica
        /// must not send them back.
        public var tooFarBehind: Bool
        /// The indices, in the page's changes, of documents the server created again after
        /// forgetting an earlier version's tombstone, since the resync's cursor: a copy the
        /// replica holds is of the forgotten version, and must not be merged into the new one.
        public var createdAgain: [Int]

        /// Creates an answer.
        public init(tooFarBehind: Bool, createdAgain: [Int] = []) {
            self.tooFarBehind = tooFarBehind
            self.createdAgain = createdAgain
        }
    }

    /// Creates a page.
    public init(changes: [WireChange], cursor: UInt64, cursorTag: UInt64 = 0, hasMore: Bool, resync: ResyncAnswer? = nil) {
        self.changes = changes
        self.cursor = cursor
        self.cursorTag = cursorTag
        self.hasMore = hasMore
        self.resync = resync
    }

    /// Layout: cursor, cursor tag (format version 2; absent, and 0, in version 1), has-more
    /// byte, then the changes (see ``WireChange``); then, only if some changes are deltas, their
    /// count and, for each in order, its index in the list and its base's digest (a varint);
    /// then, only in answer to a resyncing pull, the extension: a byte `00`, a flags byte (`01`:
    /// too far behind), the count of documents created again and their indices, increasing.
    public func encode(to writer: inout BinaryWriter) {
        writer.writeVarint(cursor)
        writer.writeVarint(cursorTag)
        writer.writeByte(hasMore ? 1 : 0)
        WireChange.encode(changes, to: &writer)
        guard let resync else {
            WireChange.encodeDeltaSection(changes, to: &writer)
            return
        }
        WireChange.encodeDeltaSection(changes, thenExtensionTo: &writer)
        writer.writeByte(resync.tooFarBehind ? 1 : 0)
        writer.writeVarint(UInt64(resync.createdAgain.count))
        for index in resync.createdAgain { writer.writeVarint(UInt64(index)) }
    }

    public init(from reader: inout BinaryReader) throws(CodecError) {
        cursor = try reader.readVarint()
        cursorTag = reader.formatVersion >= 2 ? try reader.readVarint() : 0
        hasMore = try Bool(from: &reader)
        changes = try WireChange.decodeList(from: &reader)
        if let last = changes.last, last.sequence > cursor {
            throw .invariantViolation(at: reader.offset, "the cursor must be at least the last change's sequence")
        }
        resync = nil
        guard reader.formatVersion >= 2, try WireChange.decodeDeltaSectionAndExtension(into: &changes, from: &reader) else { return }
        let start = reader.offset
        let flags = try reader.readByte()
        guard flags <= 1 else { throw .nonCanonical(at: start, "the resync flags are 00 or 01") }
        let count = try reader.readCount(minimumElementSize: 1)
        guard count <= changes.count else { throw .invariantViolation(at: start, "\(count) documents created again in \(changes.count) changes") }
        var indices = [Int]()
        indices.reserveCapacity(count)
        for _ in 0..<count {
            let at = reader.offset
            let index = try reader.readVarint()
            guard index < UInt64(changes.count), Int(index) > (indices.last ?? -1) else {
                throw .invariantViolation(at: at, "the indices of documents created again must increase and name a change")
            }
            indices.append(Int(index))
        }
        resync = ResyncAnswer(tooFarBehind: flags == 1, createdAgain: indices)
    }
}
