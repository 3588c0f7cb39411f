import AsyncHTTPClient
import Foundation
import JWTKit
import NIOCore
import NIOHTTP1
import Synchronization
import Testing
import Weft
import WeftCRDT
import WeftHTTP
import WeftServer
import WeftWire

#if canImport(Glibc)
    import Glibc
#endif

/// JSON Web Tokens from the app's own auth provider, signed in the test with keys generated in
/// the test, against a real server on loopback.
@Suite("JWT authentication", .serialized)
struct JWTTests {
    /// A payload of any claims.
    struct Claims: JWTPayload {
        var claims: [String: JSONValue]
        init(_ claims: [String: JSONValue]) { self.claims = claims }
        init(from decoder: any Decoder) throws {
            claims = try decoder.singleValueContainer().decode([String: JSONValue].self)
        }
        func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            try container.encode(claims)
        }
        func verify(using algorithm: some JWTAlgorithm) throws {}
    }

    static let secretVariable = "WEFT_TEST_JWT_SECRET"
    static let secret = "a-shared-secret-of-at-least-32-bytes-0123456789"
    static let oldSecretVariable = "WEFT_TEST_JWT_OLD_SECRET"
    static let oldSecret = "the-previous-secret-still-accepted-0123456789"

    /// The keys the auth provider signs with, and the server's configuration that accepts them.
    struct Provider {
        let signers: JWTKeyCollection
        let configuration: JWTConfiguration

        static func make(_ directory: TemporaryDirectory) async throws -> Provider {
            setenv(JWTTests.secretVariable, JWTTests.secret, 1)
            setenv(JWTTests.oldSecretVariable, JWTTests.oldSecret, 1)
            let signers = JWTKeyCollection()
            await signers.add(hmac: HMACKey(from: JWTTests.secret), digestAlgorithm: .sha256, kid: "h2")
            await signers.add(hmac: HMACKey(from: JWTTests.oldSecret), digestAlgorithm: .sha256, kid: "h1")
            // ECDSA: the public key in a PEM file.
            let ecdsa = ES256PrivateKey()
            await signers.add(ecdsa: ecdsa, kid: "e1")
            let ecdsaFile = directory.path("e1.pem")
            try ecdsa.publicKey.pemRepresentation.write(toFile: ecdsaFile, atomically: true, encoding: .utf8)
            // RSA: a key made by openssl, its public half in a PEM file.
            let rsaFile = directory.path("r1.pem")
            let rsaPublicFile = directory.path("r1.pub.pem")
            let openssl = URL(fileURLWithPath: "/usr/bin/openssl")
            #expect(
                try await runProcessDetached(
                    openssl,
                    ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", rsaFile]
                ).status == 0)
            #expect(
                try await runProcessDetached(
                    openssl, ["pkey", "-in", rsaFile, "-pubout", "-out", rsaPublicFile]
                ).status == 0)
            await signers.add(
                rsa: try Insecure.RSA.PrivateKey(pem: try String(contentsOfFile: rsaFile, encoding: .utf8)),
                digestAlgorithm: .sha256, kid: "r1")
            // A key published in a JWKS file.
            let published = ES256PrivateKey()
            await signers.add(ecdsa: published, kid: "k1")
            let parameters = try #require(published.publicKey.parameters)
            let jwksFile = directory.path("jwks.json")
            try
                #"{"keys":[{"kty":"EC","crv":"P-256","alg":"ES256","use":"sig","kid":"k1","x":"\#(parameters.x)","y":"\#(parameters.y)"}]}"#
                .write(toFile: jwksFile, atomically: true, encoding: .utf8)

            var configuration = JWTConfiguration()
            configuration.keys = [
                .init(kid: "h2", algorithm: .hs256, secretVariable: JWTTests.secretVariable),
                .init(kid: "h1", algorithm: .hs256, secretVariable: JWTTests.oldSecretVariable),
                .init(kid: "e1", algorithm: .es256, publicKeyFile: ecdsaFile),
                .init(kid: "r1", algorithm: .rs256, publicKeyFile: rsaPublicFile),
            ]
            configuration.jwksFile = jwksFile
            configuration.issuer = "https://auth.example.test/"
            configuration.audiences = ["weft"]
            configuration.databases = ["db", "other"]
            configuration.databasesClaim = "weft_databases"
            configuration.scopes = [.sync, .documents]
            return Provider(signers: signers, configuration: configuration)
        }

        /// A token signed with key `kid`, its claims those of a valid token changed by `change`.
        func token(_ kid: String, _ change: (inout [String: JSONValue]) -> Void = { _ in }) async throws
            -> String
        {
            let now = Date().timeIntervalSince1970
            var claims: [String: JSONValue] = [
                "sub": .string("technician-7"), "iss": .string("https://auth.example.test/"),
                "aud": .string("weft"),
                "exp": .int(Int64(now) + 600), "iat": .int(Int64(now)),
                "weft_databases": .array([.string("db")]),
            ]
            change(&claims)
            return try await signers.sign(Claims(claims), kid: JWKIdentifier(string: kid))
        }
    }

    static func server(_ provider: Provider, _ directory: TemporaryDirectory) async throws
        -> RunningStandalone
    {
        var configuration = ServerConfiguration()
        configuration.port = 0
        configuration.jwt = provider.configuration
        configuration.tokens = [
            ServerToken(
                token: "static-service-token-0123456789", databases: ["db"], access: .readWrite,
                scopes: [.documents])
        ]
        let service = SyncService(store: try SQLiteCentralStore(path: directory.path("central.sqlite")))
        return try await RunningStandalone.start(service: service, configuration: configuration)
    }

    /// A server on loopback whose JWTs read `user:{sub}` and `site:{sites}` and write `write`, with
    /// work orders in their assignee's and their site's channels, and the static `tokens`.
    static func channelServer(
        _ directory: TemporaryDirectory, write: [ChannelTemplate], tokens: [ServerToken] = []
    ) async throws
        -> (Provider, SyncService, RunningStandalone)
    {
        let base = try await Provider.make(directory)
        var jwt = base.configuration
        jwt.channels = ChannelGrantTemplates(
            read: [ChannelTemplate("user:{sub}"), ChannelTemplate("site:{sites}")].compactMap { $0 },
            write: write)
        var configuration = ServerConfiguration()
        configuration.port = 0
        configuration.jwt = jwt
        configuration.tokens = tokens
        configuration.channels = ServerChannels([
            try CollectionName("orders"): [
                ChannelTemplate("user:{assignee}"), ChannelTemplate("site:{site}"),
            ].compactMap { $0 }
        ])
        let service = SyncService(
            store: try SQLiteCentralStore(path: directory.path("central.sqlite")),
            configuration: configuration)
        let server = try await RunningStandalone.start(service: service, configuration: configuration)
        return (Provider(signers: base.signers, configuration: jwt), service, server)
    }

    /// The status of `GET /v1/{database}/documents/orders/x` with `token`, and the error's sentence.
    static func status(_ server: RunningStandalone, _ token: String, database: String = "db") async throws
        -> (Int, String)
    {
        var request = HTTPClientRequest(
            url: "http://127.0.0.1:\(server.port)/v1/\(database)/documents/orders/x")
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(120))
        let body = String(buffer: try await response.body.collect(upTo: 1 << 16))
        return (Int(response.status.code), body)
    }

    @Test(
        "Tokens signed with each kind of key are accepted: HMAC (two, for rotation), ECDSA and RSA PEM files, a JWKS file; static tokens too"
    )
    func everyKeyIsAccepted() async throws {
        let directory = TemporaryDirectory()
        let provider = try await Provider.make(directory)
        let server = try await Self.server(provider, directory)
        for kid in ["h2", "h1", "e1", "r1", "k1"] {
            let (status, body) = try await Self.status(server, try await provider.token(kid))
            #expect(status == 404, "key \(kid): \(status) \(body)")
        }
        #expect(try await Self.status(server, "static-service-token-0123456789").0 == 404)
        // Replication with a JWT: hello, push and pull.
        let replica = try await Replica(
            storage: MemoryReplicaStorage(), configuration: ReplicaConfiguration())
        try await replica.collection("orders").create("x") { $0.set("status", to: .string("open")) }
        let transport = HTTPTransport(
            baseURL: "http://127.0.0.1:\(server.port)", database: "db", token: try await provider.token("e1"))
        _ = try await SyncEngine(replica: replica, transport: transport).syncOnce()
        #expect(try await Self.status(server, try await provider.token("r1")).0 == 200)
        await server.stop()
    }

    @Test(
        "Expired, not yet valid, wrong audience or issuer, unsigned, tampered or unknown-key tokens are 401 with a reason that names no key"
    )
    func badTokensAreRefused() async throws {
        let directory = TemporaryDirectory()
        let provider = try await Provider.make(directory)
        let server = try await Self.server(provider, directory)
        let now = Int64(Date().timeIntervalSince1970)
        let cases: [(String, String, String)] = [
            ("expired", try await provider.token("h2") { $0["exp"] = .int(now - 3_600) }, "expired"),
            ("no expiry", try await provider.token("h2") { $0["exp"] = nil }, "expiry"),
            (
                "not yet valid", try await provider.token("e1") { $0["nbf"] = .int(now + 3_600) },
                "not valid yet"
            ),
            (
                "wrong audience", try await provider.token("r1") { $0["aud"] = .array([.string("billing")]) },
                "audience"
            ),
            (
                "wrong issuer",
                try await provider.token("k1") { $0["iss"] = .string("https://evil.example/") }, "issuer"
            ),
            ("no subject", try await provider.token("h2") { $0["sub"] = nil }, "subject"),
        ]
        for (name, token, reason) in cases {
            let (status, body) = try await Self.status(server, token)
            #expect(status == 401 && body.contains(reason), "\(name): \(status) \(body)")
        }
        // Within the leeway (60 s), an expiry just past is accepted.
        #expect(
            try await Self.status(server, try await provider.token("h2") { $0["exp"] = .int(now - 20) }).0
                == 404)

        // Signatures: another secret under a known kid, a changed payload, an unknown kid, no signature.
        let stranger = JWTKeyCollection()
        await stranger.add(
            hmac: HMACKey(from: "not-the-secret-of-this-server-0123456789"), digestAlgorithm: .sha256,
            kid: "h2")
        let forged = try await stranger.sign(
            Claims(["sub": .string("x"), "exp": .int(now + 600), "aud": .string("weft")]), kid: "h2")
        await stranger.add(
            hmac: HMACKey(from: "not-the-secret-of-this-server-0123456789"), digestAlgorithm: .sha256,
            kid: "nobody")
        let unknownKid = try await stranger.sign(
            Claims(["sub": .string("x"), "exp": .int(now + 600)]), kid: "nobody")
        let valid = try await provider.token("e1")
        let parts = valid.split(separator: ".").map(String.init)
        let otherPayload = try await provider.token("e1") {
            $0["weft_databases"] = .array([.string("db"), .string("other")])
        }
        let tampered = [parts[0], otherPayload.split(separator: ".").map(String.init)[1], parts[2]].joined(
            separator: ".")
        // An ECDSA token relabelled as the HMAC key's: the HMAC key does not verify it.
        let header = Data(#"{"alg":"HS256","kid":"h2","typ":"JWT"}"#.utf8).base64EncodedString()
            .replacingOccurrences(of: "=", with: "").replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
        let relabelled = [header, parts[1], parts[2]].joined(separator: ".")
        let none =
            Data(#"{"alg":"none","typ":"JWT"}"#.utf8).base64EncodedString().replacingOccurrences(
                of: "=", with: "") + "." + parts[1] + "."
        for (name, token) in [
            ("forged", forged), ("unknown kid", unknownKid), ("tampered", tampered),
            ("relabelled", relabelled), ("unsigned", none),
        ] {
            let (status, body) = try await Self.status(server, token)
            #expect(status == 401 && body.contains("signature"), "\(name): \(status) \(body)")
            #expect(
                !body.contains("h2") && !body.contains("e1") && !body.contains(Self.secret),
                "\(name): the reason names no key")
        }
        await server.stop()
    }

    @Test(
        "A token opens the databases its claim lists among those configured, with the configured access and scopes"
    )
    func claimsMapToDatabases() async throws {
        let directory = TemporaryDirectory()
        let provider = try await Provider.make(directory)
        let server = try await Self.server(provider, directory)
        #expect(try await Self.status(server, try await provider.token("h2"), database: "other").0 == 403)
        let both = try await provider.token("h2") {
            $0["weft_databases"] = .array([.string("db"), .string("other"), .string("secret")])
        }
        #expect(try await Self.status(server, both, database: "other").0 == 404)
        #expect(try await Self.status(server, both, database: "secret").0 == 403)
        let one = try await provider.token("h2") { $0["weft_databases"] = .string("other") }
        #expect(try await Self.status(server, one, database: "other").0 == 404)
        #expect(try await Self.status(server, one, database: "db").0 == 403)
        let none = try await provider.token("h2") { $0["weft_databases"] = nil }
        #expect(try await Self.status(server, none).0 == 403)
        await server.stop()
    }

    @Test(
        "[server.jwt] parses, and a configuration whose keys cannot be loaded is refused with the key named")
    func configuration() async throws {
        let parsed = try WeftConfiguration.parse(
            """
            [server.jwt]
            issuer = "https://auth.example.test/"
            audience = ["weft", "weft-staging"]
            databases_claim = "weft_databases"
            scopes = ["sync"]
            leeway_ms = 5000
            jwks_file = "/etc/weft/jwks.json"
            [[server.jwt.keys]]
            kid = "2026-12"
            algorithm = "HS256"
            secret_env = "WEFT_JWT_SECRET"
            [[server.jwt.keys]]
            algorithm = "ES256"
            public_key_file = "/etc/weft/es256.pem"
            """)
        let jwt = try #require(parsed.server?.jwt)
        #expect(
            jwt.audiences == ["weft", "weft-staging"] && jwt.databasesClaim == "weft_databases"
                && jwt.leewayMilliseconds == 5_000)
        #expect(jwt.keys.map(\.algorithm) == [.hs256, .es256] && jwt.keys.first?.kid == "2026-12")
        for bad in [
            "[server.jwt]\ndatabases = [\"db\"]",
            "[server.jwt]\ndatabases = [\"db\"]\n[[server.jwt.keys]]\nalgorithm = \"HS256\"\npublic_key_file = \"k.pem\"",
            "[server.jwt]\n[[server.jwt.keys]]\nalgorithm = \"HS256\"\nsecret_env = \"S\"",
            "[server.jwt]\ndatabases = [\"db\"]\n[[server.jwt.keys]]\nalgorithm = \"XX1\"\nsecret_env = \"S\"",
        ] {
            #expect(throws: ConfigurationError.self, "\(bad)") { try WeftConfiguration.parse(bad) }
        }
        var missing = JWTConfiguration()
        missing.databases = ["db"]
        missing.keys = [.init(kid: "h", algorithm: .hs256, secretVariable: "WEFT_TEST_NO_SUCH_VARIABLE")]
        await #expect(throws: ConfigurationError.self) {
            _ = try await JWTAuthenticator.make(missing, environment: [:])
        }
        missing.keys = [.init(kid: "e", algorithm: .es256, publicKeyFile: "/nonexistent/key.pem")]
        await #expect(throws: ConfigurationError.self) { _ = try await JWTAuthenticator.make(missing) }
    }

    @Test(
        "A technician's JWT claims give its channels: it pulls its own and its sites' orders over HTTP, writes only its own; an older client is refused; a new token without a site takes that site's orders away"
    )
    func claimsGiveChannels() async throws {
        let directory = TemporaryDirectory()
        let dispatchToken = "static-dispatch-token-0123456789"
        let (provider, service, server) = try await Self.channelServer(
            directory, write: [ChannelTemplate("user:{sub}")].compactMap { $0 },
            tokens: [
                ServerToken(
                    token: dispatchToken, databases: ["db"], access: .readWrite, scopes: [.sync, .documents])
            ])
        let base = "http://127.0.0.1:\(server.port)"

        let dispatch = try await Replica(storage: MemoryReplicaStorage())
        let orders = try dispatch.collection("orders")
        for (id, assignee, site) in [
            ("a", "technician-7", "south"), ("b", "technician-8", "north"), ("c", "technician-8", "south"),
        ] {
            try await orders.create(id) { editor in
                editor.set("assignee", to: .string(assignee))
                editor.set("site", to: .string(site))
            }
        }
        _ = try await SyncEngine(
            replica: dispatch, transport: HTTPTransport(baseURL: base, database: "db", token: dispatchToken)
        ).syncOnce()

        let technician = try await Replica(storage: MemoryReplicaStorage())
        let withNorth = try await provider.token("e1") { $0["sites"] = .array([.string("north")]) }
        let engine = SyncEngine(
            replica: technician, transport: HTTPTransport(baseURL: base, database: "db", token: withNorth))
        _ = try await engine.syncOnce()
        var held = Set<String>()
        for try await document in try technician.collection("orders").documents() {
            held.insert(document.id.rawValue)
        }
        #expect(held == ["a", "b"])
        // Writing its own order is taken; one of another technician's is refused and set aside.
        try await technician.collection("orders").update("a") { $0.set("status", to: .string("done")) }
        try await technician.collection("orders").update("b") { $0.set("status", to: .string("done")) }
        _ = try await engine.syncOnce()
        #expect(
            try await service.store.record(database: "db", key: key("orders", "a"))?.body.scalar("status")
                == .string("done"))
        #expect(
            try await service.store.record(database: "db", key: key("orders", "b"))?.body.scalar("status")
                == nil)
        #expect(try await technician.deadLetters().map(\.key.id.rawValue) == ["b"])
        #expect(
            try await technician.collection("orders").get("b")?.scalar("status") == nil,
            "the copy gave way to the server's")

        // A client that cannot take channel pages is refused; the document API is for backends.
        let older = HTTPTransport(baseURL: base, database: "db", token: withNorth)
        await #expect(throws: SyncError.self) {
            _ = try await older.pull(PullRequest(after: 0, replica: ReplicaID(high: 9, low: 9)))
        }
        #expect(try await Self.status(server, withNorth).0 == 403)

        // The auth provider's next token no longer lists the north site.
        let withoutNorth = try await provider.token("e1")
        _ = try await SyncEngine(
            replica: technician, transport: HTTPTransport(baseURL: base, database: "db", token: withoutNorth)
        ).syncOnce()
        held = []
        for try await document in try technician.collection("orders").documents() {
            held.insert(document.id.rawValue)
        }
        #expect(held == ["a"])
        #expect(try await service.store.record(database: "db", key: key("orders", "b"))?.isDeleted == false)
        await server.stop()
    }

    @Test(
        "Grants added and removed during a live sync: the transport's token source hands out new tokens, and the replica follows them"
    )
    func grantsChangeDuringALiveSync() async throws {
        let directory = TemporaryDirectory()
        let (provider, service, server) = try await Self.channelServer(directory, write: [.wildcard])
        let base = "http://127.0.0.1:\(server.port)"
        let dispatch = SyncEngine(
            replica: try await Replica(storage: MemoryReplicaStorage()),
            transport: HTTPTransport(
                baseURL: base, database: "db",
                token: try await provider.token("h2") { $0["sites"] = .string("*") }))
        let current = Mutex(try await provider.token("h2"))
        let technician = try await Replica(storage: MemoryReplicaStorage())
        let engine = SyncEngine(
            replica: technician,
            transport: HTTPTransport(baseURL: base, database: "db", tokenSource: { current.withLock { $0 } }))
        let changes = await technician.changes()
        let loop = Task { await engine.runWriteBehind(every: .seconds(3_600), clock: ContinuousClock()) }
        let mine = key("orders", "mine")
        let north = key("orders", "north")
        func next(_ key: DocumentKey, deleted: Bool) async -> Bool {
            await withTaskGroup(of: Bool.self) { group in
                group.addTask {
                    for await change in changes
                    where change.key == key && change.origin == .remote && change.isDeleted == deleted {
                        return true
                    }
                    return false
                }
                group.addTask {
                    try? await Task.sleep(for: .seconds(60))
                    return false
                }
                let first = await group.next() ?? false
                group.cancelAll()
                return first
            }
        }
        func waitingPull() async throws -> Bool {
            for _ in 0..<12_000 {
                if await service.waitingPulls > 0 { return true }
                try await Task.sleep(for: .milliseconds(5))
            }
            return false
        }
        #expect(try await waitingPull(), "no live pull waits on the server")
        // An order for this technician arrives live; one for the north site does not.
        let orders = try dispatch.replica.collection("orders")
        try await orders.create("mine") { $0.set("assignee", to: .string("technician-7")) }
        try await orders.create("north") { editor in
            editor.set("assignee", to: .string("technician-8"))
            editor.set("site", to: .string("north"))
        }
        async let arrived = next(mine, deleted: false)
        _ = try await dispatch.syncOnce()
        #expect(await arrived)
        #expect(try await technician.collection("orders").get("north") == nil)
        // The auth provider adds the north site; the app wakes the live sync.
        let withNorth = try await provider.token("h2") { $0["sites"] = .array([.string("north")]) }
        current.withLock { $0 = withNorth }
        async let gained = next(north, deleted: false)
        engine.requestSync()
        #expect(await gained, "the north order did not arrive when the grant was added")
        // And takes it away again: the order leaves this replica, not the server.
        let withoutNorth = try await provider.token("h2")
        current.withLock { $0 = withoutNorth }
        async let lost = next(north, deleted: true)
        engine.requestSync()
        #expect(await lost, "the north order stayed when the grant was withdrawn")
        #expect(try await technician.collection("orders").get("north") == nil)
        #expect(try await technician.collection("orders").get("mine") != nil)
        #expect(try await service.store.record(database: "db", key: north)?.isDeleted == false)
        loop.cancel()
        await loop.value
        await server.stop()
    }
}
