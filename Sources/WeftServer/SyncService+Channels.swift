import Crypto
import Weft
import WeftCRDT
import WeftWire

/// What a replica's documents reflect, as the server tells it with each channel-filtered page
/// and reads back from the next pull (`PullRequest.view` in WeftWire): opaque to the replica.
///
/// In the steady state the replica holds every document of ``surely`` whose latest change is
/// at or below its cursor, and ``possibly`` is the same grant. While a view change is under way
/// (a grant or subscription changed), ``pass`` says where: documents met before its position
/// reflect its target, those after it the old view. A pass interrupted by another change starts
/// over with what the replica surely holds narrowed to both views and what it may hold widened
/// to both, so that nothing it may no longer see stays and nothing it now may see is missed.
struct ChannelView: Hashable, Sendable {
    /// The channels whose documents the replica surely holds (through its cursor).
    var surely: ChannelGrant
    /// The channels whose documents the replica may hold.
    var possibly: ChannelGrant
    /// The view change under way: its target and the position it has reached.
    var pass: (target: ChannelGrant, after: UInt64)?

    static func == (lhs: ChannelView, rhs: ChannelView) -> Bool {
        lhs.surely == rhs.surely && lhs.possibly == rhs.possibly && lhs.pass?.target == rhs.pass?.target
            && lhs.pass?.after == rhs.pass?.after
    }

    func hash(into hasher: inout Hasher) {
        hasher.combine(surely)
        hasher.combine(possibly)
        hasher.combine(pass?.target)
        hasher.combine(pass?.after)
    }

    /// The settled view of `grant`.
    static func settled(_ grant: ChannelGrant) -> ChannelView {
        ChannelView(surely: grant, possibly: grant, pass: nil)
    }

    /// Layout: a version byte (1), the sure grant, the possible grant, a byte 0 or 1 for a pass
    /// and, with 1, its target and position (a varint). A grant is a byte 0 (every channel), or
    /// 1 followed by the count of names and each name as a string.
    var encoded: [UInt8] {
        var writer = BinaryWriter()
        writer.writeByte(1)
        Self.write(surely, &writer)
        Self.write(possibly, &writer)
        if let pass {
            writer.writeByte(1)
            Self.write(pass.target, &writer)
            writer.writeVarint(pass.after)
        } else {
            writer.writeByte(0)
        }
        return writer.bytes
    }

    static func write(_ grant: ChannelGrant, _ writer: inout BinaryWriter) {
        switch grant {
        case .all: writer.writeByte(0)
        case .only(let names):
            writer.writeByte(1)
            writer.writeVarint(UInt64(names.count))
            for name in names.sorted() { writer.writeString(name) }
        }
    }

    /// The bytes a page carries: ``encoded`` and the first 16 bytes of its HMAC-SHA256 under the
    /// store's key, over the database, the replica and the encoding.
    func sealed(key: [UInt8], database: String, replica: ReplicaID) -> [UInt8] {
        let payload = encoded
        return payload + Self.tag(payload, key: key, database: database, replica: replica)
    }

