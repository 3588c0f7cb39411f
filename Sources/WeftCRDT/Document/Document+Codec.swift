extension Document: BinaryCodable {
    public static var binaryTypeTag: UInt8 { 10 }

    /// Layout (format version 2): the context, then the fields (see `Docs/Encoding.md`, 5.8).
    /// Format version 1 documents are read and converted (`Document+Legacy.swift`).
    ///
    /// - Complexity: O(*n* log *n*) in the fields, for ordering them by their smallest dot.
    public func encode(to writer: inout BinaryWriter) {
        context.encode(to: &writer)
        Self.encodeFields(fields, to: &writer)
    }

    public init(from reader: inout BinaryReader) throws(CodecError) {
        if reader.formatVersion == 1 {
            self = try Document(legacyFrom: &reader)
            return
        }
        let decoded = try reader.nested { (inner: inout BinaryReader) throws(CodecError) -> Document in
            let context = try CausalContext(from: &inner)
            let start = inner.offset
            var check = DotCheck()
            let fields = try Self.decodeFields(from: &inner, context: context, check: &check)
            try check.verify(fields, at: start)
            return Document(fields: fields, context: context)
        }
        self = decoded
    }

    // MARK: Encoding

    /// Count, then each field in the order of its smallest dot: key, store.
    ///
    /// The entries are read in place, front to back where they already stand in dot order (a
    /// decoded table, or one a single replica built), else in the order a sort of their dots
    /// gives.
    static func encodeFields(_ fields: FieldTable, to writer: inout BinaryWriter, inBlocks: Bool = true) {
        writer.writeVarint(UInt64(fields.count))
        guard !fields.isEmpty else { return }
        fields.entries.withUnsafeBufferPointer { entries in
            guard let base = entries.baseAddress else { return }
            if inBlocks && entries.count >= FieldBlock.minimumCount {
                FieldBlock.write(entries, to: &writer)
                return
            }
            if FieldOrder.isSorted(entries) {
                for position in entries.indices { encodeEntry(base + position, to: &writer) }
                return
            }
            if entries.count >= FieldBlock.minimumCount, let order = FieldOrder(entries) {
                for rank in order.keys.indices { encodeEntry(base + order.position(at: rank), to: &writer) }
                return
            }
            FieldOrder.byComparison(entries) { position in encodeEntry(base + position, to: &writer) }
        }
    }

    /// Writes one field, read in place (a copy of the entry would retain its key and arrays).
    @inline(__always)
    static func encodeEntry(_ entry: UnsafePointer<FieldTable.Element>, to writer: inout BinaryWriter) {
        entry.pointee.key.encode(to: &writer)
        encodeStore(entry.pointee.value, to: &writer)
    }

    /// A kinds byte (1 registers, 2 counter, 4 set, 8 nested document), then each kind present.
    static func encodeStore(_ store: FieldStore, to writer: inout BinaryWriter) {
        var kinds: UInt8 = 0
        if !store.registers.isEmpty { kinds |= 1 }
        if !store.counter.isEmpty { kinds |= 2 }
        if store.set != nil { kinds |= 4 }
        if store.map != nil { kinds |= 8 }
        writer.writeByte(kinds)
        if !store.registers.isEmpty {
            writer.writeVarint(UInt64(store.registers.count))
            for entry in store.registers {
                writer.writeDot(entry.dot)
                writer.writeStamp(entry.stamp)
                entry.value.encode(to: &writer)
            }
        }
        if !store.counter.isEmpty {
            writer.writeVarint(UInt64(store.counter.count))
            for entry in store.counter {
                writer.writeDot(entry.dot)
                writer.writeVarint(entry.up)
                writer.writeVarint(entry.down)
            }
        }
        if let set = store.set {
            writer.writeVarint(UInt64(set.marks.count))
            for dot in set.marks { writer.writeDot(dot) }
            let elements = set.elements.sorted { $0.value[0] < $1.value[0] }
            writer.writeVarint(UInt64(elements.count))
            for (element, dots) in elements {
                element.encode(to: &writer)
                writer.writeVarint(UInt64(dots.count))
                for dot in dots { writer.writeDot(dot) }
            }
        }
        if let map = store.map {
            writer.writeVarint(UInt64(map.marks.count))
            for dot in map.marks { writer.writeDot(dot) }
            encodeFields(map.fields, to: &writer)
        }
    }

    // MARK: Decoding

    /// The global check: every dot appears once in the document. Fields are ordered by their
    /// smallest dot, so if no field holds more than one dot the order proves it; otherwise every
    /// dot is collected and sorted once, after decoding.
    struct DotCheck {
        var needed = false
        /// Dots read so far (for telling whether a field held more than one).
        var count = 0

        func verify(_ fields: FieldTable, at offset: Int) throws(CodecError) {
            guard needed else { return }
            var dots = [Dot]()
            dots.reserveCapacity(count)
            for store in fields.values { store.forEachDot { dots.append($0) } }
            dots.sort()
            for index in dots.indices.dropFirst() where dots[index] == dots[index - 1] {
                throw .invariantViolation(at: offset, "dot \(dots[index]) appears twice in a document")
            }
        }
    }

    static func decodeFields(
        from reader: inout BinaryReader, context: CausalContext, check: inout DotCheck
    ) throws(CodecError) -> FieldTable {
        let count = try reader.readCount(minimumElementSize: 3)
        var fields = FieldTable(minimumCapacity: count)
        var previous: Dot?
        for _ in 0..<count {
            let start = reader.offset
            let key = try String(from: &reader)
            let store = try decodeStore(from: &reader, context: context, check: &check)
            guard let smallest = store.smallestDot else { throw .invariantViolation(at: start, "an empty field") }
            if let previous, !(previous < smallest) { throw .nonCanonical(at: start, "fields out of order") }
            previous = smallest
            guard fields.insertNew(store, forKey: key) else { throw .invariantViolation(at: start, "field \(key.debugDescription) appears twice") }
        }
        return fields
    }

    static func readDot(_ reader: inout BinaryReader, _ context: CausalContext, after previous: Dot?, _ check: inout DotCheck)
        throws(CodecError) -> Dot
    {
        let start = reader.offset
        let dot = try reader.readDot()
        if let previous, !(previous < dot) { throw .nonCanonical(at: start, "dots out of order or repeated") }
        guard context.contains(dot) else { throw .invariantViolation(at: start, "dot \(dot) missing from the context") }
        check.count += 1
        return dot
    }

    static func decodeStore(from reader: inout BinaryReader, context: CausalContext, check: inout DotCheck) throws(CodecError) -> FieldStore {
        let start = reader.offset
        let kinds = try reader.readByte()
        guard kinds != 0, kinds & ~0x0f == 0 else { throw .invalidTag(UInt64(kinds), at: start, "document field kinds") }
        var store = FieldStore()
        let firstDot = check.count
        if kinds & 1 != 0 {
            let count = try reader.readCount(minimumElementSize: 6)
            guard count > 0 else { throw .invariantViolation(at: start, "a register part without writes") }
            store.registers.reserveCapacity(count)
            for _ in 0..<count {
                let dot = try readDot(&reader, context, after: store.registers.last?.dot, &check)
                let stamp = try reader.readStamp()
                let value = try Scalar(from: &reader)
                store.registers.append(RegisterEntry(dot: dot, stamp: stamp, value: value))
            }
        }
        if kinds & 2 != 0 {
            let count = try reader.readCount(minimumElementSize: 4)
            guard count > 0 else { throw .invariantViolation(at: start, "a counter part without entries") }
            store.counter.reserveCapacity(count)
            for _ in 0..<count {
                let dot = try readDot(&reader, context, after: store.counter.last?.dot, &check)
                let up = try reader.readVarint()
                let down = try reader.readVarint()
                store.counter.append(CounterEntry(dot: dot, up: up, down: down))
            }
        }
        if kinds & 4 != 0 {
            var set = SetStore()
            let marks = try reader.readCount(minimumElementSize: 2)
            for _ in 0..<marks { set.marks.append(try readDot(&reader, context, after: set.marks.last, &check)) }
            let count = try reader.readCount(minimumElementSize: 3)
            var previousFirst: Dot?
            for _ in 0..<count {
                let elementStart = reader.offset
                let element = try Scalar(from: &reader)
                let dotCount = try reader.readCount(minimumElementSize: 2)
                guard dotCount > 0 else { throw .invariantViolation(at: elementStart, "a set element without dots") }
                var dots = [Dot]()
                dots.reserveCapacity(dotCount)
                for _ in 0..<dotCount { dots.append(try readDot(&reader, context, after: dots.last, &check)) }
                if let previousFirst, !(previousFirst < dots[0]) { throw .nonCanonical(at: elementStart, "set elements out of order") }
                previousFirst = dots[0]
                guard set.elements.updateValue(dots, forKey: element) == nil else {
                    throw .invariantViolation(at: elementStart, "a set element appears twice")
                }
            }
            guard !set.isEmpty else { throw .invariantViolation(at: start, "an empty set part") }
            store.set = set
        }
        if kinds & 8 != 0 {
            var map = MapStore()
            let marks = try reader.readCount(minimumElementSize: 2)
            for _ in 0..<marks { map.marks.append(try readDot(&reader, context, after: map.marks.last, &check)) }
            map.fields = try reader.nested { (inner: inout BinaryReader) throws(CodecError) in
                try decodeFields(from: &inner, context: context, check: &check)
            }
            guard !map.isEmpty else { throw .invariantViolation(at: start, "an empty nested document part") }
            store.map = map
        }
        if check.count - firstDot > 1 { check.needed = true }
        return store
    }
}
