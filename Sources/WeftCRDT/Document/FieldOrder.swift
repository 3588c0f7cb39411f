/// The fields of a large table in the order of their smallest dots, found without comparing
/// dots: each field's dot packs, with the field's position, into one integer whose order is the
/// dots' order (replicas ranked by identifier, then counters), and the integers are sorted by
/// radix. Tables whose dots do not fit (more than 64 replicas among them, or ranks, counters
/// and positions that need more than 64 bits together) fall back to the comparison sort.
/// - Complexity: O(*n*) for *n* fields (O(*n* × 64) at worst, finding replicas).
struct FieldOrder {
    /// Tables whose smallest dots name more replicas than this are sorted by comparison.
    static let maximumReplicas = 64

    /// The packed keys, sorted; the low ``positionBits`` bits are a position in the table.
    var keys: [UInt64]
    let positionBits: UInt64

    /// The position in the table of the field at `rank` in dot order.
    func position(at rank: Int) -> Int {
        Int(truncatingIfNeeded: keys[rank] & ((1 << positionBits) - 1))
    }

    /// Calls `body` with the position of each entry in the order of their smallest dots, sorted
    /// by comparison through a scratch buffer of (dot, position) pairs (on the stack when small).
    /// Every field has a dot, and no two fields share one.
    /// - Complexity: O(*n* log *n*).
    static func byComparison(_ entries: UnsafeBufferPointer<FieldTable.Element>, _ body: (Int) -> Void) {
        withUnsafeTemporaryAllocation(of: (Dot, Int).self, capacity: entries.count) { order in
            for position in entries.indices {
                let smallest = entries[position].value.smallestDot ?? Dot(replica: ReplicaID(high: 0, low: 0), counter: 0)
                order.initializeElement(at: position, to: (smallest, position))
            }
            var sorted = order
            sorted.sort { $0.0 < $1.0 }
            for (_, position) in sorted { body(position) }
            _ = sorted.deinitialize()
        }
    }

    /// Whether the entries already stand in the order of their smallest dots.
    /// - Complexity: O(*n*), stopping at the first pair out of order.
    static func isSorted(_ entries: UnsafeBufferPointer<FieldTable.Element>) -> Bool {
        guard let base = entries.baseAddress, var previous = base.pointee.value.smallestDot else { return true }
        for position in entries.indices.dropFirst() {
            guard let dot = (base + position).pointee.value.smallestDot, previous < dot else { return false }
            previous = dot
        }
        return true
    }

    /// The fields that stand out of dot order, sorted by dot, if there are at most `limit` and
    /// the others stand in order; `[]` for a table in order. An edit in place gives its field a
    /// new, greatest dot where it stands, and a merge may lower a field's smallest dot: such a
    /// field is taken out when it is above the next field while that one continues the run, or
    /// below the run. The fields left form a strictly increasing run by construction.
    /// - Complexity: O(*n*) and O(*k* log *k*) for *k* fields taken out.
    static func outliers(_ entries: UnsafeBufferPointer<FieldTable.Element>, limit: Int) -> [(dot: Dot, position: Int)]? {
        guard let base = entries.baseAddress else { return [] }
        var outliers = [(dot: Dot, position: Int)]()
        var last: Dot?
        var next = base.pointee.value.smallestDot
        for position in entries.indices {
            guard let dot = next else { return nil }
            next = position + 1 < entries.count ? (base + position + 1).pointee.value.smallestDot : nil
            if let last, !(last < dot) {
                outliers.append((dot, position))  // below the run
            } else if let following = next, !(dot < following), last.map({ $0 < following }) ?? true {
                outliers.append((dot, position))  // above a successor that continues the run
            } else {
                last = dot
            }
            if outliers.count > limit { return nil }
        }
        outliers.sort { $0.dot < $1.dot }
        return outliers
    }

    init?(_ entries: UnsafeBufferPointer<FieldTable.Element>) {
        var slots = [UInt16]()
        slots.reserveCapacity(entries.count)
        var counters = [UInt64]()
        counters.reserveCapacity(entries.count)
        var replicas = [ReplicaID]()
        var lastReplica = ReplicaID(high: 0, low: 0)
        var lastSlot = -1
        var largestCounter: UInt64 = 0
        for position in entries.indices {
            guard let dot = entries[position].value.smallestDot else { return nil }
            if lastSlot < 0 || dot.replica != lastReplica {
                if let known = replicas.firstIndex(of: dot.replica) {
                    lastSlot = known
                } else {
                    // Replicas are found by a linear search, so many of them fall back to the
                    // comparison sort rather than cost O(n × replicas).
                    guard replicas.count < Self.maximumReplicas else { return nil }
                    replicas.append(dot.replica)
                    lastSlot = replicas.count - 1
                }
                lastReplica = dot.replica
            }
            slots.append(UInt16(lastSlot))
            counters.append(dot.counter)
            largestCounter = max(largestCounter, dot.counter)
        }
        // Ranks in identifier order, as dots compare.
        var rank = [UInt64](repeating: 0, count: replicas.count)
        for (position, slot) in replicas.indices.sorted(by: { replicas[$0] < replicas[$1] }).enumerated() {
            rank[slot] = UInt64(position)
        }
        let positionBits = UInt64(bitWidth(of: UInt64(entries.count - 1)))
        let counterBits = UInt64(bitWidth(of: largestCounter))
        let rankBits = UInt64(bitWidth(of: UInt64(replicas.count - 1)))
        guard positionBits + counterBits + rankBits <= 64 else { return nil }
        var keys = [UInt64](repeating: 0, count: entries.count)
        for position in entries.indices {
            keys[position] =
                rank[Int(slots[position])] << (counterBits + positionBits) | counters[position] << positionBits | UInt64(position)
        }
        radixSortPacked(&keys, bits: Int(positionBits + counterBits + rankBits))
        self.keys = keys
        self.positionBits = positionBits
    }
}