    static func tag(_ payload: [UInt8], key: [UInt8], database: String, replica: ReplicaID) -> [UInt8] {
        var message = Array("weft-channel-view".utf8) + [0] + Array(database.utf8) + [0] + replica.bytes
        message += payload
        let code = HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key))
        return Array(Array(code).prefix(16))
    }

    /// The view of bytes ``sealed(key:database:replica:)`` made for this database and replica
    /// under `key`; throws for any other bytes.
    init(unsealing bytes: [UInt8], key: [UInt8], database: String, replica: ReplicaID) throws(CodecError) {
        guard bytes.count > 16 else { throw .truncated(at: 0, "a channel view") }
        let payload = Array(bytes.dropLast(16))
        let expected = Self.tag(payload, key: key, database: database, replica: replica)
        var difference: UInt8 = 0
        for (a, b) in zip(expected, bytes.suffix(16)) { difference |= a ^ b }
        guard difference == 0 else {
            throw .invariantViolation(at: payload.count, "a channel view this server did not sign")
        }
        try self.init(decoding: payload)
    }

    /// Decodes an encoding (``encoded``); throws for bytes it could not have written.
    init(decoding bytes: [UInt8]) throws(CodecError) {
        var reader = BinaryReader(bytes)
        let start = reader.offset
        guard try reader.readByte() == 1 else { throw .invalidTag(0, at: start, "channel view version") }
        surely = try Self.read(&reader)
        possibly = try Self.read(&reader)
        switch try reader.readByte() {
        case 0: pass = nil
        case 1: pass = (try Self.read(&reader), try reader.readVarint())
        default: throw .invalidTag(0, at: reader.offset - 1, "channel view pass")
        }
        guard reader.isAtEnd else { throw .nonCanonical(at: reader.offset, "bytes after the channel view") }
    }

    init(surely: ChannelGrant, possibly: ChannelGrant, pass: (target: ChannelGrant, after: UInt64)?) {
        self.surely = surely
        self.possibly = possibly
        self.pass = pass
    }

    static func read(_ reader: inout BinaryReader) throws(CodecError) -> ChannelGrant {
        let start = reader.offset
        switch try reader.readByte() {
        case 0: return .all
        case 1:
            let count = try reader.readCount(minimumElementSize: 2)
            var names = Set<String>()
            for _ in 0..<count { names.insert(try reader.readString()) }
            return .only(names)
        default: throw .invalidTag(0, at: start, "channel grant")
        }
    }
}

// Channels: what a pull serves a reader limited to some channels, view changes, and the write check.
extension SyncService {
    /// The reason a change outside the pusher's channels is refused with.
    static func outsideChannels(_ key: DocumentKey) -> String {
        "document \(key.collection)/\(key.id) is, or would be, in no channel this token may write: the change was refused, and the replica's copy gives way to the server's"
    }

    /// The reason a document pushed back unchanged by a replica that may not read it is withdrawn.
    static func notReadable(_ key: DocumentKey) -> String {
        "document \(key.collection)/\(key.id) is in no channel this token may read: the replica's copy was removed (it held nothing the server lacks)"
    }

    /// The record a page carries for a document that left the reader's view: empty, never merged.
    static let leftRecord = DocumentRecord(
        body: Document(),
        deletion: LWWRegister(
            false, stamp: HLCTimestamp(wallMilliseconds: 0, counter: 0, replica: ReplicaID(high: 0, low: 0))),
        version: VersionVector())

    /// The store's channel index, or a refusal for a store that keeps none.
    nonisolated func channelStore() throws(SyncError) -> any ChannelIndexedStore {
        guard let indexed = store as? any ChannelIndexedStore else {
            throw SyncError(
                .unavailable,
                "this server's store keeps no channel index, so it cannot serve a token limited to some channels"
            )
        }
        return indexed
    }

    /// What a pull that handles channels is after: its target (what the reader may read, within
    /// its subscription) and the view its documents reflect.
    ///
    /// The view must be one this store signed for this database and replica: a client cannot
    /// claim channels it never had (a view that says "may hold everything" would have the
    /// server list, as left, every document the client may not read). A pull past 0 without
    /// such a view (a replica that synced before channels, or whose view is not this store's)
    /// is answered "resync" unless it may read everything: the resync pulls what it may see,
    /// and what it pushes back that it may not read is withdrawn (``push(database:_:maximumDocumentBytes:readable:writable:)``).
    func channelTarget(_ request: PullRequest, database: String, readable: ChannelGrant)
        async throws(SyncError) -> (
            target: ChannelGrant, view: ChannelView
        )
    {
        let target = readable.intersection(request.subscription.map { ChannelGrant($0) } ?? .all)
        var view: ChannelView?
        if !request.view.isEmpty, let replica = request.replica, let key = try await viewKey() {
            view = try? ChannelView(unsealing: request.view, key: key, database: database, replica: replica)
        }
        guard request.after == 0 else {
            if let view { return (target, view) }
            // Whatever it holds, a reader of every channel may keep.
            guard target != .all else { return (target, .settled(.all)) }
            resyncsRequested += 1
            throw SyncError(
                .resync,
                "this replica's channel view is not one this server gave (it synced before channels, or the server's store changed): pull everything again"
            )
        }
        // A replica starting from 0 holds nothing the server sent, and starts in the target;
        // unless it resyncs: then it holds what its view says it may, and must first drop what
        // it may no longer see (else the resync would push it back as something the server
        // lacks). It surely holds nothing: the resync pulls everything again.
        guard request.resyncingFrom != nil, target != .all, let view else {
            return (target, .settled(target))
        }
        // A pass under way goes on; a replica already in the target has nothing to drop.
        if view.pass != nil || view == .settled(target) { return (target, view) }
        return (target, ChannelView(surely: .only([]), possibly: view.possibly, pass: nil))
    }

