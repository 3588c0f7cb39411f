import Foundation
import Weft
import WeftCRDT

/// A page of the changes a reader with some channels may see (``ChannelIndexedStore``).
public struct ChannelPage: Sendable {
    /// One entry of the page.
    public enum Entry: Sendable, Hashable {
        /// A document in one of the reader's channels changed: its latest logged change.
        case change(LoggedChange)
        /// A document left the reader's channels at `sequence` (the change that moved it, whose
        /// entry had `tag`), and is in none of them now.
        case left(key: DocumentKey, sequence: UInt64, tag: UInt64)
    }

    /// The entries, in increasing sequence, one per document.
    public var entries: [Entry]
    /// Whether more entries follow the last.
    public var hasMore: Bool
    /// The log's last sequence and that entry's tag when the page was read (0 and 0 for an
    /// empty log): a page with nothing more ends there, since the reader has seen every change
    /// up to it that it may see.
    public var head: (sequence: UInt64, tag: UInt64)

    /// Creates a page.
    public init(entries: [Entry], hasMore: Bool, head: (sequence: UInt64, tag: UInt64)) {
        self.entries = entries
        self.hasMore = hasMore
        self.head = head
    }
}

/// A document a view change looks at (``ChannelIndexedStore/channelScan(database:channels:after:limit:)``).
public struct ChannelScanEntry: Sendable, Hashable {
    /// The document.
    public let key: DocumentKey
    /// Where the scan met it: the sequence of its index entry (the pass continues after it).
    public let position: UInt64
    /// The sequence of the document's latest logged change.
    public let sequence: UInt64
    /// The channels the document is in now.
    public let channels: Set<String>
    /// Whether the document is deleted.
    public let deleted: Bool

    /// `entries` with each document once, at its latest position, in increasing position (a
    /// scan meets a document once per channel of the scope it has an entry in).
    public static func onePerDocument(_ entries: [ChannelScanEntry]) -> [ChannelScanEntry] {
        var latest = [DocumentKey: ChannelScanEntry]()
        for entry in entries where latest[entry.key].map({ $0.position < entry.position }) ?? true {
            latest[entry.key] = entry
        }
        return latest.values.sorted { $0.position < $1.position }
    }

    public init(key: DocumentKey, position: UInt64, sequence: UInt64, channels: Set<String>, deleted: Bool) {
        self.key = key
        self.position = position
        self.sequence = sequence
        self.channels = channels
        self.deleted = deleted
    }
}

/// A central store that keeps each document's channels and an index of them, so that a reader
/// with some channels pulls in proportion to what it may see.
///
/// ## Contract
///
/// 1. In the transaction that logs a change of a document, the store computes the document's
///    channels with the push's projector (`DocumentProjector.channels(database:key:record:)`;
///    a deleted document keeps the channels it had) and keeps them beside the record. In the
///    index, each of those channels gets an entry for the document at the change's sequence
///    (with its tag), marked *present*; each channel the document was in before and is not now
///    gets its entry moved to that sequence, marked *departed*. A projector that tracks no
///    channels writes none (`NULL`: the document is in no channel).
/// 2. ``channelChanges(database:channels:after:limit:maxBytes:)`` answers, in increasing
///    sequence, the documents with an index entry in `channels` after `after`, once each: as
///    a ``ChannelPage/Entry/change(_:)`` (its latest logged change) if one of those entries is
///    present, else as ``ChannelPage/Entry/left(key:sequence:tag:)`` at its latest departure,
///    and only if the document is in none of `channels` now. At most `limit` entries and
///    about `maxBytes` of records (at least one entry); the log's head, read first, bounds
///    the page, so that a page with nothing more may end at it.
/// 3. ``channelScan(database:channels:after:limit:)`` answers the documents with an index
///    entry (present or departed) in `channels` after `after`, or, for `nil`, every document
///    with a log entry after it, in increasing position, once each, with their current
///    channels and whether they are deleted.
/// 4. ``records(database:keys:)`` answers the current records of those of `keys` that exist.
/// 5. ``assignChannels(after:limit:onlyUnassigned:projector:)`` looks at the documents of every
///    database in order of (database, collection, id) after `after`, at most `limit` of them,
///    or, with `onlyUnassigned`, at those whose channels were never assigned (stored before the
///    store kept channels, or while the projector tracked none). Each whose channels differ from
///    what the projector gives now (unassigned included; a deleted document keeps those it
///    had, or none) gets them, and is logged again as it is, at a new sequence, with the index
///    written as rule 1 says: readers of the channels it joined pull it, readers of those it
///    left are told. It answers how many it logged again and the last document looked at
///    (`nil` when none was left). A push of the same document meanwhile is ordered with it.
/// 6. ``channelFingerprint()`` answers what ``saveChannelFingerprint(_:)`` last kept (`nil`
///    before), durably.
/// 7. ``channelViewKey()`` answers the same 32 bytes every time, for every object over the same
///    store, made at random the first time.
/// 8. When a database forgets tombstones (`TombstoneCollectingStore`), the store also removes its
///    departed entries at or below the sequence it forgot through, in the same step: a reader past
///    them has been told, and a reader behind them is too far behind and resyncs (whose pushes of
///    documents it may no longer read are withdrawn).
public protocol ChannelIndexedStore: CentralStore {
    /// The documents a reader with `channels` may see, changed or gone after `after` (contract
    /// point 2).
    /// - Complexity: O(*e* log *e*) for the *e* index entries read, which are the reader's.
    func channelChanges(database: String, channels: Set<String>, after: UInt64, limit: Int, maxBytes: Int)
        async throws(WeftError)
        -> ChannelPage

