// The field table (a dense array with a hash index) against a dictionary model, and the block
// encoder of large tables against the field-by-field encoder: the same bytes for every kind of
// field, replica and order.

import Testing

@testable import WeftCRDT

@Suite("Field tables")
struct FieldTableTests {
    /// A small register store whose dot counter identifies it.
    static func store(_ counter: UInt64) -> FieldStore {
        let replica = ReplicaID(high: 1, low: 2)
        return FieldStore(
            register: RegisterEntry(
                dot: Dot(replica: replica, counter: counter),
                stamp: HLCTimestamp(wallMilliseconds: counter, counter: 0, replica: replica),
                value: .int(Int64(counter))))
    }

    /// Key pools below, around and far above the size where a table starts keeping an index,
    /// so tables cross it in both directions many times.
    @Test(
        "random insertions, replacements and removals agree with a dictionary",
        arguments: [(1, 8), (2, 20), (3, 26), (4, 300)])
    func agreesWithADictionary(seed: UInt64, keys: UInt64) {
        var random = CodecRNG(seed: codecSeed("field table", seed))
        var table = FieldTable()
        var model = [String: FieldStore]()
        for step in 0..<5_000 {
            let key = "k\(random.next() % keys)"
            switch random.next() % 4 {
            case 0, 1:
                let store = Self.store(UInt64(step) + 1)
                #expect(table.updateValue(store, forKey: key) == model.updateValue(store, forKey: key))
            case 2:
                #expect(table.removeValue(forKey: key) == model.removeValue(forKey: key))
            default:
                let store = Self.store(UInt64(step) + 1)
                let inserted = table.insertNew(store, forKey: key)
                #expect(inserted == (model[key] == nil))
                if inserted { model[key] = store }
            }
            #expect(table.count == model.count)
            // Every key the model holds is found where the table says, and no other is.
            if step % 97 == 0 {
                for (key, store) in model { #expect(table[key] == store) }
                #expect(table["absent"] == nil)
            }
        }
        for (key, store) in model {
            #expect(table[key] == store)
            #expect(table.position(of: key).map { table.entries[$0].key } == key)
        }
        #expect(Set(table.keys) == Set(model.keys))
        #expect(table.entries.count == model.count)
    }

    @Test("equality and hashing ignore the order of entries")
    func orderIsNotPartOfTheValue() {
        var forward = FieldTable()
        var backward = FieldTable()
        for counter in 1...50 { forward["k\(counter)"] = Self.store(UInt64(counter)) }
        for counter in (1...50).reversed() { backward["k\(counter)"] = Self.store(UInt64(counter)) }
        #expect(forward == backward)
        #expect(forward.hashValue == backward.hashValue)
        backward["k7"] = Self.store(99)
        #expect(forward != backward)
        backward.removeValue(forKey: "k7")
        #expect(forward != backward)
        backward["k7"] = Self.store(7)
        #expect(forward == backward)
    }
}

@Suite("Block encoding of large field tables")
struct FieldBlockTests {
    /// The document's fields written field by field (the reference) or in blocks.
    static func bytes(_ document: Document, inBlocks: Bool) -> [UInt8] {
        var writer = BinaryWriter()
        document.context.encode(to: &writer)
        Document.encodeFields(document.fields, to: &writer, inBlocks: inBlocks)
        return writer.bytes
    }

    /// A document of `count` fields from `writers` replicas with every kind of field the block
    /// path must leave to the general one: concurrent writes, counters, sets, nested documents
    /// (one of them large), long and non-ASCII keys and values, bytes, each scalar kind.
    static func mixedDocument(count: Int, writers: Int, seed: UInt64) -> Document {
        var random = CodecRNG(seed: codecSeed("field blocks", seed))
        let replicas = (0..<writers).map { _ in ReplicaID(high: random.next(), low: random.next()) }
        var wall: UInt64 = 1_700_000_000_000
        var parts = [Document]()
        for replica in replicas {
            var part = Document()
            for _ in 0..<(2 * count / writers) {
                wall += random.next() % 3
                let stamp = HLCTimestamp(
                    wallMilliseconds: wall, counter: UInt32(random.next() % 4), replica: replica)
                let number = random.next() % UInt64(count)
                let key =
                    number % 17 == 0 ? "long-\(String(repeating: "é", count: 70))-\(number)" : "f\(number)"
                switch random.next() % 12 {
                case 0: part.set(key, to: .null, at: stamp)
                case 1: part.set(key, to: .bool(random.next() % 2 == 0), at: stamp)
                case 2: part.set(key, to: .double(Double(number) / 7), at: stamp)
                case 3: part.set(key, to: .string("value \(number) ✓"), at: stamp)
                case 4:
                    part.set(
                        key, to: .string(String(repeating: "x", count: 100 + Int(random.next() % 100))),
                        at: stamp)
                case 5: part.set(key, to: .bytes([1, 2, 3, UInt8(number % 256)]), at: stamp)
                case 6: part.increment(key, by: Int64(number % 9) - 4, at: stamp)
                case 7: part.insert(.int(Int64(number % 5)), intoSet: key, at: stamp)
                case 8: part.updateMap(key, at: stamp) { $0.set("inner", to: .int(Int64(number)), at: stamp) }
                default: part.set(key, to: .int(Int64(bitPattern: random.next())), at: stamp)
                }
            }
            parts.append(part)
        }
        var document = Document()
        for part in parts { document.merge(part) }
        // A large nested document, encoded in blocks inside the field-by-field reference too.
        let stamp = HLCTimestamp(wallMilliseconds: wall + 1, counter: 0, replica: replicas[0])
        document.updateMap("nested", at: stamp) { nested in
            for number in 0..<300 { nested.set("n\(number)", to: .int(Int64(number)), at: stamp) }
        }
        return document
    }

