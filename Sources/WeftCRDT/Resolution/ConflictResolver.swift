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
/// Averaging two numbers breaks associativity; "the local one wins" breaks commutativity, and
/// so does "the larger stock wins" when the stocks are equal and the bodies are not. Two shapes
/// are always safe: the CRDT join of the bodies (`a.body.merged(with: b.body)`, which keeps
/// every edit), and picking a whole body by a total order of bodies (which keeps one side's
/// edits, like last-writer-wins). Rank by the body alone: the records a resolver meets may
/// themselves be resolutions, whose deletion flag and version come from both sides.
/// `ResolverLawChecker.check(resolver:name:records:)` in `WeftTesting` tests all three laws
/// on records shaped like yours.
///
/// ```swift
/// struct KeepLargerStock: ConflictResolver {
///     func resolve(_ a: DocumentRecord, _ b: DocumentRecord) -> Document {
///         let (x, y) = (a.body.int("stock") ?? 0, b.body.int("stock") ?? 0)
///         if x != y { return x > y ? a.body : b.body }
///         // Equal stocks: the bodies' encodings break the tie, the same way on every replica.
///         return a.body.encoded().lexicographicallyPrecedes(b.body.encoded()) ? b.body : a.body
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
/// Resolving with rules is the CRDT join of the two versions, so it keeps every edit and obeys
/// the laws of ``ConflictResolver`` whatever the rules. The ordering rules (`lww`, `earliest`,
/// `max`, `min`) choose what readers see of a register field among its concurrent writes
/// (``FieldRulesResolver/presenting(_:)``): each is a total order, so every replica that holds the
/// same writes shows the same value. The next write of the field replaces them all.
public enum FieldRule: String, Hashable, Sendable, CaseIterable {
    /// The value written last (greatest HLC stamp).
    case lww
    /// The value written first (smallest HLC stamp).
    case earliest
    /// The greatest value, in the total order of ``Scalar/ruleOrder(_:_:)``; equal values go to
    /// the later stamp.
    case max
    /// The smallest value, in the same order; equal values go to the later stamp.
    case min
    /// Sets: every element either version holds (add-wins; an element one side removed after
    /// seeing it stays removed). This is what the join does.
    case union
    /// The CRDT join of the field: registers by stamp, counters add, sets merge, nested
    /// documents field by field. Fields without a rule are merged this way.
    case merge
}

/// A resolver declared field by field, with no code: `[persistence.collections.NAME.fields]`.
///
/// Resolving is the join of the two bodies; ``presenting(_:)`` applies the ordering rules for
/// readers.
///
/// - Complexity: the join, O(*n* + *m*) in the entries of both versions.
public struct FieldRulesResolver: ConflictResolver, Hashable {
    /// The rule of each top-level field; fields not listed use ``FieldRule/merge``.
    public let rules: [String: FieldRule]

    /// Creates a resolver from rules.
    public init(rules: [String: FieldRule]) { self.rules = rules }

    public func resolve(_ a: DocumentRecord, _ b: DocumentRecord) -> Document { a.body.merged(with: b.body) }

    /// The document as readers see it under the rules: each register field with an ordering
    /// rule shows the write its rule chooses among the concurrent ones.
    ///
    /// - Complexity: O(*r* × *w*) in the rules and the concurrent writes of their fields.
    public func presenting(_ document: Document) -> Document {
        var view = document
        for (field, rule) in rules {
            guard var store = view.fields[field], store.registers.count > 1, store.visibleRank == 0 else { continue }
            let entries = store.registers
            let chosen: RegisterEntry?
            switch rule {
            case .lww, .union, .merge: continue
            case .earliest: chosen = entries.min { Self.stampOrder($0, $1) }
            case .max: chosen = entries.max { Self.valueOrder($0, $1) }
            case .min: chosen = entries.max { Self.valueOrder($1, $0, ties: ($0, $1)) }
            }
            guard let chosen else { continue }
            store.registers = [chosen]
            view.fields[field] = store
        }
        return view
    }

    /// Stamp, then dot.
    static func stampOrder(_ a: RegisterEntry, _ b: RegisterEntry) -> Bool {
        a.stamp != b.stamp ? a.stamp < b.stamp : a.dot < b.dot
    }

    /// Value, then stamp and dot (of `ties`, when given: the later write wins either way).
    static func valueOrder(_ a: RegisterEntry, _ b: RegisterEntry, ties: (RegisterEntry, RegisterEntry)? = nil) -> Bool {
        let order = Scalar.compare(a.value, b.value)
        if order != 0 { return order < 0 }
        let (x, y) = ties ?? (a, b)
        return stampOrder(x, y)
    }
}

extension Scalar {
    /// A total order of scalars, for the `max` and `min` field rules: null < Booleans <
    /// numbers < strings < byte strings. Numbers compare by exact value across integers and
    /// doubles (no rounding through `Double`); an integer sorts before a double of equal value;
    /// doubles follow IEEE 754's total order (−NaN < −∞ < … < −0 < +0 < … < +∞ < +NaN, NaNs
    /// by payload). Strings compare by UTF-8 bytes, byte strings by bytes, `false < true`.
    public static func ruleOrder(_ a: Scalar, _ b: Scalar) -> Bool { compare(a, b) < 0 }

    /// −1, 0 or 1 as `a` sorts before, with, or after `b` in ``ruleOrder(_:_:)``; 0 only for
    /// equal scalars.
    static func compare(_ a: Scalar, _ b: Scalar) -> Int {
        switch (a, b) {
        case (.null, .null): return 0
        case (.bool(let x), .bool(let y)): return x == y ? 0 : (x ? 1 : -1)
        case (.int(let x), .int(let y)): return x == y ? 0 : (x < y ? -1 : 1)
        case (.double(let x), .double(let y)):
            if x.bitPattern == y.bitPattern { return 0 }
            return x.isTotallyOrdered(belowOrEqualTo: y) ? -1 : 1
        case (.int(let x), .double(let y)):
            let order = compare(integer: x, double: y)
            return order != 0 ? order : -1
        case (.double(let x), .int(let y)):
            let order = compare(integer: y, double: x)
            return order != 0 ? -order : 1
        case (.string(let x), .string(let y)):
            if x.utf8.elementsEqual(y.utf8) { return 0 }
            return x.utf8.lexicographicallyPrecedes(y.utf8) ? -1 : 1
        case (.bytes(let x), .bytes(let y)):
            if x == y { return 0 }
            return x.lexicographicallyPrecedes(y) ? -1 : 1
        default:
            return a.orderRank < b.orderRank ? -1 : 1
        }
    }

    /// Compares an integer with a double exactly: −1, 0 or 1 as `x` is below, equal to or above `y`.
    static func compare(integer x: Int64, double y: Double) -> Int {
        if y.isNaN { return y.sign == .minus ? 1 : -1 }
        if y >= 9_223_372_036_854_775_808.0 { return -1 }  // 2⁶³: above every Int64
        if y < -9_223_372_036_854_775_808.0 { return 1 }
        let whole = y.rounded(.towardZero)
        let integral = Int64(whole)  // exact: |whole| < 2⁶³, or whole == −2⁶³
        if x != integral { return x < integral ? -1 : 1 }
        let fraction = y - whole
        if fraction == 0 { return 0 }
        return fraction > 0 ? -1 : 1
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
}
