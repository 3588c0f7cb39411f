/// An add-wins observed-remove set, without tombstones.
///
/// Each element carries the dots of the additions that are still live; the
/// ``CausalContext`` remembers every addition ever seen. Removing an element forgets its dots,
/// and the context lets other replicas know those dots were seen and should go. An addition
/// concurrent with a removal has a dot the remover never saw, so it survives: **add wins**.
/// Removing and re-adding works any number of times, since each addition takes a fresh dot.
///
/// The state never grows with the number of removals: only live dots and a compact context
/// (one counter per replica, plus out-of-order dots until they become contiguous) are kept.
public struct ORSet<Element: Hashable & BinaryCodable & Sendable>: EmptyInitializableCRDT {
    /// Live elements with the dots of their live additions (sorted, never empty).
    public internal(set) var entries: [Element: [Dot]]
    /// Every addition seen.
    public internal(set) var context: CausalContext

    /// The empty set.
    public init() {
        entries = [:]
        context = CausalContext()
    }

    /// The elements present.
    public var elements: Set<Element> { Set(entries.keys) }

    /// The number of elements present.
    public var count: Int { entries.count }

    /// Whether `element` is present.
    /// - Complexity: O(1).
    public func contains(_ element: Element) -> Bool { entries[element] != nil }

    /// Adds `element` as `replica` and returns the delta.
    ///
    /// The addition supersedes the element's previous additions that this replica has seen.
    /// - Complexity: O(1) amortised.
    @discardableResult
    public mutating func insert(_ element: Element, by replica: ReplicaID) -> ORSet {
        let dot = context.nextDot(for: replica)
        var delta = ORSet()
        delta.context = CausalContext(vector: VersionVector(), cloud: Set(entries[element] ?? []).union([dot]))
        delta.entries[element] = [dot]
        entries[element] = [dot]
        return delta
    }

    /// Removes `element` and returns the delta (the dots removed, as a context).
    /// - Complexity: O(*k*) in the element's live dots.
    @discardableResult
    public mutating func remove(_ element: Element) -> ORSet {
        var delta = ORSet()
        guard let dots = entries.removeValue(forKey: element) else { return delta }
        delta.context = CausalContext(vector: VersionVector(), cloud: Set(dots))
        return delta
    }

    /// The join. An element's dot survives if both sides have it, or if the side without it
    /// has not seen it.
    /// - Complexity: O(*n* + *m*) in the elements of both sides.
    public mutating func merge(_ other: ORSet) {
        let theirContext = other.context
        var result = [Element: [Dot]](minimumCapacity: Swift.max(entries.count, other.entries.count))
        for (element, dots) in entries {
            if let theirs = other.entries[element] {
                let joined = Self.join(dots, context, theirs, theirContext)
                if !joined.isEmpty { result[element] = joined }
            } else {
                let kept = dots.filter { !theirContext.contains($0) }
                if !kept.isEmpty { result[element] = kept }
            }
        }
        for (element, dots) in other.entries where entries[element] == nil {
            let kept = dots.filter { !context.contains($0) }
            if !kept.isEmpty { result[element] = kept }
        }
        entries = result
        context.merge(theirContext)
    }

    static func join(_ mine: [Dot], _ myContext: CausalContext, _ theirs: [Dot], _ theirContext: CausalContext) -> [Dot] {
        if mine == theirs { return mine }
        var result = [Dot]()
        for dot in mine where theirs.contains(dot) || !theirContext.contains(dot) { result.append(dot) }
        for dot in theirs where !mine.contains(dot) && !myContext.contains(dot) { result.append(dot) }
        result.sort()
        return result
    }
}

extension ORSet: Hashable where Element: Hashable {}
