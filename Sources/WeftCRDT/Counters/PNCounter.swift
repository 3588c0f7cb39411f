/// A counter that goes up and down: two ``GCounter``s, one for increments and one for decrements.
public struct PNCounter: EmptyInitializableCRDT, Hashable {
    /// The increments.
    public private(set) var increments: GCounter
    /// The decrements.
    public private(set) var decrements: GCounter

    /// The zero counter.
    public init() {
        increments = GCounter()
        decrements = GCounter()
    }

    /// Increments minus decrements, clamped to the range of `Int64`.
    public var value: Int64 {
        let up = increments.value
        let down = decrements.value
        if up >= down {
            return Int64(clamping: up - down)
        }
        let magnitude = down - up
        return magnitude > UInt64(Int64.max) ? .min : -Int64(magnitude)
    }

    /// Adds `amount` (which may be negative) as `replica` and returns the delta.
    /// - Complexity: O(1).
    @discardableResult
    public mutating func increment(by amount: Int64 = 1, replica: ReplicaID) -> PNCounter {
        var delta = PNCounter()
        if amount >= 0 {
            delta.increments = increments.increment(by: UInt64(amount), replica: replica)
        } else {
            delta.decrements = decrements.increment(by: amount.magnitude, replica: replica)
        }
        return delta
    }

    /// ``increment(by:replica:)`` without building the delta: the same state.
    /// - Complexity: O(log *n*), O(*n*) for a replica's first change.
    public mutating func add(_ amount: Int64, replica: ReplicaID) {
        if amount >= 0 {
            increments.add(UInt64(amount), replica: replica)
        } else {
            decrements.add(amount.magnitude, replica: replica)
        }
    }

    /// Joins both halves.
    public mutating func merge(_ other: PNCounter) {
        increments.merge(other.increments)
        decrements.merge(other.decrements)
    }
}

extension PNCounter: BinaryCodable {
    public static var binaryTypeTag: UInt8 { 6 }

    /// Layout: increments, decrements.
    public func encode(to writer: inout BinaryWriter) {
        increments.encode(to: &writer)
        decrements.encode(to: &writer)
    }

    public init(from reader: inout BinaryReader) throws(CodecError) {
        self.init()
        increments = try GCounter(from: &reader)
        decrements = try GCounter(from: &reader)
    }
}
