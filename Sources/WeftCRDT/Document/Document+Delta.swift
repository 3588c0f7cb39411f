/// Deltas between two versions of a document: what a later version holds that an earlier one
/// lacks, small when the change is small, so a document of many fields can travel as the part
/// that changed (a delta-state, in the sense of Almeida, Shoker and Baquero's δ-CRDTs).
extension Document {
    /// The part of this document that `base` lacks: joining it into `base` gives this document,
    /// and joining it into any document that includes `base` gives that document joined with
    /// this one.
    ///
    /// The delta holds the entries whose dots `base` has not seen, and a causal context of the
    /// dots this document has seen and `base` has not, plus the dots of `base`'s entries this
    /// document no longer holds (its removals and replacements), so the join removes exactly
    /// those.
    ///
    /// - Returns: `nil` if this document is not a later version of `base` (it has not seen
    ///   every dot `base` has), or if the delta's context would list more than `maximumDots`
    ///   dots one by one (a change that large travels better whole).
    /// - Complexity: O(*n*) in the entries of both documents.
    public func delta(since base: Document, maximumDots: Int = 4_096) -> Document? {
        guard var dots = dotsSeen(since: base.context, maximumDots: maximumDots) else { return nil }
        // The dots of the base's entries that this version no longer holds.
        for (key, old) in base.fields {
            FieldStore.noteDroppedDots(of: old, keptIn: fields[key], into: &dots)
            if dots.count > maximumDots { return nil }
        }
        // The entries the base has not seen.
        var changed = FieldTable()
        for (key, store) in fields {
            guard let survivor = store.surviving(against: base.context) else { continue }
            changed[key] = survivor
        }
        return Document(fields: changed, context: CausalContext(vector: VersionVector(), cloud: dots))
    }
}

extension DocumentRecord {
    /// This record as a delta over `base` (see ``Document/delta(since:maximumDots:)``): the
    /// body's delta with this record's deletion flag and version vector. Joining it into `base`
    /// gives this record exactly; that is checked, so a delta that would not is never returned.
    ///
    /// - Returns: `nil` when the body has no delta over `base`'s, or the join would not give
    ///   this record.
    /// - Complexity: O(*n*) in the entries of both records, plus a join and a comparison.
    public func delta(since base: DocumentRecord, maximumDots: Int = 4_096) -> DocumentRecord? {
        guard let body = body.delta(since: base.body, maximumDots: maximumDots) else { return nil }
        let delta = DocumentRecord(body: body, deletion: deletion, version: version)
        var check = base
        check.merge(delta)
        return check == self ? delta : nil
    }
}

extension DocumentRecord {
    /// A 64-bit digest of the record's encoding (with its envelope, `Docs/Encoding.md` §1):
    /// FNV-1a, offset basis `0xcbf29ce484222325`, prime `0x100000001b3`. A delta names its base
    /// by this digest, and a client joins the delta only into a record with the same digest:
    /// exactly the base, not merely one with the same version vector.
    /// - Complexity: O(*n*) in the encoded size.
    public var digest: UInt64 { Self.digest(ofEncoding: encoded()) }

    /// The ``digest`` of the record whose encoding is `bytes`, without decoding it.
    /// - Complexity: O(*n*) in `bytes`.
    public static func digest(ofEncoding bytes: some Sequence<UInt8>) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        return hash
    }
}

/// A document as it was before an edit, kept field by field as the edit touches them: what
/// `Document.delta(since:maximumDots:)` over an edit base needs to find the edit's delta without
/// looking at the fields the edit left alone, or keeping a copy of the whole document.
@_spi(Editing)
public struct EditBase: Sendable {
    /// The document's causal context before the edit.
    let context: CausalContext
    /// The store of each field the edit touched, as it was before (`.some(nil)`: absent).
    var stores: [String: FieldStore?] = [:]

    /// The base of an edit that starts from `document`.
    public init(before document: Document) {
        context = document.context
    }

