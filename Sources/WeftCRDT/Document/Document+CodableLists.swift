// The Codable bridge, arrays and dictionaries: an array is a nested document whose keys are
// positions, so its elements are ordered by key and merge as the fields they are; a dictionary
// keyed by strings is a nested document with one field per key. Both record the keys they
// removed in a set under `~removed`, which hides what a concurrent edit left of a removed element
// or entry.
//
// A position key is a string over the alphabet `-0-9A-Za-z` (in ASCII order; `-` is the lowest
// digit), never ending in `-`, followed by `-` and an 8-character tag drawn at random from
// `0-9A-Za-z`. Keys compare as strings (ASCII), which is the list's order. Writing an array
// compares it with the list the document holds: elements equal in both keep their keys, an
// element changed in place keeps its key and is updated as a field (a nested struct field by
// field), removed elements are removed as fields and their keys added to the set under
// `~removed` (an element whose key is there is gone, whatever a concurrent edit left of it: a
// removal wins over changes made inside the element meanwhile), and inserted ones get new keys
// strictly between their neighbours' keys. Two replicas inserting at the same place get different
// tags, so both insertions stay, one run after the other (a run inserted at once shares its first
// key as a prefix, so concurrent runs do not interleave).

/// Position keys for list elements.
enum ListPosition {
    /// The digits, in ASCII order: `-` is digit 0.
    static let digits: [UInt8] = Array("-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)
    static let separator = UInt8(ascii: "-")
    static let tagLength = 8
    /// The field holding the keys of removed elements: `~` is not a digit, so no position is it.
    static let removedKey = "~removed"

    /// The digit value of `byte`, `nil` if it is not a digit.
    static func value(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "-"): 0
        case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(byte - UInt8(ascii: "0")) + 1
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): Int(byte - UInt8(ascii: "A")) + 11
        case UInt8(ascii: "a")...UInt8(ascii: "z"): Int(byte - UInt8(ascii: "a")) + 37
        default: nil
        }
    }

    /// A digit string strictly between `low` and `high` (`nil`: unbounded) that is not a prefix of
    /// `high` and does not end in digit 0. Both bounds are digit strings not ending in digit 0,
    /// `low < high`.
    static func between(_ low: [Int], _ high: [Int]?) -> [Int] {
        if let high {
            // The common prefix, reading a missing digit of `low` as 0.
            var shared = 0
            while shared < high.count, (shared < low.count ? low[shared] : 0) == high[shared] { shared += 1 }
            if shared > 0 {
                let lowRest = shared < low.count ? Array(low[shared...]) : []
                return Array(high[..<shared]) + between(lowRest, Array(high[shared...]))
            }
        }
        let lowDigit = low.first ?? 0
        let highDigit = high?.first ?? digits.count
        if highDigit - lowDigit > 1 {
            // Room at this digit. Unbounded on both sides: the middle digit. Unbounded above:
            // one above `low`, and below: one below `high`, so appends and prepends one at a
            // time take a digit more only every 31. Otherwise halfway.
            switch (low.isEmpty, high == nil) {
            case (true, true): return [digits.count / 2]
            case (false, true): return [lowDigit + 1]
            case (true, false): return [highDigit - 1]
            case (false, false): return [(lowDigit + highDigit) / 2]
            }
        }
        return [lowDigit] + between(Array(low.dropFirst()), nil)
    }

    /// The digits of `key`, `nil` if it holds a byte that is not a digit.
    static func digitsOf(_ key: String) -> [Int]? {
        var result = [Int]()
        result.reserveCapacity(key.utf8.count)
        for byte in key.utf8 {
            guard let value = value(byte) else { return nil }
            result.append(value)
        }
        return result
    }

    static func string(_ values: [Int]) -> String { String(decoding: values.map { digits[$0] }, as: UTF8.self) }

    /// A random tag of ``tagLength`` digits other than 0.
    static func tag<G: RandomNumberGenerator>(using generator: inout G) -> String {
        string((0..<tagLength).map { _ in Int.random(in: 1..<digits.count, using: &generator) })
    }

    /// `count` new keys, in order, strictly between `low` and `high` (`nil`: the list's ends), for
    /// a run inserted at once: the first is a position and a tag, the others extend it.
    /// `nil` if a bound is not a key this encoding can place beside.
    static func keys(_ count: Int, after low: String?, before high: String?) -> [String]? {
        guard count > 0 else { return [] }
        var lowDigits = [Int]()
        if let low {
            guard let digits = digitsOf(low) else { return nil }
            lowDigits = digits
        }
        var highDigits: [Int]?
        if let high {
            guard let digits = digitsOf(high), lowDigits.lexicographicallyPrecedes(digits) else { return nil }
            highDigits = digits
        }
        if lowDigits.last == 0 || highDigits?.last == 0 { return nil }
        var generator = SystemRandomNumberGenerator()
        let first = string(between(lowDigits, highDigits)) + "-" + tag(using: &generator)
        guard count > 1 else { return [first] }
        // The rest of the run: `first`, `-`, and a fixed-width sequence number (digits 1...62).
        var width = 1
        var capacity = digits.count - 1
        while capacity < count { width += 1; capacity *= digits.count - 1 }
        var keys = [first]
        for index in 1..<count {
            var number = index
            var suffix = [Int](repeating: 1, count: width)
            for place in stride(from: width - 1, through: 0, by: -1) {
                suffix[place] = 1 + number % (digits.count - 1)
                number /= digits.count - 1
            }
            keys.append(first + "-" + string(suffix))
        }
        return keys
    }

    /// The keys of the removed elements of list `document`.
    static func removed(_ document: Document) -> Set<Scalar> {
        if case .set(let keys)? = document[removedKey] { return keys }
        return []
    }

    /// The keys of list `document`'s elements in list order: not the removed ones.
    static func orderedKeys(_ document: Document) -> [String] {
        let removed = removed(document)
        return document.keys.filter { $0 != removedKey && !removed.contains(.string($0)) }
            .sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }
}

