// The handshake that opens a session, and the policies it declares.

import WeftCRDT

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
    /// Whether the replica handles a server that forgets tombstones (``PullRequest/handlesCollection``)
    /// and reads the answer's ``HelloResponse/collectsTombstones`` flag. Answered, as the delta
    /// flag, only to a hello that offers it.
    public var handlesCollection = false
    /// Whether the replica takes channel-filtered pages (``PullRequest/handlesChannels``) and
    /// reads the answer's ``HelloResponse/filtersChannels`` flag. Answered only to a hello that
    /// offers it.
    public var handlesChannels = false

    /// Layout: replica, confirmed epoch, epoch, acknowledged-through; then, only if the replica
    /// offers something, a flags byte: `01` delta pushes, `02` handles collection, `04` handles
    /// channels.
    public func encode(to writer: inout BinaryWriter) {
        writer.writeReplica(replica)
        writer.writeVarint(confirmedEpoch)
        writer.writeVarint(epoch)
        writer.writeVarint(acknowledgedThrough)
        let flags: UInt8 =
            (offersDeltaPushes ? 1 : 0) | (handlesCollection ? 2 : 0) | (handlesChannels ? 4 : 0)
        if flags != 0 { writer.writeByte(flags) }
    }

    public init(from reader: inout BinaryReader) throws(CodecError) {
        replica = try reader.readReplica()
        confirmedEpoch = try reader.readVarint()
        let start = reader.offset
        epoch = try reader.readVarint()
        guard epoch != 0 else { throw .invariantViolation(at: start, "a session epoch of 0") }
        acknowledgedThrough = try reader.readVarint()
        let flags = try reader.readTrailingFlags("hello", allowed: 7)
        offersDeltaPushes = flags & 1 != 0
        handlesCollection = flags & 2 != 0
        handlesChannels = flags & 4 != 0
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
        lhs.name == rhs.name && lhs.resolver == rhs.resolver
            && lhs.rules.map(\.field) == rhs.rules.map(\.field)
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
    /// Whether the server forgets tombstones and understands the pull's collection flags
    /// (``PullRequest/handlesCollection``, ``PullRequest/resyncingFrom``). Sent only in answer to
    /// a hello that says it ``HelloRequest/handlesCollection``; a replica sends those flags only
    /// to a server that says so.
    public var collectsTombstones: Bool
    /// Whether the server filters pages by channels and understands the pull's channel fields
    /// (``PullRequest/handlesChannels``). Sent only in answer to a hello that says it
    /// ``HelloRequest/handlesChannels``; a replica sends those fields only to a server that
    /// says so.
    public var filtersChannels = false
    /// The replica's current receipt on the server (``PushReceipt``), which the answers to its
    /// next pushes continue; `nil` from a server that does not say.
    ///
    /// Not part of the binary body: over HTTP it travels in the `Weft-Receipt` header, so
    /// clients that predate it ignore it.
    public var receipt: UInt64?

    /// Creates an answer.
    public init(
        status: Status, appliedThrough: UInt64, defaultPolicy: WirePolicy,
        collections: [(name: String, policy: WirePolicy)],
        acceptsDeltaPushes: Bool = false, collectsTombstones: Bool = false, receipt: UInt64? = nil,
        filtersChannels: Bool = false
    ) {
        self.filtersChannels = filtersChannels
        self.receipt = receipt
        self.status = status
        self.appliedThrough = appliedThrough
        self.defaultPolicy = defaultPolicy
        self.collections = collections
        self.acceptsDeltaPushes = acceptsDeltaPushes
        self.collectsTombstones = collectsTombstones
    }

    public static func == (lhs: HelloResponse, rhs: HelloResponse) -> Bool {
        lhs.acceptsDeltaPushes == rhs.acceptsDeltaPushes && lhs.collectsTombstones == rhs.collectsTombstones
            && lhs.status == rhs.status
            && lhs.filtersChannels == rhs.filtersChannels
            && lhs.appliedThrough == rhs.appliedThrough && lhs.receipt == rhs.receipt
            && lhs.defaultPolicy == rhs.defaultPolicy
            && lhs.collections.map(\.name) == rhs.collections.map(\.name)
            && lhs.collections.map(\.policy) == rhs.collections.map(\.policy)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(status)
        hasher.combine(appliedThrough)
        hasher.combine(defaultPolicy)
        hasher.combine(acceptsDeltaPushes)
        hasher.combine(collectsTombstones)
        hasher.combine(filtersChannels)
        hasher.combine(receipt)
        for (name, policy) in collections {
            hasher.combine(name)
            hasher.combine(policy)
        }
    }

    /// Layout: status byte, applied-through, default policy, count, then `(name, policy)` pairs;
    /// then, only if one is set, a flags byte: `01` accepts delta pushes, `02` collects tombstones,
    /// `04` filters channels.
    public func encode(to writer: inout BinaryWriter) {
        writer.writeByte(status.rawValue)
        writer.writeVarint(appliedThrough)
        defaultPolicy.encode(to: &writer)
        writer.writeVarint(UInt64(collections.count))
        for (name, policy) in collections {
            writer.writeString(name)
            policy.encode(to: &writer)
        }
        let flags: UInt8 =
            (acceptsDeltaPushes ? 1 : 0) | (collectsTombstones ? 2 : 0) | (filtersChannels ? 4 : 0)
        if flags != 0 { writer.writeByte(flags) }
    }

    public init(from reader: inout BinaryReader) throws(CodecError) {
        let start = reader.offset
        guard let status = Status(rawValue: try reader.readByte()) else {
            throw .invalidTag(0, at: start, "HelloResponse status")
        }
        self.status = status
        appliedThrough = try reader.readVarint()
        defaultPolicy = try WirePolicy(from: &reader)
        let count = try reader.readCount(minimumElementSize: 5)
        collections = []
        for _ in 0..<count { collections.append((try reader.readString(), try WirePolicy(from: &reader))) }
        let flags = try reader.readTrailingFlags("hello", allowed: 7)
        acceptsDeltaPushes = flags & 1 != 0
        collectsTombstones = flags & 2 != 0
        filtersChannels = flags & 4 != 0
    }
}
