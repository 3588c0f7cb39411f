/// What one ``Document`` field holds, as a reader sees it: a register, a counter, a set or a
/// nested document.
///
/// A field written concurrently with different kinds shows the highest kind, in the order
/// register < counter < set < nested document (see ``Document``).
public enum DocumentValue: Hashable, Sendable {
    /// A last-writer-wins scalar: the write with the greatest stamp among those not replaced.
    case register(LWWRegister<Scalar>)
    /// A counter's value.
    case counter(Int64)
    /// A set's elements.
    case set(Set<Scalar>)
    /// A nested document (sharing the enclosing document's context).
    case map(Document)

    init(_ store: FieldStore, context: CausalContext, lineage: UInt64 = 0) {
        switch store.visibleRank {
        case 3: self = .map(Document(fields: store.map?.fields ?? [:], context: context, lineage: lineage))
        case 2: self = .set(Set(store.set?.elements.keys ?? [:].keys))
        case 1: self = .counter(store.counterValue)
        default:
            let winner = store.winningRegister
            self = .register(LWWRegister(winner?.value ?? .null, stamp: winner?.stamp ?? HLCTimestamp(wallMilliseconds: 0, counter: 0, replica: ReplicaID(high: 0, low: 0))))
        }
    }

    /// The kind's rank: 0 register, 1 counter, 2 set, 3 nested document.
    public var rank: UInt8 {
        switch self {
        case .register: return 0
        case .counter: return 1
        case .set: return 2
        case .map: return 3
        }
    }
}
