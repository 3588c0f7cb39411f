/// Bounds applied while decoding untrusted bytes.
public struct DecodingLimits: Hashable, Sendable {
    /// The deepest nesting of maps and documents accepted.
    public var maximumDepth: Int
    /// The largest input accepted, in bytes.
    public var maximumInputBytes: Int

    /// Creates limits.
    @inlinable
    public init(maximumDepth: Int = 32, maximumInputBytes: Int = 256 << 20) {
        self.maximumDepth = maximumDepth
        self.maximumInputBytes = maximumInputBytes
    }

    /// 32 levels, 256 MiB.
    public static let `default` = DecodingLimits()
}

/// Reads Weft's binary format with explicit bounds.
///
/// Every read checks the remaining length first, so truncated input throws
/// ``CodecError/truncated(at:_:)`` instead of trapping. Counts are checked against the bytes
/// left before anything is allocated, so a forged count cannot make the decoder allocate
/// more than a small multiple of the input size.
public struct BinaryReader: Sendable {
    @usableFromInline internal let bytes: [UInt8]
    @usableFromInline internal var position: Int
    /// The position of the next byte to read.
    @inlinable public var offset: Int { position }
    /// The limits in force.
    public let limits: DecodingLimits
    /// The nesting depth (low 32 bits) and how far the bytes' format version is below
    /// ``BinaryFormat/version`` (the next 8 bits): one word, so the reader stays as small as
    /// before the version was kept (a larger reader measurably slowed many small decodes).
    @usableFromInline var depth = 0
    @usableFromInline var replicas: [ReplicaID] = []
    @usableFromInline var knownReplicas: Set<ReplicaID> = []
    /// The format version of the bytes (``BinaryFormat/version`` unless an envelope said
    /// otherwise): decoders of types whose layout changed read it.
    @inlinable
    public var formatVersion: UInt8 {
        get { BinaryFormat.version &- UInt8(truncatingIfNeeded: depth >> 32) }
        set { depth = (depth & 0xFFFF_FFFF) | (Int(BinaryFormat.version &- min(newValue, BinaryFormat.version)) << 32) }
    }

    /// Creates a reader over `bytes`.
    @inlinable
    public init(_ bytes: [UInt8], limits: DecodingLimits = .default) {
        self.bytes = bytes
        self.position = 0
        self.limits = limits
    }

    /// The number of bytes not yet read.
    @inlinable
    public var remaining: Int { bytes.count - offset }

    /// Whether every byte has been read.
    @inlinable
    public var isAtEnd: Bool { offset >= bytes.count }

    /// Reads one byte.
    @inlinable
    public mutating func readByte() throws(CodecError) -> UInt8 {
        guard offset < bytes.count else { throw .truncated(at: offset) }
        let byte = bytes[offset]
        position += 1
        return byte
    }

    /// Reads `count` raw bytes.
    @inlinable
    public mutating func readRaw(_ count: Int) throws(CodecError) -> ArraySlice<UInt8> {
        guard count >= 0, count <= remaining else { throw .truncated(at: offset, "needed \(count) bytes, \(remaining) left") }
        let slice = bytes[offset..<offset + count]
        position += count
        return slice
    }