// MARK: - Encoding

/// The elements of an array being encoded, each into its own box.
struct ListNodeContainer: UnkeyedEncodingContainer {
    let box: NodeBox
    var codingPath: [any CodingKey]
    var count: Int { box.elements?.count ?? 0 }

    private var elementPath: [any CodingKey] { codingPath + [ListIndexKey(intValue: count)] }

    private func next() -> NodeBox {
        let element = NodeBox()
        box.elements?.append(element)
        return element
    }

    mutating func encodeNil() throws {
        throw DocumentCodingError.unsupportedType(
            path: elementPath.map(\.stringValue).joined(separator: "."), "an array element cannot be nil")
    }

    mutating func encode<T: Encodable>(_ value: T) throws {
        let path = elementPath
        let element = next()
        try NodeEncoder.encode(value, into: element, path: path)
        if element.node == nil, element.children == nil, element.elements == nil {
            // An optional that was nil: a list has no holes.
            box.elements?.removeLast()
            throw DocumentCodingError.unsupportedType(path: path.map(\.stringValue).joined(separator: "."), "an array element cannot be nil")
        }
    }

    mutating func nestedContainer<K: CodingKey>(keyedBy keyType: K.Type) -> KeyedEncodingContainer<K> {
        let path = elementPath
        let element = next()
        element.children = [:]
        return KeyedEncodingContainer(KeyedNodeContainer<K>(box: element, codingPath: path))
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let path = elementPath
        let element = next()
        element.elements = []
        return ListNodeContainer(box: element, codingPath: path)
    }

    mutating func superEncoder() -> any Encoder {
        let path = elementPath
        return NodeEncoder(box: next(), codingPath: path)
    }
}

/// An element's index in a coding path.
struct ListIndexKey: CodingKey {
    var stringValue: String
    var intValue: Int?
    init(intValue: Int) {
        self.intValue = intValue
        self.stringValue = "[\(intValue)]"
    }
    init?(stringValue: String) { nil }
}

