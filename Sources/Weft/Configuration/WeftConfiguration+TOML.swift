import Foundation
import TOMLKit
import WeftCRDT

extension WeftConfiguration {
    /// Reads and validates a TOML configuration file.
    ///
    /// - Throws: ``ConfigurationError`` naming the key, the expected type and the line, for a
    ///   syntax error, a value of the wrong type or range, a missing required key, or an unknown
    ///   key (a misspelt key is an error, never silently ignored).
    public static func load(path: String) throws(ConfigurationError) -> WeftConfiguration {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigurationError(
                key: "", expected: "a readable UTF-8 file", found: "\(error)", file: path)
        }
        return try parse(text, file: path)
    }

    /// Parses and validates TOML text; see ``load(path:)``.
    public static func parse(_ text: String, file: String? = nil) throws(ConfigurationError)
        -> WeftConfiguration
    {
        let root: TOMLTable
        do {
            root = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw ConfigurationError(
                key: "", expected: "valid TOML", found: error.description, line: error.source.begin.line,
                file: file)
        } catch {
            throw ConfigurationError(key: "", expected: "valid TOML", found: "\(error)", file: file)
        }
        var reader = TOMLReader(lines: TOMLLineIndex(text), file: file)
        return try reader.configuration(root)
    }
}

/// Finds the line where a dotted key is defined, for error messages.
struct TOMLLineIndex {
    private var lines: [String: Int] = [:]

    init(_ text: String) {
        var table = ""
        var arrayCounts: [String: Int] = [:]
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("[[") {
                let name = Self.clean(line.dropFirst(2).prefix { $0 != "]" })
                let index = arrayCounts[name, default: 0]
                arrayCounts[name] = index + 1
                table = "\(name)[\(index)]"
                lines[table] = number + 1
            } else if line.hasPrefix("[") {
                table = Self.clean(line.dropFirst().prefix { $0 != "]" })
                lines[table] = lines[table] ?? number + 1
            } else if let equals = line.firstIndex(of: "="), !line.hasPrefix("#") {
                let key = Self.clean(line[..<equals])
                lines[table.isEmpty ? key : "\(table).\(key)"] = number + 1
            }
        }
    }

    private static func clean(_ text: Substring) -> String {
        text.split(separator: ".").map {
            $0.trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
        }
        .joined(separator: ".")
    }

    /// The line of `key`, or of its closest enclosing table.
    func line(of key: String) -> Int? {
        var candidate = key
        while !candidate.isEmpty {
            if let line = lines[candidate] { return line }
            guard let dot = candidate.lastIndex(of: ".") else { break }
            candidate = String(candidate[..<dot])
        }
        return nil
    }
}

/// Walks a parsed TOML document, checking every key.
struct TOMLReader {
    let lines: TOMLLineIndex
    let file: String?

    /// An error for `key`, located at `lineKey` (a missing key is reported where its neighbour is).
    func error(_ key: String, expected: String, found: String, lineKey: String? = nil) -> ConfigurationError {
        ConfigurationError(
            key: key, expected: expected, found: found, line: lines.line(of: lineKey ?? key), file: file)
    }

    func describe(_ value: TOMLValueConvertible) -> String {
        switch value.type {
        case .string: return "the string \(value.string.map { $0.debugDescription } ?? "")"
        case .int: return "the integer \(value.int.map(String.init) ?? "")"
        case .double: return "the float \(value.double.map { String($0) } ?? "")"
        case .bool: return "the boolean \(value.bool.map(String.init) ?? "")"
        case .table: return "a table"
        case .array: return "an array"
        default: return "a \(value.type)"
        }
    }

    func checkKeys(_ table: TOMLTable, at path: String, allowed: Set<String>) throws(ConfigurationError) {
        for key in table.keys where !allowed.contains(key) {
            let full = path.isEmpty ? key : "\(path).\(key)"
            throw error(
                full, expected: "one of the keys \(allowed.sorted().joined(separator: ", "))",
                found: "the unknown key \(key.debugDescription)")
        }
    }

    func string(_ table: TOMLTable, _ key: String, at path: String) throws(ConfigurationError) -> String? {
        guard let value = table[key] else { return nil }
        guard let string = value.string else {
            throw error("\(path).\(key)", expected: "a string", found: describe(value))
        }
        return string
    }

    func integer(
        _ table: TOMLTable, _ key: String, at path: String, range: ClosedRange<Int>, unit: String = ""
    )
        throws(ConfigurationError) -> Int?
    {
        guard let value = table[key] else { return nil }
        guard let integer = value.int else {
            throw error("\(path).\(key)", expected: "an integer\(unit)", found: describe(value))
        }
        guard range.contains(integer) else {
            throw error(
                "\(path).\(key)",
                expected: "an integer from \(range.lowerBound) to \(range.upperBound)\(unit)",
                found: "\(integer)")
        }
        return integer
    }

