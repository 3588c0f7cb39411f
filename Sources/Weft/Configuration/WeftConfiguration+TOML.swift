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

    func persistence(_ table: TOMLTable) throws(ConfigurationError) -> PersistenceConfiguration {
        let path = "persistence"
        try checkKeys(
            table, at: path,
            allowed: [
                "remote_endpoint", "mode", "sync_interval_ms", "conflict_resolution", "resolver",
                "max_queue_bytes",
                "auth_token", "database_path", "durability", "collections", "bandwidth_bytes_per_second",
                "bandwidth_burst_bytes", "write_through_timeout_ms", "write_through_fallback",
                "tombstone_retention_ms",
                "tls_ca_file", "allow_insecure_http", "channels",
            ])
        var result = PersistenceConfiguration()
        if let endpoint = try string(table, "remote_endpoint", at: path) {
            do {
                result.remoteEndpoint = try RemoteEndpoint.parse(endpoint)
            } catch {
                throw self.error("\(path).remote_endpoint", expected: error.expected, found: error.found)
            }
        }
        result.tlsCAFile = try string(table, "tls_ca_file", at: path)
        if let channels = try channelTemplates(table, "channels", at: path, placeholders: false) {
            result.channels = channels.map(\.prefix)
        }
        if let allow = table["allow_insecure_http"] {
            guard let flag = allow.bool else {
                throw error("\(path).allow_insecure_http", expected: "true or false", found: describe(allow))
            }
            result.allowInsecureHTTP = flag
        }
        if let endpoint = result.remoteEndpoint, endpoint.isPlainHTTPToAnotherHost, !result.allowInsecureHTTP
        {
            throw error(
                "\(path).remote_endpoint",
                expected:
                    "https:// for a server on another machine (the token would cross the network in clear), or allow_insecure_http = true",
                found: "plain http://")
        }
        if let mode = try choice(table, "mode", at: path, SyncMode.self) { result.mode = mode }
        if let interval = try integer(
            table, "sync_interval_ms", at: path, range: 1...86_400_000, unit: " of milliseconds")
        {
            result.syncIntervalMilliseconds = interval
        }
        if let policy = try policy(table, at: path) { result.conflictResolution = policy }
        if let cap = try integer(table, "max_queue_bytes", at: path, range: 1...Int.max, unit: " of bytes") {
            result.maxQueueBytes = cap
        }
        result.authToken = try string(table, "auth_token", at: path)
        if let databasePath = try string(table, "database_path", at: path) {
            guard !databasePath.isEmpty else {
                throw error("\(path).database_path", expected: "a file path", found: "an empty string")
            }
            result.databasePath = databasePath
        }
        if let durability = try choice(table, "durability", at: path, Durability.self) {
            result.durability = durability
        }
        if let timeout = try integer(
            table, "write_through_timeout_ms", at: path, range: 1...3_600_000, unit: " of milliseconds")
        {
            result.writeThroughTimeoutMilliseconds = timeout
        }
        if let fallback = try choice(table, "write_through_fallback", at: path, WriteThroughFallback.self) {
            result.writeThroughFallback = fallback
        }
        if let retention = try integer(
            table, "tombstone_retention_ms", at: path, range: 1...315_360_000_000, unit: " of milliseconds")
        {
            result.tombstoneRetentionMilliseconds = UInt64(retention)
        }
        let rate = try integer(
            table, "bandwidth_bytes_per_second", at: path, range: 0...Int.max, unit: " of bytes a second")
        let burst = try integer(
            table, "bandwidth_burst_bytes", at: path, range: 1...Int.max, unit: " of bytes")
        if let rate, rate > 0 {
            result.bandwidth = BandwidthLimit(bytesPerSecond: rate, burstBytes: burst)
        } else if burst != nil && rate == nil {
            throw error(
                "\(path).bandwidth_burst_bytes", expected: "bandwidth_bytes_per_second alongside it",
                found: "a burst without a rate")
        }
        if let collections = try self.table(table, "collections", at: path) {
            for name in collections.keys {
                let collectionPath = "\(path).collections.\(name)"
                guard (try? CollectionName(name)) != nil else {
                    throw error(
                        collectionPath, expected: "a collection name of A–Z, a–z, 0–9, '_', '-' or '.'",
                        found: name.debugDescription)
                }
                guard let entry = try self.table(collections, name, at: "\(path).collections") else {
                    continue
                }
                try checkKeys(
                    entry, at: collectionPath,
                    allowed: ["conflict_resolution", "resolver", "fields", "mode", "indexes", "set_indexes"])
                if let mode = try choice(entry, "mode", at: collectionPath, SyncMode.self) {
                    result.collectionModes[name] = mode
                }
                let indexes =
                    try paths(entry, "indexes", at: collectionPath).map(IndexedField.value)
                    + paths(entry, "set_indexes", at: collectionPath).map(IndexedField.members)
                if !indexes.isEmpty { result.collectionIndexes[name] = indexes }
                let declaresPolicy =
                    try string(entry, "conflict_resolution", at: collectionPath) != nil
                    || entry.contains(key: "fields")
                if !declaresPolicy && (result.collectionModes[name] != nil || !indexes.isEmpty) { continue }
                if let fields = try self.table(entry, "fields", at: collectionPath) {
                    result.collections[name] = try fieldRules(entry, fields, at: collectionPath)
                    continue
                }
                guard let policy = try policy(entry, at: collectionPath) else {
                    throw error(
                        "\(collectionPath).conflict_resolution", expected: "a policy for the collection",
                        found: "none")
                }
                result.collections[name] = policy
            }
        }
        return result
    }

    func server(_ table: TOMLTable) throws(ConfigurationError) -> ServerConfiguration {
        let path = "server"
        try checkKeys(
            table, at: path,
            allowed: [
                "listen", "store_path", "store_url", "tokens", "limits", "tombstone_retention_ms", "views",
                "jwt", "tls_certificate", "tls_key",
                "channels",
            ])
        var result = ServerConfiguration()
        if let retention = try integer(
            table, "tombstone_retention_ms", at: path, range: 1...315_360_000_000, unit: " of milliseconds")
        {
            result.tombstoneRetentionMilliseconds = UInt64(retention)
        }
        if let listen = try string(table, "listen", at: path) {
            let parts = listen.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, let port = Int(parts[1]), (1...65_535).contains(port)
            else {
                throw error(
                    "\(path).listen", expected: "host:port with a port from 1 to 65535",
                    found: listen.debugDescription)
            }
            result.host = String(parts[0])
            result.port = port
        }
        if let store = try string(table, "store_path", at: path) { result.storePath = store }
        if let text = try string(table, "store_url", at: path) {
            guard case .postgres(let url)? = try? RemoteEndpoint.parse(text) else {
                throw error(
                    "\(path).store_url", expected: "a postgres://user:password@host:port/database URL",
                    found: "a value that is not one")
            }
            result.storeURL = url
        }
        if let limits = try self.table(table, "limits", at: path) {
            let limitsPath = "\(path).limits"
            try checkKeys(
                limits, at: limitsPath,
                allowed: [
                    "max_request_bytes", "max_decompressed_bytes", "max_changes_per_batch",
                    "max_document_bytes", "max_clock_skew_ms",
                    "max_long_poll_ms", "header_timeout_ms", "idle_timeout_ms",
                ])
            if let value = try integer(limits, "max_request_bytes", at: limitsPath, range: 1...Int.max) {
                result.limits.maxRequestBytes = value
            }
            if let value = try integer(limits, "max_decompressed_bytes", at: limitsPath, range: 1...Int.max) {
                result.limits.maxDecompressedBytes = value
            }
            if let value = try integer(limits, "max_changes_per_batch", at: limitsPath, range: 1...1_000_000)
            {
                result.limits.maxChangesPerBatch = value
            }
            if let value = try integer(limits, "max_document_bytes", at: limitsPath, range: 1...Int.max) {
                result.limits.maxDocumentBytes = value
            }
            if let value = try integer(limits, "max_clock_skew_ms", at: limitsPath, range: 1...86_400_000) {
                result.limits.maxClockSkewMilliseconds = value
            }
            if let value = try integer(limits, "max_long_poll_ms", at: limitsPath, range: 0...3_600_000) {
                result.limits.maxLongPollMilliseconds = value
            }
            if let value = try integer(limits, "header_timeout_ms", at: limitsPath, range: 100...3_600_000) {
                result.limits.headerTimeoutMilliseconds = value
            }
            if let value = try integer(limits, "idle_timeout_ms", at: limitsPath, range: 100...86_400_000) {
                result.limits.idleTimeoutMilliseconds = value
            }
        }
        if let views = try self.table(table, "views", at: path) {
            for name in views.keys.sorted() {
                let viewPath = "\(path).views.\(name)"
                guard let entry = try self.table(views, name, at: "\(path).views") else { continue }
                var columns = [CollectionView.Column]()
                for field in entry.keys.sorted() {
                    guard let type = try choice(entry, field, at: viewPath, CollectionView.ColumnType.self)
                    else { continue }
                    columns.append(CollectionView.Column(path: FieldPath(field), type: type))
                }
                do {
                    result.views.append(
                        try CollectionView(collection: try CollectionName(name), columns: columns))
                } catch {
                    throw self.error(
                        viewPath, expected: "a view of a collection's fields", found: error.message)
                }
            }
        }
        if let jwt = try self.table(table, "jwt", at: path) {
            result.jwt = try self.jwt(jwt, at: "\(path).jwt")
        }
        if let channels = try self.table(table, "channels", at: path) {
            for name in channels.keys.sorted() {
                guard let collection = try? CollectionName(name) else {
                    throw error(
                        "\(path).channels", expected: "a collection name of A–Z, a–z, 0–9, '_', '-' or '.'",
                        found: name.debugDescription)
                }
                result.channels.collections[collection] =
                    try channelTemplates(channels, name, at: "\(path).channels", placeholders: true) ?? []
            }
        }
        result.tlsCertificateFile = try string(table, "tls_certificate", at: path)
        result.tlsKeyFile = try string(table, "tls_key", at: path)
        guard (result.tlsCertificateFile == nil) == (result.tlsKeyFile == nil) else {
            throw error(
                "\(path).tls_key", expected: "tls_certificate and tls_key together", found: "only one of them"
            )
        }
        if let tokens = table["tokens"] {
            guard let array = tokens.array else {
                throw error(
                    "\(path).tokens", expected: "an array of tables ([[server.tokens]])",
                    found: describe(tokens))
            }
            for (index, element) in array.enumerated() {
                let tokenPath = "\(path).tokens[\(index)]"
                guard let entry = element.table else {
                    throw error(tokenPath, expected: "a table", found: describe(element))
                }
                try checkKeys(
                    entry, at: tokenPath,
                    allowed: ["token", "databases", "access", "scopes", "read_channels", "write_channels"])
                guard let secret = try string(entry, "token", at: tokenPath), secret.utf8.count >= 16 else {
                    throw error(
                        "\(tokenPath).token", expected: "a token of at least 16 characters",
                        found: "none or a shorter one")
                }
                guard let databases = entry["databases"]?.array else {
                    throw error(
                        "\(tokenPath).databases", expected: "an array of database names", found: "none")
                }
                var names = [String]()
                for database in databases {
                    guard let name = database.string, DatabaseName.isValid(name) else {
                        throw error(
                            "\(tokenPath).databases", expected: "database names of A–Z, a–z, 0–9, '_' or '-'",
                            found: describe(database))
                    }
                    names.append(name)
                }
                let access = try choice(entry, "access", at: tokenPath, ServerToken.Access.self) ?? .readWrite
                let scopes = try self.scopes(entry, at: tokenPath) ?? [.sync]
                let channels = try grantTemplates(entry, at: tokenPath, placeholders: false)
                result.tokens.append(
                    ServerToken(
                        token: secret, databases: names, access: access, scopes: scopes, channels: channels))
            }
        }
        return result
    }

    func jwt(_ table: TOMLTable, at path: String) throws(ConfigurationError) -> JWTConfiguration {
        try checkKeys(
            table, at: path,
            allowed: [
                "keys", "jwks_file", "issuer", "audience", "databases", "databases_claim", "access", "scopes",
                "leeway_ms", "read_channels",
                "write_channels",
            ])
        var result = JWTConfiguration()
        result.issuer = try string(table, "issuer", at: path)
        if let audience = table["audience"] {
            if let one = audience.string {
                result.audiences = [one]
            } else if let many = audience.array, !many.isEmpty, many.allSatisfy({ $0.string != nil }) {
                result.audiences = many.compactMap(\.string)
            } else {
                throw error(
                    "\(path).audience", expected: "a string or an array of strings", found: describe(audience)
                )
            }
        }
        if let databases = table["databases"] {
            guard let array = databases.array else {
                throw error(
                    "\(path).databases", expected: "an array of database names", found: describe(databases))
            }
            for database in array {
                guard let name = database.string, DatabaseName.isValid(name) else {
                    throw error(
                        "\(path).databases", expected: "database names of A–Z, a–z, 0–9, '_' or '-'",
                        found: describe(database))
                }
                result.databases.append(name)
            }
        }
        result.databasesClaim = try string(table, "databases_claim", at: path)
        guard !result.databases.isEmpty || result.databasesClaim != nil else {
            throw error(
                "\(path).databases", expected: "the databases tokens open, or a databases_claim naming them",
                found: "neither")
        }
        result.access = try choice(table, "access", at: path, ServerToken.Access.self) ?? .readWrite
        if let scopes = try self.scopes(table, at: path) { result.scopes = scopes }
        result.channels = try grantTemplates(table, at: path, placeholders: true)
        if let leeway = try integer(
            table, "leeway_ms", at: path, range: 0...3_600_000, unit: " of milliseconds")
        {
            result.leewayMilliseconds = leeway
        }
        result.jwksFile = try string(table, "jwks_file", at: path)
        if let keys = table["keys"] {
            guard let array = keys.array else {
                throw error(
                    "\(path).keys", expected: "an array of tables ([[server.jwt.keys]])",
                    found: describe(keys))
            }
            for (index, element) in array.enumerated() {
                let keyPath = "\(path).keys[\(index)]"
                guard let entry = element.table else {
                    throw error(keyPath, expected: "a table", found: describe(element))
                }
                try checkKeys(
                    entry, at: keyPath, allowed: ["kid", "algorithm", "secret_env", "public_key_file"])
                guard
                    let algorithm = try choice(
                        entry, "algorithm", at: keyPath, JWTConfiguration.Key.Algorithm.self)
                else {
                    throw error("\(keyPath).algorithm", expected: "an algorithm", found: "none")
                }
                let key = JWTConfiguration.Key(
                    kid: try string(entry, "kid", at: keyPath), algorithm: algorithm,
                    secretVariable: try string(entry, "secret_env", at: keyPath),
                    publicKeyFile: try string(entry, "public_key_file", at: keyPath))
                let hmac = algorithm.rawValue.hasPrefix("HS")
                guard
                    hmac
                        ? key.secretVariable != nil && key.publicKeyFile == nil
                        : key.publicKeyFile != nil && key.secretVariable == nil
                else {
                    throw error(
                        keyPath,
                        expected: hmac
                            ? "secret_env (the variable holding the secret), for an HMAC key"
                            : "public_key_file, for an RSA or ECDSA key",
                        found: "another combination")
                }
                result.keys.append(key)
            }
        }
        guard !result.keys.isEmpty || result.jwksFile != nil else {
            throw error("\(path).keys", expected: "at least one key, or a jwks_file", found: "none")
        }
        return result
    }

    /// `read_channels` and `write_channels` of a token or of `[server.jwt]` (every channel when
    /// absent).
    func grantTemplates(_ table: TOMLTable, at path: String, placeholders: Bool) throws(ConfigurationError)
        -> ChannelGrantTemplates
    {
        ChannelGrantTemplates(
            read: try channelTemplates(table, "read_channels", at: path, placeholders: placeholders) ?? [
                .wildcard
            ],
            write: try channelTemplates(table, "write_channels", at: path, placeholders: placeholders) ?? [
                .wildcard
            ])
    }

    /// An array of channel names, with at most one `{path}` placeholder each where
    /// `placeholders` allows; `nil` when the key is absent.
    func channelTemplates(_ table: TOMLTable, _ key: String, at path: String, placeholders: Bool)
        throws(ConfigurationError) -> [ChannelTemplate]?
    {
        guard let listed = table[key] else { return nil }
        let expected =
            placeholders
            ? "an array of channel names (1–200 bytes), each with at most one {path} placeholder"
            : "an array of channel names (1–200 bytes, no braces)"
        guard let array = listed.array else {
            throw error("\(path).\(key)", expected: expected, found: describe(listed))
        }
        var templates = [ChannelTemplate]()
        for element in array {
            guard let text = element.string, let template = ChannelTemplate(text),
                placeholders || template.path == nil
            else {
                throw error("\(path).\(key)", expected: expected, found: describe(element))
            }
            templates.append(template)
        }
        return templates
    }

    /// The `scopes` of a token or of `[server.jwt]`: a non-empty array of scope names, or `nil`
    /// when absent.
    func scopes(_ table: TOMLTable, at path: String) throws(ConfigurationError) -> Set<ServerToken.Scope>? {
        guard let listed = table["scopes"] else { return nil }
        let expected =
            "an array of \(ServerToken.Scope.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))"
        guard let array = listed.array, !array.isEmpty else {
            throw error("\(path).scopes", expected: expected, found: describe(listed))
        }
        var scopes = Set<ServerToken.Scope>()
        for element in array {
            guard let name = element.string, let scope = ServerToken.Scope(rawValue: name) else {
                throw error("\(path).scopes", expected: expected, found: describe(element))
            }
            scopes.insert(scope)
        }
        return scopes
    }
}