    /// Records field `key` as `document` holds it now, the first time the edit touches it.
    /// Call it before every change of a field: a field changed without it is missing from the
    /// delta.
    /// - Complexity: O(1) (a copy of the field's store shares its storage).
    public mutating func noteTouch(of key: String, in document: Document) {
        if stores[key] == nil { stores[key] = .some(document.fields[key]) }
    }
}

extension Document {
    /// The delta of this document over the one `base` was taken from, when this document is
    /// that one edited only in the fields `base` noted (``EditBase/noteTouch(of:in:)``) and
    /// with dots issued for the edits: the same delta as ``delta(since:maximumDots:)`` over the
    /// whole earlier document, found by looking at the touched fields alone.
    ///
    /// Law: if every field the edit changed was noted before it changed, the earlier document
    /// joined with the result is this document, and the result equals
    /// ``delta(since:maximumDots:)``.
    ///
    /// - Returns: `nil` if this document has not seen every dot the earlier one had, or if the
    ///   delta's context would list more than `maximumDots` dots.
    /// - Complexity: O(*k* + *r* + *c*): the entries of the touched fields, the replicas in the
    ///   contexts and the dots listed one by one in them.
    @_spi(Editing)
    public func delta(since base: EditBase, maximumDots: Int = 4_096) -> Document? {
        guard var dots = dotsSeen(since: base.context, maximumDots: maximumDots) else { return nil }
        var changed = FieldTable()
        for (key, before) in base.stores {
            let new = fields[key]
            if let old = before {
                FieldStore.noteDroppedDots(of: old, keptIn: new, into: &dots)
                if dots.count > maximumDots { return nil }
            }
            if let new, let survivor = new.surviving(against: base.context) { changed[key] = survivor }
        }
        return Document(fields: changed, context: CausalContext(vector: VersionVector(), cloud: dots))
    }

    /// The dots this document has seen and `base` has not; `nil` if `base` has seen one this
    /// document has not, or if there are more than `maximumDots`.
    /// - Complexity: O(*r* + *c* + the dots returned).
    func dotsSeen(since base: CausalContext, maximumDots: Int) -> Set<Dot>? {
        for entry in base.vector.entries where context.vector[entry.replica] < entry.counter {
            let start = context.vector[entry.replica] + 1
            guard entry.counter - start < UInt64(maximumDots) else { return nil }
            for counter in start...entry.counter
            where !context.contains(Dot(replica: entry.replica, counter: counter)) { return nil }
        }
        for dot in base.cloud where !context.contains(dot) { return nil }
        var dots = Set<Dot>()
        for entry in context.vector.entries where base.vector[entry.replica] < entry.counter {
            let start = base.vector[entry.replica] + 1
            for counter in start...entry.counter {
                let dot = Dot(replica: entry.replica, counter: counter)
                guard !base.contains(dot) else { continue }
                dots.insert(dot)
                if dots.count > maximumDots { return nil }
            }
        }
        for dot in context.cloud where !base.contains(dot) {
            dots.insert(dot)
            if dots.count > maximumDots { return nil }
        }
        return dots
    }
}

extension DocumentRecord {
    /// Takes the body out of the record, leaving an empty one: the body's storage then has one
    /// owner less, so an edit of the body taken changes it in place rather than copying it.
    @_spi(Editing)
    public mutating func takeBody() -> Document {
        var taken = Document()
        swap(&taken, &body)
        return taken
    }
}

extension FieldStore {
    /// Adds to `dots` the dots of `old` that `new` (the field's store in a later version, `nil`
    /// if the field is gone) no longer holds: the removals and replacements a delta's context
    /// must carry.
    /// - Complexity: O(*k*) in the entries of both stores; O(1) if they are equal.
    static func noteDroppedDots(of old: FieldStore, keptIn new: FieldStore?, into dots: inout Set<Dot>) {
        guard let new else {
            old.forEachDot { dots.insert($0) }
            return
        }
        if old == new { return }
        var kept = Set<Dot>()
        new.forEachDot { kept.insert($0) }
        old.forEachDot { dot in if !kept.contains(dot) { dots.insert(dot) } }
    }
}
