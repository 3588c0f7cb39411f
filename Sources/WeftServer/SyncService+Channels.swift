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

    /// Decodes a view this server gave; throws for bytes no server gave.
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
    /// its subscription) and the view it sends back, read as a settled view of every channel if
    /// it has none yet (a replica that synced before channels: it may hold anything).
    static func channelTarget(_ request: PullRequest, readable: ChannelGrant) throws(SyncError) -> (
        target: ChannelGrant, view: ChannelView
    ) {
        let target = readable.intersection(request.subscription.map { ChannelGrant($0) } ?? .all)
        let view: ChannelView
        do {
            // No view yet: a replica that synced before channels, which may hold anything.
            view = request.view.isEmpty ? .settled(.all) : try ChannelView(decoding: request.view)
        } catch {
            throw SyncError(.rejected, "the pull's view is not one this server gave: \(error)")
        }
        guard request.after == 0 else { return (target, view) }
        // A replica starting from 0 holds nothing the server sent, and starts in the target;
        // unless it resyncs: then it holds what its view says it may, and must first drop what
        // it may no longer see (else the resync would push it back as something the server
        // lacks). It surely holds nothing: the resync pulls everything again.
        guard request.resyncingFrom != nil, target != .all else { return (target, .settled(target)) }
        // A pass under way goes on; a replica already in the target has nothing to drop.
        if view.pass != nil || view == .settled(target) { return (target, view) }
        return (target, ChannelView(surely: .only([]), possibly: view.possibly, pass: nil))
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
            channels: .init(view: ChannelView.settled(target).encoded, isViewChange: true))
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
        var coming = [ChannelScanEntry]()
        var leaving = [ChannelScanEntry]()
        for entry in scan.entries {
            let visible = target.covers(entry.channels)
            if entry.sequence <= request.after {
                if visible && !surely.covers(entry.channels) && !entry.deleted {
                    coming.append(entry)
                } else if !visible && possibly.covers(entry.channels) {
                    leaving.append(entry)
                }
            } else if !visible {
                leaving.append(entry)
            }
        }
        let records: [DocumentKey: DocumentRecord]
        do {
            records =
                coming.isEmpty ? [:] : try await store.records(database: database, keys: coming.map(\.key))
        } catch {
            throw SyncError(.unavailable, "store: \(error)")
        }
        var changes = [(position: UInt64, change: WireChange, left: Bool)]()
        for entry in coming {
            guard let record = records[entry.key] else { continue }
            changes.append(
                (
                    entry.position,
                    WireChange(sequence: entry.position, key: Self.wireKey(entry.key), record: record), false
                ))
        }
        for entry in leaving {
            changes.append(
                (
                    entry.position,
                    WireChange(
                        sequence: entry.position, key: Self.wireKey(entry.key), record: Self.leftRecord), true
                ))
        }
        changes.sort { $0.position < $1.position }
        let next =
            scan.hasMore
            ? ChannelView(
                surely: surely, possibly: possibly, pass: (target, scan.entries.last?.position ?? after))
            : .settled(target)
        return PullResponse(
            changes: changes.map(\.change), cursor: request.after, cursorTag: request.afterTag, hasMore: true,
            channels: .init(
                view: next.encoded, left: changes.indices.filter { changes[$0].left }, isViewChange: true))
    }

    static func wireKey(_ key: DocumentKey) -> WireKey {
        WireKey(collection: key.collection.rawValue, id: key.id.rawValue)
    }

    /// Whether a writer limited to `writable` may change `local` into `merged` (stored as `key`):
    /// the document must be in a channel it may write before the change (if it existed and was
    /// not deleted) and after it (unless the change deletes it).
    nonisolated func mayWrite(
        _ writable: ChannelGrant, database: String, key: DocumentKey, local: DocumentRecord?,
        merged: DocumentRecord
    ) -> Bool {
        guard writable != .all, merged != local else { return true }
        if let local, !local.isDeleted,
            !writable.covers(projector.channelSet(database: database, key: key, record: local))
        {
            return false
        }
        if !merged.isDeleted,
            !writable.covers(projector.channelSet(database: database, key: key, record: merged))
        {
            return false
        }
        return true
    }
}