    /// The store's key for signing views, read once.
    func viewKey() async throws(SyncError) -> [UInt8]? {
        if let channelViewKey { return channelViewKey }
        // A store without a channel index serves only readers of every channel, for whom the
        // view says nothing: it is not signed.
        guard let indexed = store as? any ChannelIndexedStore else { return nil }
        do {
            let key = try await indexed.channelViewKey()
            channelViewKey = key
            return key
        } catch {
            throw SyncError(.unavailable, "store: \(error)")
        }
    }

    /// `view` signed for `replica` of `database`, as a page carries it.
    func seal(_ view: ChannelView, database: String, replica: ReplicaID?) async throws(SyncError) -> [UInt8] {
        guard let replica, let key = try await viewKey() else { return view.encoded }
        return view.sealed(key: key, database: database, replica: replica)
    }

    /// One page of a view change from `view` to `target` (see ``ChannelView``): documents the
    /// reader may now see and does not surely hold come whole; documents it may hold and may
    /// no longer see are listed as left. The cursor stays; the page's view carries the pass on,
    /// or settles on `target` when the pass is over.
    ///
    /// A document met at or below the cursor comes if the target covers it, the sure view does
    /// not and it is not deleted; it leaves if the possible view covers it and the target does
    /// not. A document met above the cursor (changed since) leaves if the target does not cover
    /// it; if it does, the forward pull that follows brings it.
    /// - Complexity: one scan of at most `limit` index entries and one read of the records sent.
    func viewChangePage(
        database: String, _ request: PullRequest, target: ChannelGrant, view: ChannelView,
        store: any ChannelIndexedStore
    ) async throws(SyncError) -> PullResponse {
        var surely = view.surely
        var possibly = view.possibly
        var after: UInt64 = 0
        if let pass = view.pass {
            if pass.target == target {
                after = pass.after
            } else {
                surely = surely.intersection(pass.target)
                possibly = possibly.union(pass.target)
            }
        }
        let settled = PullResponse(
            changes: [], cursor: request.after, cursorTag: request.afterTag, hasMore: true,
            channels: .init(
                view: try await seal(.settled(target), database: database, replica: request.replica),
                isViewChange: true))
        // The channels whose documents may need to come or go: those the replica may hold or
        // may now see, but not those it surely holds and still may see.
        let unchanged = surely.intersection(target)
        let scope: Set<String>?
        switch (possibly.union(target), unchanged) {
        case (_, .all): return settled
        case (.all, _): scope = nil
        case (.only(let names), .only(let kept)): scope = names.subtracting(kept)
        }
        if let scope, scope.isEmpty { return settled }
        let scan: (entries: [ChannelScanEntry], hasMore: Bool)
        do {
            scan = try await store.channelScan(
                database: database, channels: scope, after: after,
                limit: Int(min(request.maximumChanges, UInt32(limits.maximumChanges))))
        } catch {
            throw SyncError(.unavailable, "store: \(error)")
        }
        // Each entry met, in position order: to come, to leave, or nothing to do.
        var decided = [(entry: ChannelScanEntry, comes: Bool?)]()
        for entry in scan.entries {
            let visible = target.covers(entry.channels)
            if entry.sequence <= request.after {
                if visible && !surely.covers(entry.channels) && !entry.deleted {
                    decided.append((entry, true))
                } else if !visible && possibly.covers(entry.channels) {
                    decided.append((entry, false))
                } else {
                    decided.append((entry, nil))
                }
            } else {
                decided.append((entry, visible ? nil : false))
            }
        }
        let wanted = decided.filter { $0.comes == true }.map(\.entry.key)
        let records: [DocumentKey: DocumentRecord]
        do {
            records = wanted.isEmpty ? [:] : try await store.records(database: database, keys: wanted)
        } catch {
            throw SyncError(.unavailable, "store: \(error)")
        }
        var changes = [(change: WireChange, left: Bool)]()
        var bytes = 0
        var reached = after
        var cut = false
        for (entry, comes) in decided {
            switch comes {
            case true?:
                // The record is read after the scan: a push since may have moved the document
                // out of the target (it then leaves, or was never here) or deleted it (the
                // forward pull brings the deletion). Send it only as the target may see it.
                if let record = records[entry.key], !record.isDeleted,
                    target.covers(projector.channelSet(database: database, key: entry.key, record: record))
                {
                    let size = record.encoded().count
                    // A page holds about `maximumBytes` of records (at least one): the pass goes on
                    // from the last entry it took.
                    if !changes.isEmpty && bytes + size > Int(request.maximumBytes) {
                        cut = true
                        break
                    }
                    bytes += size
                    changes.append(
                        (
                            WireChange(
                                sequence: entry.position, key: Self.wireKey(entry.key), record: record), false
                        ))
                } else {
                    changes.append(
                        (
                            WireChange(
                                sequence: entry.position, key: Self.wireKey(entry.key),
                                record: Self.leftRecord), true
                        ))
                }
            case false?:
                changes.append(
                    (
                        WireChange(
                            sequence: entry.position, key: Self.wireKey(entry.key), record: Self.leftRecord),
                        true
                    ))
            case nil:
                break
            }
            if cut { break }
            reached = entry.position
        }
        let next =
            scan.hasMore || cut
            ? ChannelView(surely: surely, possibly: possibly, pass: (target, reached)) : .settled(target)
        return PullResponse(
            changes: changes.map(\.change), cursor: request.after, cursorTag: request.afterTag, hasMore: true,
            channels: .init(
                view: try await seal(next, database: database, replica: request.replica),
                left: changes.indices.filter { changes[$0].left },
                isViewChange: true))
    }

