import Foundation
import GRDB
import GRDBSQLite
import Synchronization
import Weft
import WeftCRDT

// The IndexedStorage role, its tables: per indexed collection, a table `query_N` with a row per
// live document (its id and one column per value field) and, for members fields, a table
// `query_N_members` with a row per set element. The registry `query_indexes` says which
// collection has which N and fields. Every write of a record keeps its rows in the same
// transaction (`updateIndexes`), and a trigger drops them with the document's row.
extension SQLiteReplicaStorage {
    /// One indexed collection.
    struct CollectionIndex: Sendable {
        var number: Int64
        var declaration: IndexDeclaration
        /// The value fields, in column order (`v0`, `v1`, …).
        var values: [FieldPath]
        /// The members fields, by their number in the members table.
        var members: [FieldPath]

        init(number: Int64, declaration: IndexDeclaration) {
            self.number = number
            self.declaration = declaration
            values = declaration.fields.filter { $0.kind == .value }.map(\.path)
            members = declaration.fields.filter { $0.kind == .members }.map(\.path)
        }

        var table: String { "query_\(number)" }
        var membersTable: String { "query_\(number)_members" }

        func column(_ path: FieldPath) -> String? { values.firstIndex(of: path).map { "q.v\($0)" } }
        func memberNumber(_ path: FieldPath) -> Int? { members.firstIndex(of: path) }

        /// `INSERT OR REPLACE` of a document's row.
        var upsertSQL: String {
            "INSERT OR REPLACE INTO \(table) (id\(values.indices.map { ", v\($0)" }.joined())) VALUES (?\(String(repeating: ", ?", count: values.count)))"
        }
    }

    /// The indexed collections and how documents are presented to their indexes.
    struct IndexState: Sendable {
        var collections: [CollectionName: CollectionIndex] = [:]
        var presenter: DocumentPresenter = { _, record in record.body }
    }

    /// The registry's entries, as stored (``IndexDeclaration`` as JSON).
    struct StoredDeclaration: Codable {
        struct Field: Codable {
            var path: [String]
            var members: Bool
        }
        var fields: [Field]
        var presentation: String

        init(_ declaration: IndexDeclaration) {
            fields = declaration.fields.map { Field(path: $0.path.components, members: $0.kind == .members) }
            presentation = declaration.presentation
        }

        var declaration: IndexDeclaration {
            IndexDeclaration(
                fields: fields.map { IndexedField(path: FieldPath(components: $0.path), kind: $0.members ? .members : .value) },
                presentation: presentation)
        }
    }

    /// Reads the registry (when the storage opens): the indexes a file holds serve queries even
    /// before a replica declares its own.
    static func loadIndexes(_ db: Database) throws -> [CollectionName: CollectionIndex] {
        var result = [CollectionName: CollectionIndex]()
        for row in try Row.fetchAll(db, sql: "SELECT collection, number, fields FROM query_indexes") {
            let name = try column(row, "collection", String.self)
            guard let collection = try? CollectionName(name) else { throw WeftError.corrupt("the indexed collection \(name.debugDescription) has an invalid name") }
            let stored: StoredDeclaration
            do {
                stored = try JSONDecoder().decode(StoredDeclaration.self, from: Data(try column(row, "fields", String.self).utf8))
            } catch let error as WeftError {
                throw error
            } catch {
                throw WeftError.corrupt("the index declaration of \(name) does not decode: \(error)")
            }
            result[collection] = CollectionIndex(number: try column(row, "number", Int64.self), declaration: stored.declaration)
        }
        return result
    }

    // MARK: IndexedStorage

    public func indexedFields(of collection: CollectionName) -> [IndexedField] {
        indexState.withLock { $0.collections[collection]?.declaration.fields ?? [] }
    }

    public func declareIndexes(
        _ declarations: [CollectionName: IndexDeclaration], presenter: @escaping DocumentPresenter
    ) async throws(WeftError) {
        for declaration in declarations.values { for field in declaration.fields { try field.path.validate() } }
        // Declared as the file holds them (the usual open): nothing to write.
        let unchanged = indexState.withLock { state in
            guard state.collections.mapValues(\.declaration) == declarations else { return false }
            state.presenter = presenter
            return true
        }
        if unchanged { return }
        do {
            try writeOutsideTransaction { db in
                try db.inTransaction(.immediate) {
                    var current = try Self.loadIndexes(db)
                    for (collection, index) in current where declarations[collection] != index.declaration {
                        try Self.dropIndex(db, index)
                        current[collection] = nil
                    }
                    for (collection, declaration) in declarations.sorted(by: { $0.key < $1.key }) where current[collection] == nil {
                        let number = (try Int64.fetchOne(db, sql: "SELECT max(number) FROM query_indexes") ?? 0) + 1
                        let index = CollectionIndex(number: number, declaration: declaration)
                        let json = String(decoding: try JSONEncoder().encode(StoredDeclaration(declaration)), as: UTF8.self)
                        try db.execute(
                            sql: "INSERT INTO query_indexes (collection, number, fields) VALUES (?, ?, ?)",
                            arguments: [collection.rawValue, number, json])
                        try Self.createIndex(db, collection, index)
                        try self.buildIndex(db, collection, index, presenter)
                        current[collection] = index
                    }
                    self.indexState.withLock { $0 = IndexState(collections: current, presenter: presenter) }
                    return .commit
                }
            }
        } catch {
            // The registry is as it was: so is the state.
            if let reloaded = try? readBlocking({ db in try Self.loadIndexes(db) }) {
                indexState.withLock { $0.collections = reloaded }
            }
            throw Self.map(error, path: path)
        }
    }

