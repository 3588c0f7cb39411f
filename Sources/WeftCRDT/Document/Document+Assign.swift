extension Document {
    /// Makes this document show what `target` shows, by new edits stamped `stamp`: fields
    /// `target` lacks are removed, fields whose value differs are written again (registers set,
    /// counters changed by the difference, set elements added and removed, nested documents
    /// field by field), fields that already agree are left alone. Returns the delta.
    ///
    /// Every write takes a new dot from this document's context, so nothing `target` carries
    /// (its dots, its context) is reused: this is how an undo restores earlier content, and how
    /// a document built elsewhere is put into a field without mixing two histories.
    ///
    /// - Complexity: O(*n* + *m*) in the fields of both documents, plus the writes.
    @discardableResult
    public mutating func assign(matching target: Document, at stamp: HLCTimestamp) -> Document {
        let before = self
        let changed = assignContent(of: target, at: stamp)
        return Self.delta(of: changed, before: before, after: self, replica: stamp.replica)
    }

    /// ``assign(matching:at:)`` without building a delta; returns the keys it changed.
    @discardableResult
    mutating func assignContent(of target: Document, at stamp: HLCTimestamp) -> Set<String> {
        var changed = Set<String>()
        let replica = stamp.replica
        let keys = Set(fields.keys).union(target.fields.keys).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        for key in keys {
            let wanted = target[key]
            let current = self[key]
            if wanted == nil {
                if fields[key] != nil {
                    fields[key] = nil
                    changed.insert(key)
                }
                continue
            }
            switch wanted {
            case .register(let register)?:
                if case .register(let mine)? = current, mine.value == register.value { continue }
                assign(key, to: register.value, at: stamp)
                changed.insert(key)
            case .counter(let value)?:
                let now: Int64?
                if case .counter(let mine)? = current { now = mine } else { now = nil }
                if now == value { continue }
                // The difference may not fit an Int64: take it in two steps.
                let from = now ?? 0
                let (difference, overflow) = value.subtractingReportingOverflow(from)
                if overflow {
                    add(-from, toCounter: key, at: stamp)
                    add(value, toCounter: key, at: stamp)
                } else {
                    add(difference, toCounter: key, at: stamp)
                }
                changed.insert(key)
            case .set(let elements)?:
                // A set that already shows the elements is left alone, even one without a mark
                // (its part came in a delta that carried none): marking it would be a new write
                // of the field, and would hide a concurrent write of a lower kind there.
                if case .set(let mine)? = current, mine == elements { continue }
                if makeSet(key, hold: elements, replica: replica) { changed.insert(key) }
            case .map(let nested)?:
                // A nested document that already shows the wanted content is left alone, like a
                // set: editing it would give a map that arrived without its mark (its part came
                // in a join after a removal of the field here) a new mark, a new write of the
                // field that hides a concurrent write of a lower kind (a set's insert) there.
                if case .map(var mine)? = current, mine.assignContent(of: nested, at: stamp).isEmpty { continue }
                let before = fields[key]
                let contextBefore = context
                editMap(key, stamp: stamp) { $0.assignContent(of: nested, at: stamp) }
                if fields[key] != before || context != contextBefore { changed.insert(key) }
            case nil:
                break
            }
        }
        return changed
    }

    /// Makes field `key` a set holding exactly `elements`: a set is created (with a mark) if the
    /// field is not one, missing elements are added, others removed, in a fixed order. Returns
    /// whether anything changed.
    mutating func makeSet(_ key: String, hold elements: Set<Scalar>, replica: ReplicaID) -> Bool {
        let before = fields[key]
        if set(key) == nil || before?.set?.marks.isEmpty == true { ensureSet(key, replica: replica) }
        let existing = set(key) ?? []
        for element in elements.subtracting(existing).sorted(by: Scalar.canonicalOrder) {
            insertElement(element, intoSet: key, replica: replica)
        }
        for element in existing.subtracting(elements).sorted(by: Scalar.canonicalOrder) {
            removeElement(element, fromSet: key)
        }
        return fields[key] != before
    }
}
