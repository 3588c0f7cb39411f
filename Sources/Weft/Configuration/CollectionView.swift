/// A typed SQL view over one collection's JSON projection in the central store
/// (`[server.views.NAME]`): `weft_view_NAME`, with the columns `database` and `id`, then one
/// typed column per declared field, holding the live documents of the collection.
///
/// A column holds its field's value when the value has the column's type, and NULL otherwise
/// (a missing field, another kind of value), so a document written with an unexpected value
/// never makes an analyst's query fail.
public struct CollectionView: Hashable, Sendable {
    /// The SQL type of a column.
    public enum ColumnType: String, Hashable, Sendable, CaseIterable {
        /// Text: a string as itself; a number, a Boolean, an array or an object as its JSON text.
        case text
        /// A 64-bit integer: a JSON number written as an integer (not `2.0`).
        case integer
        /// A double: any JSON number.
        case double
        /// A Boolean.
        case boolean
        /// The JSON value itself (`jsonb` in PostgreSQL, JSON text in SQLite).
        case json
    }

    /// One column: its name, the field it shows and its type.
    public struct Column: Hashable, Sendable {
        /// The column's name: the field path's components joined with `_`.
        public var name: String
        /// The field it shows.
        public var path: FieldPath
        /// Its type.
        public var type: ColumnType

        /// Creates a column for field `path`, named after it.
        public init(path: FieldPath, type: ColumnType) {
            self.name = path.components.joined(separator: "_")
            self.path = path
            self.type = type
        }
    }

    /// The collection.
    public var collection: CollectionName
    /// The typed columns, in the order they appear after `database` and `id`.
    public var columns: [Column]

    /// Creates a view declaration.
    /// - Throws: ``WeftError/Kind/invalidArgument`` when the view's name would be longer than
    ///   PostgreSQL's 63 bytes, a field path's component is not a plain name (a letter or `_`,
    ///   then letters, digits or `_`), or two columns share a name or take `database` or `id`.
    public init(collection: CollectionName, columns: [Column]) throws(WeftError) {
        guard Self.prefix.utf8.count + collection.rawValue.utf8.count <= 63 else {
            throw .invalidArgument("the view of collection \(collection) would be named over 63 bytes: name a collection of at most 53")
        }
        var names: Set<String> = ["database", "id"]
        for column in columns {
            for component in column.path.components where !Self.isPlainName(component) {
                throw .invalidArgument(
                    "field \(column.path) of view \(collection): \(component.debugDescription) is not a letter or '_' followed by letters, digits or '_'")
            }
            guard column.name.utf8.count <= 63, names.insert(column.name).inserted else {
                throw .invalidArgument("view \(collection): the column \(column.name.debugDescription) is named twice, reserved or over 63 bytes")
            }
        }
        self.collection = collection
        self.columns = columns
    }

    static let prefix = "weft_view_"

    /// `weft_view_` and the collection's name.
    public var viewName: String { Self.prefix + collection.rawValue }

    static func isPlainName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        let letter = { (byte: UInt8) in (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) || byte == 0x5F }
        guard let first = bytes.first, letter(first), bytes.count <= 63 else { return false }
        return bytes.allSatisfy { letter($0) || (0x30...0x39).contains($0) }
    }
}
