/// One write of a register field: the value, the stamp it was written at, and its dot.
struct RegisterEntry: Hashable, Sendable {
    var dot: Dot
    var stamp: HLCTimestamp
    var value: Scalar
}

/// One replica's part of a counter field: everything it added and took away, under the dot of
/// its latest change (a causal counter: a removal of the field forgets the dots it saw).
struct CounterEntry: Hashable, Sendable {
    var dot: Dot
    var up: UInt64
    var down: UInt64
}

/// The set kind of a field: marks (the dots of the writes that created it, so an empty set is
/// still a set) and the elements with the dots of their live additions.
struct SetStore: Hashable, Sendable {
    /// Sorted, possibly empty.
    var marks: [Dot] = []
    /// Every element with its dots (sorted, never empty).
    var elements: [Scalar: [Dot]] = [:]

    var isEmpty: Bool { marks.isEmpty && elements.isEmpty }
}

/// The nested-document kind of a field: marks (as for sets) and the nested fields.
struct MapStore: Hashable, Sendable {
    /// Sorted, possibly empty.
    var marks: [Dot] = []
    /// The nested fields, none empty.
    var fields: FieldTable = [:]

    var isEmpty: Bool { marks.isEmpty && fields.isEmpty }
}

/// Everything a ``Document`` holds for one field: the live entries of each kind, each entry
/// under a dot of the document's one causal context.
///
/// A field usually holds one kind. Concurrent writes of different kinds leave several; readers
/// see the highest (register < counter < set < map), and the next write of the field, which has
/// seen them all, replaces them. Invariants (checked by the decoder): the store is not empty;
/// entry arrays and dot arrays are sorted by dot; a set or map part, if present, is not empty;
/// every dot appears once in the whole document and is in its context.
struct FieldStore: Hashable, Sendable {
    /// Concurrent register writes (usually one), sorted by dot.
    var registers: [RegisterEntry] = []
    /// The other kinds, boxed: most fields are registers only, and a field table entry stays
    /// two words (a register field costs what a version array did before).
    private var others: OtherKinds?

    /// Counter parts, one per replica that changed the counter since it was created, sorted by dot.
    var counter: [CounterEntry] {
        get { others?.counter ?? [] }
        _modify {
            let box = uniqueOthers()
            yield &box.counter
            normalize()
        }
    }

    /// The set part.
    var set: SetStore? {
        get { others?.set }
        _modify {
            let box = uniqueOthers()
            yield &box.set
            normalize()
        }
    }

    /// The nested-document part.
    var map: MapStore? {
        get { others?.map }
        _modify {
            let box = uniqueOthers()
            yield &box.map
            normalize()
        }
    }

    /// The kinds of a field, for ``keepOnly(_:)``.
    enum Kind { case counter, set, map }

    /// Drops every entry of the other kinds (a write of `kind` replaces them); returns their
    /// dots, which the write's delta must carry.
    mutating func keepOnly(_ kind: Kind) -> [Dot] {
        var dropped = [Dot]()
        for entry in registers { dropped.append(entry.dot) }
        registers = []
        guard let box = others else { return dropped }
        let dropsCounter = kind != .counter && !box.counter.isEmpty
        let dropsSet = kind != .set && box.set != nil
        let dropsMap = kind != .map && box.map != nil
        guard dropsCounter || dropsSet || dropsMap else { return dropped }
        var removed = FieldStore()
        if dropsCounter { removed.counter = box.counter }
        if dropsSet { removed.set = box.set }
        if dropsMap { removed.map = box.map }
        removed.forEachDot { dropped.append($0) }
        if dropsCounter { counter = [] }
        if dropsSet { set = nil }
        if dropsMap { map = nil }
        return dropped
    }

    /// Whether the store holds registers only (the usual field).
    var isRegistersOnly: Bool { others == nil }

    /// The box of other kinds, created or copied so this store owns it alone.
    private mutating func uniqueOthers() -> OtherKinds {
        if let box = others, isKnownUniquelyReferenced(&others) { return box }
        let box = others.map { OtherKinds(copying: $0) } ?? OtherKinds()
        others = box
        return box
    }

    /// Drops an empty box, so equal stores look alike.
    private mutating func normalize() {
        if let box = others, box.counter.isEmpty, box.set == nil, box.map == nil { others = nil }
    }

