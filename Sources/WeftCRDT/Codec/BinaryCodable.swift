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

    /// Reads a body written by ``encode(to:)``.
    init(from reader: inout BinaryReader) throws(CodecError)
}

extension BinaryCodable {
    public static var binaryTypeTag: UInt8 { 0 }
}

/// The envelope around every top-level encoding: `version` (1 byte), `type tag` (1 byte), body.
public enum BinaryFormat {
    /// The format version this build writes and reads.
    public static let version: UInt8 = 1

    /// Encodes `value` with its envelope.
    ///
    /// - Complexity: O(*n*) in the size of the value.
    public static func encode<T: BinaryCodable>(_ value: T) -> [UInt8] {
        var writer = BinaryWriter()
        writer.writeByte(version)
        writer.writeByte(T.binaryTypeTag)
        value.encode(to: &writer)
        return writer.bytes
    }

    /// Decodes a value written by ``encode(_:)``.
    ///
    /// - Throws: ``CodecError`` for any input that is not the canonical encoding of a `T`.
    /// - Complexity: O(*n*) in the size of the input.
    public static func decode<T: BinaryCodable>(
        _ type: T.Type, from bytes: [UInt8], limits: DecodingLimits = .default
    ) throws(CodecError) -> T {
        guard bytes.count <= limits.maximumInputBytes else {
            throw .tooLarge(at: 0, "input of \(bytes.count) bytes exceeds the limit of \(limits.maximumInputBytes)")
        }
        var reader = BinaryReader(bytes, limits: limits)
        let found = try reader.readByte()
        guard found == version else { throw .unsupportedVersion(found, at: 0) }
        let tag = try reader.readByte()
        guard tag == T.binaryTypeTag else { throw .wrongTypeTag(expected: T.binaryTypeTag, found: tag, at: 1) }
        let value = try T(from: &reader)
        guard reader.isAtEnd else { throw .trailingBytes(at: reader.offset, count: reader.remaining) }
        return value
    }
}

extension BinaryCodable {
    /// The value's envelope encoding; see ``BinaryFormat/encode(_:)``.
    public func encoded() -> [UInt8] { BinaryFormat.encode(self) }

    /// Decodes an envelope encoding; see ``BinaryFormat/decode(_:from:limits:)``.
    public init(encoded bytes: [UInt8], limits: DecodingLimits = .default) throws(CodecError) {
        self = try BinaryFormat.decode(Self.self, from: bytes, limits: limits)
    }
}

// MARK: - Scalars

extension Bool: BinaryCodable {
    public func encode(to writer: inout BinaryWriter) { writer.writeByte(self ? 1 : 0) }
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
    public func encode(to writer: inout BinaryWriter) { writer.writeSignedVarint(self) }
    public init(from reader: inout BinaryReader) throws(CodecError) { self = try reader.readSignedVarint() }
}

extension Int: BinaryCodable {
    public func encode(to writer: inout BinaryWriter) { writer.writeSignedVarint(Int64(self)) }
    public init(from reader: inout BinaryReader) throws(CodecError) {
        let start = reader.offset
        let raw = try reader.readSignedVarint()
        guard let value = Int(exactly: raw) else { throw .valueOutOfRange(at: start, "\(raw) does not fit Int") }
        self = value
    }
}

extension UInt64: BinaryCodable {
    public func encode(to writer: inout BinaryWriter) { writer.writeVarint(self) }
    public init(from reader: inout BinaryReader) throws(CodecError) { self = try reader.readVarint() }
}

extension Double: BinaryCodable {
    public func encode(to writer: inout BinaryWriter) { writer.writeDouble(self) }
    public init(from reader: inout BinaryReader) throws(CodecError) { self = try reader.readDouble() }
}

extension String: BinaryCodable {
    public func encode(to writer: inout BinaryWriter) { writer.writeString(self) }
    public init(from reader: inout BinaryReader) throws(CodecError) { self = try reader.readString() }
}

extension ReplicaID: BinaryCodable {
    public func encode(to writer: inout BinaryWriter) { writer.writeReplica(self) }
    public init(from reader: inout BinaryReader) throws(CodecError) { self = try reader.readReplica() }
}

extension HLCTimestamp: BinaryCodable {
    public func encode(to writer: inout BinaryWriter) { writer.writeStamp(self) }
    public init(from reader: inout BinaryReader) throws(CodecError) { self = try reader.readStamp() }
}

extension Optional: BinaryCodable where Wrapped: BinaryCodable {
    public func encode(to writer: inout BinaryWriter) {
        switch self {
        case .none: writer.writeByte(0)
        case .some(let wrapped):
            writer.writeByte(1)
            wrapped.encode(to: &writer)
        }
    }
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
    public static var binaryTypeTag: UInt8 { 1 }

    /// Layout: count, then `(replica, counter)` pairs in replica order, counters non-zero.
    public func encode(to writer: inout BinaryWriter) {
        let entries = sortedEntries
        writer.writeVarint(UInt64(entries.count))
        for entry in entries {
            writer.writeReplica(entry.replica)
            writer.writeVarint(entry.counter)
        }
    }

    public init(from reader: inout BinaryReader) throws(CodecError) {
        let count = try reader.readCount(minimumElementSize: 2)
        var counters = [ReplicaID: UInt64](minimumCapacity: count)
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
            counters[replica] = counter
        }
        self.init(counters)
    }
}

extension CausalContext: BinaryCodable {
    public static var binaryTypeTag: UInt8 { 2 }

    /// Layout: the vector, then the cloud as a count and sorted dots.
    public func encode(to writer: inout BinaryWriter) {
        vector.encode(to: &writer)
        let dots = sortedCloud
        writer.writeVarint(UInt64(dots.count))
        for dot in dots { writer.writeDot(dot) }
    }

    public init(from reader: inout BinaryReader) throws(CodecError) {
        let vector = try VersionVector(from: &reader)
        let count = try reader.readCount(minimumElementSize: 2)
        var cloud = Set<Dot>(minimumCapacity: count)
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
