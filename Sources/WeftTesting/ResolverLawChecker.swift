import PropertyBased
import Testing

/// Property-based checks that a custom merge function (a resolver of two concurrent versions)
/// is a join: commutative, associative and idempotent.
///
/// A resolver that breaks these laws lets replicas that saw the same versions disagree
/// forever. Give the checker a generator of values drawn from small ranges so that equal
/// and near-equal versions come up often.
///
/// ```swift
/// await ResolverLawChecker.check(name: "max", resolve: { max($0, $1) }) { random in
///     Int.random(in: 0...5, using: &random)
/// }
/// ```
public enum ResolverLawChecker {
    /// Checks the three join laws on `count` random triples.
    public static func check<Value: Equatable & Sendable>(
        name: String,
        count: Int = CRDTLawChecker.defaultCount,
        resolve: @escaping @Sendable (Value, Value) -> Value,
        values: @escaping @Sendable (inout any RandomNumberGenerator) -> Value,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async {
        let triples = Generator<(Value, Value, Value), Shrink.None<(Value, Value, Value)>> { seeded in
            var random: any RandomNumberGenerator = SplitMix64(seed: seeded.next())
            return (values(&random), values(&random), values(&random))
        }
        await propertyCheck(count: count, input: triples) { triple in
            let (a, b, c) = triple
            #expect(resolve(a, b) == resolve(b, a), "\(name): not commutative for \(a), \(b)", sourceLocation: sourceLocation)
            #expect(
                resolve(resolve(a, b), c) == resolve(a, resolve(b, c)),
                "\(name): not associative for \(a), \(b), \(c)", sourceLocation: sourceLocation)
            #expect(resolve(a, a) == a, "\(name): not idempotent for \(a)", sourceLocation: sourceLocation)
        }
    }
}
