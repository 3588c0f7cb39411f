/// A type with a deterministic encoding in Weft's binary format.
///
/// These are the bytes that go into SQLite and onto the wire, so the encoding must be:
/// 1. **deterministic**: equal values encode to identical bytes;
/// 2. **canonical**: decoding accepts only the bytes that encoding produces, and rejects
///    anything else with ``CodecError``;
/// 3. **safe**: decoding never traps or allocates more than a small multiple of the input,
///    whatever the bytes.
///
/// Users may conform their own CRDTs; build on the reader's and writer's primitives, which
/// already check bounds and counts. `WeftTesting` checks the round trip.
public protocol BinaryCodable {
    /// Identifies the type in the envelope written by ``BinaryFormat/encode(_:)``.
    ///
    /// Built-in CRDTs use tags 1–63. Pick a tag from 128–255 for your own types. Scalars use 0.
    static var binaryTypeTag: UInt8 { get }

    /// Writes the value's body (without the envelope).
    func encode(to writer: inout BinaryWriter)

    /// Reads a body written by ``BinaryCodable/encode(to:)``.
    init(from reader: inout BinaryReader) throws(CodecError)

    /// Decodes a body written on its own by a fresh ``BinaryWriter``, consuming all of `bytes`.
    ///
    /// Maps use this for keys, which they encode separately to front-code them. The default
    /// runs ``BinaryCodable/init(from:)`` on a new reader; types with a cheaper path (`String`) override it.
    static func decodeStandalone(_ bytes: [UInt8], limits: DecodingLimits) throws(CodecError) -> Self
}

extension BinaryCodable {
    @inlinable
    public static var binaryTypeTag: UInt8 { 0 }

    @inlinable
    public static func decodeStandalone(_ bytes: [UInt8], limits: DecodingLimits) throws(CodecError) -> Self {
        var reader = BinaryReader(bytes, limits: limits)
        let value = try Self(from: &reader)
        guard reader.isAtEnd else { throw .trailingBytes(at: reader.offset, count: reader.remaining) }
        return value
    }
}

/// The envelope around every top-level encoding: `version` (1 byte), `type tag` (1 byte), body.
public enum BinaryFormat {
    /// The format version this build writes.
    ///
    /// Version 2 changed only the body of ``Document`` (one causal context for the whole
    /// document); every other body is as in version 1. ``supportedVersions`` are read.
    @inlinable public static var version: UInt8 { 2 }

    /// The format versions this build reads: 1 (documents are converted on reading) and 2.
    @inlinable public static var supportedVersions: ClosedRange<UInt8> { 1...2 }

    /// Encodes `value` with its envelope into `writer`, replacing what it held: a writer reused
    /// across many values allocates its buffer once.
    ///
    /// - Complexity: O(*n*) in the size of the value.
    @inlinable
    public static func encode<T: BinaryCodable>(_ value: T, into writer: inout BinaryWriter) {
        writer.reset()
        writer.writeByte(version)
        writer.writeByte(T.binaryTypeTag)
        value.encode(to: &writer)
    }

    /// Encodes `value` with its envelope: version byte, type tag, body.
    ///
    /// - Complexity: O(*n*) in the size of the value.
    @inlinable
    public static func encode<T: BinaryCodable>(_ value: T) -> [UInt8] {
        var writer = BinaryWriter(reservingCapacity: 256)
        writer.writeByte(version)
        writer.writeByte(T.binaryTypeTag)
        value.encode(to: &writer)
        return writer.bytes
    }

    /// Checks the size, version and type tag of an envelope and returns a reader at the body.
    @inlinable
    public static func openEnvelope<T: BinaryCodable>(
        _ bytes: [UInt8], for type: T.Type, limits: DecodingLimits = .default
    ) throws(CodecError) -> BinaryReader {
        guard bytes.count <= limits.maximumInputBytes else {
            throw .tooLarge(at: 0, "input of \(bytes.count) bytes exceeds the limit of \(limits.maximumInputBytes)")
        }
        var reader = BinaryReader(bytes, limits: limits)
        let found = try reader.readByte()
        guard found == version || found == 1 else { throw .unsupportedVersion(found, at: 0) }
        if found != version { reader.formatVersion = found }
        let tag = try reader.readByte()
        guard tag == T.binaryTypeTag else { throw .wrongTypeTag(expected: T.binaryTypeTag, found: tag, at: 1) }
        return reader
    }

