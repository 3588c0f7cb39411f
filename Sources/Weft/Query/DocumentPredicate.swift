import WeftCRDT

/// A condition on a document, for ``ReplicaCollection/query(_:orderBy:limit:after:)``.
///
/// Write one with ``Field`` and the usual operators:
///
/// ```swift
/// let mine: DocumentPredicate = Field("status") == "open" && Field("assignee") == "ana"
/// let urgent: DocumentPredicate = Field("priority") >= 3 || Field("tags").contains("urgent")
/// ```
///
/// **What a path holds** (``FieldPath/value(in:)``): a register's scalar, a counter's value, or
/// null for anything else. Values compare in ``QueryValue``'s order, so `1 == 1.0` and a
/// Boolean is the integer 0 or 1.
///
/// **Null.** A comparison, ``oneOf(_:_:)`` or ``hasPrefix(_:_:)`` with a path that holds null
/// (absent, set to null, a set or a nested document) is false, and its ``not(_:)`` true:
/// `!(Field("status") == "open")` matches the documents without a status.
/// ``exists(_:)`` is true when the path holds a value other than null.
///
/// Laws: `not(not(p))` matches what `p` matches; `and` and `or` follow Boolean algebra, with
/// `and([])` matching every document and `or([])` none.
public indirect enum DocumentPredicate: Sendable, Hashable {
    /// Every document.
    case all
    /// The path's value compared with a scalar.
    case compare(FieldPath, Comparison, Scalar)
    /// The path's value equals one of the scalars (SQL's `IN`).
    case oneOf(FieldPath, [Scalar])
    /// The path holds a set with this element (null is never an element a query finds).
    case contains(FieldPath, Scalar)
    /// The path holds text starting with these characters (compared as UTF-8 bytes).
    case hasPrefix(FieldPath, String)
    /// The path holds a value other than null.
    case exists(FieldPath)
    /// The document's id starts with these characters.
    case idPrefix(String)
    /// Every condition holds.
    case and([DocumentPredicate])
    /// At least one condition holds.
    case or([DocumentPredicate])
    /// The condition does not hold.
    case not(DocumentPredicate)

    /// How ``compare(_:_:_:)`` compares.
    public enum Comparison: String, Sendable, Hashable, CaseIterable {
        case equal = "="
        case notEqual = "!="
        case less = "<"
        case lessOrEqual = "<="
        case greater = ">"
        case greaterOrEqual = ">="

        /// The comparison that holds exactly when this one does not (for a non-null value).
        var negated: Comparison {
            switch self {
            case .equal: return .notEqual
            case .notEqual: return .equal
            case .less: return .greaterOrEqual
            case .lessOrEqual: return .greater
            case .greater: return .lessOrEqual
            case .greaterOrEqual: return .less
            }
        }

        func holds(_ order: Int) -> Bool {
            switch self {
            case .equal: return order == 0
            case .notEqual: return order != 0
            case .less: return order < 0
            case .lessOrEqual: return order <= 0
            case .greater: return order > 0
            case .greaterOrEqual: return order >= 0
            }
        }
    }

    /// Whether document `id` with body `document` (as readers see it) matches.
    /// - Complexity: O(size of the predicate) path lookups.
    public func matches(_ id: DocumentID, _ document: Document) -> Bool {
        switch self {
        case .all:
            return true
        case .compare(let path, let comparison, let scalar):
            let value = path.value(in: document)
            let operand = QueryValue(scalar)
            guard value != .null, operand != .null else { return false }
            return comparison.holds(value.compare(operand))
        case .oneOf(let path, let scalars):
            let value = path.value(in: document)
            guard value != .null else { return false }
            return scalars.contains { QueryValue($0) == value }
        case .contains(let path, let element):
            let wanted = QueryValue(element)
            guard wanted != .null else { return false }
            return path.members(in: document).contains(wanted)
        case .hasPrefix(let path, let prefix):
            guard case .text(let text) = path.value(in: document) else { return false }
            return text.utf8.starts(with: prefix.utf8)
        case .exists(let path):
            return path.value(in: document) != .null
        case .idPrefix(let prefix):
            return id.rawValue.utf8.starts(with: prefix.utf8)
        case .and(let all):
            return all.allSatisfy { $0.matches(id, document) }
        case .or(let any):
            return any.contains { $0.matches(id, document) }
        case .not(let inner):
            return !inner.matches(id, document)
        }
    }

    /// Every field path the predicate reads.
    public var paths: [FieldPath] {
        switch self {
        case .all, .idPrefix: return []
        case .compare(let path, _, _), .oneOf(let path, _), .contains(let path, _), .hasPrefix(let path, _), .exists(let path):
            return [path]
        case .and(let list), .or(let list): return list.flatMap(\.paths)
        case .not(let inner): return inner.paths
        }
    }

    /// Throws ``WeftError/Kind/invalidArgument`` for an invalid path (a NaN operand is null:
    /// it matches nothing).
    public func validate() throws(WeftError) {
        for path in paths { try path.validate() }
    }

    /// Both hold.
    public static func && (lhs: DocumentPredicate, rhs: DocumentPredicate) -> DocumentPredicate {
        switch (lhs, rhs) {
        case (.and(let a), .and(let b)): return .and(a + b)
        case (.and(let a), _): return .and(a + [rhs])
        case (_, .and(let b)): return .and([lhs] + b)
        default: return .and([lhs, rhs])
        }
    }

    /// At least one holds.
    public static func || (lhs: DocumentPredicate, rhs: DocumentPredicate) -> DocumentPredicate {
        switch (lhs, rhs) {
        case (.or(let a), .or(let b)): return .or(a + b)
        case (.or(let a), _): return .or(a + [rhs])
        case (_, .or(let b)): return .or([lhs] + b)
        default: return .or([lhs, rhs])
        }
    }

    /// Does not hold.
    public static prefix func ! (predicate: DocumentPredicate) -> DocumentPredicate { .not(predicate) }
}

