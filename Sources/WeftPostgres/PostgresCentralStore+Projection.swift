import Foundation
import Logging
import NIOCore
import PostgresNIO
import Weft
import WeftCRDT
@_spi(Measuring) import WeftServer

// The JSON projection (CentralStore rule 10): `weft_documents.doc` and `weft_documents.deleted`.
extension PostgresCentralStore {
    public func projectDocuments(limit: Int, projector: DocumentProjector) async throws(WeftError) -> (projected: Int, passFinished: Bool) {
        guard projector.keepsProjection else { return (0, true) }
        let limit = max(1, limit)
        let logger = logger
        let location = location
        do {
            return try await withDeadline {
                var tenants = [String]()
                var collections = [String]()
                var ids = [String]()
                var projections = [String]()
                for try await (tenant, collection, id, record) in try await self.client.query(
                    "SELECT tenant, collection, id, record FROM weft_documents WHERE deleted IS NULL LIMIT \(limit)", logger: logger
                ).decode((String, String, String, ByteBuffer).self) {
                    let key: DocumentKey
                    let decoded: DocumentRecord
                    do {
                        key = DocumentKey(collection: try CollectionName(collection), id: try DocumentID(id))
                        decoded = try DocumentRecord(encoded: Array(buffer: record))
                    } catch {
                        throw WeftError.corrupt("the record of \(tenant)/\(collection)/\(id) at \(location) does not decode: \(error)")
                    }
                    tenants.append(tenant)
                    collections.append(collection)
                    ids.append(id)
                    projections.append(projector.projection(database: tenant, key: key, record: decoded) ?? "")
                }
                guard !tenants.isEmpty else { return (0, true) }
                // A push that wrote the record meanwhile projected it itself: it is left alone.
                try await self.client.query(
                    """
                    UPDATE weft_documents d SET doc = NULLIF(t.j, '')::jsonb, deleted = t.j = ''
                    FROM unnest(\(tenants)::text[], \(collections)::text[], \(ids)::text[], \(projections)::text[]) AS t(n, c, i, j)
                    WHERE d.tenant = t.n AND d.collection = t.c AND d.id = t.i AND d.deleted IS NULL
                    """, logger: logger)
                return (tenants.count, tenants.count < limit)
            }
        } catch {
            throw map(error)
        }
    }
}

// Typed views over the projection.
extension PostgresCentralStore {
    public func declareViews(_ views: [CollectionView]) async throws(WeftError) {
        let logger = logger
        do {
            try await withDeadline {
                try await self.client.withTransaction(logger: logger) { connection in
                    // One server at a time: several starting together would drop each other's views.
                    try await connection.query("SELECT pg_advisory_xact_lock(\(Self.migrationLock))", logger: logger)
                    var existing = [String]()
                    for try await name in try await connection.query(
                        #"SELECT viewname FROM pg_views WHERE schemaname = current_schema() AND viewname LIKE 'weft\_view\_%'"#,
                        logger: logger
                    ).decode(String.self) {
                        existing.append(name)
                    }
                    for name in existing { try await connection.query(PostgresQuery(unsafeSQL: "DROP VIEW \(Self.identifier(name))"), logger: logger) }
                    for view in views { try await connection.query(PostgresQuery(unsafeSQL: Self.viewSQL(view)), logger: logger) }
                }
            }
        } catch {
            throw map(error)
        }
    }

    /// `CREATE VIEW` for `view`: each column is its field's value where the value has the
    /// column's type, NULL otherwise (the same rule as the SQLite store's views).
    static func viewSQL(_ view: CollectionView) -> String {
        var columns = ["tenant AS database", "id"]
        for column in view.columns {
            // Components are plain names (CollectionView checks), so they need no escaping.
            let path = "ARRAY[" + column.path.components.map { "'\($0)'" }.joined(separator: ", ") + "]"
            let type = "jsonb_typeof(doc #> \(path))"
            let text = "(doc #>> \(path))"
            let expression: String
            switch column.type {
            case .text: expression = text
            case .integer:
                expression = """
                    CASE WHEN \(type) = 'number' AND \(text) ~ '^-?[0-9]{1,19}$' \
                    AND \(text)::numeric BETWEEN -9223372036854775808 AND 9223372036854775807 THEN \(text)::bigint END
                    """
            case .double: expression = "CASE WHEN \(type) = 'number' THEN \(text)::double precision END"
            case .boolean: expression = "CASE WHEN \(type) = 'boolean' THEN \(text)::boolean END"
            case .json: expression = "doc #> \(path)"
            }
            columns.append("\(expression) AS \(identifier(column.name))")
        }
        return """
            CREATE VIEW \(identifier(view.viewName)) AS SELECT \(columns.joined(separator: ", "))
            FROM weft_documents WHERE collection = '\(view.collection.rawValue)' AND deleted IS FALSE
            """
    }

    /// A quoted SQL identifier.
    static func identifier(_ name: String) -> String { "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }
}

// Listing a collection by its projection.
extension PostgresCentralStore {
    public func documents(
        database: String, collection: CollectionName, after: DocumentID?, limit: Int, filters: [ProjectionFilter], projector: DocumentProjector
    ) async throws(WeftError) -> [(id: DocumentID, record: DocumentRecord)] {
        var bindings = PostgresBindings()
        bindings.append(database)
        bindings.append(collection.rawValue)
        var sql = "SELECT id, record FROM weft_documents WHERE tenant = $1 AND collection = $2 AND deleted IS FALSE"
        if let after {
            bindings.append(after.rawValue)
            sql += " AND id > $\(bindings.count)"
        }
        for filter in filters {
            bindings.append(filter.path)
            bindings.append(filter.value.text)
            sql += " AND doc #> $\(bindings.count - 1)::text[] = $\(bindings.count)::jsonb"
        }
        sql += " ORDER BY id LIMIT \(max(1, limit))"
        let query = PostgresQuery(unsafeSQL: sql, binds: bindings)
        let logger = logger
        let location = location
        do {
            return try await withDeadline {
                var result = [(id: DocumentID, record: DocumentRecord)]()
                for try await (id, record) in try await self.client.query(query, logger: logger).decode((String, ByteBuffer).self) {
                    do {
                        result.append((try DocumentID(id), try DocumentRecord(encoded: Array(buffer: record))))
                    } catch {
                        throw WeftError.corrupt("the record of \(database)/\(collection)/\(id) at \(location) does not decode: \(error)")
                    }
                }
                return result
            }
        } catch {
            throw map(error)
        }
    }
}
