extension LWWMap: BinaryCodable {
    public static var binaryTypeTag: UInt8 { 8 }

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
    /// Sorting by stamp makes the stamp deltas small, and maps built in one go get keys
    /// with long shared prefixes, so a 100,000-key map costs about 7 bytes a key.
    public func encode(to writer: inout BinaryWriter) {
        var rows = [(key: [UInt8], entry: Entry)]()
        rows.reserveCapacity(entries.count)
        for (key, entry) in entries {
            var keyWriter = BinaryWriter(reservingCapacity: 16)
            key.encode(to: &keyWriter)
            rows.append((keyWriter.bytes, entry))
        }
        rows.sort { lhs, rhs in
            let a = lhs.entry.stamp
            let b = rhs.entry.stamp
            if a.replica != b.replica { return a.replica < b.replica }
            if a.wallMilliseconds != b.wallMilliseconds { return a.wallMilliseconds < b.wallMilliseconds }
            if a.counter != b.counter { return a.counter < b.counter }
            return lhs.key.lexicographicallyPrecedes(rhs.key)
        }
        writer.writeVarint(UInt64(rows.count))
        var previous: (key: [UInt8], stamp: HLCTimestamp)?
        for row in rows {
            let stamp = row.entry.stamp
            let removed: UInt64 = row.entry.value == nil ? 1 : 0
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
                let shared = zip(previous.key, row.key).prefix { $0 == $1 }.count
                writer.writeVarint(UInt64(shared))
                writer.writeLengthPrefixed(row.key[shared...])
            } else {
                writer.writeVarint(UInt64(stamp.counter) << 3 | 4 | 2 | removed)
                writer.writeReplica(stamp.replica)
                writer.writeVarint(stamp.wallMilliseconds)
                writer.writeLengthPrefixed(row.key)
            }
            if let value = row.entry.value { value.encode(to: &writer) }
            previous = (row.key, stamp)
        }
    }

    public init(from reader: inout BinaryReader) throws(CodecError) {
        let count = try reader.readCount(minimumElementSize: 3)
        var entries = [Key: Entry](minimumCapacity: count)
        var previousKey = [UInt8]()
        var previousStamp: HLCTimestamp?
        var keyBytes = [UInt8]()
        for _ in 0..<count {
            let start = reader.offset
            let header = try reader.readVarint()
            let removed = header & 1 == 1
            let wallChanged = header & 2 != 0
            let replicaChanged = header & 4 != 0
            let payload = header >> 3
            let stamp: HLCTimestamp
            if let previous = previousStamp {
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
                    counter = UInt64(previous.counter) + payload
                }
                guard let counter32 = UInt32(exactly: counter) else {
                    throw .valueOutOfRange(at: start, "stamp counter \(counter) does not fit 32 bits")
                }
                stamp = HLCTimestamp(wallMilliseconds: wall, counter: counter32, replica: replica)
                let sharedStart = reader.offset
                let shared = try reader.readVarint()
                guard shared <= UInt64(previousKey.count) else {
                    throw .invariantViolation(at: sharedStart, "shared key prefix longer than the previous key")
                }
                keyBytes.removeAll(keepingCapacity: true)
                keyBytes.append(contentsOf: previousKey[0..<Int(shared)])
                keyBytes.append(contentsOf: try reader.readLengthPrefixed())
                if shared < UInt64(previousKey.count), shared < UInt64(keyBytes.count),
                    keyBytes[Int(shared)] == previousKey[Int(shared)]
                {
                    throw .nonCanonical(at: sharedStart, "shared key prefix is not the longest one")
                }
                let order: Bool
                if stamp.replica != previous.replica || stamp.wallMilliseconds != previous.wallMilliseconds
                    || stamp.counter != previous.counter
                {
                    order = true
                } else {
                    order = previousKey.lexicographicallyPrecedes(keyBytes)
                }
                guard order else { throw .nonCanonical(at: start, "entries out of order") }
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
                keyBytes = Array(try reader.readLengthPrefixed())
            }
            var keyReader = BinaryReader(keyBytes, limits: reader.limits)
            let keyStart = reader.offset
            let key = try Key(from: &keyReader)
            guard keyReader.isAtEnd else { throw .invariantViolation(at: keyStart, "key has trailing bytes") }
            let value: Value? = removed ? nil : try Value(from: &reader)
            guard entries.updateValue(Entry(stamp: stamp, value: value), forKey: key) == nil else {
                throw .invariantViolation(at: start, "key appears twice")
            }
            swap(&previousKey, &keyBytes)
            previousStamp = stamp
        }
        self.init()
        self.entries = entries
    }
}