/// A field path in a predicate or a sort: `Field("status") == "open"`, `Field("age") > 30`,
/// `Field("tags").contains("urgent")`, `Field("address.city").exists`.
public struct Field: Sendable, Hashable {
    /// The path.
    public let path: FieldPath

    /// The field at `path` (dotted for nested documents).
    public init(_ path: FieldPath) { self.path = path }

    /// The field at dotted `path`.
    public init(_ path: String) { self.path = FieldPath(path) }

    public static func == (field: Field, value: Scalar) -> DocumentPredicate { .compare(field.path, .equal, value) }
    public static func != (field: Field, value: Scalar) -> DocumentPredicate { .compare(field.path, .notEqual, value) }
    public static func < (field: Field, value: Scalar) -> DocumentPredicate { .compare(field.path, .less, value) }
    public static func <= (field: Field, value: Scalar) -> DocumentPredicate { .compare(field.path, .lessOrEqual, value) }
    public static func > (field: Field, value: Scalar) -> DocumentPredicate { .compare(field.path, .greater, value) }
    public static func >= (field: Field, value: Scalar) -> DocumentPredicate { .compare(field.path, .greaterOrEqual, value) }

    /// The value is one of `values`.
    public func isIn(_ values: [Scalar]) -> DocumentPredicate { .oneOf(path, values) }
    /// The set holds `element`.
    public func contains(_ element: Scalar) -> DocumentPredicate { .contains(path, element) }
    /// The text starts with `prefix`.
    public func hasPrefix(_ prefix: String) -> DocumentPredicate { .hasPrefix(path, prefix) }
    /// The value is not null.
    public var exists: DocumentPredicate { .exists(path) }
    /// Ascending by this field.
    public var ascending: SortKey { SortKey(path, descending: false) }
    /// Descending by this field.
    public var descending: SortKey { SortKey(path, descending: true) }
}
