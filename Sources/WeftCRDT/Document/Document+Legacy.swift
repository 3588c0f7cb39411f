// Reading documents written in format version 1 (before Weft 2026-12), and converting them.
//
// A version 1 document was an ORMap of field versions, and each set, counter and nested
// document inside had a causal context of its own, so its dots were numbered apart from the
// document's. Version 2 keeps one context for the whole document. To convert, the dots of each
// nested structure are moved to replicas of their own, derived from the original replica, the
// path of the structure and its kind (`derivedReplica`): every replica that converts the same
// bytes gets the same dots, and they can never collide with dots issued after the conversion.
// `Docs/Encoding.md`, section 5.9, gives the rules for other implementations.

/// A field value as version 1 stored it.
enum LegacyValue: CRDT, BinaryCodable {
    case register(LWWRegister<Scalar>)
    case counter(PNCounter)
    case set(ORSet<Scalar>)
    case map(LegacyDocument)

    var rank: UInt8 {
        switch self {
        case .register: return 0
        case .counter: return 1
        case .set: return 2
        case .map: return 3
        }
    }

    // Only decoded and converted, never merged; the version 1 join, for the protocol's sake.
    mutating func merge(_ other: LegacyValue) {
        switch (self, other) {
        case (.register(var a), .register(let b)): a.merge(b); self = .register(a)
        case (.counter(var a), .counter(let b)): a.merge(b); self = .counter(a)
        case (.set(var a), .set(let b)): a.merge(b); self = .set(a)
        case (.map(var a), .map(let b)): a.fields.merge(b.fields); self = .map(a)
        default: if other.rank > rank { self = other }
        }
    }

    func encode(to writer: inout BinaryWriter) {
        writer.writeByte(rank)
        switch self {
        case .register(let value): value.encode(to: &writer)
        case .counter(let value): value.encode(to: &writer)
        case .set(let value): value.encode(to: &writer)
        case .map(let value): value.fields.encode(to: &writer)
        }
    }

    init(from reader: inout BinaryReader) throws(CodecError) {
        let start = reader.offset
        switch try reader.readByte() {
        case 0: self = .register(try LWWRegister(from: &reader))
        case 1: self = .counter(try PNCounter(from: &reader))
        case 2: self = .set(try ORSet(from: &reader))
        case 3: self = .map(try LegacyDocument(from: &reader))
        case let tag: throw .invalidTag(UInt64(tag), at: start, "DocumentValue")
        }
    }
}

/// A version 1 document: an ORMap of field versions.
struct LegacyDocument: Equatable, Sendable, BinaryCodable {
    var fields: ORMap<String, LegacyValue>

    func encode(to writer: inout BinaryWriter) { fields.encode(to: &writer) }

    init(from reader: inout BinaryReader) throws(CodecError) {
        fields = try reader.nested { (inner: inout BinaryReader) throws(CodecError) in
            try ORMap<String, LegacyValue>(from: &inner)
        }
    }
}

/// What a structure's dots were numbered by in version 1.
enum LegacyKind: UInt8 {
    case document = 0, counter = 1, set = 2
}

extension Document {
    /// Reads a version 1 body and converts it.
    init(legacyFrom reader: inout BinaryReader) throws(CodecError) {
        let legacy = try LegacyDocument(from: &reader)
        var context = CausalContext()
        var fields = Self.convert(legacy.fields, path: [], context: &context)
        Self.dropRepeatedDots(&fields)
        self.init(fields: fields, context: context)
    }

    /// Converts the fields of a version 1 map found at `path` (empty: the document itself),
    /// adding every converted dot to `context`.
    static func convert(_ map: ORMap<String, LegacyValue>, path: [String], context: inout CausalContext) -> FieldTable {
        // The document's own dots keep their replica; a nested document's move to a derived one.
        let move: (Dot) -> Dot = { dot in
            path.isEmpty ? dot : Dot(replica: derivedReplica(dot.replica, path: path, kind: .document), counter: dot.counter)
        }
        insertAll(map.context, into: &context, moving: move)
        var fields = FieldTable()
        for (key, versions) in map.entries {
            let fieldPath = path + [key]
            var store = FieldStore()
            for version in versions {
                let dot = move(version.dot)
                var part = FieldStore()
                switch version.value {
                case .register(let register):
                    part.registers = [RegisterEntry(dot: dot, stamp: register.stamp, value: register.value)]
                case .counter(let counter):
                    // The version's dot keeps the field present even at zero; each replica's
                    // tally becomes one frozen part under a derived dot.
                    part.counter = [CounterEntry(dot: dot, up: 0, down: 0)]
                    var tallies = [ReplicaID: (up: UInt64, down: UInt64)]()
                    for (replica, up) in counter.increments.tallies { tallies[replica, default: (0, 0)].up = up }
                    for (replica, down) in counter.decrements.tallies { tallies[replica, default: (0, 0)].down = down }
                    for (replica, tally) in tallies {
                        let derived = Dot(replica: derivedReplica(replica, path: fieldPath, kind: .counter), counter: 1)
                        context.insert(derived)
                        part.counter.append(CounterEntry(dot: derived, up: tally.up, down: tally.down))
                    }
                case .set(let set):
                    let moveSet: (Dot) -> Dot = { Dot(replica: derivedReplica($0.replica, path: fieldPath, kind: .set), counter: $0.counter) }
                    insertAll(set.context, into: &context, moving: moveSet)
                    var converted = SetStore(marks: [dot])
                    for (element, dots) in set.entries { converted.elements[element] = dots.map(moveSet) }
                    part.set = converted
                case .map(let nested):
                    part.map = MapStore(marks: [dot], fields: convert(nested.fields, path: fieldPath, context: &context))
                }
                store = store.union(part)
            }
            if !store.isEmpty { fields[key] = store }
        }
        return fields
    }

