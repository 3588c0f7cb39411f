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
