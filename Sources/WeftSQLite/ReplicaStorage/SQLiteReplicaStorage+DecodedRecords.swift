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
        static let minimumBytes = 64 << 10
        static let costFactor = 10
        static let capacityBytes = 64 << 20

        struct Entry: Sendable {
            /// The stored bytes: a whole record's encoding, or a stub (``PartsStub``).
            var bytes: [UInt8]
            var record: DocumentRecord
            var lastUse: UInt64
            /// What the entry counts against ``capacityBytes``.
            var cost: Int
        }

        var entries: [DocumentKey: Entry] = [:]
        var heldCost = 0
        var clock: UInt64 = 0
        /// How often a record was taken from the memo rather than decoded (for tests).
        var hits = 0

        /// The record decoded from `bytes`, taken out of the memo, if it holds exactly those
        /// bytes for `key`: the caller then holds its only copy, and edits it in place.
        mutating func take(for key: DocumentKey, bytes: UnsafeRawBufferPointer) -> DocumentRecord? {
            guard let entry = entry(for: key, bytes: bytes) else { return nil }
            entries.removeValue(forKey: key)
            heldCost -= entry.cost
            return entry.record
        }

        /// The record decoded from `bytes`, if the memo holds exactly those bytes for `key`.
        mutating func record(for key: DocumentKey, bytes: UnsafeRawBufferPointer) -> DocumentRecord? {
            guard var entry = entry(for: key, bytes: bytes) else { return nil }
            clock += 1
            entry.lastUse = clock
            entries[key] = entry
            return entry.record
        }

        /// The entry for `key` if it holds exactly `bytes`, counted as a hit.
        private mutating func entry(for key: DocumentKey, bytes: UnsafeRawBufferPointer) -> Entry? {
            guard let entry = entries[key], entry.bytes.count == bytes.count,
                entry.bytes.withUnsafeBytes({ held in held.elementsEqual(bytes) })
            else { return nil }
            hits += 1
            return entry
        }

        /// Remembers that `bytes` decode to `record` (the caller decoded or encoded them), or,
        /// for a stub, that the parts it names join to `record`; `encodedBytes` is the size of
        /// the record's encoding (or of its parts), which decides whether it is worth keeping
        /// and what it costs.
        mutating func remember(_ key: DocumentKey, bytes: [UInt8], record: DocumentRecord, cost encodedBytes: Int? = nil) {
            let size = encodedBytes ?? bytes.count
            let cost = size * Self.costFactor
            guard size >= Self.minimumBytes, cost <= Self.capacityBytes else { return }
            if let old = entries.removeValue(forKey: key) { heldCost -= old.cost }
            while heldCost + cost > Self.capacityBytes,
                let oldest = entries.min(by: { $0.value.lastUse < $1.value.lastUse })
            {
                heldCost -= oldest.value.cost
                entries.removeValue(forKey: oldest.key)
            }
            clock += 1
            entries[key] = Entry(bytes: bytes, record: record, lastUse: clock, cost: cost)
            heldCost += cost
        }
    }

    /// How often a large record came from the memo instead of being decoded, since open.
    package var decodedRecordHits: Int { decodedRecords.withLock { $0.hits } }

    /// The record stored as `bytes` for `key`: from the memo if it holds exactly these bytes,
    /// else decoded (and remembered, if large).
    /// Not for stubs: ``storedRecord(_:_:bytes:taking:)`` resolves those. `taking` removes the
    /// record from the memo (and does not remember one decoded), so the caller holds its only
    /// copy.
    func decodeRecord(_ key: DocumentKey, bytes: [UInt8], taking: Bool = false, _ what: @autoclosure () -> String) throws
        -> DocumentRecord
    {
        guard bytes.count >= DecodedRecords.minimumBytes else { return try Self.decodeRecord(bytes, what()) }
        if let found = remembered(key, bytes: bytes, taking: taking) { return found }
        let record = try Self.decodeRecord(bytes, what())
        if !taking { decodedRecords.withLock { $0.remember(key, bytes: bytes, record: record) } }
        return record
    }

    /// The memo's record for exactly `bytes` (a whole record's or a stub's), taken out of it if
    /// `taking`.
    func remembered(_ key: DocumentKey, bytes: [UInt8], taking: Bool) -> DocumentRecord? {
        bytes.withUnsafeBytes { raw in
            decodedRecords.withLock { taking ? $0.take(for: key, bytes: raw) : $0.record(for: key, bytes: raw) }
        }
    }

    /// Remembers a large record this storage is writing as `bytes` (a whole encoding, or a stub
    /// whose parts hold `storedBytes`).
    func rememberEncoded(_ key: DocumentKey, bytes: [UInt8], record: DocumentRecord, storedBytes: Int? = nil) {
        guard (storedBytes ?? bytes.count) >= DecodedRecords.minimumBytes else {
            // A smaller record replaces nothing in the memo: an entry for the key holds other bytes.
            return
        }
        decodedRecords.withLock { $0.remember(key, bytes: bytes, record: record, cost: storedBytes) }
    }
}