    func table(_ table: TOMLTable, _ key: String, at path: String) throws(ConfigurationError) -> TOMLTable? {
        guard let value = table[key] else { return nil }
        guard let nested = value.table else {
            throw error("\(path).\(key)", expected: "a table", found: describe(value))
        }
        return nested
    }

    func choice<T: RawRepresentable & CaseIterable>(
        _ table: TOMLTable, _ key: String, at path: String, _ type: T.Type
    )
        throws(ConfigurationError) -> T? where T.RawValue == String
    {
        guard let text = try string(table, key, at: path) else { return nil }
        guard let value = T(rawValue: text) else {
            throw error(
                "\(path).\(key)",
                expected: "one of \(T.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))",
                found: text.debugDescription)
        }
        return value
    }

    /// An array of field paths (`"status"`, `"address.city"`), or none.
    func paths(_ table: TOMLTable, _ key: String, at path: String) throws(ConfigurationError) -> [FieldPath] {
        guard let value = table[key] else { return [] }
        guard let array = value.array else {
            throw error("\(path).\(key)", expected: "an array of field paths", found: describe(value))
        }
        var result = [FieldPath]()
        for element in array {
            guard let text = element.string else {
                throw error(
                    "\(path).\(key)", expected: "an array of field paths",
                    found: "an element that is \(describe(element))")
            }
            let field = FieldPath(text)
            do {
                try field.validate()
            } catch {
                throw self.error(
                    "\(path).\(key)", expected: "field paths like \"status\" or \"address.city\"",
                    found: text.debugDescription)
            }
            result.append(field)
        }
        return result
    }

    func policy(_ table: TOMLTable, at path: String) throws(ConfigurationError) -> ConflictPolicy? {
        let resolver = try string(table, "resolver", at: path)
        guard let name = try string(table, "conflict_resolution", at: path) else {
            if resolver != nil {
                throw error(
                    "\(path).resolver", expected: "conflict_resolution = \"custom\" alongside a resolver",
                    found: "no conflict_resolution")
            }
            return nil
        }
        switch name {
        case "lww":
            guard resolver == nil else {
                throw error(
                    "\(path).resolver", expected: "no resolver unless conflict_resolution = \"custom\"",
                    found: "a resolver")
            }
            return .lastWriterWins
        case "crdt":
            guard resolver == nil else {
                throw error(
                    "\(path).resolver", expected: "no resolver unless conflict_resolution = \"custom\"",
                    found: "a resolver")
            }
            return .crdt
        case "custom":
            guard let resolver, !resolver.isEmpty else {
                throw error(
                    "\(path).resolver",
                    expected: "the name of a registered resolver (conflict_resolution is \"custom\")",
                    found: "none", lineKey: "\(path).conflict_resolution")
            }
            return .custom(resolver: resolver)
        default:
            throw error(
                "\(path).conflict_resolution",
                expected:
                    "one of \"lww\", \"crdt\", \"custom\" (or \"fields\" with a [\(path).fields] table)",
                found: name.debugDescription)
        }
    }

    /// `[persistence.collections.NAME.fields]`: a rule per field. `conflict_resolution` may be
    /// left out or set to "fields"; `resolver` may not be given.
    func fieldRules(_ entry: TOMLTable, _ fields: TOMLTable, at path: String) throws(ConfigurationError)
        -> ConflictPolicy
    {
        if let name = try string(entry, "conflict_resolution", at: path), name != "fields" {
            throw error(
                "\(path).conflict_resolution",
                expected: "\"fields\" or nothing, since the collection declares field rules",
                found: name.debugDescription)
        }
        if try string(entry, "resolver", at: path) != nil {
            throw error(
                "\(path).resolver", expected: "no resolver, since the collection declares field rules",
                found: "a resolver")
        }
        let choices = FieldRule.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
        var rules = [String: FieldRule]()
        for field in fields.keys.sorted() {
            guard let text = try string(fields, field, at: "\(path).fields") else { continue }
            guard let rule = FieldRule(rawValue: text) else {
                throw error(
                    "\(path).fields.\(field)", expected: "a field rule: one of \(choices)",
                    found: text.debugDescription)
            }
            rules[field] = rule
        }
        guard !rules.isEmpty else {
            throw error(
                "\(path).fields", expected: "at least one field rule (one of \(choices))",
                found: "an empty table")
        }
        return .fields(rules)
    }

    mutating func configuration(_ root: TOMLTable) throws(ConfigurationError) -> WeftConfiguration {
        try checkKeys(root, at: "", allowed: ["persistence", "server"])
        var configuration = WeftConfiguration()
        if let persistence = try table(root, "persistence", at: "") {
            configuration.persistence = try self.persistence(persistence)
        }
        if let server = try table(root, "server", at: "") {
            configuration.server = try self.server(server)
        }
        return configuration
    }

}
