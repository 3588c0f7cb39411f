/// The fields of a ``Document`` (or of a nested document): a dense array of entries with a hash
/// index from key to position once there are more than a few.
///
/// A dictionary of fields scatters them over its buckets, so walking a large document in the
/// order of its encoding (the fields' smallest dots) visits memory at random: at 100,000 fields
/// the encoder spent most of its time waiting on those loads. Here the entries sit side by side
/// in the order they were added, which for a decoded document is the encoding's order, so the
/// encoder reads them front to back. Tables of up to ``linearLimit`` fields (most documents)
/// find keys by comparing them in turn and keep no index, which saves an allocation and a hash
/// per key; larger ones look keys up in ``index``.
///
/// The API follows `Dictionary`'s where the document code uses it. Order is not part of the
/// value: two tables with the same keys and stores are equal (and hash alike) in any order.
/// Removing a field moves the last entry into its place.
///
/// - Complexity: lookup, insertion and removal are O(1) on average (O(``linearLimit``) in a
///   small table); iteration is in entry order.
struct FieldTable: Sendable {
    /// One field.
    typealias Element = (key: String, value: FieldStore)

    /// Tables of at most this many fields keep no index.
    static let linearLimit = 12

    /// The fields, in the order they were added (a removal moves the last one into the gap).
    private(set) var entries: [Element]
    /// The position of each key in ``entries`` while there are more than ``linearLimit``;
    /// empty otherwise.
    private var index: [String: Int]

    init() {
        entries = []
        index = [:]
    }

    init(minimumCapacity: Int) {
        entries = []
        entries.reserveCapacity(minimumCapacity)
        index = minimumCapacity > Self.linearLimit ? Dictionary(minimumCapacity: minimumCapacity) : [:]
    }

    var count: Int { entries.count }
    var isEmpty: Bool { entries.isEmpty }

    /// The keys, in entry order.
    var keys: LazyMapSequence<[Element], String> { entries.lazy.map(\.key) }
    /// The stores, in entry order.
    var values: LazyMapSequence<[Element], FieldStore> { entries.lazy.map(\.value) }

    mutating func reserveCapacity(_ capacity: Int) {
        entries.reserveCapacity(capacity)
        if capacity > Self.linearLimit { index.reserveCapacity(capacity) }
    }

    /// The position of `key` in ``entries``, if present.
    func position(of key: String) -> Int? {
        if entries.count > Self.linearLimit { return index[key] }
        for position in entries.indices where entries[position].key == key { return position }
        return nil
    }

    /// The store of `key`; setting `nil` removes the field.
    subscript(key: String) -> FieldStore? {
        get {
            guard let position = position(of: key) else { return nil }
            return entries[position].value
        }
        set {
            if let newValue {
                updateValue(newValue, forKey: key)
            } else {
                removeValue(forKey: key)
            }
        }
    }

    /// The store at `position` (from ``position(of:)``), read and written in place.
    subscript(position position: Int) -> FieldStore {
        get { entries[position].value }
        _modify { yield &entries[position].value }
    }

    /// Sets the store of `key`; returns the store it replaced, if any.
    @discardableResult
    mutating func updateValue(_ store: consuming FieldStore, forKey key: String) -> FieldStore? {
        if let position = position(of: key) {
            let old = entries[position].value
            entries[position].value = store
            return old
        }
        append(store, forKey: key)
        return nil
    }

    /// Adds a field known to be absent (the decoder's and the builders' path); returns `false`,
    /// and changes nothing, if it is present after all.
    mutating func insertNew(_ store: consuming FieldStore, forKey key: consuming String) -> Bool {
        guard entries.count > Self.linearLimit else {
            // Compared in turn; `append` indexes the table if this field takes it past the limit.
            guard position(of: key) == nil else { return false }
            append(store, forKey: key)
            return true
        }
        let position = entries.count
        var added = false
        // One hash of the key: the default is taken (and inserted) only if the key is absent.
        index[
            copy key,
            default: {
                added = true
                return position
            }()] += 0
        guard added else { return false }
        entries.append((key, store))
        return true
    }

    /// Appends a field that is absent, indexing it if the table keeps an index.
    private mutating func append(_ store: consuming FieldStore, forKey key: String) {
        if entries.count == Self.linearLimit { buildIndex() }
        if entries.count >= Self.linearLimit { index[key] = entries.count }
        entries.append((key, store))
    }

    /// Indexes every field (the table is about to pass ``linearLimit``).
    private mutating func buildIndex() {
        index.removeAll(keepingCapacity: true)
        index.reserveCapacity(Swift.max(entries.capacity, 2 * Self.linearLimit))
        for position in entries.indices { index[entries[position].key] = position }
    }

    /// Removes field `key`; returns its store, if it was present.
    @discardableResult
    mutating func removeValue(forKey key: String) -> FieldStore? {
        guard let position = position(of: key) else { return nil }
        let indexed = entries.count > Self.linearLimit
        if indexed { index.removeValue(forKey: key) }
        let last = entries.count - 1
        if position != last {
            entries.swapAt(position, last)
            if indexed { index[entries[position].key] = position }
        }
        let removed = entries.removeLast().value
        // Back to comparisons: the index goes.
        if indexed && entries.count == Self.linearLimit { index.removeAll() }
        return removed
    }

    /// The table with each store transformed, in the same order.
    func mapValues(_ transform: (FieldStore) throws -> FieldStore) rethrows -> FieldTable {
        var result = self
        for position in result.entries.indices {
            result.entries[position].value = try transform(result.entries[position].value)
        }
        return result
    }
}

extension FieldTable: Sequence {
    func makeIterator() -> IndexingIterator<[Element]> { entries.makeIterator() }
    var underestimatedCount: Int { entries.count }
}

extension FieldTable: ExpressibleByDictionaryLiteral {
    init(dictionaryLiteral elements: (String, FieldStore)...) {
        self.init(minimumCapacity: elements.count)
        for (key, store) in elements { updateValue(store, forKey: key) }
    }
}

extension FieldTable: Hashable {
    /// Equal keys with equal stores, in any order.
    static func == (lhs: FieldTable, rhs: FieldTable) -> Bool {
        guard lhs.count == rhs.count else { return false }
        for (key, store) in lhs.entries {
            guard let position = rhs.position(of: key), rhs.entries[position].value == store else { return false }
        }
        return true
    }

    /// Order-independent, as for `Dictionary`: the entries' own hashes are combined by addition.
    func hash(into hasher: inout Hasher) {
        var combined = 0
        for (key, store) in entries {
            var entryHasher = Hasher()
            entryHasher.combine(key)
            entryHasher.combine(store)
            combined = combined &+ entryHasher.finalize()
        }
        hasher.combine(count)
        hasher.combine(combined)
    }
}