    /// Decodes a value written by ``encode(_:)``.
    ///
    /// - Throws: ``CodecError`` for any input that is not the canonical encoding of a `T`.
    /// - Complexity: O(*n*) in the size of the input.
    @inlinable
    public static func decode<T: BinaryCodable>(
        _ type: T.Type, from bytes: [UInt8], limits: DecodingLimits = .default
    ) throws(CodecError) -> T {
        var reader = try openEnvelope(bytes, for: T.self, limits: limits)
        let value = try T(from: &reader)
        guard reader.isAtEnd else { throw .trailingBytes(at: reader.offset, count: reader.remaining) }
        return value
    }
}

extension BinaryCodable {
    /// The value's envelope encoding; see ``BinaryFormat/encode(_:)``.
    @inlinable
    public func encoded() -> [UInt8] { BinaryFormat.encode(self) }

    /// Decodes an envelope encoding; see ``BinaryFormat/decode(_:from:limits:)``.
    @inlinable
    public init(encoded bytes: [UInt8], limits: DecodingLimits = .default) throws(CodecError) {
        self = try BinaryFormat.decode(Self.self, from: bytes, limits: limits)
    }
}

// MARK: - Scalars

extension Bool: BinaryCodable {
    @inlinable
    public func encode(to writer: inout BinaryWriter) { writer.writeByte(self ? 1 : 0) }
    @inlinable
    public init(from reader: inout BinaryReader) throws(CodecError) {
        let start = reader.offset
        switch try reader.readByte() {
        case 0: self = false
        case 1: self = true
        case let other: throw .invalidTag(UInt64(other), at: start, "Bool")
        }
    }
}

extension Int64: BinaryCodable {
    @inlinable
    public func encode(to writer: inout BinaryWriter) { writer.writeSignedVarint(self) }
    @inlinable
    public init(from reader: inout BinaryReader) throws(CodecError) { self = try reader.readSignedVarint() }
}

extension Int: BinaryCodable {
    @inlinable
    public func encode(to writer: inout BinaryWriter) { writer.writeSignedVarint(Int64(self)) }
    @inlinable
    public init(from reader: inout BinaryReader) throws(CodecError) {
        let start = reader.offset
        let raw = try reader.readSignedVarint()
        guard let value = Int(exactly: raw) else { throw .valueOutOfRange(at: start, "\(raw) does not fit Int") }
        self = value
    }
}

extension UInt64: BinaryCodable {
    @inlinable
    public func encode(to writer: inout BinaryWriter) { writer.writeVarint(self) }
    @inlinable
    public init(from reader: inout BinaryReader) throws(CodecError) { self = try reader.readVarint() }
}

extension Double: BinaryCodable {
    @inlinable
    public func encode(to writer: inout BinaryWriter) { writer.writeDouble(self) }
    @inlinable
    public init(from reader: inout BinaryReader) throws(CodecError) { self = try reader.readDouble() }
}

extension String: BinaryCodable {
    @inlinable
    public func encode(to writer: inout BinaryWriter) { writer.writeString(self) }
    @inlinable
    public init(from reader: inout BinaryReader) throws(CodecError) { self = try reader.readString() }

    @inlinable
    public static func decodeStandalone(_ bytes: [UInt8], limits: DecodingLimits) throws(CodecError) -> String {
        // Fast path for short keys: a one-byte length prefix.
        if let first = bytes.first, first < 0x80, Int(first) == bytes.count - 1 {
            let decoded = bytes.withUnsafeBufferPointer { all -> String? in
                let body = UnsafeBufferPointer(rebasing: all[1...])
                // ASCII is valid UTF-8, and decoding skips the slower validating path.
                if body.allSatisfy({ $0 < 0x80 }) { return String(decoding: body, as: UTF8.self) }
                return String(validating: body, as: UTF8.self)
            }
            guard let decoded else { throw .invalidUTF8(at: 0) }
            return decoded
        }
        var reader = BinaryReader(bytes, limits: limits)
        let value = try reader.readString()
        guard reader.isAtEnd else { throw .trailingBytes(at: reader.offset, count: reader.remaining) }
        return value
    }
}

