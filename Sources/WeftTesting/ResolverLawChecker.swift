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

/// The fields a generator of concurrent records writes: their names, kinds and values. Describe
/// your own documents with it, so the resolver checker builds records shaped like yours.
public struct RecordShape: Sendable {
    /// One field.
    public enum Field: Sendable {
        /// A register written with values from the generator.
        case register(String, values: @Sendable (inout any RandomNumberGenerator) -> Scalar)
        /// A counter.
        case counter(String)
        /// A set of values from the generator.
        case set(String, values: @Sendable (inout any RandomNumberGenerator) -> Scalar)
        /// A nested document of the given shape.
        indirect case nested(String, RecordShape)

        var name: String {
            switch self {
            case .register(let name, _), .counter(let name), .set(let name, _), .nested(let name, _): return name
            }
        }
    }

    /// The fields.
    public var fields: [Field]
    /// How often (0–1) an edit removes its field instead, and how often it writes it with
    /// another kind: removals, re-creations and kind changes are where resolvers break.
    public var removals: Double
    /// How often an edit writes its field with another kind.
    public var kindChanges: Double

    /// Creates a shape.
    public init(_ fields: [Field], removals: Double = 0.1, kindChanges: Double = 0.1) {
        self.fields = fields
        self.removals = removals
        self.kindChanges = kindChanges
    }

    /// The default: registers `r0`…`r2` with small and wide values, counter `n`, set `s`, and a
    /// nested document `m` with a register and a set.
    public static let standard = RecordShape([
        .register("r0", values: CRDTModels.wideScalar), .register("r1", values: CRDTModels.wideScalar),
        .register("r2", values: CRDTModels.scalar), .counter("n"), .set("s", values: CRDTModels.scalar),
        .nested("m", RecordShape([.register("x", values: CRDTModels.wideScalar), .set("t", values: CRDTModels.scalar)])),
    ])

    /// One random edit of `document` as `stamp`'s replica.
    func edit(_ document: inout Document, at stamp: HLCTimestamp, _ random: inout any RandomNumberGenerator) {
        guard let field = fields.randomElement(using: &random) else { return }
        let roll = Double.random(in: 0..<1, using: &random)
        if roll < removals {
            document.removeField(field.name)
            return
        }
        if roll < removals + kindChanges {
            // Another kind than the field's usual one.
            switch Int.random(in: 0..<3, using: &random) {
            case 0: document.set(field.name, to: CRDTModels.scalar(&random), at: stamp)
            case 1: document.increment(field.name, by: Int64.random(in: -2...2, using: &random), at: stamp)
            default: document.insert(CRDTModels.scalar(&random), intoSet: field.name, at: stamp)
            }
            return
        }
        switch field {
        case .register(let name, let values): document.set(name, to: values(&random), at: stamp)
        case .counter(let name): document.increment(name, by: Int64.random(in: -2...2, using: &random), at: stamp)
        case .set(let name, let values):
            let value = values(&random)
            if Bool.random(using: &random) { document.insert(value, intoSet: name, at: stamp) } else { document.remove(value, fromSet: name, at: stamp) }
        case .nested(let name, let shape):
            document.updateMap(name, at: stamp) { nested in shape.edit(&nested, at: stamp, &random) }
        }
    }

    /// Three records that edit one random base concurrently, as three replicas would: each
    /// replica makes one to three edits, with clocks that tie often.
    public func concurrentRecords(_ random: inout any RandomNumberGenerator, count: Int = 3) -> [DocumentRecord] {
        let origin = ReplicaID.random(using: &random)
        var wall: UInt64 = 1_000
        func stamp(_ replica: ReplicaID, _ random: inout any RandomNumberGenerator) -> HLCTimestamp {
            wall += UInt64.random(in: 0...1, using: &random)
            return HLCTimestamp(wallMilliseconds: wall, counter: UInt32.random(in: 0...2, using: &random), replica: replica)
        }
        var base = Document()
        var baseVersion = VersionVector()
        for _ in 0..<Int.random(in: 0...4, using: &random) {
            edit(&base, at: stamp(origin, &random), &random)
            baseVersion.increment(origin)
        }
        let baseDeletion = LWWRegister(false, stamp: HLCTimestamp(wallMilliseconds: 999, counter: 0, replica: origin))
        return (0..<max(1, count)).map { _ in
            let replica = ReplicaID.random(using: &random)
            var body = base
            var version = baseVersion
            var last = baseDeletion
            for _ in 0..<Int.random(in: 1...3, using: &random) {
                let at = stamp(replica, &random)
                edit(&body, at: at, &random)
                version.increment(replica)
                last = last.merged(with: LWWRegister(false, stamp: at))
            }
            return DocumentRecord(body: body, deletion: last, version: version)
        }
    }
}

