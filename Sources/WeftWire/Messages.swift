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
    /// The ``WeftCRDT/DocumentRecord/digest`` of the record ``record`` is a delta over
    /// (``WeftCRDT/DocumentRecord/delta(since:maximumDots:)``), or `nil` for a whole record.
    ///
    /// In a page for a client that accepts deltas, a client that holds a record with exactly
    /// this digest (its own record, or the server base it kept) rebuilds the server's record by
    /// joining the delta into it; any other must ask again without deltas. In a push to a
    /// server that accepts deltas (``HelloResponse/acceptsDeltaPushes``), the server rebuilds
    /// the replica's record by joining the delta into its own record if that has exactly this
    /// digest, and refuses the push otherwise (``WeftServer`` answers 409, `Weft-Error:
    /// delta-base`), applying nothing.
    public var deltaBase: UInt64?

    /// Creates a change.
    public init(sequence: UInt64, key: WireKey, record: DocumentRecord, deltaBase: UInt64? = nil) {
        self.sequence = sequence
        self.key = key
        self.record = record
        self.deltaBase = deltaBase
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

    /// Writes the delta section of a list of changes: nothing if no change is a delta; else
    /// their count and, for each in order, its index in the list and its base's digest (a
    /// varint).
    static func encodeDeltaSection(_ changes: [WireChange], to writer: inout BinaryWriter) {
        let deltas = changes.indices.filter { changes[$0].deltaBase != nil }
        guard !deltas.isEmpty else { return }
        writer.writeVarint(UInt64(deltas.count))
        for index in deltas {
            writer.writeVarint(UInt64(index))
            writer.writeVarint(changes[index].deltaBase ?? 0)
        }
    }

    /// Reads a delta section written by ``encodeDeltaSection(_:to:)`` into `changes`: at least
    /// one delta, indices strictly increasing and naming a change.
    static func decodeDeltaSection(into changes: inout [WireChange], from reader: inout BinaryReader) throws(CodecError) {
        let start = reader.offset
        let count = try reader.readCount(minimumElementSize: 2)
        guard count > 0, count <= changes.count else { throw .invariantViolation(at: start, "\(count) deltas for \(changes.count) changes") }
        var previous = -1
        for _ in 0..<count {
            let at = reader.offset
            let index = try reader.readVarint()
            guard index < UInt64(changes.count), Int(index) > previous else {
                throw .invariantViolation(at: at, "delta indices must increase and name a change")
            }
            previous = Int(index)
            changes[Int(index)].deltaBase = try reader.readVarint()
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
    /// The session the replica opened with ``HelloRequest`` (0: none, a replica that predates
    /// the handshake). The server refuses a push whose session is not the replica's current one.
    public var epoch: UInt64
    /// The identities this replica had before (it took a new one each time the server found its
    /// file forked), newest last, at most ``maximumFormerIdentities``. Its queued records may
    /// hold writes made under them; the server treats them as the replica's own, not as claims
    /// about other replicas.
    public var formerIdentities: [ReplicaID]
    /// The changes (record deltas), with strictly increasing queue sequence numbers.
    public var changes: [WireChange]
    /// The high-water mark the replica expects the server to hold already for it (0: none): the
    /// last sequence the server confirmed, or sent earlier, in this session. A server whose mark
    /// is lower lost changes it had acknowledged (it was restored from a backup taken during the
    /// session) and refuses the push as forked, so the replica says hello again and resyncs.
    ///
    /// Not part of the binary body: it travels beside it (over HTTP, the
    /// `Weft-Expect-Applied-Through` header), so servers and clients that predate it ignore it.
    public var expectedAppliedThrough: UInt64 = 0

    /// The most former identities a push carries.
    public static let maximumFormerIdentities = 64

    /// Creates a push.
    public init(replica: ReplicaID, epoch: UInt64 = 0, formerIdentities: [ReplicaID] = [], changes: [WireChange]) {
        self.replica = replica
        self.epoch = epoch
        self.formerIdentities = formerIdentities
        self.changes = changes
    }

    /// Layout: replica, epoch, former identities (a count, then each as a replica reference;
    /// both format version 2, absent in version 1), then the changes (see ``WireChange``); then,
    /// only if some changes are deltas, the delta section, as in ``PullResponse``. Only a server
    /// that declared ``HelloResponse/acceptsDeltaPushes`` may be sent one: an older server
    /// refuses the trailing bytes.
    public func encode(to writer: inout BinaryWriter) {
        writer.writeReplica(replica)
        writer.writeVarint(epoch)
        writer.writeVarint(UInt64(formerIdentities.count))
        for former in formerIdentities { writer.writeReplica(former) }
        WireChange.encode(changes, to: &writer)
        WireChange.encodeDeltaSection(changes, to: &writer)
    }

    public init(from reader: inout BinaryReader) throws(CodecError) {
        replica = try reader.readReplica()
        if reader.formatVersion >= 2 {
            epoch = try reader.readVarint()
            let start = reader.offset
            let count = try reader.readCount(minimumElementSize: 1)
            guard count <= Self.maximumFormerIdentities else {
                throw .tooLarge(at: start, "\(count) former identities, over the limit of \(Self.maximumFormerIdentities)")
            }
            formerIdentities = []
            formerIdentities.reserveCapacity(count)
            for _ in 0..<count { formerIdentities.append(try reader.readReplica()) }
        } else {
            epoch = 0
            formerIdentities = []
        }
        changes = try WireChange.decodeList(from: &reader)
        if reader.formatVersion >= 2 && !reader.isAtEnd { try WireChange.decodeDeltaSection(into: &changes, from: &reader) }
    }
}

/// The handshake a replica opens each session with: who it is, the session the server last
/// confirmed for its file, and the new session.
///
/// The server keeps, per replica, the session it confirmed last and the highest queue sequence
/// it applied. If the request's `confirmedEpoch` is that session (or the server has none, or the
/// request repeats `epoch`), and the server applied nothing beyond `acknowledgedThrough`, the
/// server records `epoch` and answers ``HelloResponse/Status/accepted``. Otherwise the file is
/// not the latest continuation of that replica's history (restored from a backup, copied to a
/// second device, or its last commits lost), and the answer is ``HelloResponse/Status/forked``:
/// the replica must take a new identity.
public struct HelloRequest: Hashable, Sendable, BinaryCodable {
    public static var binaryTypeTag: UInt8 { 68 }
    /// The replica.
    public var replica: ReplicaID
    /// The session the server last confirmed for this file (0: none yet).
    public var confirmedEpoch: UInt64
    /// This session, random and non-zero.
    public var epoch: UInt64
    /// The highest queue sequence the server acknowledged to this file (0: none).
    public var acknowledgedThrough: UInt64

    /// Creates a handshake.
    public init(replica: ReplicaID, confirmedEpoch: UInt64, epoch: UInt64, acknowledgedThrough: UInt64 = 0) {
        self.replica = replica
        self.confirmedEpoch = confirmedEpoch
        self.epoch = epoch
        self.acknowledgedThrough = acknowledgedThrough
    }

    /// Whether the replica can push deltas (``WireChange/deltaBase``) and reads the answer's
    /// ``HelloResponse/acceptsDeltaPushes`` flag. A server answers with the flag only to a
    /// hello that offers it, so replicas that predate it read the answer they expect.
    public var offersDeltaPushes = false

    /// Layout: replica, confirmed epoch, epoch, acknowledged-through; then, only if the replica
    /// offers delta pushes, a byte `01`.
    public func encode(to writer: inout BinaryWriter) {
        writer.writeReplica(replica)
        writer.writeVarint(confirmedEpoch)
        writer.writeVarint(epoch)
        writer.writeVarint(acknowledgedThrough)
        if offersDeltaPushes { writer.writeByte(1) }
    }

    public init(from reader: inout BinaryReader) throws(CodecError) {
        replica = try reader.readReplica()
        confirmedEpoch = try reader.readVarint()
        let start = reader.offset
        epoch = try reader.readVarint()
        guard epoch != 0 else { throw .invariantViolation(at: start, "a session epoch of 0") }
        acknowledgedThrough = try reader.readVarint()
        if !reader.isAtEnd {
            let flag = reader.offset
            guard try reader.readByte() == 1 else { throw .nonCanonical(at: flag, "the delta-push flag is 01 or absent") }
            offersDeltaPushes = true
        }
    }
}

/// A collection's conflict policy on the wire: a name (`lww`, `crdt`, `custom`, `fields`), the
/// resolver's name for `custom`, and `(field, rule)` pairs for `fields`.
public struct WirePolicy: Hashable, Sendable {
    /// The policy's name.
    public var name: String
    /// The resolver, for `custom` (else empty).
    public var resolver: String
    /// The field rules, for `fields` (else empty), sorted by field.
    public var rules: [(field: String, rule: String)]

    /// Creates a policy.
    public init(name: String, resolver: String = "", rules: [(field: String, rule: String)] = []) {
        self.name = name
        self.resolver = resolver
        self.rules = rules
    }

    public static func == (lhs: WirePolicy, rhs: WirePolicy) -> Bool {
        lhs.name == rhs.name && lhs.resolver == rhs.resolver && lhs.rules.map(\.field) == rhs.rules.map(\.field)
            && lhs.rules.map(\.rule) == rhs.rules.map(\.rule)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(name)
        hasher.combine(resolver)
        for (field, rule) in rules {
            hasher.combine(field)
            hasher.combine(rule)
        }
    }

    func encode(to writer: inout BinaryWriter) {
        writer.writeString(name)
        writer.writeString(resolver)
        writer.writeVarint(UInt64(rules.count))
        for (field, rule) in rules {
            writer.writeString(field)
            writer.writeString(rule)
        }
    }

    init(from reader: inout BinaryReader) throws(CodecError) {
        name = try reader.readString()
        resolver = try reader.readString()
        let count = try reader.readCount(minimumElementSize: 2)
        rules = []
        for _ in 0..<count { rules.append((try reader.readString(), try reader.readString())) }
    }
}

/// The server's answer to a ``HelloRequest``.
public struct HelloResponse: Hashable, Sendable, BinaryCodable {
    public static var binaryTypeTag: UInt8 { 69 }

    /// What the server made of the handshake.
    public enum Status: UInt8, Hashable, Sendable {
        /// The session is the replica's current one: push and pull.
        case accepted = 0
        /// The file is not the latest continuation of this replica's history: take a new
        /// identity and say hello again.
        case forked = 1
    }

    /// What the server made of the handshake.
    public var status: Status
    /// The replica's high-water mark on the server (its highest applied queue sequence).
    public var appliedThrough: UInt64
    /// The policy of collections without one of their own.
    public var defaultPolicy: WirePolicy
    /// Per-collection policies, sorted by collection.
    public var collections: [(name: String, policy: WirePolicy)]
    /// Whether the server takes pushed changes as deltas over its own record
    /// (``WireChange/deltaBase``). Sent only in answer to a hello that
    /// ``HelloRequest/offersDeltaPushes``; a server that predates delta pushes never says so,
    /// and a replica then pushes whole records.
    public var acceptsDeltaPushes: Bool

    /// Creates an answer.
    public init(
        status: Status, appliedThrough: UInt64, defaultPolicy: WirePolicy, collections: [(name: String, policy: WirePolicy)],
        acceptsDeltaPushes: Bool = false
    ) {
        self.status = status
        self.appliedThrough = appliedThrough
        self.defaultPolicy = defaultPolicy
        self.collections = collections
        self.acceptsDeltaPushes = acceptsDeltaPushes
    }

    public static func == (lhs: HelloResponse, rhs: HelloResponse) -> Bool {
        lhs.acceptsDeltaPushes == rhs.acceptsDeltaPushes && lhs.status == rhs.status && lhs.appliedThrough == rhs.appliedThrough
            && lhs.defaultPolicy == rhs.defaultPolicy
            && lhs.collections.map(\.name) == rhs.collections.map(\.name) && lhs.collections.map(\.policy) == rhs.collections.map(\.policy)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(status)
        hasher.combine(appliedThrough)
        hasher.combine(defaultPolicy)
        hasher.combine(acceptsDeltaPushes)
        for (name, policy) in collections {
            hasher.combine(name)
            hasher.combine(policy)
        }
    }

    /// Layout: status byte, applied-through, default policy, count, then `(name, policy)` pairs;
    /// then, only if the server accepts delta pushes, a byte `01`.
    public func encode(to writer: inout BinaryWriter) {
        writer.writeByte(status.rawValue)
        writer.writeVarint(appliedThrough)
        defaultPolicy.encode(to: &writer)
        writer.writeVarint(UInt64(collections.count))
        for (name, policy) in collections {
            writer.writeString(name)
            policy.encode(to: &writer)
        }
        if acceptsDeltaPushes { writer.writeByte(1) }
    }

    public init(from reader: inout BinaryReader) throws(CodecError) {
        let start = reader.offset
        guard let status = Status(rawValue: try reader.readByte()) else { throw .invalidTag(0, at: start, "HelloResponse status") }
        self.status = status
        appliedThrough = try reader.readVarint()
        defaultPolicy = try WirePolicy(from: &reader)
        let count = try reader.readCount(minimumElementSize: 5)
        collections = []
        for _ in 0..<count { collections.append((try reader.readString(), try WirePolicy(from: &reader))) }
        acceptsDeltaPushes = false
        if !reader.isAtEnd {
            let flag = reader.offset
            guard try reader.readByte() == 1 else { throw .nonCanonical(at: flag, "the delta-push flag is 01 or absent") }
            acceptsDeltaPushes = true
        }
    }
}

/// The server's answer to a push, sent only after the batch is durable.
public struct PushResponse: Hashable, Sendable, BinaryCodable {
    public static var binaryTypeTag: UInt8 { 65 }
    /// Every change of this replica up to this sequence is applied, except those in
    /// ``rejected``; the replica may drop those queue entries (after moving the rejected ones
    /// to its dead letters). A rejected change may lie above it.
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
        acceptsDeltas = false
        if replica != nil && !reader.isAtEnd {
            let start = reader.offset
            guard try reader.readByte() == 1 else { throw .nonCanonical(at: start, "the delta flag is 01 or absent") }
            acceptsDeltas = true
        }
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
            // Over a limit (the input size, the nesting depth): too large. Anything else,
            // including a length or count the message does not hold: malformed.
            throw error.kind == "tooLarge" || error.kind == "nestingTooDeep" ? .tooLarge("message: \(error)") : .malformed("message: \(error)")
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