    @Test(
        "blocks write the bytes the field-by-field encoder writes",
        arguments: [(300, 1, 1), (1_000, 2, 2), (3_000, 5, 3), (2_000, 80, 4)])
    func blocksMatchTheReference(count: Int, writers: Int, seed: UInt64) throws {
        let document = Self.mixedDocument(count: count, writers: writers, seed: seed)
        #expect(document.count >= FieldBlock.minimumCount)
        let reference = Self.bytes(document, inBlocks: false)
        #expect(Self.bytes(document, inBlocks: true) == reference)
        // And the envelope decodes to the same document.
        let decoded = try Document(encoded: document.encoded())
        #expect(decoded == document)
        #expect(Self.bytes(decoded, inBlocks: true) == reference)
    }

    @Test("a table whose entries were moved by removals and re-insertions still encodes canonically")
    func reorderedTablesEncodeCanonically() throws {
        var document = Self.mixedDocument(count: 1_000, writers: 3, seed: 9)
        let replica = ReplicaID(high: 42, low: 42)
        var random = CodecRNG(seed: codecSeed("field blocks reorder", 9))
        for step in 0..<400 {
            let key = "f\(random.next() % 1_000)"
            let stamp = HLCTimestamp(
                wallMilliseconds: 1_800_000_000_000 + UInt64(step), counter: 0, replica: replica)
            if random.next() % 2 == 0 {
                document.removeField(key)
            } else {
                document.set(key, to: .int(Int64(step)), at: stamp)
            }
        }
        let bytes = document.encoded()
        let decoded = try Document(encoded: bytes)
        #expect(decoded == document)
        #expect(decoded.encoded() == bytes)
        #expect(Self.bytes(document, inBlocks: true) == Self.bytes(document, inBlocks: false))
    }

    /// Edits in place give a field a new, greatest dot where it stands; a concurrent write from a
    /// replica that sorts first gives a field a smaller one. A few such fields are merged into
    /// the run of the others (`FieldOrder.outliers`), many send the table to the sort; either way
    /// the bytes are the reference's.
    @Test("tables edited in place encode as the reference does", arguments: [1, 3, 12, 40, 400])
    func editedTablesEncodeCanonically(edits: Int) throws {
        var random = CodecRNG(seed: codecSeed("field blocks edits", UInt64(edits)))
        let writer = ReplicaID(high: 1 << 62, low: 1)
        let early = ReplicaID(high: 1, low: 1)  // sorts before `writer`
        var wall: UInt64 = 1_700_000_000_000
        func stamp(_ replica: ReplicaID) -> HLCTimestamp {
            wall += 1
            return HLCTimestamp(wallMilliseconds: wall, counter: 0, replica: replica)
        }
        var document = Document()
        for number in 0..<2_000 { document.set("f\(number)", to: .int(Int64(number)), at: stamp(writer)) }
        document = try Document(encoded: document.encoded())  // in dot order
        var concurrent = Document()
        for step in 0..<edits {
            let key = "f\(random.next() % 2_000)"
            if step % 3 == 2 {
                // A write the document has not seen, from the replica that sorts first.
                concurrent.set(key, to: .int(-1), at: stamp(early))
            } else {
                document.set(key, to: .int(Int64(step)), at: stamp(writer))
            }
        }
        document.merge(concurrent)
        let reference = FieldBlockTests.bytes(document, inBlocks: false)
        #expect(FieldBlockTests.bytes(document, inBlocks: true) == reference)
        let decoded = try Document(encoded: document.encoded())
        #expect(decoded == document)
        #expect(decoded.encoded() == document.encoded())
    }
}