    static func == (lhs: FieldStore, rhs: FieldStore) -> Bool {
        guard lhs.registers == rhs.registers else { return false }
        switch (lhs.others, rhs.others) {
        case (nil, nil): return true
        case (let a?, let b?): return a === b || (a.counter == b.counter && a.set == b.set && a.map == b.map)
        default: return false
        }
    }

    func hash(into hasher: inout Hasher) {
        hasher.combine(registers)
        hasher.combine(counter)
        hasher.combine(set)
        hasher.combine(map)
    }

    init() {}

    init(register entry: RegisterEntry) { registers = [entry] }

    var isEmpty: Bool { registers.isEmpty && others == nil }

    /// The kind readers see: the highest kind present.
    var visibleRank: UInt8 {
        guard let others else { return 0 }
        if others.map != nil { return 3 }
        if set != nil { return 2 }
        if !counter.isEmpty { return 1 }
        return 0
    }

    /// The winning register write: the greatest stamp, then the greatest dot (a later write of
    /// one replica with one stamp, in one edit).
    var winningRegister: RegisterEntry? {
        guard var best = registers.first else { return nil }
        for entry in registers.dropFirst() where entry.stamp > best.stamp || (entry.stamp == best.stamp && best.dot < entry.dot) {
            best = entry
        }
        return best
    }

    /// The counter's value: everything added minus everything taken away, clamped to `Int64`.
    var counterValue: Int64 {
        var up: UInt64 = 0
        var down: UInt64 = 0
        for entry in counter {
            let (u, o1) = up.addingReportingOverflow(entry.up)
            up = o1 ? .max : u
            let (d, o2) = down.addingReportingOverflow(entry.down)
            down = o2 ? .max : d
        }
        if up >= down { return Int64(clamping: up - down) }
        let magnitude = down - up
        return magnitude > UInt64(Int64.max) ? .min : -Int64(magnitude)
    }

    /// The smallest dot of the store: fields are encoded in the order of their smallest dot.
    var smallestDot: Dot? {
        // Inlined for the usual register field: a call would retain the store's arrays.
        @inline(__always) get {
            if others == nil { return registers.first?.dot }
            return smallestDotOfAllKinds
        }
    }

    /// ``smallestDot`` of a store with other kinds than registers.
    private var smallestDotOfAllKinds: Dot? {
        var best: Dot?
        func consider(_ dot: Dot?) {
            guard let dot else { return }
            if let current = best, !(dot < current) { return }
            best = dot
        }
        consider(registers.first?.dot)
        consider(counter.first?.dot)
        if let set {
            consider(set.marks.first)
            for dots in set.elements.values { consider(dots.first) }
        }
        if let map {
            consider(map.marks.first)
            for field in map.fields.values { consider(field.smallestDot) }
        }
        return best
    }

    /// Calls `body` with every dot of the store, nested fields included.
    func forEachDot(_ body: (Dot) -> Void) {
        for entry in registers { body(entry.dot) }
        for entry in counter { body(entry.dot) }
        if let set {
            for dot in set.marks { body(dot) }
            for dots in set.elements.values { for dot in dots { body(dot) } }
        }
        if let map {
            for dot in map.marks { body(dot) }
            for field in map.fields.values { field.forEachDot(body) }
        }
    }

    /// Whether any dot of the store is in `context`.
    func anyDot(in context: CausalContext) -> Bool {
        if registers.contains(where: { context.contains($0.dot) }) { return true }
        if counter.contains(where: { context.contains($0.dot) }) { return true }
        if let set {
            if set.marks.contains(where: context.contains) { return true }
            for dots in set.elements.values where dots.contains(where: context.contains) { return true }
        }
        if let map {
            if map.marks.contains(where: context.contains) { return true }
            for field in map.fields.values where field.anyDot(in: context) { return true }
        }
        return false
    }

    /// The greatest register stamp, nested fields included.
    var greatestStamp: HLCTimestamp? {
        var best: HLCTimestamp?
        for entry in registers where best.map({ entry.stamp > $0 }) ?? true { best = entry.stamp }
        if let map {
            for field in map.fields.values {
                if let stamp = field.greatestStamp, best.map({ stamp > $0 }) ?? true { best = stamp }
            }
        }
        return best
    }

    // MARK: Joining

