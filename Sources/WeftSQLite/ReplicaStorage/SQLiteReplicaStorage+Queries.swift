import Foundation
import GRDB
import Weft
import WeftCRDT

// Index lookups (IndexedStorage points 3 and 4): a predicate and an order on indexed fields as
// SQL over the collection's `query_N` table, joined to the documents for their records.
extension SQLiteReplicaStorage {
    /// A predicate as an SQL condition on `q` (the index table), with its arguments in order.
    struct IndexCondition {
        let index: CollectionIndex
        var arguments: [QueryValue] = []

        /// The condition `predicate` (or its negation) holds. Null never compares: a negated
        /// comparison also holds for a null column, as ``DocumentPredicate`` says.
        mutating func sql(_ predicate: DocumentPredicate, negated: Bool = false) throws -> String {
            switch predicate {
            case .all:
                return negated ? "0" : "1"
            case .compare(let path, let comparison, let scalar):
                let column = try self.column(path)
                let value = QueryValue(scalar)
                guard value != .null else { return negated ? "1" : "0" }
                arguments.append(value)
                return negated
                    ? "(\(column) IS NULL OR \(column) \(comparison.negatedSQL) ?)" : "\(column) \(comparison.rawValue) ?"
            case .oneOf(let path, let scalars):
                let column = try self.column(path)
                let values = scalars.map(QueryValue.init).filter { $0 != .null }
                guard !values.isEmpty else { return negated ? "1" : "0" }
                arguments += values
                let list = "(" + Array(repeating: "?", count: values.count).joined(separator: ", ") + ")"
                return negated ? "(\(column) IS NULL OR \(column) NOT IN \(list))" : "\(column) IN \(list)"
            case .contains(let path, let element):
                guard let number = index.memberNumber(path) else { throw WeftError.invalidArgument("\(path) has no members index") }
                let value = QueryValue(element)
                guard value != .null else { return negated ? "1" : "0" }
                arguments.append(value)
                return "q.id \(negated ? "NOT IN" : "IN") (SELECT id FROM \(index.membersTable) WHERE field = \(number) AND value = ?)"
            case .hasPrefix(let path, let prefix):
                let column = try self.column(path)
                let range = Self.textRange(column, prefix, &arguments)
                return negated ? "(\(column) IS NULL OR NOT \(range))" : range
            case .exists(let path):
                let column = try self.column(path)
                return negated ? "\(column) IS NULL" : "\(column) IS NOT NULL"
            case .idPrefix(let prefix):
                guard !prefix.isEmpty else { return negated ? "0" : "1" }
                let range = Self.textRange("q.id", prefix, &arguments)
                return negated ? "NOT \(range)" : range
            case .and(let list), .or(let list):
                var conjunction = true
                if case .or = predicate { conjunction = false }
                // De Morgan: a negated conjunction is the disjunction of the negations.
                if negated { conjunction.toggle() }
                guard !list.isEmpty else { return conjunction ? "1" : "0" }
                var parts = [String]()
                for part in list { parts.append(try sql(part, negated: negated)) }
                return "(" + parts.joined(separator: conjunction ? " AND " : " OR ") + ")"
            case .not(let inner):
                return try sql(inner, negated: !negated)
            }
        }

        func column(_ path: FieldPath) throws -> String {
            guard let column = index.column(path) else { throw WeftError.invalidArgument("\(path) has no index") }
            return column
        }

        /// The texts starting with `prefix`: at or above it and below the first text after all
        /// of them (UTF-8 keeps the order of code points, so the range is exact).
        static func textRange(_ column: String, _ prefix: String, _ arguments: inout [QueryValue]) -> String {
            arguments.append(.text(prefix))
            guard let upper = Self.successor(of: prefix) else { return "(\(column) >= ? AND typeof(\(column)) = 'text')" }
            arguments.append(.text(upper))
            return "(\(column) >= ? AND \(column) < ?)"
        }

        /// The least text above every text that starts with `prefix` (nil if none: every scalar
        /// is the last one, or the prefix is empty).
        static func successor(of prefix: String) -> String? {
            var scalars = Array(prefix.unicodeScalars)
            while let last = scalars.popLast() {
                var next = last.value + 1
                if next == 0xD800 { next = 0xE000 }
                if let scalar = Unicode.Scalar(next) {
                    scalars.append(scalar)
                    var result = String.UnicodeScalarView()
                    result.append(contentsOf: scalars)
                    return String(result)
                }
            }
            return nil
        }

