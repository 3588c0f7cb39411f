import AsyncHTTPClient
import Foundation
import Testing
import Weft
import WeftHTTP
import WeftServer
import WeftWire

/// HTTPS on loopback with a certificate made in the test: the server speaks only TLS, a client
/// trusts it through `tls_ca_file`, and plain `http://` to another machine needs leave.
@Suite("TLS", .serialized)
struct TLSTests {
    /// A self-signed certificate for 127.0.0.1 and localhost (its own authority), and its key.
    static func certificate(_ directory: TemporaryDirectory) async throws -> (certificate: String, key: String) {
        let certificate = directory.path("server.pem")
        let key = directory.path("server.key")
        let made = try await runProcessDetached(
            URL(fileURLWithPath: "/usr/bin/openssl"),
            [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", certificate,
                "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            ])
        #expect(made.status == 0, "\(made.error)")
        return (certificate, key)
    }

    @Test("The server speaks HTTPS with its certificate; a client trusting its authority syncs, one that does not and plain HTTP get nothing")
    func httpsOnLoopback() async throws {
        let directory = TemporaryDirectory()
        let files = try await Self.certificate(directory)
        var configuration = ServerConfiguration()
        configuration.port = 0
        configuration.tlsCertificateFile = files.certificate
        configuration.tlsKeyFile = files.key
        configuration.tokens = [ServerToken(token: "tls-replica-token-0123456789", databases: ["db"], access: .readWrite)]
        let store = try SQLiteCentralStore(path: directory.path("central.sqlite"))
        let server = try await RunningStandalone.start(service: SyncService(store: store), configuration: configuration)

        let endpoint = try RemoteEndpoint.parse("https://127.0.0.1:\(server.port)/db")
        let client = try HTTPTransport.client(trustingAuthoritiesIn: files.certificate)
        do {
            try await Self.exchanges(endpoint, client, store, server, files)
        } catch {
            try await client.shutdown()
            await server.stop()
            throw error
        }
        try await client.shutdown()

        // `weft sync` with the authority in its configuration.
        let path = directory.path("field.sqlite")
        do {
            let replica = try await Replica.open(path: path)
            try await replica.collection("orders").create("o2") { $0.set("status", to: .string("from the CLI")) }
        }
        let config = directory.path("replica.toml")
        try """
            [persistence]
            remote_endpoint = "https://127.0.0.1:\(server.port)/db"
            auth_token = "tls-replica-token-0123456789"
            database_path = "\(path)"
            tls_ca_file = "\(files.certificate)"
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let sync = try await runProcessDetached(try builtExecutable("weft"), ["sync", "--config", config])
        #expect(sync.status == 0, "\(sync.error)")
        let key = DocumentKey(collection: try CollectionName("orders"), id: try DocumentID("o2"))
        #expect(try await store.record(database: "db", key: key)?.body.string("status") == "from the CLI")
        await server.stop()
    }

    static func exchanges(
        _ endpoint: RemoteEndpoint, _ client: HTTPClient, _ store: SQLiteCentralStore, _ server: RunningStandalone,
        _ files: (certificate: String, key: String)
    ) async throws {
        let replica = try await Replica(storage: MemoryReplicaStorage(), configuration: ReplicaConfiguration())
        try await replica.collection("orders").create("o1") { $0.set("status", to: .string("open")) }
        let trusted = try #require(HTTPTransport(endpoint: endpoint, token: "tls-replica-token-0123456789", client: client))
        _ = try await SyncEngine(replica: replica, transport: trusted).syncOnce()
        let key = DocumentKey(collection: try CollectionName("orders"), id: try DocumentID("o1"))
        #expect(try await store.record(database: "db", key: key)?.body.string("status") == "open")

        // The system's authorities do not vouch for this certificate: nothing is exchanged.
        let untrusted = try #require(HTTPTransport(endpoint: endpoint, token: "tls-replica-token-0123456789"))
        await #expect(throws: SyncError.self) { _ = try await untrusted.pull(PullRequest(after: 0)) }
        // Plain HTTP to the TLS port is not served.
        let plain = HTTPTransport(baseURL: "http://127.0.0.1:\(server.port)", database: "db", token: "tls-replica-token-0123456789")
        await #expect(throws: SyncError.self) { _ = try await plain.pull(PullRequest(after: 0)) }
    }

    @Test("Plain http:// to another machine is refused unless allow_insecure_http says so; certificates and keys are checked as the server starts")
    func configuration() async throws {
        for endpoint in ["http://db.example.com:20000/db", "http://10.0.0.7/db"] {
            #expect(throws: ConfigurationError.self, "\(endpoint)") {
                try WeftConfiguration.parse("[persistence]\nremote_endpoint = \"\(endpoint)\"")
            }
            let allowed = try WeftConfiguration.parse("[persistence]\nremote_endpoint = \"\(endpoint)\"\nallow_insecure_http = true")
            #expect(allowed.persistence.allowInsecureHTTP)
        }
        for endpoint in ["https://db.example.com/db", "http://127.0.0.1:20000/db", "http://localhost:20000/db", "http://[::1]:20000/db"] {
            #expect(try WeftConfiguration.parse("[persistence]\nremote_endpoint = \"\(endpoint)\"").persistence.remoteEndpoint != nil, "\(endpoint)")
        }
        let withCA = try WeftConfiguration.parse("[persistence]\nremote_endpoint = \"https://db.example.com/db\"\ntls_ca_file = \"/etc/weft/ca.pem\"")
        #expect(withCA.persistence.tlsCAFile == "/etc/weft/ca.pem")
        #expect(throws: ConfigurationError.self) { try WeftConfiguration.parse("[server]\ntls_certificate = \"cert.pem\"") }

        // Files that are not PEM: refused with the key named, before anything listens.
        let directory = TemporaryDirectory()
        let garbage = directory.path("garbage.pem")
        try "not a certificate".write(toFile: garbage, atomically: true, encoding: .utf8)
        var server = ServerConfiguration()
        server.tlsCertificateFile = garbage
        server.tlsKeyFile = garbage
        #expect(throws: ConfigurationError.self) { _ = try StandaloneServer.tlsConfiguration(server) }
        #expect(throws: ConfigurationError.self) { _ = try HTTPTransport.client(trustingAuthoritiesIn: garbage) }
        let files = try await Self.certificate(directory)
        server.tlsCertificateFile = files.certificate
        #expect(throws: ConfigurationError.self) { _ = try StandaloneServer.tlsConfiguration(server) }
        server.tlsKeyFile = files.key
        #expect(try StandaloneServer.tlsConfiguration(server) != nil)
    }
}
