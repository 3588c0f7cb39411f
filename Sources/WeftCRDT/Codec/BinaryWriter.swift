/// Writes Weft's binary format. See `Docs/Encoding.md` for the byte layout.
///
/// All integers are LEB128 variable-length (unsigned) or zig-zag then LEB128 (signed).
/// Replica identifiers are interned: the first time one is written it costs 17 bytes, after
/// that one or two.
public struct BinaryWriter: Sendable {
    /// The bytes written so far.
    public var bytes: [UInt8]
    @usableFromInline var replicaIndex: [ReplicaID: Int] = [:]

    /// Creates an empty writer.
    @inlinable
    public init(reservingCapacity capacity: Int = 64) {
        bytes = []
        bytes.reserveCapacity(capacity)
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
        if let index = replicaIndex[replica] {
            writeVarint(UInt64(index) + 1)
        } else {
            replicaIndex[replica] = replicaIndex.count
            bytes.append(0)
            bytes.append(contentsOf: replica.bytes)
        }
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
