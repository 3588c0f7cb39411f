import Foundation
import Testing
import Weft

@Suite("Configuration")
struct ConfigurationTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/config")

    @Test func theReplicaExampleLoads() throws {
        let configuration = try WeftConfiguration.load(
            path: Self.fixtures.appendingPathComponent("replica.toml").path)
        let persistence = configuration.persistence
        guard case .http(let url, let database)? = persistence.remoteEndpoint else {
            Issue.record("expected an http endpoint")
            return
        }
        #expect(url.absoluteString == "http://127.0.0.1:20000/mydb" && database == "mydb")
        #expect(persistence.mode == .writeBehind && persistence.syncIntervalMilliseconds == 5_000)
        #expect(persistence.conflictResolution == .lastWriterWins && persistence.maxQueueBytes == 104_857_600)
        #expect(
            persistence.authToken == "replica-token-0123456789"
                && persistence.databasePath == "field-app.sqlite")
        #expect(persistence.durability == .full)
        #expect(persistence.policy(for: "inventory") == .custom(resolver: "inventoryLevels"))
        #expect(persistence.policy(for: "readings") == .crdt)
        #expect(persistence.policy(for: "anything") == .lastWriterWins)
        #expect(persistence.replicaConfiguration.maxQueueBytes == 104_857_600)
        #expect(configuration.server == nil)
        #expect(
            persistence.replicaConfiguration.tombstoneRetentionMilliseconds
                == TombstoneRetention.defaultMilliseconds)
    }

    /// The example configurations work together: every replica config that names a Standalone
    /// server names a database the server config grants to its token, for reading and writing.
    @Test func theExampleConfigurationsWorkTogether() throws {
        let server = try #require(
            try WeftConfiguration.load(path: Self.fixtures.appendingPathComponent("server.toml").path).server)
        var checked = 0
        for name in try FileManager.default.contentsOfDirectory(atPath: Self.fixtures.path).sorted()
        where name.hasSuffix(".toml") {
            let configuration = try WeftConfiguration.load(
                path: Self.fixtures.appendingPathComponent(name).path)
            guard case .http(let url, let database)? = configuration.persistence.remoteEndpoint else {
                continue
            }
            #expect(
                url.port == server.port,
                "\(name) names port \(url.port ?? 0), the server listens on \(server.port)")
            let token = configuration.persistence.authToken
            let grant = server.tokens.first { $0.token == token }
            #expect(grant != nil, "\(name)'s auth_token is not one the server knows")
            #expect(
                grant?.databases.contains(database) == true,
                "\(name) syncs \(database), which its token does not cover")
            #expect(grant?.access == .readWrite, "\(name)'s token cannot write")
            checked += 1
        }
        #expect(checked == 3)
    }

    @Test func theTombstoneRetentionIsRead() throws {
        let configuration = try WeftConfiguration.parse(
            "[persistence]\ntombstone_retention_ms = 86400000\n", file: "test.toml")
        #expect(configuration.persistence.replicaConfiguration.tombstoneRetentionMilliseconds == 86_400_000)
    }

    @Test func aPostgresEndpointIsKeptAsWritten() throws {
        let configuration = try WeftConfiguration.load(
            path: Self.fixtures.appendingPathComponent("postgres.toml").path)
        guard case .postgres(let url)? = configuration.persistence.remoteEndpoint else {
            Issue.record("expected a postgres endpoint")
            return
        }
        #expect(url.absoluteString == "postgres://weft:secret@127.0.0.1:5432/weft")
        #expect(
            configuration.persistence.remoteEndpoint?.description.contains("secret") == false,
            "the password is never printed")
        #expect(configuration.persistence.mode == .writeThrough)
    }

    @Test func theServerExampleLoads() throws {
        let server = try #require(
            try WeftConfiguration.load(path: Self.fixtures.appendingPathComponent("server.toml").path).server)
        #expect(
            server.host == "127.0.0.1" && server.port == 20_000 && server.storePath == "standalone.sqlite")
        #expect(server.limits.maxChangesPerBatch == 10_000 && server.limits.maxDocumentBytes == 1_048_576)
        #expect(server.tokens.count == 2)
        #expect(server.tokens[1].databases == ["mydb", "analytics"] && server.tokens[1].access == .read)
        #expect(server.tombstoneRetentionMilliseconds == 2_592_000_000)
        let offline = try WeftConfiguration.load(
            path: Self.fixtures.appendingPathComponent("offline.toml").path
        ).persistence
        #expect(offline.replicaConfiguration.tombstoneRetentionMilliseconds == 7_776_000_000)
    }

    /// Each bad configuration names the key, what was expected and the line.
    @Test(arguments: [
        ("[persistence]\nsync_interval_ms = \"fast\"\n", "persistence.sync_interval_ms", "an integer", 2),
        ("[persistence]\nmode = \"sometimes\"\n", "persistence.mode", "\"write_through\"", 2),
        ("[persistence]\n\nsync_intervall_ms = 5\n", "persistence.sync_intervall_ms", "one of the keys", 3),
        ("[persistence]\nmax_queue_bytes = -1\n", "persistence.max_queue_bytes", "from 1", 2),
        ("[persistence]\ntombstone_retention_ms = 0\n", "persistence.tombstone_retention_ms", "from 1", 2),
        (
            "[persistence]\nconflict_resolution = \"custom\"\n", "persistence.resolver",
            "registered resolver", 2
        ),
        (
            "[persistence]\nconflict_resolution = \"newest\"\n", "persistence.conflict_resolution", "\"lww\"",
            2
        ),
        (
            "[persistence]\nremote_endpoint = \"ftp://example.com/db\"\n", "persistence.remote_endpoint",
            "http", 2
        ),
        (
            "[persistence]\nremote_endpoint = \"http://127.0.0.1:20000/\"\n", "persistence.remote_endpoint",
            "<database>", 2
        ),
        (
            "[persistence.collections.inventory]\nresolver = \"x\"\n",
            "persistence.collections.inventory.resolver", "conflict_resolution", 2
        ),
        (
            "[persistence.collections.inventory]\nconflict_resolution = \"custom\"\nresolver = \"r\"\npriority = 1\n",
            "persistence.collections.inventory.priority", "one of the keys", 4
        ),
        ("[server]\nlisten = \"localhost\"\n", "server.listen", "host:port", 2),
        (
            "[[server.tokens]]\ntoken = \"short\"\ndatabases = [\"a\"]\n", "server.tokens[0].token",
            "at least 16", 2
        ),
        (
            "[[server.tokens]]\ntoken = \"0123456789abcdefgh\"\ndatabases = [\"bad name\"]\n",
            "server.tokens[0].databases", "database names", 3
        ),
        ("[persistance]\nmode = \"write_behind\"\n", "persistance", "one of the keys", 1),
        ("[persistence\nmode = 1\n", "", "valid TOML", 1),
        (
            "[persistence.collections.orders]\nindexes = \"status\"\n",
            "persistence.collections.orders.indexes", "an array of field paths", 2
        ),
        (
            "[persistence.collections.orders]\nindexes = [1]\n", "persistence.collections.orders.indexes",
            "an array of field paths", 2
        ),
        (
            "[persistence.collections.orders]\nset_indexes = [\"a..b\"]\n",
            "persistence.collections.orders.set_indexes", "field paths", 2
        ),
    ])
    func badConfigurationsAreExplained(_ text: String, _ key: String, _ expected: String, _ line: Int) {
        do {
            _ = try WeftConfiguration.parse(text, file: "test.toml")
            Issue.record("accepted: \(text)")
        } catch {
            #expect(error.key == key, "\(error)")
            #expect(error.expected.contains(expected), "\(error)")
            #expect(error.line == line, "\(error)")
            #expect(error.description.hasPrefix("test.toml, line \(line): "), "\(error)")
        }
    }

    @Test func channelsAndGrantsAreRead() throws {
        let parsed = try WeftConfiguration.parse(
            """
            [persistence]
            channels = ["site:7"]
            [server.channels]
            orders = ["user:{assignee}", "site:{site.id}", "orders"]
            [[server.tokens]]
            token = "a-gateway-token-0123456789"
            databases = ["field"]
            read_channels = ["site:7", "site:8"]
            write_channels = ["site:7"]
            [server.jwt]
            databases = ["field"]
            read_channels = ["user:{sub}", "site:{sites}"]
            write_channels = ["user:{sub}"]
            [[server.jwt.keys]]
            algorithm = "HS256"
            secret_env = "S"
            """, file: "test.toml")
        #expect(parsed.persistence.channels == ["site:7"])
        let server = try #require(parsed.server)
        let templates = try #require(server.channels.collections[try CollectionName("orders")])
        #expect(templates.map(\.description) == ["user:{assignee}", "site:{site.id}", "orders"])
        let projection = JSONValue.object(["assignee": .string("ann"), "site": .object(["id": .int(7)])])
        #expect(
            server.channels.channels(of: try CollectionName("orders"), projection: projection) == [
                "user:ann", "site:7", "orders",
            ])
        #expect(server.tokens.first?.channels.grants(claims: [:]).read == .only(["site:7", "site:8"]))
        let jwt = try #require(server.jwt)
        let grants = jwt.channels.grants(claims: [
            "sub": .string("ann"), "sites": .array([.int(1), .string("x")]),
        ])
        #expect(
            grants.read == .only(["user:ann", "site:1", "site:x"]) && grants.write == .only(["user:ann"]))
        // Without settings, every channel.
        let plain = try WeftConfiguration.parse(
            "[[server.tokens]]\ntoken = \"a-plain-token-0123456789\"\ndatabases = [\"d\"]\n", file: "t.toml")
        #expect(plain.server?.tokens.first?.channels.grants(claims: [:]).read == .all)
        for bad in [
            "[server.channels]\norders = \"user:{assignee}\"",
            "[server.channels]\norders = [\"user:{a}{b}\"]",
            "[server.channels]\norders = [\"user:{}\"]",
            "[server.channels]\norders = [\"user:{a\"]",
            "[server.channels]\norders = [\"\"]",
            "[server.channels]\n\"bad name\" = [\"x\"]",
            "[[server.tokens]]\ntoken = \"a-plain-token-0123456789\"\ndatabases = [\"d\"]\nread_channels = [\"user:{sub}\"]",
            "[persistence]\nchannels = [\"site:{x}\"]",
            "[persistence]\nchannels = [1]",
        ] {
            #expect(throws: ConfigurationError.self, "\(bad)") {
                try WeftConfiguration.parse(bad, file: "t.toml")
            }
        }
    }
}
