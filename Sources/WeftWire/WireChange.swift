// Documents on the wire: keys, and changes with their records or deltas.

import WeftCRDT

/// A document's address on the wire: collection and id as text.
///
/// The wire checks only their length (1–128 and 1–256 UTF-8 bytes); the receiver validates the
/// characters with its own rules.
public struct WireKey: Hashable, Sendable, CustomStringConvertible {
    /// The collection name.
    public var collection: String
    /// The document id.
    public var id: String

    /// Creates a key.
    public init(collection: String, id: String) {
        self.collection = collection
        self.id = id
    }

    public var description: String { "\(collection)/\(id)" }

    func encode(to writer: inout BinaryWriter) {
        writer.writeString(collection)
        writer.writeString(id)
    }

    init(from reader: inout BinaryReader) throws(CodecError) {
        let start = reader.offset
        collection = try reader.readString()
        guard (1...128).contains(collection.utf8.count) else {
            throw .invariantViolation(at: start, "collection name must be 1–128 bytes")
        }
        let idStart = reader.offset
        id = try reader.readString()
        guard (1...256).contains(id.utf8.count) else { throw .invariantViolation(at: idStart, "document id must be 1–256 bytes") }
    }
}

/// One change on the wire: a sequence number, a document and its record (or record delta).
///
/// In a push the sequence is the replica's queue sequence and the record is the change's delta;
/// in a pull page it is the server sequence and the document's record. Either way the receiver
/// applies the record by a join.
public struct WireChange: Hashable, Sendable {
    /// The replica-local sequence (push) or the server sequence (pull).
    public var sequence: UInt64
    /// The document.
    public var key: WireKey
    /// The record or record delta.
    public var record: DocumentRecord
    /// The `DocumentRecord.digest` of the record ``record`` is a delta over
    /// (`DocumentRecord.delta(since:maximumDots:)`), or `nil` for a whole record.
    ///
    /// In a page for a client that accepts deltas, a client that holds a record with exactly
    /// this digest (its own record, or the server base it kept) rebuilds the server's record by
    /// joining the delta into it; any other must ask again without deltas. In a push to a
    /// server that accepts deltas (``HelloResponse/acceptsDeltaPushes``), the server rebuilds
    /// the replica's record by joining the delta into its own record if that has exactly this
    /// digest, and refuses the push otherwise (`WeftServer` answers 409, `Weft-Error:
    /// delta-base`), applying nothing.
    public var deltaBase: UInt64?

    /// Creates a change.
    public init(sequence: UInt64, key: WireKey, record: DocumentRecord, deltaBase: UInt64? = nil) {
        self.sequence = sequence
        self.key = key
        self.record = record
        self.deltaBase = deltaBase
    }

    /// Layout: count, then per change: the sequence as its increase over the previous one (the
    /// first absolute), key, record body.
    static func encode(_ changes: [WireChange], to writer: inout BinaryWriter) {
        writer.writeVarint(UInt64(changes.count))
        var previous: UInt64 = 0
        for change in changes {
            writer.writeVarint(change.sequence &- previous)
            previous = change.sequence
            change.key.encode(to: &writer)
            change.record.encode(to: &writer)
        }
    }

    /// Writes the delta section of a list of changes: nothing if no change is a delta; else
    /// their count and, for each in order, its index in the list and its base's digest (a
    /// varint).
    static func encodeDeltaSection(_ changes: [WireChange], to writer: inout BinaryWriter) {
        let deltas = changes.indices.filter { changes[$0].deltaBase != nil }
        guard !deltas.isEmpty else { return }
        writer.writeVarint(UInt64(deltas.count))
        for index in deltas {
            writer.writeVarint(UInt64(index))
            writer.writeVarint(changes[index].deltaBase ?? 0)
        }
    }

    /// Writes the delta section, then the byte `00` that opens a message's extension (fields
    /// added after the delta section): a delta section never starts with a count of 0, so the
    /// byte tells the two apart.
    static func encodeDeltaSection(_ changes: [WireChange], thenExtensionTo writer: inout BinaryWriter) {
        encodeDeltaSection(changes, to: &writer)
        writer.writeByte(0)
    }

    /// Reads what follows a list of changes: a delta section if there is one (into `changes`),
    /// and whether an extension follows (opened by a byte `00`, consumed here).
    static func decodeDeltaSectionAndExtension(into changes: inout [WireChange], from reader: inout BinaryReader) throws(CodecError)
        -> Bool
    {
        guard !reader.isAtEnd else { return false }
        var probe = reader
        if try probe.readByte() == 0 {
            reader = probe
            return true
        }
        try decodeDeltaSection(into: &changes, from: &reader)
        guard !reader.isAtEnd else { return false }
        let start = reader.offset
        guard try reader.readByte() == 0 else { throw .nonCanonical(at: start, "after the delta section, only an extension (00) may follow") }
        return true
    }

    /// Reads a delta section written by ``encodeDeltaSection(_:to:)`` into `changes`: at least
    /// one delta, indices strictly increasing and naming a change.
    static func decodeDeltaSection(into changes: inout [WireChange], from reader: inout BinaryReader) throws(CodecError) {
        let start = reader.offset
        let count = try reader.readCount(minimumElementSize: 2)
        guard count > 0, count <= changes.count else { throw .invariantViolation(at: start, "\(count) deltas for \(changes.count) changes") }
        var previous = -1
        for _ in 0..<count {
            let at = reader.offset
            let index = try reader.readVarint()
            guard index < UInt64(changes.count), Int(index) > previous else {
                throw .invariantViolation(at: at, "delta indices must increase and name a change")
            }
            previous = Int(index)
            changes[Int(index)].deltaBase = try reader.readVarint()
        }
    }

    /// Reads a list written by ``encode(_:to:)``; sequences must be positive and strictly increase.
    static func decodeList(from reader: inout BinaryReader) throws(CodecError) -> [WireChange] {
        let count = try reader.readCount(minimumElementSize: 8)
        var changes = [WireChange]()
        changes.reserveCapacity(count)
        var previous: UInt64 = 0
        for index in 0..<count {
            let start = reader.offset
            let step = try reader.readVarint()
            guard index == 0 || step > 0 else { throw .nonCanonical(at: start, "sequence numbers must increase") }
            let (sequence, overflow) = previous.addingReportingOverflow(step)
            guard !overflow, sequence > 0 else { throw .valueOutOfRange(at: start, "sequence out of range") }
            previous = sequence
            let key = try WireKey(from: &reader)
            let record = try DocumentRecord(from: &reader)
            changes.append(WireChange(sequence: sequence, key: key, record: record))
        }
        return changes
    }
}
