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
    /// Whether the client takes channel-filtered pages (``PullResponse/channels``): documents
    /// that left what it may see, and view changes. A server that limits what a token may read
    /// refuses a pull that does not say so. Needs ``replica``.
    public var handlesChannels: Bool
    /// The view the client's documents reflect, as the server last gave it
    /// (``PullResponse/ChannelAnswer/view``; empty before the first), sent back unchanged.
    public var view: [UInt8]
    /// The channels the client subscribes to, among those it may read; `nil` for all of them.
    public var subscription: [String]?

    /// Creates a request.
    public init(
        after: UInt64, afterTag: UInt64 = 0, maximumChanges: UInt32 = 1_000, maximumBytes: UInt32 = 1 << 20,
        waitMilliseconds: UInt32 = 0,
        replica: ReplicaID? = nil, acceptsDeltas: Bool = false, handlesCollection: Bool = false,
        resyncingFrom: UInt64? = nil,
        handlesChannels: Bool = false, view: [UInt8] = [], subscription: [String]? = nil
    ) {
        self.handlesChannels = handlesChannels && replica != nil
        self.view = self.handlesChannels ? view : []
        self.subscription = self.handlesChannels ? subscription : nil
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
    /// collection, `04` resyncing, `08` handles channels, followed (if `04`) by the resync's
    /// cursor, a varint, and (if `08`) by the view (length-prefixed bytes) and the subscription:
    /// a varint, 0 for none (every channel it may read) or the count of names plus 1, then each
    /// name as a string, in increasing byte order. A message that ends after the wait names no
    /// replica; one that ends after the replica sets no flag.
    public func encode(to writer: inout BinaryWriter) {
        writer.writeVarint(after)
        writer.writeVarint(afterTag)
        writer.writeVarint(UInt64(maximumChanges))
        writer.writeVarint(UInt64(maximumBytes))
        writer.writeVarint(UInt64(waitMilliseconds))
        if let replica {
            writer.writeReplica(replica)
            let flags: UInt8 =
                (acceptsDeltas ? 1 : 0) | (handlesCollection ? 2 : 0) | (resyncingFrom != nil ? 4 : 0)
                | (handlesChannels ? 8 : 0)
            if flags != 0 { writer.writeByte(flags) }
            if let resyncingFrom { writer.writeVarint(resyncingFrom) }
            if handlesChannels {
                writer.writeLengthPrefixed(view)
                if let subscription {
                    let names = Set(subscription).sorted {
                        Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8))
                    }
                    writer.writeVarint(UInt64(names.count) + 1)
                    for name in names { writer.writeString(name) }
                } else {
                    writer.writeVarint(0)
                }
            }
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
        let flags = replica != nil ? try reader.readTrailingFlags("pull", allowed: 15) : 0
        guard flags & 4 == 0 || flags & 2 != 0 else {
            throw .nonCanonical(at: start, "a resyncing pull (04) handles collection (02)")
        }
        acceptsDeltas = flags & 1 != 0
        handlesCollection = flags & 2 != 0
        resyncingFrom = flags & 4 != 0 ? try reader.readVarint() : nil
        handlesChannels = flags & 8 != 0
        view = []
        subscription = nil
        if handlesChannels {
            view = Array(try reader.readLengthPrefixed())
            let at = reader.offset
            let count = try reader.readVarint()
            if count > 0 {
                guard count - 1 <= UInt64(reader.remaining) else {
                    throw .invariantViolation(
                        at: at, "\(count - 1) channel names in \(reader.remaining) bytes")
                }
                var names = [String]()
                for _ in 0..<(count - 1) {
                    let position = reader.offset
                    let name = try reader.readString()
                    if let previous = names.last,
                        !Array(previous.utf8).lexicographicallyPrecedes(Array(name.utf8))
                    {
                        throw .nonCanonical(at: position, "subscribed channel names must increase")
                    }
                    names.append(name)
                }
                subscription = names
            }
        }
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
    /// In answer to a pull that handles channels (``PullRequest/handlesChannels``): the view to
    /// keep and which changes are documents that left it; `nil` otherwise.
    public var channels: ChannelAnswer?

    /// What a page says about channels.
    public struct ChannelAnswer: Hashable, Sendable {
        /// The view the replica's documents reflect once it applied the page: it keeps it and
        /// sends it back with its next pull (``PullRequest/view``). Opaque to the replica.
        public var view: [UInt8]
        /// The indices, in the page's changes, of documents that left what the replica may see
        /// (their records are empty): it removes its copy, which is not a deletion.
        public var left: [Int]
        /// Whether the page belongs to a view change (a grant or subscription changed): its
        /// changes' sequences are positions in that pass, not server sequences, and the cursor
        /// stays where it was.
        public var isViewChange: Bool

        /// Creates an answer.
        public init(view: [UInt8], left: [Int] = [], isViewChange: Bool = false) {
            self.view = view
            self.left = left
            self.isViewChange = isViewChange
        }
    }

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
    public init(
        changes: [WireChange], cursor: UInt64, cursorTag: UInt64 = 0, hasMore: Bool,
        resync: ResyncAnswer? = nil, channels: ChannelAnswer? = nil
    ) {
        self.changes = changes
        self.cursor = cursor
        self.cursorTag = cursorTag
        self.hasMore = hasMore
        self.resync = resync
        self.channels = channels
    }

    /// Layout: cursor, cursor tag (format version 2; absent, and 0, in version 1), has-more
    /// byte, then the changes (see ``WireChange``); then, only if some changes are deltas, their
    /// count and, for each in order, its index in the list and its base's digest (a varint);
    /// then, only in answer to a resyncing pull or one that handles channels, the extension: a
    /// byte `00`, a flags byte (`01`: too far behind; `02`: a channel section follows; `04`: no
    /// resync answer; `08`: a view change's page), then, without `04`, the count of documents
    /// created again and their indices, increasing; then, with `02`, the view (length-prefixed
    /// bytes) and the count of documents that left the view and their indices, increasing.
    public func encode(to writer: inout BinaryWriter) {
        writer.writeVarint(cursor)
        writer.writeVarint(cursorTag)
        writer.writeByte(hasMore ? 1 : 0)
        WireChange.encode(changes, to: &writer)
        guard resync != nil || channels != nil else {
            WireChange.encodeDeltaSection(changes, to: &writer)
            return
        }
        WireChange.encodeDeltaSection(changes, thenExtensionTo: &writer)
        var flags: UInt8 = resync?.tooFarBehind == true ? 1 : 0
        if channels != nil { flags |= 2 }
        if resync == nil { flags |= 4 }
        if channels?.isViewChange == true { flags |= 8 }
        writer.writeByte(flags)
        if let resync {
            writer.writeVarint(UInt64(resync.createdAgain.count))
            for index in resync.createdAgain { writer.writeVarint(UInt64(index)) }
        }
        if let channels {
            writer.writeLengthPrefixed(channels.view)
            writer.writeVarint(UInt64(channels.left.count))
            for index in channels.left { writer.writeVarint(UInt64(index)) }
        }
    }

    public init(from reader: inout BinaryReader) throws(CodecError) {
        cursor = try reader.readVarint()
        cursorTag = reader.formatVersion >= 2 ? try reader.readVarint() : 0
        hasMore = try Bool(from: &reader)
        changes = try WireChange.decodeList(from: &reader)
        let listEnd = reader.offset
        resync = nil
        channels = nil
        if reader.formatVersion >= 2,
            try WireChange.decodeDeltaSectionAndExtension(into: &changes, from: &reader)
        {
            let start = reader.offset
            let flags = try reader.readByte()
            guard flags & ~15 == 0, flags & 5 != 5, flags & 10 != 8 else {
                throw .nonCanonical(at: start, "unknown extension flags \(flags)")
            }
            if flags & 4 == 0 {
                resync = ResyncAnswer(
                    tooFarBehind: flags & 1 != 0,
                    createdAgain: try Self.readIndices(
                        &reader, within: changes.count, "documents created again"))
            }
            if flags & 2 != 0 {
                let view = Array(try reader.readLengthPrefixed())
                channels = ChannelAnswer(
                    view: view,
                    left: try Self.readIndices(
                        &reader, within: changes.count, "documents that left the view"),
                    isViewChange: flags & 8 != 0)
            }
        }
        // A view change's page numbers its changes by their place in the pass: the cursor stays.
        if channels?.isViewChange != true, let last = changes.last, last.sequence > cursor {
            throw .invariantViolation(at: listEnd, "the cursor must be at least the last change's sequence")
        }
    }

    /// A count and that many increasing indices of a page's `count` changes.
    static func readIndices(_ reader: inout BinaryReader, within count: Int, _ what: String)
        throws(CodecError) -> [Int]
    {
        let start = reader.offset
        let listed = try reader.readCount(minimumElementSize: 1)
        guard listed <= count else {
            throw .invariantViolation(at: start, "\(listed) \(what) in \(count) changes")
        }
        var indices = [Int]()
        indices.reserveCapacity(listed)
        for _ in 0..<listed {
            let at = reader.offset
            let index = try reader.readVarint()
            guard index < UInt64(count), Int(index) > (indices.last ?? -1) else {
                throw .invariantViolation(at: at, "the indices of \(what) must increase and name a change")
            }
            indices.append(Int(index))
        }
        return indices
    }
}
