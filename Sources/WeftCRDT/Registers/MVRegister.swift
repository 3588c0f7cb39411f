/// A multi-value register: a write replaces every value it has seen; concurrent writes are all
/// kept, so an app can show the conflict to its user and let them choose.
///
/// The state is a map from dots to values plus a ``CausalContext``. A write by replica `r`
/// takes a new dot, drops every value it has seen and keeps the new one. The merge keeps a
/// value if both sides have it or if the other side has not seen its dot yet.
public struct MVRegister<Value: BinaryCodable & Equatable & Sendable>: EmptyInitializableCRDT {
    /// Each live value under the dot of the write that made it.
    public internal(set) var entries: [Dot: Value]
    /// Every write seen.
    public internal(set) var context: CausalContext

    /// The empty register.
    public init() {
        entries = [:]
        context = CausalContext()
    }

    /// The live values, ordered by dot. One value when there is no conflict, several after
    /// concurrent writes, none before the first write.
    public var values: [Value] { entries.sorted { $0.key < $1.key }.map(\.value) }

    /// Whether concurrent writes are waiting to be resolved.
    public var hasConflict: Bool { entries.count > 1 }

    /// Writes `value` as `replica`, replacing every value seen, and returns the delta.
    /// - Complexity: O(*k*) in the number of live values.
    @discardableResult
    public mutating func set(_ value: Value, by replica: ReplicaID) -> MVRegister {
        let dot = context.nextDot(for: replica)
        var delta = MVRegister()
        delta.context = CausalContext(vector: VersionVector(), cloud: Set(entries.keys).union([dot]))
        delta.entries = [dot: value]
        entries = [dot: value]
        return delta
    }

    /// The join: keep values both sides have, and values whose dot the other side has not seen.
    /// - Complexity: O(*k* + *c*) in live values and context size.
    public mutating func merge(_ other: MVRegister) {
        var result = [Dot: Value]()
        for (dot, value) in entries where other.entries[dot] != nil || !other.context.contains(dot) {
            result[dot] = value
        }
        for (dot, value) in other.entries where entries[dot] == nil && !context.contains(dot) {
            result[dot] = value
        }
        entries = result
        context.merge(other.context)
    }
}

extension MVRegister: BinaryCodable {
    public static var binaryTypeTag: UInt8 { 4 }

    /// Layout: context, count, then `(dot, value)` pairs in dot order.
    public func encode(to writer: inout BinaryWriter) {
        context.encode(to: &writer)
        let sorted = entries.sorted { $0.key < $1.key }
        writer.writeVarint(UInt64(sorted.count))
        for (dot, value) in sorted {
            writer.writeDot(dot)
            value.encode(to: &writer)
        }
    }

    public init(from reader: inout BinaryReader) throws(CodecError) {
        let context = try CausalContext(from: &reader)
        let count = try reader.readCount(minimumElementSize: 2)
        var entries = [Dot: Value](minimumCapacity: count)
        var previous: Dot?
        for _ in 0..<count {
            let start = reader.offset
            let dot = try reader.readDot()
            if let previous, !(previous < dot) { throw .nonCanonical(at: start, "register values out of order or repeated") }
            previous = dot
            guard context.contains(dot) else { throw .invariantViolation(at: start, "value dot \(dot) missing from its context") }
            entries[dot] = try Value(from: &reader)
        }
        self.init()
        self.entries = entries
        self.context = context
    }
}