    /// The documents a view change looks at (contract point 3).
    /// - Complexity: O(`limit`) index entries read (each with its document's row).
    func channelScan(database: String, channels: Set<String>?, after: UInt64, limit: Int)
        async throws(WeftError)
        -> (entries: [ChannelScanEntry], hasMore: Bool)

    /// The current records of `keys` (contract point 4).
    func records(database: String, keys: [DocumentKey]) async throws(WeftError) -> [DocumentKey:
        DocumentRecord]

    /// One step of bringing stored channels in line with the projector's (contract point 5).
    /// - Complexity: O(`limit`) records decoded and projected.
    func assignChannels(
        after: ChannelAssignmentPosition?, limit: Int, onlyUnassigned: Bool, projector: DocumentProjector
    )
        async throws(WeftError) -> (assigned: Int, last: ChannelAssignmentPosition?)

    /// The fingerprint of the channel templates the documents' channels were last brought in
    /// line with (contract point 6).
    func channelFingerprint() async throws(WeftError) -> Int64?

    /// Keeps `fingerprint` (contract point 6).
    func saveChannelFingerprint(_ fingerprint: Int64) async throws(WeftError)

    /// The channel templates a server last kept with ``saveChannelTemplates(_:)``, for other
    /// writers of the same store (a replica writing straight into PostgreSQL), so that every
    /// writer computes the same channels; `nil` if none were kept.
    func channelTemplates() async throws(WeftError) -> ServerChannels?

    /// Keeps the server's channel templates in the store (see ``channelTemplates()``).
    func saveChannelTemplates(_ channels: ServerChannels) async throws(WeftError)

    /// The store's secret for signing the channel views it hands replicas (32 random bytes,
    /// made the first time and then the same for every server of the store), so that no client
    /// can forge a view that claims channels it never had.
    func channelViewKey() async throws(WeftError) -> [UInt8]
}

extension ChannelIndexedStore {
    /// A store no other writer shares keeps no templates.
    public func channelTemplates() async throws(WeftError) -> ServerChannels? { nil }

    /// A store no other writer shares keeps no templates.
    public func saveChannelTemplates(_ channels: ServerChannels) async throws(WeftError) {}
}

extension ServerChannels {
    /// The templates as JSON text: an object of collection names and their templates.
    public var text: String {
        JSONValue.object(
            Dictionary(
                uniqueKeysWithValues: collections.map {
                    ($0.key.rawValue, JSONValue.array($0.value.map { .string($0.description) }))
                })
        ).text
    }

    /// The templates ``text`` wrote; `nil` for text it could not have written.
    public init?(text: String) {
        guard let object = try? JSONDecoder().decode([String: [String]].self, from: Data(text.utf8)) else {
            return nil
        }
        var collections = [CollectionName: [ChannelTemplate]]()
        for (name, templates) in object {
            guard let collection = try? CollectionName(name) else { return nil }
            let parsed = templates.compactMap(ChannelTemplate.init)
            guard parsed.count == templates.count else { return nil }
            collections[collection] = parsed
        }
        self.init(collections)
    }
}

/// Where a pass of ``ChannelIndexedStore/assignChannels(after:limit:onlyUnassigned:projector:)``
/// got to.
public struct ChannelAssignmentPosition: Hashable, Sendable {
    /// The database.
    public let database: String
    /// The document.
    public let key: DocumentKey

    public init(database: String, key: DocumentKey) {
        self.database = database
        self.key = key
    }
}

extension ServerChannels {
    /// A fingerprint of the templates (FNV-1a 64 of their canonical text): a store compares it
    /// with the one its documents' channels were assigned under. 0 stands for no channels.
    public var fingerprint: Int64 {
        guard !collections.isEmpty else { return 0 }
        let text = collections.map { ($0.key.rawValue, $0.value.map(\.description)) }.sorted { $0.0 < $1.0 }
            .map { $0.0 + "\u{1F}" + $0.1.joined(separator: "\u{1E}") }.joined(separator: "\u{1D}")
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return Int64(bitPattern: hash == 0 ? 1 : hash)
    }
}
