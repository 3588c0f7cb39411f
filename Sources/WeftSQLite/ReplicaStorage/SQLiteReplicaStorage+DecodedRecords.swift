import Synchronization
import Weft
import WeftCRDT

// Large records decoded once: a memo from a record's stored bytes to the decoded record.
extension SQLiteReplicaStorage {
    /// The decoded forms of the large records this storage read or wrote last, each with the
    /// exact bytes it was decoded from (or encoded to).
    ///
    /// A memo, not a cache of the database: an entry is used only when the bytes read from the
    /// row are byte for byte the bytes it holds, and then the record is what decoding them gives
    /// (the codec's round-trip laws). So an entry can never be stale: a row written since, by
    /// this storage, another connection or another process, holds other bytes and is decoded
    /// afresh. What it saves is the decode (25 ms for a 2.5 MB record of 100,000 fields) at the
    /// price of a comparison of the bytes (a fraction of a millisecond).
    ///
    /// Records below ``minimumBytes`` decode faster than they are worth remembering. An entry
    /// costs its bytes and its decoded form, about 8.5 times the bytes for a table of register
    /// fields (21.6 MB for a 2.55 MB record of 100,000 fields), counted as ``costFactor`` times
    /// the bytes; at most ``capacityBytes`` are held, the least recently used going first (two
    /// or three such documents).
    struct DecodedRecords: Sendable {
        static let minimumBytes = 256 << 10
        static let costFactor = 10
        static let capacityBytes = 64 << 20

        struct Entry: Sendable {
            var bytes: [UInt8]
            var record: DocumentRecord
            var lastUse: UInt64
        }

        var entries: [DocumentKey: Entry] = [:]
        var heldCost = 0
        var clock: UInt64 = 0
        /// How often a record was taken from the memo rather than decoded (for tests).
        var hits = 0

        /// The record decoded from `bytes`, if the memo holds exactly those bytes for `key`.
        mutating func record(for key: DocumentKey, bytes: UnsafeRawBufferPointer) -> DocumentRecord? {
            guard var entry = entries[key], entry.bytes.count == bytes.count else { return nil }
            let same = entry.bytes.withUnsafeBytes { held in held.elementsEqual(bytes) }
            guard same else { return nil }
            clock += 1
            entry.lastUse = clock
            entries[key] = entry
            hits += 1
            return entry.record
        }

        /// Remembers that `bytes` decode to `record` (the caller decoded or encoded them).
        mutating func remember(_ key: DocumentKey, bytes: [UInt8], record: DocumentRecord) {
            let cost = bytes.count * Self.costFactor
            guard bytes.count >= Self.minimumBytes, cost <= Self.capacityBytes else { return }
            if let old = entries.removeValue(forKey: key) { heldCost -= old.bytes.count * Self.costFactor }
            while heldCost + cost > Self.capacityBytes,
                let oldest = entries.min(by: { $0.value.lastUse < $1.value.lastUse })
            {
                heldCost -= oldest.value.bytes.count * Self.costFactor
                entries.removeValue(forKey: oldest.key)
            }
            clock += 1
            entries[key] = Entry(bytes: bytes, record: record, lastUse: clock)
            heldCost += cost
        }
    }

    /// How often a large record came from the memo instead of being decoded, since open.
    package var decodedRecordHits: Int { decodedRecords.withLock { $0.hits } }

    /// The record stored as `bytes` for `key`: from the memo if it holds exactly these bytes,
    /// else decoded (and remembered, if large).
    func decodeRecord(_ key: DocumentKey, bytes: [UInt8], _ what: @autoclosure () -> String) throws
        -> DocumentRecord
    {
        guard bytes.count >= DecodedRecords.minimumBytes else { return try Self.decodeRecord(bytes, what()) }
        let found = bytes.withUnsafeBytes { raw in decodedRecords.withLock { $0.record(for: key, bytes: raw) }
        }
        if let found { return found }
        let record = try Self.decodeRecord(bytes, what())
        decodedRecords.withLock { $0.remember(key, bytes: bytes, record: record) }
        return record
    }

    /// Remembers a large record this storage is writing as `bytes`.
    func rememberEncoded(_ key: DocumentKey, bytes: [UInt8], record: DocumentRecord) {
        guard bytes.count >= DecodedRecords.minimumBytes else { return }
        decodedRecords.withLock { $0.remember(key, bytes: bytes, record: record) }
    }
}