extension ResolverLawChecker {
    /// Checks that `resolver` obeys the laws of WeftCRDT's `ConflictResolver` on the records
    /// `records` draws (three or more concurrent versions of one document, shaped like yours:
    /// see ``RecordShape/concurrentRecords(_:count:)``): commutative, idempotent (on the records
    /// and on their resolutions), and the same result for every grouping and order of three.
    /// For an app's resolver `InventoryLevels`, on documents with a `stock` register and a set
    /// of `bins`:
    ///
    /// ```swift
    /// let shape = RecordShape([.register("stock", values: { .int(Int64.random(in: 0...3, using: &$0)) }), .set("bins", values: CRDTModels.scalar)])
    /// await ResolverLawChecker.check(resolver: InventoryLevels(), name: "inventory") { shape.concurrentRecords(&$0) }
    /// ```
    public static func check(
        resolver: some ConflictResolver,
        name: String,
        count: Int = CRDTLawChecker.defaultCount,
        sourceLocation: SourceLocation = #_sourceLocation,
        records: @escaping @Sendable (inout any RandomNumberGenerator) -> [DocumentRecord]
    ) async {
        let inputs = Generator<[DocumentRecord], Shrink.None<[DocumentRecord]>> { seeded in
            var random: any RandomNumberGenerator = SplitMix64(seed: seeded.next())
            return records(&random)
        }
        await propertyCheck(count: count, input: inputs) { records in
            guard records.count >= 3 else {
                Issue.record("\(name): the generator must give three records or more", sourceLocation: sourceLocation)
                return
            }
            let (a, b, c) = (records[0], records[1], records[2])
            func resolve(_ x: DocumentRecord, _ y: DocumentRecord) -> DocumentRecord { x.resolved(with: y, by: resolver) }
            #expect(resolve(a, b) == resolve(b, a), "\(name): not commutative.\na = \(a)\nb = \(b)", sourceLocation: sourceLocation)
            // Every order and grouping of the three.
            var results = [(String, DocumentRecord)]()
            for (x, y, z, label) in [(a, b, c, "abc"), (a, c, b, "acb"), (b, a, c, "bac"), (b, c, a, "bca"), (c, a, b, "cab"), (c, b, a, "cba")] {
                results.append(("(\(label.prefix(2)))\(label.suffix(1))", resolve(resolve(x, y), z)))
                results.append(("\(label.prefix(1))(\(label.suffix(2)))", resolve(x, resolve(y, z))))
            }
            if let first = results.first, let different = results.first(where: { $0.1 != first.1 }) {
                Issue.record(
                    "\(name): not associative: \(first.0) and \(different.0) differ.\na = \(a)\nb = \(b)\nc = \(c)",
                    sourceLocation: sourceLocation)
            }
            for record in [a, b, c, resolve(a, b)] {
                #expect(resolve(record, record) == record, "\(name): not idempotent.\nrecord = \(record)", sourceLocation: sourceLocation)
            }
        }
    }

    /// ``check(resolver:name:count:sourceLocation:records:)`` on records of the
    /// ``RecordShape/standard`` shape.
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
        await check(resolver: resolver, name: name, count: count, sourceLocation: sourceLocation) {
            RecordShape.standard.concurrentRecords(&$0)
        }
    }
}
