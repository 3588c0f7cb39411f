import Foundation
import GRDB
import Weft
import WeftCRDT

// Large documents kept as an image and patches: the stub in `documents.record`, resolving it
// into the record, and the parts a local write appends.
extension SQLiteReplicaStorage {
    /// What `documents.record` holds for a document kept in parts: the record is its image
    /// (`document_parts` part 0, the record as of the last whole write) joined with its patches
    /// (parts 1, 2, …, each the delta of one local write, ``Weft/LocalWrite/patch``), in order.
    ///
    /// Layout: the 4 bytes `FF 57 50 01` (no record's encoding starts with `FF`), a random
    /// 64-bit nonce (little-endian) drawn at every write of the stub, then three varints: the
    /// image's bytes, the patches' bytes, and the number of patches. Any write of the document
    /// writes a new stub or a whole record, so a stub read again with the same nonce means no
    /// write happened since: the memo of decoded records is keyed by the stub's bytes.
    struct PartsStub: Equatable, Sendable {
        static let magic: [UInt8] = [0xFF, 0x57, 0x50, 0x01]
        var nonce: UInt64
        var imageBytes: Int
        var patchBytes: Int
        var patches: Int

        /// The bytes of the image and the patches: what the document costs in the queue.
        var storedBytes: Int { imageBytes + patchBytes }

        /// The stub in `bytes`, `nil` if they are not a stub (a whole record).
        /// - Throws: ``Weft/WeftError/Kind/corrupt`` if they start as a stub and do not parse.
        init?(parsing bytes: [UInt8], _ what: @autoclosure () -> String) throws {
            guard bytes.count >= 4, bytes[0] == 0xFF, bytes[1] == 0x57, bytes[2] == 0x50 else { return nil }
            guard bytes[3] == 0x01, bytes.count >= 15 else { throw WeftError.corrupt("the stored stub of \(what()) is malformed") }
            var reader = BinaryReader(bytes)
            do {
                _ = try reader.readRaw(4)
                var nonce: UInt64 = 0
                for (shift, byte) in try reader.readRaw(8).enumerated() { nonce |= UInt64(byte) << (8 * UInt64(shift)) }
                self.nonce = nonce
                imageBytes = Int(clamping: try reader.readVarint())
                patchBytes = Int(clamping: try reader.readVarint())
                patches = Int(clamping: try reader.readVarint())
            } catch {
                throw WeftError.corrupt("the stored stub of \(what()) is malformed: \(error)")
            }
            guard reader.isAtEnd else { throw WeftError.corrupt("the stored stub of \(what()) has trailing bytes") }
        }

        init(imageBytes: Int, patchBytes: Int, patches: Int) {
            nonce = UInt64.random(in: 0...UInt64.max)
            self.imageBytes = imageBytes
            self.patchBytes = patchBytes
            self.patches = patches
        }

        var encoded: [UInt8] {
            var writer = BinaryWriter(reservingCapacity: 32)
            for byte in Self.magic { writer.writeByte(byte) }
            for shift in 0..<8 { writer.writeByte(UInt8(truncatingIfNeeded: nonce >> (8 * UInt64(shift)))) }
            writer.writeVarint(UInt64(imageBytes))
            writer.writeVarint(UInt64(patchBytes))
            writer.writeVarint(UInt64(patches))
            return writer.bytes
        }
    }

    /// The smallest record, in encoded bytes, that a local write with a patch keeps in parts.
    static let partsMinimumBytes = DecodedRecords.minimumBytes

    /// The record `documents.record` stands for when it holds `bytes`: decoded if it is a whole
    /// record, or the image joined with the patches if it is a stub. Either comes from the memo
    /// when it holds exactly these bytes; `taking` removes it from there (a commit that edits
    /// the record then holds its only copy).
    /// - Complexity: O(1) from the memo; otherwise a decode of the image and each patch, and a
    ///   join per patch.
    func storedRecord(_ db: Database, _ key: DocumentKey, bytes: [UInt8], taking: Bool = false) throws -> DocumentRecord {
        guard let stub = try PartsStub(parsing: bytes, "\(key)") else {
            return try decodeRecord(key, bytes: bytes, taking: taking, "\(key)")
        }
        if let found = remembered(key, bytes: bytes, taking: taking) { return found }
        let statement = RawStatement(
            try db.cachedStatement(sql: "SELECT part, bytes FROM document_parts WHERE collection = ? AND id = ? ORDER BY part"), in: db)
        var record: DocumentRecord?
        var count = 0
        try Self.withUTF8(key) { collection, id in
            try statement.run { row in
                try row.bind(borrowingText: collection)
                try row.bind(borrowingText: id)
                while try row.step() {
                    let part = try row.integer(0, "a part of \(key)")
                    let decoded = try Self.decodeRecord(try row.blob(1, "part \(part) of \(key)"), "part \(part) of \(key)")
                    guard part == count, (part == 0) == (record == nil) else {
                        throw WeftError.corrupt("the parts of \(key) are not numbered 0, 1, 2, …")
                    }
                    if record == nil { record = decoded } else { record?.merge(decoded) }
                    count += 1
                }
            }
        }
        guard let record, count == stub.patches + 1 else {
            throw WeftError.corrupt("\(key) is kept in parts, but \(count) of its \(stub.patches + 1) parts are stored")
        }
        if !taking {
            decodedRecords.withLock { $0.remember(key, bytes: bytes, record: record, cost: stub.storedBytes) }
        }
        return record
    }

    /// The whole encoding of the record `documents.record` stands for when it holds `bytes`
    /// (for copies that outlive the row, such as dead letters).
    func storedEncoding(_ db: Database, _ key: DocumentKey, bytes: [UInt8]) throws -> [UInt8] {
        guard try PartsStub(parsing: bytes, "\(key)") != nil else { return bytes }
        return try storedRecord(db, key, bytes: bytes).encoded()
    }

    /// Stores `write` as a patch of the document kept in parts (or about to be: `stub` is
    /// `nil` for a whole record of `recordBytes` that becomes the image), and answers the new
    /// stub; `nil` when the patches would pass a quarter of the image, and the record is to be
    /// written whole instead (which drops the parts).
    func appendPatch(
        _ db: Database, _ key: DocumentKey, _ patch: [UInt8], over stub: PartsStub?, recordBytes: Int
    ) throws -> PartsStub? {
        let imageBytes = stub?.imageBytes ?? recordBytes
        let patchBytes = (stub?.patchBytes ?? 0) + patch.count
        guard patchBytes * 4 <= imageBytes else { return nil }
        let arguments: StatementArguments = [key.collection.rawValue, key.id.rawValue]
        if stub == nil {
            // The whole record becomes the image, copied within SQLite.
            try db.cachedStatement(
                sql: """
                    INSERT INTO document_parts (collection, id, part, bytes)
                    SELECT collection, id, 0, record FROM documents WHERE collection = ? AND id = ?
                    """
            ).execute(arguments: arguments)
        }
        let number = (stub?.patches ?? 0) + 1
        try db.cachedStatement(sql: "INSERT INTO document_parts (collection, id, part, bytes) VALUES (?, ?, ?, ?)")
            .execute(arguments: arguments + [number, Data(patch)])
        return PartsStub(imageBytes: imageBytes, patchBytes: patchBytes, patches: number)
    }
}