    /// The entries of this store that survive a join with a side that holds nothing of the
    /// field and has seen `theirs`: those whose dots it has not seen. `nil` when none survive.
    func surviving(against theirs: CausalContext) -> FieldStore? {
        guard !theirs.isEmpty, anyDot(in: theirs) else { return self }
        var result = FieldStore()
        result.registers = registers.filter { !theirs.contains($0.dot) }
        result.counter = counter.filter { !theirs.contains($0.dot) }
        if let set {
            var kept = SetStore(marks: set.marks.filter { !theirs.contains($0) })
            for (element, dots) in set.elements {
                let live = dots.filter { !theirs.contains($0) }
                if !live.isEmpty { kept.elements[element] = live }
            }
            if !kept.isEmpty { result.set = kept }
        }
        if let map {
            var kept = MapStore(marks: map.marks.filter { !theirs.contains($0) })
            for (key, field) in map.fields {
                if let survivor = field.surviving(against: theirs) { kept.fields[key] = survivor }
            }
            if !kept.isEmpty { result.map = kept }
        }
        return result.isEmpty ? nil : result
    }

    /// The join of two stores of one field, `mine` seen with `myContext` and `theirs` with
    /// `theirContext`: an entry survives if both sides hold it or the side without it has not
    /// seen its dot. `nil` when nothing survives.
    static func join(
        _ mine: FieldStore, _ myContext: CausalContext, _ theirs: FieldStore, _ theirContext: CausalContext
    ) -> FieldStore? {
        if mine == theirs { return mine }
        if mine.isRegistersOnly && theirs.isRegistersOnly && mine.registers.count == 1 && theirs.registers.count == 1 {
            // The usual field: one write on each side. Keep a side's write unless the other
            // side has seen it, without building new arrays.
            let a = mine.registers[0]
            let b = theirs.registers[0]
            if a.dot == b.dot { return joinedCopies(a, b) == a ? mine : theirs }
            let keepsMine = !theirContext.contains(a.dot)
            let keepsTheirs = !myContext.contains(b.dot)
            switch (keepsMine, keepsTheirs) {
            case (true, false): return mine
            case (false, true): return theirs
            case (false, false): return nil
            case (true, true):
                var both = FieldStore()
                both.registers = a.dot < b.dot ? [a, b] : [b, a]
                return both
            }
        }
        var result = FieldStore()
        result.registers = joinEntries(mine.registers, myContext, theirs.registers, theirContext, \.dot, joinedCopies)
        result.counter = joinEntries(mine.counter, myContext, theirs.counter, theirContext, \.dot) { a, b in
            CounterEntry(dot: a.dot, up: Swift.max(a.up, b.up), down: Swift.max(a.down, b.down))
        }
        switch (mine.set, theirs.set) {
        case (nil, nil): break
        case (let set?, nil):
            result.set = FieldStore(set: set).surviving(against: theirContext)?.set
        case (nil, let set?):
            result.set = FieldStore(set: set).surviving(against: myContext)?.set
        case (let a?, let b?):
            var joined = SetStore(marks: joinDots(a.marks, myContext, b.marks, theirContext))
            joined.elements.reserveCapacity(Swift.max(a.elements.count, b.elements.count))
            for (element, dots) in a.elements {
                let live = b.elements[element].map { joinDots(dots, myContext, $0, theirContext) } ?? dots.filter { !theirContext.contains($0) }
                if !live.isEmpty { joined.elements[element] = live }
            }
            for (element, dots) in b.elements where a.elements[element] == nil {
                let live = dots.filter { !myContext.contains($0) }
                if !live.isEmpty { joined.elements[element] = live }
            }
            if !joined.isEmpty { result.set = joined }
        }
        switch (mine.map, theirs.map) {
        case (nil, nil): break
        case (let map?, nil):
            result.map = FieldStore(map: map).surviving(against: theirContext)?.map
        case (nil, let map?):
            result.map = FieldStore(map: map).surviving(against: myContext)?.map
        case (let a?, let b?):
            var joined = MapStore(marks: joinDots(a.marks, myContext, b.marks, theirContext))
            joined.fields = joinFields(a.fields, myContext, b.fields, theirContext)
            if !joined.isEmpty { result.map = joined }
        }
        return result.isEmpty ? nil : result
    }

    /// Two copies of the write under one dot: the same write, unless someone misused a dot; if
    /// they differ, one is picked deterministically.
    static func joinedCopies(_ a: RegisterEntry, _ b: RegisterEntry) -> RegisterEntry {
        if a == b { return a }
        if a.stamp != b.stamp { return a.stamp > b.stamp ? a : b }
        return a.value.binaryBytes.lexicographicallyPrecedes(b.value.binaryBytes) ? b : a
    }