        /// The rows after `cursor` in `order`, then id: for keys k1…kn,
        /// `(k1 beyond OR (k1 IS v1 AND (k2 beyond OR (… AND q.id > ?))))`, where "beyond" is
        /// the key's direction (null first ascending, last descending).
        mutating func after(_ cursor: QueryCursor, _ order: [SortKey]) throws -> String {
            var sql = ""
            // A bound on the first key lets SQLite start the index range at the cursor.
            if let first = order.first, let value = cursor.values.first, value != .null {
                let column = try self.column(first.path)
                sql += (first.descending ? "(\(column) <= ? OR \(column) IS NULL)" : "\(column) >= ?") + " AND "
                arguments.append(value)
            }
            for (key, value) in zip(order, cursor.values) {
                let column = try self.column(key.path)
                switch (key.descending, value) {
                case (false, .null): sql += "(\(column) IS NOT NULL"
                case (false, _):
                    sql += "(\(column) > ?"
                    arguments.append(value)
                case (true, .null): sql += "(0"
                case (true, _):
                    sql += "((\(column) < ? OR \(column) IS NULL)"
                    arguments.append(value)
                }
                sql += " OR (\(column) IS ? AND "
                arguments.append(value)
            }
            sql += "q.id > ?" + String(repeating: "))", count: order.count)
            arguments.append(.text(cursor.id.rawValue))
            return sql
        }
    }

    public func indexedRecords(
        in collection: CollectionName, where predicate: DocumentPredicate, orderBy order: [SortKey], after: QueryCursor?, limit: Int
    ) async throws(WeftError) -> [IndexedRow] {
        guard let index = indexState.withLock({ $0.collections[collection] }) else {
            throw .invalidArgument("the collection \(collection) has no indexes")
        }
        if let after, after.values.count != order.count {
            throw .invalidArgument("the cursor holds \(after.values.count) sort values; the query sorts by \(order.count) keys")
        }
        do {
            var condition = IndexCondition(index: index)
            var sql = "SELECT q.id, d.record"
            for key in order { sql += ", " + (try condition.column(key.path)) }
            sql += " FROM \(index.table) q CROSS JOIN documents d ON d.collection = ? AND d.id = q.id WHERE "
            // The cursor's bound first: of two lower bounds on one column SQLite starts the
            // index range at the first, and a deep page would otherwise scan from the start.
            if let after { sql += (try condition.after(after, order)) + " AND " }
            sql += try condition.sql(predicate)
            sql += " ORDER BY "
            for key in order { sql += (try condition.column(key.path)) + (key.descending ? " DESC, " : ", ") }
            sql += "q.id LIMIT ?"
            let arguments = condition.arguments
            let sortColumns = order.count
            return try readBlocking { db in
                let statement = RawStatement(try db.cachedStatement(sql: sql), in: db)
                return try statement.run { binder in
                    try binder.bind(collection.rawValue)
                    for argument in arguments { try binder.bind(argument) }
                    try binder.bind(Int64(max(0, limit)))
                    var rows = [IndexedRow]()
                    while try binder.step() {
                        let rawID = try binder.text(0, "an indexed id")
                        guard let id = try? DocumentID(rawID) else { throw WeftError.corrupt("indexed id \(rawID.debugDescription) is invalid") }
                        let record = try self.storedRecord(db, DocumentKey(collection: collection, id: id), bytes: try binder.blob(1, "the record of \(collection)/\(rawID)"))
                        let values = try (0..<sortColumns).map { try binder.queryValue(Int32($0 + 2)) }
                        rows.append(IndexedRow(id: id, record: record, values: values))
                    }
                    return rows
                }
            }
        } catch {
            throw Self.map(error, path: path)
        }
    }

    public func indexedCount(in collection: CollectionName, where predicate: DocumentPredicate) async throws(WeftError) -> Int {
        guard let index = indexState.withLock({ $0.collections[collection] }) else {
            throw .invalidArgument("the collection \(collection) has no indexes")
        }
        do {
            var condition = IndexCondition(index: index)
            let sql = "SELECT count(*) FROM \(index.table) q WHERE " + (try condition.sql(predicate))
            let arguments = condition.arguments
            return try readBlocking { db in
                let statement = RawStatement(try db.cachedStatement(sql: sql), in: db)
                return try statement.run { binder in
                    for argument in arguments { try binder.bind(argument) }
                    guard try binder.step() else { return 0 }
                    return Int(try binder.integer(0, "a count"))
                }
            }
        } catch {
            throw Self.map(error, path: path)
        }
    }
}

extension DocumentPredicate.Comparison {
    /// The SQL operator of the negation.
    var negatedSQL: String {
        switch self {
        case .equal: return "!="
        case .notEqual: return "="
        case .less: return ">="
        case .lessOrEqual: return ">"
        case .greater: return "<="
        case .greaterOrEqual: return "<"
        }
    }
}
