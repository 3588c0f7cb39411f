/// Tells whether a sequence of slots (hash-table indices) holds one twice, at little more than
/// a bit per slot: each slot's hash picks a bit of a bitmap small enough to stay in cache, and
/// only the slots whose bit is taken more than once are compared exactly, at the end.
///
/// A `Set` of the slots gives the same answer, but on a large update it costs more than the
/// lookups it checks (a random probe into a table as large as the update, per slot).
/// - Complexity: O(*n*) for *n* slots; the exact pass hashes the slots of shared bits, about
///   *n*² / *m* of them for a bitmap of *m* bits (*m* is 16 to 32 times *n*).
@usableFromInline
struct RepeatedSlotFilter<Slot: Hashable> {
    /// The bits slots took, and the bits taken more than once.
    @usableFromInline var taken: [UInt64]
    @usableFromInline var shared: [UInt64]
    @usableFromInline let mask: Int
    /// Every slot added, with its bit, in order.
    @usableFromInline var slots: [(slot: Slot, bit: Int)] = []
    @usableFromInline var anyShared = false

    @inlinable
    init(expected: Int) {
        var size = 1 << 12
        while size < expected &* 16 { size <<= 1 }
        taken = [UInt64](repeating: 0, count: size >> 6)
        shared = taken
        mask = size - 1
        slots.reserveCapacity(expected)
    }

    @inlinable
    mutating func add(_ slot: Slot) {
        let bit = slot.hashValue & mask
        let word = bit >> 6
        let flag: UInt64 = 1 << UInt64(bit & 63)
        if taken[word] & flag != 0 {
            shared[word] |= flag
            anyShared = true
        } else {
            taken[word] |= flag
        }
        slots.append((slot, bit))
    }

    /// Whether some slot was added twice: a repeated slot takes its bit twice, so only the slots
    /// of shared bits are compared.
    @inlinable
    func hasRepeats() -> Bool {
        guard anyShared else { return false }
        var seen = Set<Slot>()
        for (slot, bit) in slots where shared[bit >> 6] & (1 << UInt64(bit & 63)) != 0 {
            if !seen.insert(slot).inserted { return true }
        }
        return false
    }
}
