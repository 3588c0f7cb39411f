/// The value of one ``Document`` field: a register, a counter, a set or a nested document.
///
/// A field's kind is fixed by its first write. If replicas concurrently write different kinds
/// to one field, the merge keeps the higher kind in the order register < counter < set < map
/// (a lexicographic join, so the laws still hold) and discards the other.
public enum DocumentValue: CRDT {
    /// A last-writer-wins scalar.
    case register(LWWRegister<Scalar>)
    /// A counter that goes up and down.
    case counter(PNCounter)
    /// An add-wins set of scalars.
    case set(ORSet<Scalar>)
    /// A nested document.
    case map(Document)

    var rank: UInt8 {
        switch self {
        case .register: return 0
        case .counter: return 1
        case .set: return 2
        case .map: return 3
        }
    }

    public mutating func merge(_ other: DocumentValue) {
        switch (self, other) {
        case (.register(var a), .register(let b)): a.merge(b); self = .register(a)
        case (.counter(var a), .counter(let b)): a.merge(b); self = .counter(a)
        case (.set(var a), .set(let b)): a.merge(b); self = .set(a)
        case (.map(var a), .map(let b)): a.merge(b); self = .map(a)
        default: if other.rank > rank { self = other }
        }
    }
}

extension DocumentValue: BinaryCodable {
    /// Layout: the rank byte (0 register, 1 counter, 2 set, 3 map), then the value's body.
    public func encode(to writer: inout BinaryWriter) {
        writer.writeByte(rank)
        switch self {
        case .register(let value): value.encode(to: &writer)
        case .counter(let value): value.encode(to: &writer)
        case .set(let value): value.encode(to: &writer)
        case .map(let value): value.encode(to: &writer)
        }
    }

    public init(from reader: inout BinaryReader) throws(CodecError) {
        let start = reader.offset
        switch try reader.readByte() {
        case 0: self = .register(try LWWRegister(from: &reader))
        case 1: self = .counter(try PNCounter(from: &reader))
        case 2: self = .set(try ORSet(from: &reader))
        case 3: self = .map(try Document(from: &reader))
        case let tag: throw .invalidTag(UInt64(tag), at: start, "DocumentValue")
        }
    }
}

extension DocumentValue {
    /// The value with register stamps above `limit` replaced by `stamp`.
    func restamped(above limit: HLCTimestamp, to stamp: HLCTimestamp) -> DocumentValue {
        switch self {
        case .register(let register) where register.stamp > limit: return .register(LWWRegister(register.value, stamp: stamp))
        case .map(let nested): return .map(nested.restamped(above: limit, to: stamp))
        default: return self
        }
    }
}
