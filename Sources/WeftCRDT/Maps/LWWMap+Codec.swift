extension LWWMap: BinaryCodable {
    @inlinable
    public static var binaryTypeTag: UInt8 { 8 }

    /// The longest key prefix an entry may take from the previous key (64 bytes).
    @inlinable
    public static var maximumSharedKeyPrefix: Int { 64 }

    /// Layout (see `Docs/Encoding.md`): the entry count, then entries sorted by
    /// (replica, wall, counter, key bytes), each as:
    ///
    /// - a header varint `payload << 3 | replicaChanged << 2 | wallChanged << 1 | removed`,
    ///   where `payload` is the counter minus the previous entry's counter when neither the
    ///   replica nor the wall time changed, and the counter itself otherwise;
    /// - the replica reference, if it changed;
    /// - the wall time, if it changed: the increase over the previous entry's wall time when
    ///   the replica is unchanged, otherwise absolute;
    /// - the key, front-coded against the previous key: shared-prefix length (omitted for
    ///   the first entry), suffix length, suffix bytes. Keys are encoded on their own;
    /// - the value, unless the entry is a removal.
    ///
    /// The shared prefix is capped at ``maximumSharedKeyPrefix`` bytes, so every entry of the
    /// input rebuilds at most that many bytes it does not carry itself: decoding allocates a
    /// bounded multiple of the input, whatever the bytes.
    ///
    /// Sorting by stamp makes the stamp deltas small, and maps built in one go get keys
    /// with long shared prefixes, so a 100,000-key map costs about 7 bytes a key.
    @inlinable
    public func encode(to writer: inout BinaryWriter) {
        // All keys go into one buffer; rows sort on integers, and on key bytes only for equal stamps.
        var keyBuffer = BinaryWriter(reservingCapacity: entries.count &* 8)
        var rows = [LWWMapSortRow<Key, Value>]()
        rows.reserveCapacity(entries.count)
        // The replicas named, ranked in identifier order; runs of one replica (the usual map)
        // are found without hashing every entry's.
        var named = Set<ReplicaID>()
        var lastNamed: ReplicaID?
        for entry in entries.values where entry.stamp.replica != lastNamed {
            lastNamed = entry.stamp.replica
            named.insert(entry.stamp.replica)
        }
        var ranks = [ReplicaID: UInt32]()
        for replica in named.sorted() { ranks[replica] = UInt32(ranks.count) }
        var lastReplica: ReplicaID?
        var lastRank: UInt32 = 0
        var lowestWall = UInt64.max
        var highestWall: UInt64 = 0
        var highestCounter: UInt32 = 0
        for (key, entry) in entries {
            let keyStart = keyBuffer.bytes.count
            key.encode(to: &keyBuffer)
            if entry.stamp.replica != lastReplica {
                lastReplica = entry.stamp.replica
                lastRank = ranks[entry.stamp.replica] ?? 0
            }
            lowestWall = Swift.min(lowestWall, entry.stamp.wallMilliseconds)
            highestWall = Swift.max(highestWall, entry.stamp.wallMilliseconds)
            highestCounter = Swift.max(highestCounter, entry.stamp.counter)
            rows.append(
                LWWMapSortRow(rank: lastRank, keyStart: keyStart, keyEnd: keyBuffer.bytes.count, entry: entry))
        }
        let keys = keyBuffer.bytes
        // A large map is ordered by a radix sort of its stamps packed with each row's position
        // (equal stamps, which only one edit's keys share, then by key bytes), and its rows are
        // read in that order; a stable sort of the rows themselves moved every row at every
        // merge pass. Stamps that do not pack into 64 bits take that sort.
        var order = [Int]()
        if rows.count >= 256 {
            let positionBits = bitWidth(of: UInt64(rows.count - 1))
            let counterBits = bitWidth(of: UInt64(highestCounter))
            let wallBits = bitWidth(of: highestWall &- lowestWall)
            let rankBits = bitWidth(of: UInt64(Swift.max(ranks.count - 1, 0)))
            if positionBits + counterBits + wallBits + rankBits <= 64 {
                var packed = [UInt64](repeating: 0, count: rows.count)
                for position in rows.indices {
                    let stamp = rows[position].entry.stamp
                    packed[position] =
                        UInt64(rows[position].rank) << UInt64(wallBits + counterBits + positionBits)
                        | (stamp.wallMilliseconds - lowestWall) << UInt64(counterBits + positionBits)
                        | UInt64(stamp.counter) << UInt64(positionBits) | UInt64(position)
                }
                radixSortPacked(&packed, bits: positionBits + counterBits + wallBits + rankBits)
                let mask: UInt64 = (1 << UInt64(positionBits)) - 1
                order = packed.map { Int(truncatingIfNeeded: $0 & mask) }
                keys.withUnsafeBufferPointer { keyBytes in
                    var start = 0
                    while start < packed.count {
                        var end = start + 1
                        while end < packed.count && packed[end] >> UInt64(positionBits) == packed[start] >> UInt64(positionBits) {
                            end += 1
                        }
                        if end - start > 1 {
                            order[start..<end].sort { lhs, rhs in
                                keyBytes[rows[lhs].keyStart..<rows[lhs].keyEnd].lexicographicallyPrecedes(
                                    keyBytes[rows[rhs].keyStart..<rows[rhs].keyEnd])
                            }
                        }
                        start = end
                    }
                }
            }
        }
        if order.isEmpty {
            keys.withUnsafeBufferPointer { keyBytes in
                rows.sort { lhs, rhs in
                    if lhs.rank != rhs.rank { return lhs.rank < rhs.rank }
                    let a = lhs.entry.stamp
                    let b = rhs.entry.stamp
                    if a.wallMilliseconds != b.wallMilliseconds { return a.wallMilliseconds < b.wallMilliseconds }
                    if a.counter != b.counter { return a.counter < b.counter }
                    return keyBytes[lhs.keyStart..<lhs.keyEnd].lexicographicallyPrecedes(keyBytes[rhs.keyStart..<rhs.keyEnd])
                }
            }
            order = Array(rows.indices)
        }
        writer.writeVarint(UInt64(rows.count))
        var previous: (row: LWWMapSortRow<Key, Value>, stamp: HLCTimestamp)?
        for position in order {
            let row = rows[position]
            let stamp = row.entry.stamp
            let value = row.entry.value
            let removed: UInt64 = value == nil ? 1 : 0
            if let previous {
                let replicaChanged = stamp.replica != previous.stamp.replica
                let wallChanged = replicaChanged || stamp.wallMilliseconds != previous.stamp.wallMilliseconds
                let payload = (replicaChanged || wallChanged)
                    ? UInt64(stamp.counter) : UInt64(stamp.counter - previous.stamp.counter)
                writer.writeVarint(payload << 3 | (replicaChanged ? 4 : 0) | (wallChanged ? 2 : 0) | removed)
                if replicaChanged { writer.writeReplica(stamp.replica) }
                if wallChanged {
                    writer.writeVarint(
                        replicaChanged
                            ? stamp.wallMilliseconds : stamp.wallMilliseconds - previous.stamp.wallMilliseconds)
                }
                let previousKey = keys[previous.row.keyStart..<previous.row.keyEnd]
                let key = keys[row.keyStart..<row.keyEnd]
                let shared = zip(previousKey, key).prefix(Self.maximumSharedKeyPrefix).prefix { $0 == $1 }.count
                writer.writeVarint(UInt64(shared))
                writer.writeLengthPrefixed(key.dropFirst(shared))
            } else {
                writer.writeVarint(UInt64(stamp.counter) << 3 | 4 | 2 | removed)
                writer.writeReplica(stamp.replica)
                writer.writeVarint(stamp.wallMilliseconds)
                writer.writeLengthPrefixed(keys[row.keyStart..<row.keyEnd])
            }
            if let value { value.encode(to: &writer) }
            previous = (row, stamp)
        }
    }

    @inlinable
    public init(from reader: inout BinaryReader) throws(CodecError) {
        let count = try reader.readCount(minimumElementSize: 3)
        var entries = [Key: Entry](minimumCapacity: count)
        var decoder = LWWMapEntryDecoder<Key, Value>()
        for _ in 0..<count {
            let (key, entry, start) = try decoder.next(&reader)
            guard entries.updateValue(entry, forKey: key) == nil else {
                throw .invariantViolation(at: start, "key appears twice")
            }
        }
        self.init()
        self.entries = entries
    }

    /// Joins an encoded map into this one without building the decoded map first.
    ///
    /// Equivalent to `merge(try LWWMap(encoded: bytes))` and exactly as strict: every check of
    /// the decoder runs, and on any error the map is unchanged. It saves one hash-table insert
    /// per key, which is most of the cost of applying a large update.
    ///
    /// - Complexity: O(*m*) in the entries of the encoded map.
    @inlinable
    public mutating func merge(encoded bytes: [UInt8], limits: DecodingLimits = .default) throws(CodecError) {
        var reader = try BinaryFormat.openEnvelope(bytes, for: Self.self, limits: limits)
        let count = try reader.readCount(minimumElementSize: 3)
        var decoder = LWWMapEntryDecoder<Key, Value>()
        // Validate everything and find each key's slot first; change nothing until the end.
        var updates = [(Dictionary<Key, Entry>.Index, Entry)]()
        // Keys already present must not repeat in the input: the slots they matched go through
        // a filter that is exact in the end (see `RepeatedSlotFilter`).
        var slots = RepeatedSlotFilter<Dictionary<Key, Entry>.Index>(expected: Swift.min(count, entries.count))
        var inserts = [Key: Entry]()
        for _ in 0..<count {
            let (key, entry, start) = try decoder.next(&reader)
            if let index = entries.index(forKey: key) {
                slots.add(index)
                if entries.values[index].isBeaten(by: entry) { updates.append((index, entry)) }
            } else {
                guard inserts.updateValue(entry, forKey: key) == nil else {
                    throw .invariantViolation(at: start, "key appears twice")
                }
            }
        }
        if slots.hasRepeats() { throw .invariantViolation(at: reader.offset, "key appears twice") }
        guard reader.isAtEnd else { throw .trailingBytes(at: reader.offset, count: reader.remaining) }
        for (index, entry) in updates { entries.values[index] = entry }
        if entries.isEmpty {
            entries = inserts
        } else {
            for (key, entry) in inserts { entries[key] = entry }
        }
    }
}

