// Pushing a replica's queued changes, and the server's answer.

import WeftCRDT

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
    /// The replica's pull cursor when it read the batch's records (during a resync, the cursor
    /// it had when the resync began); `nil` for a client that does not say. Each record holds
    /// every change the replica pulled up to it, so a server that forgot deletions logged after
    /// it refuses the push as "too far behind" (the records may hold documents it deleted), and
    /// one that forgot any refuses a push that does not say (asking an older client to
    /// upgrade), rather than bring the deleted documents back.
    ///
    /// Not part of the binary body: over HTTP it travels in the `Weft-Pulled-Through` header,
    /// so servers that predate it ignore it.
    public var pulledThrough: UInt64?
    /// The receipt this push leaves on the server if it is applied (``PushReceipt``): drawn at
    /// random by the replica for each request, never 0, and the same when a request is sent
    /// again, so a push applied twice answers the same link; `nil` lets the server draw one.
    ///
    /// Not part of the binary body: over HTTP it travels in the `Weft-Receipt` header, so
    /// servers that predate it ignore it.
    public var receipt: UInt64?

    /// The most former identities a push carries.
    public static let maximumFormerIdentities = 64

    /// Creates a push.
    public init(
        replica: ReplicaID, epoch: UInt64 = 0, formerIdentities: [ReplicaID] = [], changes: [WireChange]
    ) {
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
                throw .tooLarge(
                    at: start, "\(count) former identities, over the limit of \(Self.maximumFormerIdentities)"
                )
            }
            formerIdentities = []
            formerIdentities.reserveCapacity(count)
            for _ in 0..<count { formerIdentities.append(try reader.readReplica()) }
        } else {
            epoch = 0
            formerIdentities = []
        }
        changes = try WireChange.decodeList(from: &reader)
        if reader.formatVersion >= 2 && !reader.isAtEnd {
            try WireChange.decodeDeltaSection(into: &changes, from: &reader)
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
    /// The replica's receipt on the server before and after this push (``PushReceipt``);
    /// `nil` from a server that does not say.
    ///
    /// Not part of the binary body: over HTTP it travels in the `Weft-Receipt-Previous` and
    /// `Weft-Receipt` headers, so clients that predate it ignore it.
    public var receipt: PushReceipt?

    /// A change refused for good.
    public struct Rejection: Hashable, Sendable {
        /// The change's sequence number.
        public var sequence: UInt64
        /// Why it was refused.
        public var reason: String
        /// Whether the replica must also drop its copy of the document: the change was refused
        /// because of who may write the document (its channels), so the copy holds a write the
        /// server will never take. The server logs its own version again, which the replica's
        /// next pull brings if it may read it.
        public var withdrawn: Bool

        /// Creates a rejection.
        public init(sequence: UInt64, reason: String, withdrawn: Bool = false) {
            self.sequence = sequence
            self.reason = reason
            self.withdrawn = withdrawn
        }
    }

    /// Creates a response.
    public init(appliedThrough: UInt64, rejected: [Rejection] = [], receipt: PushReceipt? = nil) {
        self.appliedThrough = appliedThrough
        self.rejected = rejected
        self.receipt = receipt
    }

    /// Layout: applied-through, count, then `(sequence, reason)` pairs; then, only if some
    /// rejection is withdrawn, their count and their indices in the list, increasing.
    public func encode(to writer: inout BinaryWriter) {
        writer.writeVarint(appliedThrough)
        writer.writeVarint(UInt64(rejected.count))
        for rejection in rejected {
            writer.writeVarint(rejection.sequence)
            writer.writeString(rejection.reason)
        }
        let withdrawn = rejected.indices.filter { rejected[$0].withdrawn }
        guard !withdrawn.isEmpty else { return }
        writer.writeVarint(UInt64(withdrawn.count))
        for index in withdrawn { writer.writeVarint(UInt64(index)) }
    }

    public init(from reader: inout BinaryReader) throws(CodecError) {
        appliedThrough = try reader.readVarint()
        let count = try reader.readCount(minimumElementSize: 2)
        rejected = []
        for _ in 0..<count {
            rejected.append(Rejection(sequence: try reader.readVarint(), reason: try reader.readString()))
        }
        guard !reader.isAtEnd else { return }
        let start = reader.offset
        let withdrawn = try reader.readCount(minimumElementSize: 1)
        guard withdrawn > 0, withdrawn <= rejected.count else {
            throw .invariantViolation(at: start, "\(withdrawn) withdrawn of \(rejected.count) rejections")
        }
        var previous = -1
        for _ in 0..<withdrawn {
            let at = reader.offset
            let index = try reader.readVarint()
            guard index < UInt64(rejected.count), Int(index) > previous else {
                throw .invariantViolation(
                    at: at, "the indices of withdrawn rejections must increase and name a rejection")
            }
            previous = Int(index)
            rejected[previous].withdrawn = true
        }
    }
}

/// The link a push adds to the chain of a replica's pushes on the server.
///
/// The server keeps, per replica, a random 64-bit *receipt* that every applied push replaces
/// with a new one, in the push's transaction; the push's answer names the receipt it replaced
/// (``previous``) and the new one (``current``), and the hello answers the current one
/// (``HelloResponse/receipt``). The answers of a session therefore link into one chain, in the
/// order the server applied the pushes, whatever order they arrive in. A server restored from
/// a backup goes back to an earlier receipt, so a push applied after the restore links to a
/// receipt the chain already continued from (two answers over one predecessor), or to none of
/// the session's: the replica then knows the server forgot pushes it had answered, and resyncs.
///
/// Law: in a history without restores, the answers of the pushes applied since a hello, put in
/// order by linking `previous` to `current` from the hello's receipt, form one chain that uses
/// every answer once.
public struct PushReceipt: Hashable, Sendable {
    /// The replica's receipt before the push.
    public var previous: UInt64
    /// The replica's receipt after it.
    public var current: UInt64

    /// Creates a receipt link.
    public init(previous: UInt64, current: UInt64) {
        self.previous = previous
        self.current = current
    }

    /// A new random receipt: never 0, the receipt of a replica that never pushed (or last
    /// pushed to a server that kept none).
    public static func draw() -> UInt64 { UInt64.random(in: 1...UInt64.max) }
}