/// An element's key in a coding path while decoding (its position key).
struct ListElementKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

// MARK: - Applying an array to a document

extension Document {
    /// Makes this document (a list's nested document) hold `elements` in order, keeping the keys
    /// of elements that stay; returns whether anything changed.
    mutating func applyList(_ elements: [FieldNode], at stamp: HLCTimestamp, path: [String], removal: FieldRemoval) throws -> Bool {
        var removed = ListPosition.removed(self)
        let removedBefore = removed
        var changed = false
        // Fields that are no element's (the field held a struct or dictionary before): removed,
        // and recorded as removed so that what a concurrent edit leaves of them stays hidden;
        // the list is made from its own elements only.
        for key in Array(self.keys) where key != ListPosition.removedKey && !ListPosition.isPositionKey(key) {
            removeField(key)
            removed.insert(.string(key))
            changed = true
        }
        let keys = ListPosition.orderedKeys(self)
        // Each stored element read once: the comparison below may run up to 2²⁰ times.
        let values = keys.map { self[$0] }
        let same = { (old: Int, new: Int) -> Bool in
            guard let value = values[old] else { return false }
            return Self.value(value, matches: elements[new])
        }
        // Elements equal in both lists, as pairs of indices: the common ends, and a longest
        // common subsequence of the middle when it is small enough to compute.
        var start = 0
        while start < keys.count, start < elements.count, same(start, start) { start += 1 }
        var oldEnd = keys.count
        var newEnd = elements.count
        while oldEnd > start, newEnd > start, same(oldEnd - 1, newEnd - 1) {
            oldEnd -= 1
            newEnd -= 1
        }
        var pairs = (0..<start).map { ($0, $0) }
        pairs += Self.commonSubsequence(oldRange: start..<oldEnd, newRange: start..<newEnd, same: same)
        pairs += zip(oldEnd..<keys.count, newEnd..<elements.count).map { ($0, $1) }

        // What a concurrent edit left of elements removed elsewhere: hidden already, removed here.
        for key in Array(self.keys) where removed.contains(.string(key)) {
            removeField(key)
            changed = true
        }
        // Walk the gaps between kept elements: pair old and new elements one to one (changed in
        // place), remove the old ones left over, insert the new ones left over. Only nested
        // documents (structs, dictionaries, lists) are changed in place, and only when the whole
        // gap pairs up so: a scalar that differs is another element, removed and inserted, so a
        // concurrent removal of the old one does not take the new one with it.
        var previousOld = -1
        var previousNew = -1
        for (old, new) in pairs + [(keys.count, elements.count)] {
            var oldGap = Array((previousOld + 1)..<old)
            var newGap = Array((previousNew + 1)..<new)
            let inPlace = zip(oldGap, newGap).allSatisfy { oldIndex, newIndex in
                guard case .map? = values[oldIndex] else { return false }
                switch elements[newIndex] {
                case .map, .dictionary, .list: return true
                case .scalar, .counter, .set: return false
                }
            }
            if !inPlace {
                // Remove the whole gap, insert the whole gap.
                for oldIndex in oldGap {
                    removeField(keys[oldIndex])
                    removed.insert(.string(keys[oldIndex]))
                    changed = true
                }
                if !newGap.isEmpty {
                    let low = previousOld >= 0 ? keys[previousOld] : nil
                    let high = old < keys.count ? keys[old] : nil
                    try insert(newGap.map { elements[$0] }, after: low, before: high, at: stamp, path: path)
                    changed = true
                }
                oldGap = []
                newGap = []
            }
            for (oldIndex, newIndex) in zip(oldGap, newGap) {
                if try applyField(keys[oldIndex], elements[newIndex], at: stamp, path: path + [keys[oldIndex]], removal: removal) {
                    changed = true
                }
            }
            if oldGap.count > newGap.count {
                for oldIndex in oldGap[newGap.count...] {
                    removeField(keys[oldIndex])
                    removed.insert(.string(keys[oldIndex]))
                    changed = true
                }
            } else if newGap.count > oldGap.count {
                let inserted = Array(newGap[oldGap.count...])
                // Between the last element kept or changed in place, and the next one kept.
                let low = oldGap.isEmpty ? (previousOld >= 0 ? keys[previousOld] : nil) : keys[oldGap[oldGap.count - 1]]
                let high = old < keys.count ? keys[old] : nil
                try insert(inserted.map { elements[$0] }, after: low, before: high, at: stamp, path: path)
                changed = true
            }
            previousOld = old
            previousNew = new
        }
        if removed != removedBefore {
            _ = makeSet(ListPosition.removedKey, hold: removed, replica: stamp.replica)
            changed = true
        }
        return changed
    }