    /// Reads an unsigned LEB128 integer, rejecting overlong and non-minimal encodings.
    @inlinable
    public mutating func readVarint() throws(CodecError) -> UInt64 {
        let start = offset
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard offset < bytes.count else { throw .truncated(at: start, "variable-length integer cut short") }
            let byte = bytes[offset]
            position += 1
            if shift == 63 && byte > 1 { throw .malformedVarint(at: start) }
            result |= UInt64(byte & 0x7f) << shift
            if byte & 0x80 == 0 {
                if byte == 0 && shift > 0 { throw .malformedVarint(at: start) }
                return result
            }
            shift += 7
            if shift > 63 { throw .malformedVarint(at: start) }
        }
    }

    /// Reads a zig-zag LEB128 signed integer.
    @inlinable
    public mutating func readSignedVarint() throws(CodecError) -> Int64 {
        let raw = try readVarint()
        return Int64(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
    }

    /// Reads a varint that must fit in `UInt32`.
    @inlinable
    public mutating func readUInt32() throws(CodecError) -> UInt32 {
        let start = offset
        let raw = try readVarint()
        guard let value = UInt32(exactly: raw) else { throw .valueOutOfRange(at: start, "\(raw) does not fit 32 bits") }
        return value
    }

    /// Reads an element count and checks that `count * minimumElementSize` bytes remain: a count
    /// the rest of the input cannot hold is ``CodecError/truncated(at:_:)`` (the input announces
    /// more than it has), checked before anything is allocated.
    @inlinable
    public mutating func readCount(minimumElementSize: Int = 1) throws(CodecError) -> Int {
        let start = offset
        let raw = try readVarint()
        let available = UInt64(remaining / max(1, minimumElementSize))
        guard raw <= available else {
            throw .truncated(at: start, "count \(raw) exceeds what \(remaining) remaining bytes can hold")
        }
        return Int(raw)
    }

    /// Reads a length-prefixed byte string.
    @inlinable
    public mutating func readLengthPrefixed() throws(CodecError) -> ArraySlice<UInt8> {
        let count = try readCount()
        return try readRaw(count)
    }

    /// Reads a length-prefixed byte string and appends it to `buffer`, without allocating.
    @inlinable
    public mutating func readLengthPrefixed(appendingTo buffer: inout [UInt8]) throws(CodecError) {
        let count = try readCount()
        let start = position
        bytes.withUnsafeBufferPointer { all in
            buffer.append(contentsOf: UnsafeBufferPointer(rebasing: all[start..<start + count]))
        }
        position += count
    }

    /// Reads a length-prefixed string, validating UTF-8.
    @inlinable
    public mutating func readString() throws(CodecError) -> String {
        let start = offset
        let count = try readCount()
        guard count <= remaining else { throw .truncated(at: offset, "needed \(count) bytes, \(remaining) left") }
        let first = position
        position += count
        let string = bytes.withUnsafeBufferPointer { all -> String? in
            let raw = UnsafeBufferPointer(rebasing: all[first..<first + count])
            // ASCII is valid UTF-8: decoding it skips the validating path (the usual field name).
            var ascii = true
            for byte in raw where byte >= 0x80 {
                ascii = false
                break
            }
            return ascii ? String(decoding: raw, as: UTF8.self) : String(validating: raw, as: UTF8.self)
        }
        guard let string else { throw .invalidUTF8(at: start) }
        return string
    }

    /// Reads an 8-byte little-endian IEEE-754 double.
    @inlinable
    public mutating func readDouble() throws(CodecError) -> Double {
        let raw = try readRaw(8)
        var bits: UInt64 = 0
        for (shift, byte) in raw.enumerated() { bits |= UInt64(byte) << UInt64(shift * 8) }
        return Double(bitPattern: bits)
    }

    /// Reads a replica reference written by ``BinaryWriter/writeReplica(_:)``.
    @inlinable
    public mutating func readReplica() throws(CodecError) -> ReplicaID {
        let start = offset
        let reference = try readVarint()
        if reference == 0 {
            let raw = try readRaw(16)
            guard let replica = ReplicaID(bytes: raw) else { throw .truncated(at: start) }
            guard knownReplicas.insert(replica).inserted else {
                throw .nonCanonical(at: start, "replica \(replica) written in full twice; the writer uses a reference")
            }
            replicas.append(replica)
            return replica
        }
        guard reference <= UInt64(replicas.count) else {
            throw .invariantViolation(at: start, "replica reference \(reference) names no replica seen so far")
        }
        return replicas[Int(reference - 1)]
    }

    /// Reads a dot.
    @inlinable
    public mutating func readDot() throws(CodecError) -> Dot {
        let replica = try readReplica()
        let start = offset
        let counter = try readVarint()
        guard counter > 0 else { throw .invariantViolation(at: start, "dot counters start at 1") }
        return Dot(replica: replica, counter: counter)
    }

    /// Reads a full HLC stamp.
    @inlinable
    public mutating func readStamp() throws(CodecError) -> HLCTimestamp {
        let wall = try readVarint()
        let counter = try readUInt32()
        let replica = try readReplica()
        return HLCTimestamp(wallMilliseconds: wall, counter: counter, replica: replica)
    }

    /// Runs `body` one nesting level deeper, throwing when ``DecodingLimits/maximumDepth`` is passed.
    @inlinable
    public mutating func nested<T>(_ body: (inout BinaryReader) throws(CodecError) -> T) throws(CodecError) -> T {
        guard depth & 0xFFFF_FFFF < min(limits.maximumDepth, 1 << 31) else { throw .nestingTooDeep(at: offset, limit: limits.maximumDepth) }
        depth += 1
        defer { depth -= 1 }
        return try body(&self)
    }
}
