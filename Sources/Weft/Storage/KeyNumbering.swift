/// Numbers the distinct ``DocumentKey``s of a write in order of first appearance (0, 1, 2…),
/// so per-key state can live in an array: one hash lookup per key. When the capacity hint is
/// eight or less, keys are searched in place without hashing, until a ninth distinct one
/// arrives.
package struct KeyNumbering {
    /// Lists up to this long are searched by comparison rather than hashed.
    static let shortLimit = 8

    private var table: [DocumentKey: Int] = [:]
    private var short: [DocumentKey] = []
    private var hashed: Bool
    /// The number of distinct keys numbered so far.
    package private(set) var count = 0

    /// Prepares to number about `capacity` keys.
    package init(capacity: Int) {
        hashed = capacity > Self.shortLimit
        if hashed { table.reserveCapacity(capacity) } else { short.reserveCapacity(capacity) }
    }

    /// The number of `key`: the one it was given before, or the next (``count`` before the
    /// call) if it is new.
    /// - Complexity: O(1) expected; at most eight comparisons while searching in place.
    package mutating func number(of key: DocumentKey) -> Int {
        let next = count
        let number: Int
        if hashed {
            // One lookup: the `default:` subscript inserts `next` if `key` is absent.
            number = Self.read(&table[key, default: next])
        } else if let index = short.firstIndex(of: key) {
            number = index
        } else if short.count < Self.shortLimit {
            short.append(key)
            number = next
        } else {
            // More distinct keys than the hint said: move to the hash table.
            table.reserveCapacity(2 * Self.shortLimit)
            for (index, known) in short.enumerated() { table[known] = index }
            short = []
            hashed = true
            table[key] = next
            number = next
        }
        if number == next { count += 1 }
        return number
    }

    private static func read(_ value: inout Int) -> Int { value }
}