extension ReplicaID: BinaryCodable {
    @inlinable
    public func encode(to writer: inout BinaryWriter) { writer.writeReplica(self) }
    @inlinable
    public init(from reader: inout BinaryReader) throws(CodecError) { self = try reader.readReplica() }
}

extension HLCTimestamp: BinaryCodable {
    @inlinable
    public func encode(to writer: inout BinaryWriter) { writer.writeStamp(self) }
    @inlinable
    public init(from reader: inout BinaryReader) throws(CodecError) { self = try reader.readStamp() }
}

extension Optional: BinaryCodable where Wrapped: BinaryCodable {
    @inlinable
    public func encode(to writer: inout BinaryWriter) {
        switch self {
        case .none: writer.writeByte(0)
        case .some(let wrapped):
            writer.writeByte(1)
            wrapped.encode(to: &writer)
        }
    }
    @inlinable
    public init(from reader: inout BinaryReader) throws(CodecError) {
        let start = reader.offset
        switch try reader.readByte() {
        case 0: self = .none
        case 1: self = .some(try Wrapped(from: &reader))
        case let other: throw .invalidTag(UInt64(other), at: start, "Optional")
        }
    }
}

// MARK: - Causality

extension VersionVector: BinaryCodable {
    @inlinable
    public static var binaryTypeTag: UInt8 { 1 }

    /// Layout: count, then `(replica, counter)` pairs in replica order, counters non-zero.
    @inlinable
    public func encode(to writer: inout BinaryWriter) {
        writer.writeVarint(UInt64(entries.count))
        for entry in entries {
            writer.writeReplica(entry.replica)
            writer.writeVarint(entry.counter)
        }
    }

    @inlinable
    public init(from reader: inout BinaryReader) throws(CodecError) {
        let count = try reader.readCount(minimumElementSize: 2)
        var entries = [Entry]()
        entries.reserveCapacity(count)
        var previous: ReplicaID?
        for _ in 0..<count {
            let start = reader.offset
            let replica = try reader.readReplica()
            let counter = try reader.readVarint()
            guard counter > 0 else { throw .nonCanonical(at: start, "zero entry in a version vector") }
            if let previous, !(previous < replica) {
                throw .nonCanonical(at: start, "version vector entries out of order or repeated")
            }
            previous = replica
            entries.append(Entry(replica: replica, counter: counter))
        }
        self.init(sortedEntries: entries)
    }
}

extension CausalContext: BinaryCodable {
    @inlinable
    public static var binaryTypeTag: UInt8 { 2 }

    /// Layout: the vector, then the cloud as a count and sorted dots.
    @inlinable
    public func encode(to writer: inout BinaryWriter) {
        vector.encode(to: &writer)
        // The usual context has no cloud: no sorted copy to make.
        guard !cloud.isEmpty else {
            writer.writeVarint(0)
            return
        }
        let dots = sortedCloud
        writer.writeVarint(UInt64(dots.count))
        for dot in dots { writer.writeDot(dot) }
    }

    @inlinable
    public init(from reader: inout BinaryReader) throws(CodecError) {
        let vector = try VersionVector(from: &reader)
        let count = try reader.readCount(minimumElementSize: 2)
        var cloud = count == 0 ? Set<Dot>() : Set<Dot>(minimumCapacity: count)
        var previous: Dot?
        for _ in 0..<count {
            let start = reader.offset
            let dot = try reader.readDot()
            if let previous, !(previous < dot) { throw .nonCanonical(at: start, "cloud dots out of order or repeated") }
            previous = dot
            guard !vector.contains(dot), dot.counter != vector[dot.replica] &+ 1 else {
                throw .nonCanonical(at: start, "cloud dot \(dot) should be folded into the vector")
            }
            cloud.insert(dot)
        }
        self.init(vector: vector, cloud: cloud)
    }
}
