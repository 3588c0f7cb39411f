import Foundation
import GRDB
import Weft
import WeftCRDT
import WeftSQLite

// The JSON projection (CentralStore rule 10): `documents.doc` and `documents.deleted`.
extension SQLiteCentralStore {
    public func projectDocuments(limit: Int, projector: DocumentProjector) async throws(WeftError) -> (projected: Int, passFinished: Bool) {
        guard projector.keepsProjection else { return (0, true) }
        let limit = max(1, limit)
        do {
            return try writeBlocking { db -> (Int, Bool) in
                // Rows written before the projection, found through their partial index. A push
                // that writes one meanwhile projects it, which takes it out of the index.
                let rows = try Row.fetchAll(
                    db, sql: "SELECT tenant, collection, id, record FROM documents WHERE deleted IS NULL LIMIT ?", arguments: [limit])
                let update = try db.cachedStatement(sql: "UPDATE documents SET doc = ?, deleted = ? WHERE tenant = ? AND collection = ? AND id = ?")
                for row in rows {
                    let tenant = try SQLiteReplicaStorage.column(row, "tenant", String.self)
                    let key = try SQLiteReplicaStorage.key(row)
                    let record = try SQLiteReplicaStorage.decodeRecord(
                        try SQLiteReplicaStorage.column(row, "record", Data.self), "\(tenant)/\(key)")
                    let projection = projector.projection(database: tenant, key: key, record: record)
                    try update.execute(arguments: [projection, projection == nil, tenant, key.collection.rawValue, key.id.rawValue])
                }
                return (rows.count, rows.count < limit)
            }
        } catch {
            throw SQLiteReplicaStorage.map(error, path: path)
        }
    }
}

// Typed views over the projection.
extension SQLiteCentralStore {
    public func declareViews(_ views: [CollectionView]) async throws(WeftError) {
        do {
            try writeBlocking { db in
                let existing = try String.fetchAll(
                    db, sql: "SELECT name FROM sqlite_schema WHERE type = 'view' AND name LIKE 'weft\\_view\\_%' ESCAPE '\\'")
                for name in existing { try db.execute(sql: "DROP VIEW \(Self.identifier(name))") }
                for view in views { try db.execute(sql: Self.viewSQL(view)) }
            }
        } catch {
            throw SQLiteReplicaStorage.map(error, path: path)
        }
    }

    /// `CREATE VIEW` for `view`: each column is its field's value where the value has the
    /// column's type, NULL otherwise (the same rule as the PostgreSQL store's views).
    static func viewSQL(_ view: CollectionView) -> String {
        var columns = ["tenant AS database", "id"]
        for column in view.columns {
            // Components are plain names (CollectionView checks), so the path needs no quoting.
            let path = "'$." + column.path.components.joined(separator: ".") + "'"
            let type = "json_type(doc, \(path))"
            let value = "json_extract(doc, \(path))"
            let expression: String
            switch column.type {
            case .text:
                expression = "CASE \(type) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' WHEN 'null' THEN NULL ELSE CAST(\(value) AS TEXT) END"
            case .integer: expression = "CASE WHEN \(type) = 'integer' THEN \(value) END"
            case .double: expression = "CASE WHEN \(type) IN ('integer', 'real') THEN CAST(\(value) AS REAL) END"
            case .boolean: expression = "CASE \(type) WHEN 'true' THEN 1 WHEN 'false' THEN 0 END"
            case .json: expression = "doc -> \(path)"
            }
            columns.append("\(expression) AS \(identifier(column.name))")
        }
        return """
            CREATE VIEW \(identifier(view.viewName)) AS SELECT \(columns.joined(separator: ", "))
            FROM documents WHERE collection = '\(view.collection.rawValue)' AND deleted = 0
            """
    }

    /// A quoted SQL identifier.
    static func identifier(_ name: String) -> String { "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }
}

// Listing a collection by its projection.
extension SQLiteCentralStore {
    public func documents(
        database: String, collection: CollectionName, after: DocumentID?, limit: Int, filters: [ProjectionFilter], projector: DocumentProjector
    ) async throws(WeftError) -> [(id: DocumentID, record: DocumentRecord)] {
        var sql = "SELECT collection, id, record FROM documents WHERE tenant = ? AND collection = ? AND deleted = 0"
        var arguments: StatementArguments = [database, collection.rawValue]
        if let after {
            sql += " AND id > ?"
            arguments += [after.rawValue]
        }
        for filter in filters {
            let (condition, values) = Self.condition(filter)
            sql += " AND " + condition
            arguments += values
        }
        sql += " ORDER BY id LIMIT ?"
        arguments += [max(1, limit)]
        do {
            return try readBlocking { db in
                try Row.fetchAll(db, sql: sql, arguments: arguments).map { row in
                    let key = try SQLiteReplicaStorage.key(row)
                    let record = try SQLiteReplicaStorage.decodeRecord(try SQLiteReplicaStorage.column(row, "record", Data.self), "\(database)/\(key)")
                    return (key.id, record)
                }
            }
        } catch {
            throw SQLiteReplicaStorage.map(error, path: path)
        }
    }

    /// The SQL condition of `filter` on `doc`, with its arguments (the JSON path is one of them).
    static func condition(_ filter: ProjectionFilter) -> (String, StatementArguments) {
        // Components hold no '"' (ProjectionFilter checks), so each is a quoted path step.
        let path = "$" + filter.path.map { ".\"\($0)\"" }.joined()
        switch filter.value {
        case .null: return ("json_type(doc, ?) = 'null'", [path])
        case .bool(let flag): return ("json_type(doc, ?) = ?", [path, flag ? "true" : "false"])
        case .int(let number): return ("json_type(doc, ?) IN ('integer', 'real') AND json_extract(doc, ?) = ?", [path, path, number])
        case .double(let number): return ("json_type(doc, ?) IN ('integer', 'real') AND json_extract(doc, ?) = ?", [path, path, number])
        case .string(let text): return ("json_type(doc, ?) = 'text' AND json_extract(doc, ?) = ?", [path, path, text])
        case .array, .object: return ("doc -> ? = json(?)", [path, filter.value.text])
        }
    }
}
