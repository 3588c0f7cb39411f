/// A last-writer-wins register: the value with the greatest ``HLCTimestamp``.
///
/// HLC stamps are totally ordered (wall time, then counter, then replica), so concurrent
/// writes have a deterministic winner even when their wall times are equal. Two writes with
/// the very same stamp can only come from misuse (a clock issuing one stamp twice); even then
/// the merge stays deterministic by comparing the values' encodings.
///
/// The delta of a write is the new register itself.
public struct LWWRegister<Value: BinaryCodable & Equatable & Sendable>: CRDT {
    /// The current value.
    public private(set) var value: Value
    /// The stamp of the write that produced ``value``.
    public private(set) var stamp: HLCTimestamp

    /// Creates a register holding `value`, written at `stamp`.
    public init(_ value: Value, stamp: HLCTimestamp) {
        self.value = value
        self.stamp = stamp
    }

    /// Writes `newValue` at `stamp` and returns the delta.
    ///
    /// If `stamp` is not greater than the current stamp the write loses and the state does
    /// not change; the returned delta is still the write, and joining it changes nothing.
    /// - Complexity: O(1).
    @discardableResult
    public mutating func set(_ newValue: Value, at stamp: HLCTimestamp) -> LWWRegister {
        let delta = LWWRegister(newValue, stamp: stamp)
        merge(delta)
        return delta
    }

    /// Keeps the write with the greater stamp.
    /// - Complexity: O(1), or O(*n*) in the values' sizes for identical stamps.
    public mutating func merge(_ other: LWWRegister) {
        if other.stamp > stamp {
            self = other
        } else if other.stamp == stamp, value.binaryBytes.lexicographicallyPrecedes(other.value.binaryBytes) {
            // Encodings, not `==`: equal values that encode differently still pick one winner.
            self = other
        }
    }
}

extension BinaryCodable {
    /// The body encoding without the envelope, used for deterministic tie-breaks.
    @usableFromInline
    var binaryBytes: [UInt8] {
        var writer = BinaryWriter()
        encode(to: &writer)
        return writer.bytes
    }
}

extension LWWRegister: BinaryCodable {
    public static var binaryTypeTag: UInt8 { 3 }

    /// Layout: stamp, value.
    public func encode(to writer: inout BinaryWriter) {
        writer.writeStamp(stamp)
        value.encode(to: &writer)
    }

    public init(from reader: inout BinaryReader) throws(CodecError) {
        let stamp = try reader.readStamp()
        let value = try Value(from: &reader)
        self.init(value, stamp: stamp)
    }
}

extension LWWRegister: Hashable where Value: Hashable {}
