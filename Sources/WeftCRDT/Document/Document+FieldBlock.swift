/// The encoder of large field tables: fields are written in the order of their smallest dots,
/// and the usual field (one register write whose dot and stamp name the replica the writer
/// named last, a short key, a short value) is written into a block on the stack and handed to
/// the writer a block at a time. Each byte then costs a store rather than an `Array.append`.
/// Any other field is written by ``Document/encodeStore(_:to:)``; the bytes are the same either
/// way (`FieldBlockTests` compares them).
enum FieldBlock {
    /// Tables smaller than this are written field by field: a block does not pay.
    static let minimumCount = 256
    /// The block's size, and the room a field written into it may take at most.
    static let blockSize = 16_384
    static let fieldRoom = 320
    /// Keys and string values longer than this go through the general path.
    static let shortLength = 128

    /// Writes every field of `entries` (at least ``minimumCount``) in the order of their
    /// smallest dots.
    static func write(_ entries: UnsafeBufferPointer<FieldTable.Element>, to writer: inout BinaryWriter) {
        guard let base = entries.baseAddress else { return }
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: blockSize) { block in
            guard let start = block.baseAddress else { return }
            var cursor = RawCursor(start: start)
            cursor.expectedFields = entries.count
            if FieldOrder.isSorted(entries) {
                for position in entries.indices { write(base + position, cursor: &cursor, writer: &writer) }
            } else if let outliers = FieldOrder.outliers(entries, limit: entries.count / 16) {
                // In dot order but for a few fields (those an edit changed in place): the rest
                // are read front to back and the few merged in where they belong.
                var skipped = outliers.map(\.position)
                skipped.sort()
                var nextSkipped = 0
                var nextOutlier = 0
                for position in entries.indices {
                    if nextSkipped < skipped.count && skipped[nextSkipped] == position {
                        nextSkipped += 1
                        continue
                    }
                    if nextOutlier < outliers.count, let dot = (base + position).pointee.value.smallestDot {
                        while nextOutlier < outliers.count && outliers[nextOutlier].dot < dot {
                            write(base + outliers[nextOutlier].position, cursor: &cursor, writer: &writer)
                            nextOutlier += 1
                        }
                    }
                    write(base + position, cursor: &cursor, writer: &writer)
                }
                for outlier in outliers[nextOutlier...] { write(base + outlier.position, cursor: &cursor, writer: &writer) }
            } else if let order = FieldOrder(entries) {
                for rank in order.keys.indices {
                    write(base + order.position(at: rank), cursor: &cursor, writer: &writer)
                }
            } else {
                FieldOrder.byComparison(entries) { position in write(base + position, cursor: &cursor, writer: &writer) }
            }
            cursor.flush(to: &writer)
        }
    }

    /// Writes one field into the block if it is a usual one, else (after flushing the block)
    /// through the writer.
    @inline(__always)
    static func write(
        _ entry: UnsafePointer<FieldTable.Element>, cursor: inout RawCursor, writer: inout BinaryWriter
    ) {
        if cursor.count > blockSize - fieldRoom { cursor.flush(to: &writer) }
        if writeUsual(entry, cursor: &cursor, writer: writer) {
            cursor.fieldsWritten += 1
            return
        }
        cursor.flush(to: &writer)
        Document.encodeEntry(entry, to: &writer)
    }

    /// Writes the field if it is a usual one; returns `false`, having written nothing, if not.
    static func writeUsual(
        _ entry: UnsafePointer<FieldTable.Element>, cursor: inout RawCursor, writer: BinaryWriter
    ) -> Bool {
        // Read in place: a copy of the store or of its register would retain their storage.
        guard entry.pointee.value.isRegistersOnly, entry.pointee.value.registers.count == 1 else {
            return false
        }
        let reference = writer.lastReference
        guard reference != 0 else { return false }
        let dot = entry.pointee.value.registers[0].dot
        let stamp = entry.pointee.value.registers[0].stamp
        guard dot.replica == writer.lastReplica, stamp.replica == writer.lastReplica else { return false }
        let mark = cursor.count
        guard cursor.writeShortString(entry.pointee.key) else { return false }
        cursor.byte(1)  // kinds: registers
        cursor.byte(1)  // one write
        cursor.varint(reference)
        cursor.varint(dot.counter)
        cursor.varint(stamp.wallMilliseconds)
        cursor.varint(UInt64(stamp.counter))
        cursor.varint(reference)
        switch entry.pointee.value.registers[0].value {
        case .null: cursor.byte(0)
        case .bool(let value): cursor.byte(value ? 2 : 1)
        case .int(let value):
            cursor.byte(3)
            cursor.varint(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
        case .double(let value):
            cursor.byte(4)
            var bits = value.bitPattern
            for _ in 0..<8 {
                cursor.byte(UInt8(truncatingIfNeeded: bits))
                bits >>= 8
            }
        case .string(let value):
            cursor.byte(5)
            guard cursor.writeShortString(value) else {
                cursor.count = mark
                return false
            }
        case .bytes:
            cursor.count = mark
            return false
        }
        return true
    }

    /// A write position in the block.
    struct RawCursor {
        let start: UnsafeMutablePointer<UInt8>
        var count = 0
        /// Fields still to come, for sizing the writer at the first flush (growing a large
        /// buffer by doubling copies it and touches twice its pages); 0 once sized.
        var expectedFields = 0
        var fieldsWritten = 0

        init(start: UnsafeMutablePointer<UInt8>) { self.start = start }

        @inline(__always)
        mutating func byte(_ value: UInt8) {
            start[count] = value
            count += 1
        }

        @inline(__always)
        mutating func varint(_ value: UInt64) {
            var rest = value
            while rest >= 0x80 {
                byte(UInt8(truncatingIfNeeded: rest) | 0x80)
                rest >>= 7
            }
            byte(UInt8(rest))
        }

        /// Writes a length-prefixed UTF-8 string of at most ``FieldBlock/shortLength`` bytes;
        /// returns `false`, having written nothing, for a longer one.
        @inline(__always)
        mutating func writeShortString(_ string: String) -> Bool {
            let written: Bool? = string.utf8.withContiguousStorageIfAvailable { utf8 in
                guard utf8.count <= FieldBlock.shortLength, let source = utf8.baseAddress else {
                    return false
                }
                varint(UInt64(utf8.count))
                (start + count).update(from: source, count: utf8.count)
                count += utf8.count
                return true
            }
            return written ?? false
        }

        /// Hands the block's bytes to the writer and empties it.
        mutating func flush(to writer: inout BinaryWriter) {
            guard count > 0 else { return }
            if expectedFields > 0, fieldsWritten > 0 {
                // The fields so far predict the rest, with an eighth to spare.
                let perField = count / fieldsWritten + 1
                let remaining = expectedFields - fieldsWritten
                writer.bytes.reserveCapacity(
                    writer.bytes.count + count + remaining * perField + remaining * perField / 8)
                expectedFields = 0
            }
            writer.writeRaw(UnsafeBufferPointer(start: start, count: count))
            count = 0
        }
    }
}
