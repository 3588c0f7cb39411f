import WeftCRDT

/// A field of a document, or of a document nested in it: `"status"`, `"address.city"`.
///
/// A path names nested documents by their field names joined with `.`; a field whose name
/// holds a `.` is named with ``init(components:)``. A path reaches through nested documents
/// only: a register, counter or set on the way ends it (the path then holds nothing).
public struct FieldPath: Hashable, Sendable, ExpressibleByStringLiteral, CustomStringConvertible {
    /// The field names from the document down, at least one.
    public let components: [String]

    /// The path `dotted` names: its parts between dots.
    public init(_ dotted: String) {
        components = dotted.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
    }

    /// The path through `components`, which may hold dots of their own.
    public init(components: [String]) { self.components = components }

    public init(stringLiteral value: String) { self.init(value) }

    /// The components joined with `.`.
    public var description: String { components.joined(separator: ".") }

    /// Throws ``WeftError/Kind/invalidArgument`` for a path with no component or an empty one.
    public func validate() throws(WeftError) {
        guard !components.isEmpty, !components.contains(where: \.isEmpty) else {
            throw .invalidArgument("field path \(description.debugDescription) has an empty component")
        }
    }

    /// The document holding the path's last field, and that field's name.
    func container(in document: Document) -> (Document, String)? {
        guard let last = components.last else { return nil }
        var current = document
        for name in components.dropLast() {
            guard let nested = current.map(name) else { return nil }
            current = nested
        }
        return (current, last)
    }

    /// What the path holds in `document` as a query compares it (``QueryValue``): a register's
    /// scalar, a counter's value, or null for anything else (absent, a set, a nested document).
    /// - Complexity: O(*k*) dictionary lookups for a path of *k* components.
    public func value(in document: Document) -> QueryValue {
        guard let (container, name) = container(in: document) else { return .null }
        if let scalar = container.scalar(name) { return QueryValue(scalar) }
        if let counter = container.counter(name) { return .integer(counter) }
        return .null
    }

    /// The elements of the set the path holds in `document`, without null (empty if the path
    /// holds no set).
    public func members(in document: Document) -> [QueryValue] {
        guard let (container, name) = container(in: document), let set = container.set(name) else { return [] }
        return set.compactMap { element in
            let value = QueryValue(element)
            return value == .null ? nil : value
        }
    }
}
