/// Writes Weft's binary format. See `Docs/Encoding.md` for the byte layout.
///
/// All integers are LEB128 variable-length (unsigned) or zig-zag then LEB128 (signed).
/// Replica identifiers are interned: the first time one is written it costs 17 bytes, after
/// that one or two.
public struct BinaryWriter: Sendable {
    /// The bytes written so far.
    public var bytes: [UInt8]
    /// The replicas written so far, in order: their index is their reference. Searched
    /// linearly while short (a record names few replicas), through `replicaIndex` beyond.
    @usableFromInline var replicasWritten: [ReplicaID] = []
    @usableFromInline var replicaIndex: [ReplicaID: Int] = [:]
    @usableFromInline static var linearReplicaSearchLimit: Int { 16 }
    /// The replica written last and its reference (0: none yet): most dots and stamps in a row
    /// name the same replica.
    @usableFromInline var lastReplica = ReplicaID(high: 0, low: 0)
    @usableFromInline var lastReference: UInt64 = 0

    /// Creates an empty writer.
    @inlinable
    public init(reservingCapacity capacity: Int = 64) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    /// Empties the writer, keeping its buffers, so one writer can encode many values in turn.
    @inlinable
    public mutating func reset() {
        bytes.removeAll(keepingCapacity: true)
        replicasWritten.removeAll(keepingCapacity: true)
        if !replicaIndex.isEmpty { replicaIndex.removeAll(keepingCapacity: true) }
        lastReference = 0
    }

    /// Writes one byte.
    @inlinable
    public mutating func writeByte(_ byte: UInt8) { bytes.append(byte) }

    /// Writes raw bytes.
    @inlinable
    public mutating func writeRaw(_ raw: some Sequence<UInt8>) { bytes.append(contentsOf: raw) }

    /// Writes an unsigned LEB128 integer (1 to 10 bytes).
    @inlinable
    public mutating func writeVarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    /// Writes a signed integer as zig-zag LEB128.
    @inlinable
    public mutating func writeSignedVarint(_ value: Int64) {
        writeVarint(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    }

    /// Writes a length-prefixed byte string.
    @inlinable
    public mutating func writeLengthPrefixed(_ raw: some Collection<UInt8>) {
        writeVarint(UInt64(raw.count))
        bytes.append(contentsOf: raw)
    }

    /// Writes a length-prefixed UTF-8 string.
    @inlinable
    public mutating func writeString(_ string: String) {
        var copy = string
        copy.withUTF8 { writeLengthPrefixed($0) }
    }

    /// Writes a 64-bit float as its 8 IEEE-754 bytes, little-endian.
    @inlinable
    public mutating func writeDouble(_ value: Double) {
        var bits = value.bitPattern
        for _ in 0..<8 {
            bytes.append(UInt8(truncatingIfNeeded: bits))
            bits >>= 8
        }
    }

    /// Writes a replica reference: `0` and the 16 bytes on first use, then `index + 1`.
    @inlinable
    public mutating func writeReplica(_ replica: ReplicaID) {
        if lastReference != 0 && replica == lastReplica {
            writeVarint(lastReference)
            return
        }
        let known: Int?
        if replicasWritten.count <= Self.linearReplicaSearchLimit {
            known = replicasWritten.firstIndex(of: replica)
        } else {
            known = replicaIndex[replica]
        }
        if let known {
            lastReplica = replica
            lastReference = UInt64(known) + 1
            writeVarint(lastReference)
            return
        }
        replicasWritten.append(replica)
        lastReplica = replica
        lastReference = UInt64(replicasWritten.count)
        if replicasWritten.count > Self.linearReplicaSearchLimit {
            if replicaIndex.isEmpty {
                for (index, written) in replicasWritten.enumerated() { replicaIndex[written] = index }
            } else {
                replicaIndex[replica] = replicasWritten.count - 1
            }
        }
        bytes.append(0)
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: replica.high >> UInt64(shift))) }
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: replica.low >> UInt64(shift))) }
    }

    /// Writes a dot as a replica reference and a counter.
    @inlinable
    public mutating func writeDot(_ dot: Dot) {
        writeReplica(dot.replica)
        writeVarint(dot.counter)
    }

    /// Writes a full HLC stamp.
    @inlinable
    public mutating func writeStamp(_ stamp: HLCTimestamp) {
        writeVarint(stamp.wallMilliseconds)
        writeVarint(UInt64(stamp.counter))
        writeReplica(stamp.replica)
    }
}
