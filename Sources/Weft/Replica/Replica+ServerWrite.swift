import WeftCRDT

/// What a write expects of the document it writes.
package enum WriteExpectation: Sendable {
    /// The document must be live (an update).
    case mustExist
    /// The document must not be live (a creation).
    case mustNotExist
    /// Either.
    case any
}

extension Replica {
    /// The record a write by `writer` stamped `stamp` makes of `current`, by exactly the rules a
    /// replica's own writes follow: siblings resolved first, the stamp after the record's last,
    /// the writer's counters raised to `floor` first, its version counted up, a deleted document
    /// re-created empty.
    /// The server's document API writes through it, inside the store's transaction.
    /// - Throws: ``WeftError/Kind/documentNotFound`` or ``WeftError/Kind/documentExists`` when
    ///   `expectation` fails, and what `edit` throws.
    package static func write(
        _ current: DocumentRecord?, key: DocumentKey, expectation: WriteExpectation, deleting: Bool, stamp: HLCTimestamp, writer: ReplicaID,
        policy: ConflictPolicy, resolvers: ResolverRegistry, floor: UInt64 = 0,
        edit: @escaping @Sendable (inout DocumentEditor) throws(WeftError) -> Void
    ) throws(WeftError) -> DocumentRecord {
        var records = [DocumentKey: DocumentRecord]()
        records[key] = current
        let expected: Expectation =
            switch expectation {
            case .mustExist: .mustExist
            case .mustNotExist: .mustNotExist
            case .any: .any
            }
        let writes = try apply(
            [Operation(key: key, expectation: expected, deleting: deleting, edit: edit)], stamps: [stamp], replicaID: writer,
            policies: [policy], floors: [floor], resolvers: resolvers, to: &records)
        guard let record = writes.first?.record else { throw .storage("the write produced no record") }
        return record
    }
}