    static func wireKey(_ key: DocumentKey) -> WireKey {
        WireKey(collection: key.collection.rawValue, id: key.id.rawValue)
    }

    /// Whether a writer limited to `writable` may change `local` into `merged` (stored as `key`):
    /// the document must be in a channel it may write before the change (if it existed: a
    /// deleted one by the fields its tombstone kept, if they put it in any channel) and after
    /// it (unless the change deletes it).
    nonisolated func mayWrite(
        _ writable: ChannelGrant, database: String, key: DocumentKey, local: DocumentRecord?,
        merged: DocumentRecord
    ) -> Bool {
        guard writable != .all, merged != local else { return true }
        if let local {
            let before = projector.channelSet(database: database, key: key, record: local.asLive)
            if (!local.isDeleted || !before.isEmpty) && !writable.covers(before) { return false }
        }
        if !merged.isDeleted,
            !writable.covers(projector.channelSet(database: database, key: key, record: merged))
        {
            return false
        }
        return true
    }
}

extension DocumentRecord {
    /// The record as if not deleted: a tombstone's fields (those an edit concurrent with the
    /// deletion kept) as a live document shows them, to tell which channels they would put it in.
    var asLive: DocumentRecord {
        guard isDeleted else { return self }
        return DocumentRecord(
            body: body, deletion: LWWRegister(false, stamp: deletion.stamp), version: version)
    }
}
