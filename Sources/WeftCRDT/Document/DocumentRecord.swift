

/// Everything a replica stores and syncs for one document: the CRDT body, a deletion flag and
/// a version vector.
///
/// A record is itself a CRDT, so a queue entry, a pushed change and a pulled change are all
/// records (or deltas of records) and applying any of them is a join.
///
/// - ``body`` is the ``Document``.
/// - ``deletion`` is a last-writer-wins flag. A delete writes `true`; every other local write
///   writes `false` at its own stamp, so the later of a delete and a concurrent edit wins.
///   Deleted documents keep their record (a tombstone) so the deletion syncs like any change.
/// - ``version`` counts each replica's writes to this document. Comparing two records'
///   versions tells whether one saw the other (a fast-forward) or they are concurrent.
public struct DocumentRecord: CRDT, Hashable {
    /// The document's fields.
    public internal(set) var body: Document
    /// Whether the document is deleted, by last writer.
    public internal(set) var deletion: LWWRegister<Bool>
    /// Each replica's number of writes to this document.
    public internal(set) var version: VersionVector

    /// Creates a record.
    public init(body: Document, deletion: LWWRegister<Bool>, version: VersionVector) {
        self.body = body
        self.deletion = deletion
        self.version = version
    }

    /// Whether the document is deleted.
    public var isDeleted: Bool { deletion.value }

    /// The stamp of the last write that created, edited or deleted the document.
    public var lastStamp: HLCTimestamp { deletion.stamp }

    /// The greatest stamp anywhere in the record: its last stamp, or a register write in the
    /// body (nested fields included) if one is later. A server checks every stamp of a push
    /// against its clock with this.
    /// - Complexity: O(*n*) in the body's entries.
    public var greatestStamp: HLCTimestamp { max(lastStamp, body.greatestStamp ?? lastStamp) }

    public mutating func merge(_ other: DocumentRecord) {
        body.merge(other.body)
        deletion.merge(other.deletion)
        version.merge(other.version)
    }
}

extension DocumentRecord: BinaryCodable, BinaryEnvelopeCodable {
    public static var binaryTypeTag: UInt8 { 32 }

    /// Layout: version vector, deletion register, document body.
    public func encode(to writer: inout BinaryWriter) {
        version.encode(to: &writer)
        deletion.encode(to: &writer)
        body.encode(to: &writer)
    }

    public init(from reader: inout BinaryReader) throws(CodecError) {
        let version = try VersionVector(from: &reader)
        let deletion = try LWWRegister<Bool>(from: &reader)
        let body = try Document(from: &reader)
        self.init(body: body, deletion: deletion, version: version)
    }
}