    static func insertAll(_ source: CausalContext, into context: inout CausalContext, moving move: (Dot) -> Dot) {
        for (replica, counter) in source.vector.sortedEntries {
            let moved = move(Dot(replica: replica, counter: 1)).replica
            context.merge(CausalContext(vector: VersionVector([moved: counter])))
        }
        for dot in source.cloud { context.insert(move(dot)) }
    }

    /// Version 1 could give one dot to two things (the defect version 2 fixes); keep the first
    /// in a fixed order, so the converted document is valid.
    static func dropRepeatedDots(_ fields: inout FieldTable) {
        var seen = Set<Dot>()
        var result = FieldTable()
        for key in fields.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }) {
            guard let store = fields[key], let kept = store.keepingUnseen(&seen) else { continue }
            result[key] = kept
        }
        fields = result
    }
}

extension FieldStore {
    /// The store with both stores' entries (a dot both hold is kept once, joined).
    func union(_ other: FieldStore) -> FieldStore {
        var result = FieldStore()
        result.registers = unionEntries(registers, other.registers, \.dot) { a, b in
            if a.stamp != b.stamp { return a.stamp > b.stamp ? a : b }
            return a.value.binaryBytes.lexicographicallyPrecedes(b.value.binaryBytes) ? b : a
        }
        result.counter = unionEntries(counter, other.counter, \.dot) { a, b in
            CounterEntry(dot: a.dot, up: Swift.max(a.up, b.up), down: Swift.max(a.down, b.down))
        }
        switch (set, other.set) {
        case (let a?, let b?):
            var joined = SetStore(marks: unionEntries(a.marks, b.marks, \.self) { a, _ in a }, elements: a.elements)
            for (element, dots) in b.elements {
                joined.elements[element] = unionEntries(joined.elements[element] ?? [], dots, \.self) { a, _ in a }
            }
            result.set = joined
        case (let a, let b): result.set = a ?? b
        }
        switch (map, other.map) {
        case (let a?, let b?):
            var joined = MapStore(marks: unionEntries(a.marks, b.marks, \.self) { a, _ in a }, fields: a.fields)
            for (key, field) in b.fields { joined.fields[key] = joined.fields[key].map { $0.union(field) } ?? field }
            result.map = joined
        case (let a, let b): result.map = a ?? b
        }
        return result
    }

    /// The store without the dots in `seen`, adding its own to it; `nil` if nothing is left.
    func keepingUnseen(_ seen: inout Set<Dot>) -> FieldStore? {
        var result = FieldStore()
        result.registers = registers.filter { seen.insert($0.dot).inserted }
        result.counter = counter.filter { seen.insert($0.dot).inserted }
        if let set {
            var kept = SetStore(marks: set.marks.filter { seen.insert($0).inserted })
            for (element, dots) in set.elements.sorted(by: { $0.value[0] < $1.value[0] }) {
                let live = dots.filter { seen.insert($0).inserted }
                if !live.isEmpty { kept.elements[element] = live }
            }
            if !kept.isEmpty { result.set = kept }
        }
        if let map {
            var kept = MapStore(marks: map.marks.filter { seen.insert($0).inserted })
            for key in map.fields.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }) {
                if let field = map.fields[key]?.keepingUnseen(&seen) { kept.fields[key] = field }
            }
            if !kept.isEmpty { result.map = kept }
        }
        return result.isEmpty ? nil : result
    }
}

/// The union of two arrays of entries (sorted here by dot), an entry both hold combined by
/// `same`: the join of two sides that have seen nothing of each other.
func unionEntries<Entry>(_ a: [Entry], _ b: [Entry], _ dot: (Entry) -> Dot, _ same: (Entry, Entry) -> Entry) -> [Entry] {
    joinEntries(a.sorted { dot($0) < dot($1) }, CausalContext(), b.sorted { dot($0) < dot($1) }, CausalContext(), dot, same)
}

/// The replica a version 1 structure's dots move to: the 128-bit FNV-1a hash of
/// `"weft-v1"`, the replica's 16 bytes, the kind byte and each path component as a varint
/// length and its UTF-8 bytes.
func derivedReplica(_ replica: ReplicaID, path: [String], kind: LegacyKind) -> ReplicaID {
    var hash = FNV1a128()
    hash.add(Array("weft-v1".utf8))
    var writer = BinaryWriter(reservingCapacity: 17)
    for shift in stride(from: 56, through: 0, by: -8) { writer.writeByte(UInt8(truncatingIfNeeded: replica.high >> UInt64(shift))) }
    for shift in stride(from: 56, through: 0, by: -8) { writer.writeByte(UInt8(truncatingIfNeeded: replica.low >> UInt64(shift))) }
    writer.writeByte(kind.rawValue)
    for component in path { writer.writeString(component) }
    hash.add(writer.bytes)
    return ReplicaID(high: hash.high, low: hash.low)
}

/// FNV-1a with 128-bit state (offset basis 0x6c62272e07bb014262b821756295c58d, prime 2⁸⁸ + 0x13b).
struct FNV1a128 {
    var high: UInt64 = 0x6c62_272e_07bb_0142
    var low: UInt64 = 0x62b8_2175_6295_c58d

    mutating func add(_ bytes: [UInt8]) {
        for byte in bytes {
            low ^= UInt64(byte)
            // (high·2⁶⁴ + low) × (2⁸⁸ + 0x13b) mod 2¹²⁸.
            let (carry, product) = low.multipliedFullWidth(by: 0x13b)
            let newHigh = high &* 0x13b &+ carry &+ (low << 24)
            low = product
            high = newHigh
        }
    }
}