    static func createIndex(_ db: Database, _ collection: CollectionName, _ index: CollectionIndex) throws {
        let columns = index.values.indices.map { ", v\($0)" }.joined()
        var sql = "CREATE TABLE \(index.table) (id TEXT PRIMARY KEY NOT NULL\(columns)) WITHOUT ROWID;"
        for column in index.values.indices { sql += "CREATE INDEX \(index.table)_v\(column) ON \(index.table) (v\(column));" }
        var dropRows = "DELETE FROM \(index.table) WHERE id = OLD.id;"
        if !index.members.isEmpty {
            sql += """
                CREATE TABLE \(index.membersTable) (
                    field INTEGER NOT NULL, value NOT NULL, id TEXT NOT NULL, PRIMARY KEY (field, value, id)
                ) WITHOUT ROWID;
                CREATE INDEX \(index.membersTable)_by_id ON \(index.membersTable) (id);
                """
            dropRows += "DELETE FROM \(index.membersTable) WHERE id = OLD.id;"
        }
        // Collection names are ASCII letters, digits, '_', '-' and '.': safe in a literal.
        sql += """
            CREATE TRIGGER \(index.table)_gone AFTER DELETE ON documents WHEN OLD.collection = '\(collection.rawValue)'
            BEGIN \(dropRows) END;
            """
        try db.execute(sql: sql)
    }

    static func dropIndex(_ db: Database, _ index: CollectionIndex) throws {
        try db.execute(
            sql: """
                DROP TRIGGER IF EXISTS \(index.table)_gone;
                DROP TABLE IF EXISTS \(index.table);
                DROP TABLE IF EXISTS \(index.membersTable);
                DELETE FROM query_indexes WHERE number = \(index.number);
                """)
    }

    /// Indexes every live document of `collection`: O(documents).
    func buildIndex(_ db: Database, _ collection: CollectionName, _ index: CollectionIndex, _ presenter: DocumentPresenter) throws {
        let rows = try Row.fetchCursor(
            db, sql: "SELECT id, record FROM documents WHERE collection = ? AND deleted = 0", arguments: [collection.rawValue])
        while let row = try rows.next() {
            let rawID = try Self.column(row, "id", String.self)
            guard let id = try? DocumentID(rawID) else { throw WeftError.corrupt("stored id \(rawID.debugDescription) is invalid") }
            let key = DocumentKey(collection: collection, id: id)
            let record = try storedRecord(db, key, bytes: [UInt8](try Self.column(row, "record", Data.self)))
            try Self.writeIndexRows(db, index, id, record.isDeleted ? nil : presenter(collection, record), replacing: false)
        }
    }

    /// Keeps `key`'s index rows right for its new `record`, in the caller's transaction.
    func updateIndexes(_ db: Database, _ key: DocumentKey, _ record: DocumentRecord) throws {
        let (index, presenter) = indexState.withLock { ($0.collections[key.collection], $0.presenter) }
        guard let index else { return }
        try Self.writeIndexRows(db, index, key.id, record.isDeleted ? nil : presenter(key.collection, record), replacing: true)
    }

