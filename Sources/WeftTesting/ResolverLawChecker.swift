import PropertyBased
import Testing
import WeftCRDT

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

extension ResolverLawChecker {
    /// Checks that `resolver` obeys the laws of ``WeftCRDT/ConflictResolver`` on records real
    /// replicas make: commutative, associative and idempotent under
    /// ``WeftCRDT/DocumentRecord/resolved(with:by:)``.
    ///
    /// Each check draws a base document and three replicas that each edit it concurrently
    /// (registers `r0`…`r2` with small integers or strings, counter `n`, set `s`), so equal and
    /// near-equal values come up often.
    ///
    /// ```swift
    /// await ResolverLawChecker.check(resolver: FieldRulesResolver(rules: ["r0": .max]), name: "max r0")
    /// ```
    public static func check(
        resolver: some ConflictResolver,
        name: String,
        count: Int = CRDTLawChecker.defaultCount,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async {
        let triples = Generator<[DocumentRecord], Shrink.None<[DocumentRecord]>> { seeded in
            var random: any RandomNumberGenerator = SplitMix64(seed: seeded.next())
            return concurrentRecords(&random)
        }
        await propertyCheck(count: count, input: triples) { records in
            let (a, b, c) = (records[0], records[1], records[2])
            let ab = a.resolved(with: b, by: resolver)
            #expect(ab == b.resolved(with: a, by: resolver), "\(name): not commutative.\na = \(a)\nb = \(b)", sourceLocation: sourceLocation)
            #expect(
                ab.resolved(with: c, by: resolver) == a.resolved(with: b.resolved(with: c, by: resolver), by: resolver),
                "\(name): not associative.\na = \(a)\nb = \(b)\nc = \(c)", sourceLocation: sourceLocation)
            #expect(a.resolved(with: a, by: resolver) == a, "\(name): not idempotent.\na = \(a)", sourceLocation: sourceLocation)
            #expect(ab.resolved(with: ab, by: resolver) == ab, "\(name): not idempotent on a resolution.\nab = \(ab)", sourceLocation: sourceLocation)
        }
    }

    /// Three records that edit one base concurrently, as three replicas would.
    static func concurrentRecords(_ random: inout any RandomNumberGenerator) -> [DocumentRecord] {
        let origin = ReplicaID(high: 0, low: 99)
        var wall: UInt64 = 1_000
        func stamp(_ replica: ReplicaID, _ random: inout any RandomNumberGenerator) -> HLCTimestamp {
            wall += UInt64.random(in: 0...2, using: &random)
            return HLCTimestamp(wallMilliseconds: wall, counter: UInt32.random(in: 0...3, using: &random), replica: replica)
        }
        func edit(_ body: inout Document, _ replica: ReplicaID, _ random: inout any RandomNumberGenerator) {
            let at = stamp(replica, &random)
            switch Int.random(in: 0..<5, using: &random) {
            case 0, 1:
                let value: Scalar =
                    Bool.random(using: &random)
                    ? .int(Int64.random(in: 0...3, using: &random)) : .string(["a", "b", "c"][Int.random(in: 0..<3, using: &random)])
                body.set("r\(Int.random(in: 0..<3, using: &random))", to: value, at: at)
            case 2: body.increment("n", by: Int64.random(in: -2...2, using: &random), at: at)
            case 3: body.insert(.int(Int64.random(in: 0...3, using: &random)), intoSet: "s", at: at)
            default: body.remove(.int(Int64.random(in: 0...3, using: &random)), fromSet: "s", at: at)
            }
        }
        var base = Document()
        var baseVersion = VersionVector()
        for _ in 0..<Int.random(in: 0...3, using: &random) {
            edit(&base, origin, &random)
            baseVersion.increment(origin)
        }
        let baseDeletion = LWWRegister(false, stamp: HLCTimestamp(wallMilliseconds: 999, counter: 0, replica: origin))
        return (1...3).map { index in
            let replica = ReplicaID(high: 0, low: UInt64(index))
            var body = base
            var version = baseVersion
            var last = baseDeletion
            for _ in 0..<Int.random(in: 1...3, using: &random) {
                edit(&body, replica, &random)
                version.increment(replica)
                last = last.merged(with: LWWRegister(false, stamp: stamp(replica, &random)))
            }
            return DocumentRecord(body: body, deletion: last, version: version)
        }
    }
}