    /// Inserts `elements`, in order, between the elements with keys `low` and `high` (`nil`: the
    /// list's ends).
    private mutating func insert(
        _ elements: [FieldNode], after low: String?, before high: String?, at stamp: HLCTimestamp, path: [String]
    ) throws {
        guard let newKeys = ListPosition.keys(elements.count, after: low, before: high) else {
            throw DocumentCodingError.unsupportedType(
                path: path.joined(separator: "."), "the list holds keys its encoding did not make: it cannot place new elements")
        }
        for (key, element) in zip(newKeys, elements) {
            _ = try applyField(key, element, at: stamp, path: path + [key], removal: .all)
        }
    }

    /// A longest common subsequence of two ranges, as pairs of indices in order; none when the
    /// ranges are too large to compare in full (every element is then replaced in place).
    static func commonSubsequence(oldRange: Range<Int>, newRange: Range<Int>, same: (Int, Int) -> Bool) -> [(Int, Int)] {
        let rows = oldRange.count
        let columns = newRange.count
        guard rows > 0, columns > 0, rows * columns <= 1 << 20 else { return [] }
        // lengths[i][j]: the longest common subsequence of old[i...] and new[j...].
        var lengths = [[Int32]](repeating: [Int32](repeating: 0, count: columns + 1), count: rows + 1)
        for i in stride(from: rows - 1, through: 0, by: -1) {
            for j in stride(from: columns - 1, through: 0, by: -1) {
                lengths[i][j] =
                    same(oldRange.lowerBound + i, newRange.lowerBound + j)
                    ? lengths[i + 1][j + 1] + 1 : max(lengths[i + 1][j], lengths[i][j + 1])
            }
        }
        var pairs = [(Int, Int)]()
        var i = 0
        var j = 0
        while i < rows, j < columns {
            if same(oldRange.lowerBound + i, newRange.lowerBound + j) {
                pairs.append((oldRange.lowerBound + i, newRange.lowerBound + j))
                i += 1
                j += 1
            } else if lengths[i + 1][j] >= lengths[i][j + 1] {
                i += 1
            } else {
                j += 1
            }
        }
        return pairs
    }

    /// Whether a stored value shows exactly what `node` encodes.
    static func value(_ value: DocumentValue, matches node: FieldNode) -> Bool {
        switch (value, node) {
        case (.register(let register), .scalar(let scalar)): return register.value == scalar
        case (.counter(let counter), .counter(let target)): return counter == target
        case (.set(let set), .set(let target)): return set == target
        case (.map(let document), .map(let fields)):
            guard Set(document.keys) == Set(fields.keys) else { return false }
            for (key, field) in fields {
                guard let stored = document[key], Self.value(stored, matches: field) else { return false }
            }
            return true
        case (.map(let document), .dictionary(let entries)):
            let hidden = RemovedKeys.hidden(in: document)
            let keys = document.keys.filter { !hidden.contains($0) }
            guard Set(keys) == Set(entries.keys) else { return false }
            for (key, entry) in entries {
                guard let stored = document[key], Self.value(stored, matches: entry) else { return false }
            }
            return true
        case (.map(let document), .list(let elements)):
            let keys = ListPosition.orderedKeys(document)
            guard keys.count == elements.count else { return false }
            for (key, element) in zip(keys, elements) {
                guard let stored = document[key], Self.value(stored, matches: element) else { return false }
            }
            return true
        default:
            return false
        }
    }
}

