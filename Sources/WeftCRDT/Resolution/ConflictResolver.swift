/// Resolves two concurrent versions of a document into one body: the `custom` conflict policy.
///
/// Weft calls a resolver only for versions whose version vectors are concurrent (neither saw
/// the other). The resolved record (``DocumentRecord/resolved(with:by:)``) carries the
/// resolver's body, the later of the two deletion flags and the join of both version vectors,
/// so it dominates both versions and the conflict is resolved once.
///
/// ## Laws
///
/// Replicas and the server resolve the same versions in different orders and groupings. They
/// converge only if the resolver is a join on the records it meets; for records `a`, `b`, `c`:
///
/// - **commutative**: `a.resolved(with: b)` equals `b.resolved(with: a)`;
/// - **associative**: `a.resolved(with: b).resolved(with: c)` equals
///   `a.resolved(with: b.resolved(with: c))`;
/// - **idempotent**: `a.resolved(with: a)` equals `a`.
///
/// Averaging two numbers breaks associativity; "the local one wins" breaks commutativity.
/// `ResolverLawChecker.check(resolver:name:records:)` in `WeftTesting` tests all three.
///
/// ```swift
/// struct KeepLargerStock: ConflictResolver {
///     func resolve(_ a: DocumentRecord, _ b: DocumentRecord) -> Document {
///         (a.body.int("stock") ?? 0) >= (b.body.int("stock") ?? 0) ? a.body : b.body
///     }
/// }
/// ```
public protocol ConflictResolver: Sendable {
    /// The body of the resolution of concurrent versions `a` and `b`.
    func resolve(_ a: DocumentRecord, _ b: DocumentRecord) -> Document
}

/// A resolver made of a function.
public struct ResolverFunction: ConflictResolver {
    private let body: @Sendable (DocumentRecord, DocumentRecord) -> Document

    /// Wraps `body`, which must obey the laws of ``ConflictResolver``.
    public init(_ body: @escaping @Sendable (DocumentRecord, DocumentRecord) -> Document) { self.body = body }

    public func resolve(_ a: DocumentRecord, _ b: DocumentRecord) -> Document { body(a, b) }
}

extension DocumentRecord {
    /// The record `resolver` makes of this version and a concurrent `other`: the resolver's body,
    /// the later deletion flag, and the join of the version vectors.
    ///
    /// - Complexity: the resolver's cost, plus O(*v*) to join the version vectors.
    public func resolved(with other: DocumentRecord, by resolver: some ConflictResolver) -> DocumentRecord {
        DocumentRecord(
            body: resolver.resolve(self, other), deletion: deletion.merged(with: other.deletion),
            version: version.merged(with: other.version))
    }
}

/// How a field-rules resolver settles one top-level field that both versions changed.
///
/// Every rule is a join, so a resolver made of rules obeys the laws of ``ConflictResolver``.
/// The ordering rules (`lww`, `earliest`, `max`, `min`) apply to register fields; a field of
/// another kind (counter, set, nested document) is joined as a CRDT whatever its rule.
public enum FieldRule: String, Hashable, Sendable, CaseIterable {
    /// The value written last (greatest HLC stamp).
    case lww
    /// The value written first (smallest HLC stamp).
    case earliest
    /// The greatest value: numbers by value (integers and doubles compare as numbers), strings
    /// and bytes by their bytes; across kinds null < bool < number < string < bytes. Ties go to
    /// the later stamp.
    case max
    /// The smallest value, in the order of ``max``. Ties go to the later stamp.
    case min
    /// Sets: every element either version holds (add-wins; an element one side removed after
    /// seeing it stays removed).
    case union
    /// The CRDT join of the field: registers by stamp, counters add, sets merge, nested
    /// documents field by field. Fields without a rule are merged this way.
    case merge
}

/// A resolver declared field by field, with no code: `[persistence.collections.NAME.fields]`.
///
/// The two bodies are joined as CRDTs (so a field present on either side is kept, and fields
/// without a rule merge), then each ordering rule picks one register value for its field among
/// the values both versions hold, and every version of that field is given that value.
///
/// - Complexity: O(*f*) in the fields of both versions, plus the CRDT join.
public struct FieldRulesResolver: ConflictResolver, Hashable {
    /// The rule of each top-level field; fields not listed use ``FieldRule/merge``.
    public let rules: [String: FieldRule]

    /// Creates a resolver from rules.
    public init(rules: [String: FieldRule]) { self.rules = rules }

    public func resolve(_ a: DocumentRecord, _ b: DocumentRecord) -> Document {
        var body = a.body.merged(with: b.body)
        for (field, rule) in rules {
            let order: (LWWRegister<Scalar>, LWWRegister<Scalar>) -> Bool
            switch rule {
            case .lww: order = { $0.stamp < $1.stamp }
            case .earliest: order = { $0.stamp > $1.stamp }
            case .max: order = { Scalar.ordered($0.value, $1.value, tieByStamp: $0.stamp < $1.stamp) }
            case .min: order = { Scalar.ordered($1.value, $0.value, tieByStamp: $0.stamp < $1.stamp) }
            case .union, .merge: continue
            }
            // Every register value either version holds for the field; the rule picks one.
            var candidates = [LWWRegister<Scalar>]()
            var onlyRegisters = true
            for versions in [a.body.fields.entries[field], b.body.fields.entries[field], body.fields.entries[field]] {
                for version in versions ?? [] {
                    if case .register(let register) = version.value {
                        candidates.append(register)
                    } else {
                        onlyRegisters = false
                    }
                }
            }
            guard onlyRegisters, body.fields.entries[field] != nil, let chosen = candidates.max(by: order) else { continue }
            body.fields.replaceValues(of: field, with: .register(chosen))
        }
        return body
    }
}

extension Scalar {
    /// Whether `a` sorts before `b` in the order of ``FieldRule/max``; `tieByStamp` decides
    /// between values that compare equal.
    static func ordered(_ a: Scalar, _ b: Scalar, tieByStamp: Bool) -> Bool {
        let (rankA, rankB) = (a.orderRank, b.orderRank)
        if rankA != rankB { return rankA < rankB }
        switch (a, b) {
        case (.int(let x), .int(let y)) where x != y: return x < y
        case (.bool(let x), .bool(let y)) where x != y: return !x && y
        case (.string(let x), .string(let y)) where !x.utf8.elementsEqual(y.utf8):
            return x.utf8.lexicographicallyPrecedes(y.utf8)
        case (.bytes(let x), .bytes(let y)) where x != y: return x.lexicographicallyPrecedes(y)
        default:
            if let x = a.numericValue, let y = b.numericValue, x != y, !x.isNaN || !y.isNaN {
                return x.isTotallyOrdered(belowOrEqualTo: y)
            }
            return tieByStamp
        }
    }

    private var orderRank: Int {
        switch self {
        case .null: return 0
        case .bool: return 1
        case .int, .double: return 2
        case .string: return 3
        case .bytes: return 4
        }
    }

    private var numericValue: Double? {
        switch self {
        case .int(let value): return Double(value)
        case .double(let value): return value
        default: return nil
        }
    }
}
