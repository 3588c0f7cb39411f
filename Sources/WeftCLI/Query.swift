import ArgumentParser
import Foundation
import Weft
import WeftCRDT
import WeftSQLite

struct Query: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the documents of a collection that match conditions, as JSON.",
        discussion: """
            Conditions (--where, all must hold): PATH OP VALUE with OP one of = != < <= > >=; \
            PATH in [V, V, …]; PATH contains V (a set holds V); PATH startswith "TEXT"; \
            PATH exists; PATH missing. A VALUE is JSON ("text", 12, 1.5, true, null) or a bare word \
            (read as text). PATH names nested documents with dots (site.city).
            Order (--order-by, repeatable): PATH or PATH:desc. The file's indexes answer what they \
            can (--explain shows how); the file is only read.
            """)

    @Argument(help: "The replica's SQLite file.")
    var path: String

    @Argument(help: "The collection.")
    var collection: String

    @Option(name: .customLong("where"), help: "A condition, e.g. 'status = \"open\"'. Repeatable; all must hold.")
    var conditions: [String] = []

    @Option(name: .customLong("order-by"), help: "A sort key: PATH or PATH:desc. Repeatable.")
    var order: [String] = []

    @Option(help: "At most this many documents.")
    var limit: Int?

    @Flag(help: "Print only how many documents match.")
    var count = false

    @Flag(help: "Print how the query would be answered, and nothing else.")
    var explain = false

    func validate() throws {
        if let limit, limit < 0 { throw ValidationError("--limit must not be negative") }
    }

    func run() async throws {
        guard FileManager.default.fileExists(atPath: path) else { throw fail("\(path) does not exist") }
        let query: DocumentQuery
        do {
            query = try Self.parse(conditions: conditions, order: order, limit: limit)
        } catch let error as QuerySyntaxError {
            throw fail(error.message)
        }
        do {
            // The file keeps the app's indexes: this command declares none of its own.
            let replica = try await Replica.open(path: path, configuration: Self.lookingIn)
            let documents = try replica.collection(collection)
            if explain {
                print(documents.explain(query))
                return
            }
            if count {
                print(try await documents.count(query.predicate))
                return
            }
            try await JSONRender.printArray(documents.results(of: query))
        } catch let error as WeftError {
            throw fail(error.message)
        }
    }

    struct QuerySyntaxError: Error {
        let message: String
    }

    /// The query the options describe.
    static func parse(conditions: [String], order: [String], limit: Int?) throws -> DocumentQuery {
        var predicates = [DocumentPredicate]()
        for text in conditions { predicates.append(try condition(text)) }
        let keys = try order.map { text -> SortKey in
            let parts = text.split(separator: ":", omittingEmptySubsequences: false)
            guard (1...2).contains(parts.count), !parts[0].isEmpty else {
                throw QuerySyntaxError(message: "--order-by \(text.debugDescription): expected PATH or PATH:desc")
            }
            let path = try self.path(String(parts[0]))
            switch parts.count == 2 ? parts[1].lowercased() : "asc" {
            case "asc": return SortKey(path)
            case "desc": return SortKey(path, descending: true)
            default: throw QuerySyntaxError(message: "--order-by \(text.debugDescription): the direction is asc or desc")
            }
        }
        let predicate: DocumentPredicate = predicates.count == 1 ? predicates[0] : (predicates.isEmpty ? .all : .and(predicates))
        return DocumentQuery(predicate, orderBy: keys, limit: limit)
    }

    static func path(_ text: String) throws -> FieldPath {
        let path = FieldPath(text)
        do {
            try path.validate()
        } catch {
            throw QuerySyntaxError(message: "\(text.debugDescription) is not a field path (names joined by dots)")
        }
        return path
    }

    static func condition(_ text: String) throws -> DocumentPredicate {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let words = trimmed.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true).map(String.init)
        if words.count == 2, words[1] == "exists" { return .exists(try path(words[0])) }
        if words.count == 2, words[1] == "missing" { return .not(.exists(try path(words[0]))) }
        if words.count == 3 {
            switch words[1] {
            case "in":
                let list = words[2].trimmingCharacters(in: .whitespaces)
                guard list.hasPrefix("["), list.hasSuffix("]") else {
                    throw QuerySyntaxError(message: "\(text.debugDescription): expected PATH in [V, V, …]")
                }
                return .oneOf(try path(words[0]), try values(String(list.dropFirst().dropLast()), in: text))
            case "contains": return .contains(try path(words[0]), try value(words[2], in: text))
            case "startswith":
                guard case .string(let prefix) = try value(words[2], in: text) else {
                    throw QuerySyntaxError(message: "\(text.debugDescription): startswith takes text")
                }
                return .hasPrefix(try path(words[0]), prefix)
            default: break
            }
        }
        for symbol in ["!=", "<=", ">=", "==", "=", "<", ">"] {
            guard let range = trimmed.range(of: symbol) else { continue }
            let left = trimmed[..<range.lowerBound].trimmingCharacters(in: .whitespaces)
            let right = trimmed[range.upperBound...].trimmingCharacters(in: .whitespaces)
            guard !left.isEmpty, !right.isEmpty else { break }
            let comparison: DocumentPredicate.Comparison
            switch symbol {
            case "!=": comparison = .notEqual
            case "<=": comparison = .lessOrEqual
            case ">=": comparison = .greaterOrEqual
            case "<": comparison = .less
            case ">": comparison = .greater
            default: comparison = .equal
            }
            return .compare(try path(left), comparison, try value(right, in: text))
        }
        throw QuerySyntaxError(
            message: "\(text.debugDescription) is not a condition: expected PATH OP VALUE, PATH in [...], PATH contains V, "
                + "PATH startswith \"TEXT\", PATH exists or PATH missing")
    }

    /// A JSON scalar, decoded without guessing.
    enum JSONScalar: Decodable {
        case scalar(Scalar)
        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if container.decodeNil() {
                self = .scalar(.null)
            } else if let bool = try? container.decode(Bool.self) {
                self = .scalar(.bool(bool))
            } else if let integer = try? container.decode(Int64.self) {
                self = .scalar(.int(integer))
            } else if let double = try? container.decode(Double.self) {
                self = .scalar(.double(double))
            } else {
                self = .scalar(.string(try container.decode(String.self)))
            }
        }
    }

    static func values(_ text: String, in condition: String) throws -> [Scalar] {
        if text.trimmingCharacters(in: .whitespaces).isEmpty { return [] }
        if let decoded = try? JSONDecoder().decode([JSONScalar].self, from: Data("[\(text)]".utf8)) {
            return decoded.map { if case .scalar(let value) = $0 { return value } else { return .null } }
        }
        // Bare words, one per comma.
        return text.split(separator: ",").map { .string($0.trimmingCharacters(in: .whitespaces)) }
    }

    static func value(_ text: String, in condition: String) throws -> Scalar {
        let list = try values(text, in: condition)
        guard list.count == 1 else {
            throw QuerySyntaxError(message: "\(condition.debugDescription): \(text.debugDescription) is not one value")
        }
        return list[0]
    }
}

/// Documents as JSON lines: the one projection (`Document.jsonValue`), with the id under `_id`.
enum JSONRender {
    /// Document `id` as one line of JSON, its id under `_id`.
    static func line(_ id: String, _ document: Document) -> String {
        guard case .object(var members) = document.jsonValue else { return "{}" }
        members["_id"] = .string(id)
        return JSONValue.object(members).text
    }

    /// Prints `results` as a JSON array, one document a line, as they are read (memory follows
    /// the page, not the collection).
    static func printArray(_ results: QueryResults) async throws(WeftError) {
        var separator = "["
        for try await (id, document) in results {
            print(separator + line(id.rawValue, document))
            separator = ","
        }
        print(separator == "[" ? "[]" : "]")
    }
}