// MARK: - Dictionaries

/// The `~removed` set of a list or dictionary: keys removed there, hidden whatever a concurrent
/// edit left of them.
enum RemovedKeys {
    /// The keys a decoder does not show in `document`: the removed keys and the set itself
    /// (empty for a document that has no such set, such as a struct's).
    static func hidden(in document: Document) -> Set<String> {
        guard case .set(let keys)? = document[ListPosition.removedKey] else { return [] }
        var hidden: Set<String> = [ListPosition.removedKey]
        for case .string(let key) in keys { hidden.insert(key) }
        return hidden
    }
}

extension Document {
    /// Makes this document (a dictionary's nested document) hold `entries`: each entry is
    /// applied as a field; a key the value lacks (and `removal` allows) is removed and recorded
    /// in `~removed`; a removed key written again leaves the set, its leftovers removed first.
    mutating func applyDictionary(
        _ entries: [String: FieldNode], at stamp: HLCTimestamp, path: [String], removal: FieldRemoval
    ) throws -> Bool {
        guard entries[ListPosition.removedKey] == nil else {
            throw DocumentCodingError.unsupportedType(
                path: (path + [ListPosition.removedKey]).joined(separator: "."), "the key \(ListPosition.removedKey) is reserved")
        }
        var removed = ListPosition.removed(self)
        let removedBefore = removed
        var changed = false
        // Leftovers of removed entries: removed here (a key written again starts afresh).
        for key in Array(keys) where removed.contains(.string(key)) {
            removeField(key)
            changed = true
        }
        for key in entries.keys.sorted() {
            guard let entry = entries[key] else { continue }
            if removed.remove(.string(key)) != nil { changed = true }
            if try applyField(key, entry, at: stamp, path: path + [key], removal: removal) { changed = true }
        }
        for key in Array(keys) where key != ListPosition.removedKey && entries[key] == nil && !removed.contains(.string(key)) {
            guard removal.removes(path + [key]) else { continue }
            removeField(key)
            removed.insert(.string(key))
            changed = true
        }
        if removed != removedBefore {
            _ = makeSet(ListPosition.removedKey, hold: removed, replica: stamp.replica)
            changed = true
        }
        return changed
    }
}

// MARK: - Decoding

/// The elements of a list's nested document, in key order.
struct ListDocumentContainer: UnkeyedDecodingContainer {
    let document: Document
    let keys: [String]
    var codingPath: [any CodingKey]
    var recorder: KeyRecorder?
    var currentIndex = 0

    init(document: Document, codingPath: [any CodingKey], recorder: KeyRecorder?) {
        self.document = document
        self.keys = ListPosition.orderedKeys(document)
        self.codingPath = codingPath
        self.recorder = recorder
    }

    var count: Int? { keys.count }
    var isAtEnd: Bool { currentIndex >= keys.count }

    private mutating func next() throws -> (DocumentValue?, [any CodingKey]) {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(
                Any.self, .init(codingPath: codingPath, debugDescription: "the list has \(keys.count) elements"))
        }
        let key = ListElementKey(stringValue: keys[currentIndex])
        currentIndex += 1
        recorder?.record(codingPath + [key])
        return (document[key.stringValue], codingPath + [key])
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd else { return false }
        if case .register(let register)? = document[keys[currentIndex]], register.value == .null {
            currentIndex += 1
            return true
        }
        return false
    }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        let (value, path) = try next()
        return try DocumentDecoder.decode(T.self, from: value, path: path, recorder: recorder)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        let (value, path) = try next()
        return try DocumentDecoder(value: value, codingPath: path, recorder: recorder).container(keyedBy: type)
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        let (value, path) = try next()
        return try DocumentDecoder(value: value, codingPath: path, recorder: recorder).unkeyedContainer()
    }

    mutating func superDecoder() throws -> any Decoder {
        let (value, path) = try next()
        return DocumentDecoder(value: value, codingPath: path, recorder: recorder)
    }
}
