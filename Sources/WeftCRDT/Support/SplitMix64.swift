/// A small, fast, seedable random number generator (Steele, Lea and Flood's SplitMix64).
///
/// Use it where runs must be reproducible: replica identifiers in tests and demos
/// (`ReplicaID.random(using:)`), choices inside property checks, benchmark workloads.
/// It is not cryptographically secure; production replica identifiers should come from
/// ``ReplicaID/random()``, which uses the system generator.
public struct SplitMix64: RandomNumberGenerator, Sendable, Hashable {
    private var state: UInt64

    /// Creates a generator; the same seed always gives the same sequence, on every platform.
    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
