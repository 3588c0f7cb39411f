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
        // A later version has seen everything the base has.
        for entry in base.context.vector.entries where context.vector[entry.replica] < entry.counter {
            let start = context.vector[entry.replica] + 1
            guard entry.counter - start < UInt64(maximumDots) else { return nil }
            for counter in start...entry.counter
            where !context.contains(Dot(replica: entry.replica, counter: counter)) { return nil }
        }
        for dot in base.context.cloud where !context.contains(dot) { return nil }

        var dots = Set<Dot>()
        // The dots seen since the base.
        for entry in context.vector.entries where base.context.vector[entry.replica] < entry.counter {
            let start = base.context.vector[entry.replica] + 1
            for counter in start...entry.counter {
                let dot = Dot(replica: entry.replica, counter: counter)
                guard !base.context.contains(dot) else { continue }
                dots.insert(dot)
                if dots.count > maximumDots { return nil }
            }
        }
        for dot in context.cloud where !base.context.contains(dot) {
            dots.insert(dot)
            if dots.count > maximumDots { return nil }
        }
        // The dots of the base's entries that this version no longer holds.
        for (key, old) in base.fields {
            guard let new = fields[key] else {
                old.forEachDot { dots.insert($0) }
                if dots.count > maximumDots { return nil }
                continue
            }
            if old == new { continue }
            var kept = Set<Dot>()
            new.forEachDot { kept.insert($0) }
            old.forEachDot { dot in if !kept.contains(dot) { dots.insert(dot) } }
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