    /// The join of two field tables under their contexts.
    static func joinFields(
        _ mine: FieldTable, _ myContext: CausalContext, _ theirs: FieldTable, _ theirContext: CausalContext
    ) -> FieldTable {
        var result = mine
        joinFields(into: &result, myContext, theirs, theirContext)
        return result
    }

    /// Joins `theirs` into `mine` in place: a small `theirs` (a delta) costs little beyond one
    /// look at each of `mine`'s fields.
    /// - Complexity: O(*n* + *m*) hash lookups at most; one per field of `theirs` when `theirs`
    ///   holds every field of `mine` (two copies of a document) or has seen none of them.
    static func joinFields(
        into mine: inout FieldTable, _ myContext: CausalContext, _ theirs: FieldTable, _ theirContext: CausalContext
    ) {
        let original = mine.count
        // Which of mine's fields `theirs` also holds, so the fields only on this side need no
        // second lookup each.
        var matched = [Bool]()
        var matchedCount = 0
        var emptied = [String]()
        for (key, store) in theirs.entries {
            if let position = mine.position(of: key) {
                if matched.isEmpty { matched = [Bool](repeating: false, count: original) }
                matched[position] = true
                matchedCount += 1
                if let joined = join(mine[position: position], myContext, store, theirContext) {
                    mine[position: position] = joined
                } else {
                    // Removed after the loop, so positions stay put while it runs.
                    mine[position: position] = FieldStore()
                    emptied.append(key)
                }
            } else if let survivor = store.surviving(against: myContext) {
                _ = mine.insertNew(survivor, forKey: key)
            }
        }
        // Fields only on this side: drop what the other side has seen (it removed it).
        if !theirContext.isEmpty && matchedCount < original {
            for position in 0..<original where matched.isEmpty || !matched[position] {
                let store = mine[position: position]
                guard store.anyDot(in: theirContext) else { continue }
                if let survivor = store.surviving(against: theirContext) {
                    mine[position: position] = survivor
                } else {
                    mine[position: position] = FieldStore()
                    emptied.append(mine.entries[position].key)
                }
            }
        }
        for key in emptied { mine.removeValue(forKey: key) }
    }

    init(set: SetStore) { self.set = set }
    init(map: MapStore) { self.map = map }
}

/// The kinds of a field other than registers, in one box shared by copies until one changes.
final class OtherKinds: @unchecked Sendable {
    // Mutated only through `FieldStore`'s accessors, after `isKnownUniquelyReferenced`: a box
    // that is shared is never written, so sharing it across threads is safe.
    var counter: [CounterEntry] = []
    var set: SetStore?
    var map: MapStore?

    init() {}

    init(copying other: OtherKinds) {
        counter = other.counter
        set = other.set
        map = other.map
    }
}

/// The join of two sorted dot arrays (a dot set), as for entries.
func joinDots(_ mine: [Dot], _ myContext: CausalContext, _ theirs: [Dot], _ theirContext: CausalContext) -> [Dot] {
    joinEntries(mine, myContext, theirs, theirContext, \.self) { a, _ in a }
}

/// The join of two arrays of entries sorted by dot: an entry both sides hold is kept (its two
/// copies combined by `same`), one only one side holds is kept unless the other side has seen
/// its dot.
func joinEntries<Entry>(
    _ mine: [Entry], _ myContext: CausalContext, _ theirs: [Entry], _ theirContext: CausalContext,
    _ dot: (Entry) -> Dot, _ same: (Entry, Entry) -> Entry
) -> [Entry] {
    if theirs.isEmpty { return mine.isEmpty || theirContext.isEmpty ? mine : mine.filter { !theirContext.contains(dot($0)) } }
    if mine.isEmpty { return myContext.isEmpty ? theirs : theirs.filter { !myContext.contains(dot($0)) } }
    var result = [Entry]()
    result.reserveCapacity(Swift.max(mine.count, theirs.count))
    var i = 0
    var j = 0
    while i < mine.count || j < theirs.count {
        if j == theirs.count || (i < mine.count && dot(mine[i]) < dot(theirs[j])) {
            if !theirContext.contains(dot(mine[i])) { result.append(mine[i]) }
            i += 1
        } else if i == mine.count || dot(theirs[j]) < dot(mine[i]) {
            if !myContext.contains(dot(theirs[j])) { result.append(theirs[j]) }
            j += 1
        } else {
            result.append(same(mine[i], theirs[j]))
            i += 1
            j += 1
        }
    }
    return result
}