/// Reads the entries of an encoded ``LWWMap`` one at a time, checking the canonical order.
@usableFromInline
struct LWWMapEntryDecoder<Key: Hashable & BinaryCodable & Sendable, Value: BinaryCodable & Equatable & Sendable> {
    @usableFromInline typealias Entry = LWWMap<Key, Value>.Entry
    @usableFromInline var key: [UInt8] = []
    @usableFromInline var previous: HLCTimestamp?

    @inlinable
    init() {}

    /// The next key and entry, and the offset where the entry started.
    @inlinable
    mutating func next(_ reader: inout BinaryReader) throws(CodecError) -> (Key, Entry, Int) {
        let start = reader.offset
        let header = try reader.readVarint()
        let removed = header & 1 == 1
        let wallChanged = header & 2 != 0
        let replicaChanged = header & 4 != 0
        let payload = header >> 3
        let stamp: HLCTimestamp
        if let previous = previous {
        guard !replicaChanged || wallChanged else {
            throw .nonCanonical(at: start, "a replica change must also mark the wall time changed")
        }
        let replica = replicaChanged ? try reader.readReplica() : previous.replica
        if replicaChanged && !(previous.replica < replica) {
            throw .nonCanonical(at: start, "entries out of replica order")
        }
        var wall = previous.wallMilliseconds
        var counter: UInt64
        if wallChanged {
            let wallStart = reader.offset
            let raw = try reader.readVarint()
            if replicaChanged {
                wall = raw
            } else {
                guard raw > 0 else { throw .nonCanonical(at: wallStart, "a wall change of zero") }
                let (sum, overflow) = wall.addingReportingOverflow(raw)
                guard !overflow else { throw .valueOutOfRange(at: wallStart, "wall time overflows") }
                wall = sum
            }
            counter = payload
        } else {
            counter = UInt64(previous.counter) &+ payload
        }
        guard let counter32 = UInt32(exactly: counter) else {
            throw .valueOutOfRange(at: start, "stamp counter \(counter) does not fit 32 bits")
        }
        stamp = HLCTimestamp(wallMilliseconds: wall, counter: counter32, replica: replica)
        let sharedStart = reader.offset
        let sharedRaw = try reader.readVarint()
        guard sharedRaw <= UInt64(key.count) else {
            throw .invariantViolation(at: sharedStart, "shared key prefix longer than the previous key")
        }
        let cap = LWWMap<Key, Value>.maximumSharedKeyPrefix
        guard sharedRaw <= UInt64(cap) else {
            throw .nonCanonical(at: sharedStart, "shared key prefix longer than \(cap) bytes")
        }
        let shared = Int(sharedRaw)
        let sameStamp = !wallChanged && payload == 0
        // Only entries with equal stamps are ordered by key; keep the old key for that rare check.
        let previousKey = sameStamp ? key : []
        let previousByte: UInt8? = shared < key.count ? key[shared] : nil
        key.removeLast(key.count - shared)
        try reader.readLengthPrefixed(appendingTo: &key)
        if shared < cap, let previousByte, shared < key.count, key[shared] == previousByte {
            throw .nonCanonical(at: sharedStart, "shared key prefix is not the longest one")
        }
        if sameStamp && !previousKey.lexicographicallyPrecedes(key) {
            throw .nonCanonical(at: start, "entries out of order")
        }
        } else {
        guard replicaChanged && wallChanged else {
            throw .nonCanonical(at: start, "the first entry must carry a replica and a wall time")
        }
        guard let counter32 = UInt32(exactly: payload) else {
            throw .valueOutOfRange(at: start, "stamp counter \(payload) does not fit 32 bits")
        }
        let replica = try reader.readReplica()
        let wall = try reader.readVarint()
        stamp = HLCTimestamp(wallMilliseconds: wall, counter: counter32, replica: replica)
        try reader.readLengthPrefixed(appendingTo: &key)
        }
        let decodedKey: Key
        do {
            decodedKey = try Key.decodeStandalone(key, limits: reader.limits)
        } catch {
            // Keys are decoded on their own; report the key's error at the entry's offset.
            if error.kind == "trailingBytes" { throw .invariantViolation(at: start, "key has trailing bytes") }
            throw error.relocated(to: start)
        }
        let value: Value? = removed ? nil : try Value(from: &reader)
        previous = stamp
        return (decodedKey, Entry(stamp: stamp, value: value), start)
    }
}

/// One entry of ``LWWMap``'s encoder: its sort key (replica rank, stamp, key bytes) and payload.
@usableFromInline
struct LWWMapSortRow<Key: Hashable & BinaryCodable & Sendable, Value: BinaryCodable & Equatable & Sendable> {
    @usableFromInline var rank: UInt32
    @usableFromInline var keyStart: Int
    @usableFromInline var keyEnd: Int
    @usableFromInline var entry: LWWMap<Key, Value>.Entry

    @inlinable
    init(rank: UInt32, keyStart: Int, keyEnd: Int, entry: LWWMap<Key, Value>.Entry) {
        self.rank = rank
        self.keyStart = keyStart
        self.keyEnd = keyEnd
        self.entry = entry
    }
}
