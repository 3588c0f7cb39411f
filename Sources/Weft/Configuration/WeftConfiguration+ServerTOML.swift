import Foundation
import TOMLKit
import WeftCRDT

// Reading `[server]`: the Standalone's settings, tokens, JSON Web Tokens and channels.
extension TOMLReader {
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