    /// Writes document `id`'s rows for `document` (nil: deleted, no rows).
    static func writeIndexRows(_ db: Database, _ index: CollectionIndex, _ id: DocumentID, _ document: Document?, replacing: Bool) throws {
        var rawID = id.rawValue
        try rawID.withUTF8 { idBytes in
            guard let document else {
                for table in index.members.isEmpty ? [index.table] : [index.table, index.membersTable] {
                    let statement = RawStatement(try db.cachedStatement(sql: "DELETE FROM \(table) WHERE id = ?"), in: db)
                    try statement.run { binder in
                        try binder.bind(borrowingText: idBytes)
                        try binder.execute()
                    }
                }
                return
            }
            let values = index.values.map { $0.value(in: document) }
            let upsert = RawStatement(try db.cachedStatement(sql: index.upsertSQL), in: db)
            try upsert.run { binder in
                try binder.bind(borrowingText: idBytes)
                for value in values { try binder.bind(value) }
                try binder.execute()
            }
            guard !index.members.isEmpty else { return }
            if replacing {
                let clear = RawStatement(try db.cachedStatement(sql: "DELETE FROM \(index.membersTable) WHERE id = ?"), in: db)
                try clear.run { binder in
                    try binder.bind(borrowingText: idBytes)
                    try binder.execute()
                }
            }
            let insert = RawStatement(
                try db.cachedStatement(sql: "INSERT OR IGNORE INTO \(index.membersTable) (field, value, id) VALUES (?, ?, ?)"), in: db)
            for (number, path) in index.members.enumerated() {
                for member in path.members(in: document) {
                    try insert.run { binder in
                        try binder.bind(Int64(number))
                        try binder.bind(member)
                        try binder.bind(borrowingText: idBytes)
                        try binder.execute()
                    }
                }
            }
        }
    }

    /// The differences between the indexes and the documents, recomputed from the documents
    /// under the declared presentation: empty when they agree. For tests and `weft` checks.
    package func indexDiscrepancies() throws(WeftError) -> [String] {
        let (collections, presenter) = indexState.withLock { ($0.collections, $0.presenter) }
        do {
            return try readBlocking { db in
                var found = [String]()
                for (collection, index) in collections.sorted(by: { $0.key < $1.key }) {
                    var expected = [String: [QueryValue]]()
                    var expectedMembers = Set<String>()
                    let rows = try Row.fetchCursor(
                        db, sql: "SELECT id, record FROM documents WHERE collection = ? AND deleted = 0", arguments: [collection.rawValue])
                    while let row = try rows.next() {
                        let id = try DocumentID(try Self.column(row, "id", String.self))
                        let record = try self.storedRecord(
                            db, DocumentKey(collection: collection, id: id), bytes: [UInt8](try Self.column(row, "record", Data.self)))
                        guard !record.isDeleted else { continue }
                        let document = presenter(collection, record)
                        expected[id.rawValue] = index.values.map { $0.value(in: document) }
                        for (number, path) in index.members.enumerated() {
                            for member in path.members(in: document) { expectedMembers.insert("\(number) \(member) \(id)") }
                        }
                    }
                    var actual = [String: [QueryValue]]()
                    let statement = RawStatement(try db.makeStatement(sql: "SELECT * FROM \(index.table)"), in: db)
                    try statement.run { binder in
                        while try binder.step() {
                            let id = try binder.text(0, "an indexed id")
                            actual[id] = try index.values.indices.map { try binder.queryValue(Int32($0 + 1)) }
                        }
                    }
                    for (id, values) in expected where actual[id] != values {
                        found.append("\(collection)/\(id): index holds \(actual[id].map { "\($0)" } ?? "nothing"), document has \(values)")
                    }
                    for id in actual.keys where expected[id] == nil { found.append("\(collection)/\(id): indexed but not a live document") }
                    if !index.members.isEmpty {
                        var actualMembers = Set<String>()
                        let members = RawStatement(try db.makeStatement(sql: "SELECT field, value, id FROM \(index.membersTable)"), in: db)
                        try members.run { binder in
                            while try binder.step() {
                                actualMembers.insert("\(try binder.integer(0, "a member field")) \(try binder.queryValue(1)) \(try binder.text(2, "an id"))")
                            }
                        }
                        for entry in expectedMembers.symmetricDifference(actualMembers).sorted() {
                            found.append("\(collection): member \(entry) is \(actualMembers.contains(entry) ? "indexed but not in the document" : "missing")")
                        }
                    }
                }
                return found
            }
        } catch {
            throw Self.map(error, path: path)
        }
    }
}

extension RawStatement.Binder {
    /// Binds a query value in its storage class.
    package mutating func bind(_ value: QueryValue) throws {
        switch value {
        case .null: try bindNull()
        case .integer(let integer): try bind(integer)
        case .real(let real): try bind(real: real)
        case .text(let text): try bind(text)
        case .blob(let bytes): try bytes.withUnsafeBytes { raw in try bind(copying: raw) }
        }
    }

    /// A column as a query value (whatever its storage class).
    package func queryValue(_ column: Int32) throws -> QueryValue {
        switch sqlite3_column_type(statement.handle, column) {
        case SQLITE_NULL: return .null
        case SQLITE_INTEGER: return .integer(sqlite3_column_int64(statement.handle, column))
        case SQLITE_FLOAT: return .real(sqlite3_column_double(statement.handle, column))
        case SQLITE_TEXT: return .text(try text(column, "an indexed value"))
        default: return .blob(try blob(column, "an indexed value"))
        }
    }
}
