import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Weft
import WeftCRDT
import WeftHTTPCore
import WeftWire

/// A `SyncTransport` to a Standalone server over HTTP (AsyncHTTPClient), with the Weft
/// wire format in the bodies. See `Docs/Protocol.md`.
///
/// Connection failures, timeouts and 5xx answers are `SyncError.Kind.unavailable`
/// (retry later); 401 and 403 are `SyncError.Kind.unauthorized`; other 4xx answers are
/// `SyncError.Kind.rejected`.
public struct HTTPTransport: SyncTransport {
    /// The server's base URL, such as `http://127.0.0.1:20000`.
    public let baseURL: String
    /// The database (tenant).
    public let database: String
    /// The bearer token, if any (unless ``tokenSource`` gives each request's).
    public let token: String?
    /// Where each request's bearer token comes from, if the transport was made with one.
    public let tokenSource: BearerTokenSource?
    /// How long one request may take.
    public let timeout: TimeAmount
    /// Limits applied to the server's answers.
    public let limits: WireLimits
    /// Whether requests go raw and ask for raw answers: by default, when this build has no zstd
    /// (Apple platforms). Settable in tests.
    package var rawFrames = !WireFrame.hasZstd
    private let client: HTTPClient

    /// The client transports use unless given one: AsyncHTTPClient with its default event loops,
    /// a 10-second connect timeout, and no retrying of a refused connection within a request. A
    /// server that is down then fails a request at once as
    /// `SyncError.Kind.unavailable`, and the sync loop's backoff decides when to try
    /// again (the shared client would keep reconnecting until the request's deadline). It lives
    /// for the whole process, like `HTTPClient.shared`.
    public static let defaultClient: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout.connect = .seconds(10)
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()

    /// Creates a transport; `client` defaults to ``defaultClient``.
    public init(
        baseURL: String, database: String, token: String?, timeout: TimeAmount = .seconds(60),
        limits: WireLimits = .default, client: HTTPClient = HTTPTransport.defaultClient
    ) {
        self.init(
            baseURL: baseURL, database: database, token: token, tokenSource: nil, timeout: timeout,
            limits: limits, client: client)
    }

    /// Creates a transport whose requests carry the token `tokenSource` gives at the time (the
    /// app's auth SDK, which refreshes its JSON Web Token): new claims, such as the channels a
    /// user may read, take effect with the next request.
    public init(
        baseURL: String, database: String, tokenSource: @escaping BearerTokenSource,
        timeout: TimeAmount = .seconds(60),
        limits: WireLimits = .default, client: HTTPClient = HTTPTransport.defaultClient
    ) {
        self.init(
            baseURL: baseURL, database: database, token: nil, tokenSource: tokenSource, timeout: timeout,
            limits: limits, client: client)
    }

    private init(
        baseURL: String, database: String, token: String?, tokenSource: BearerTokenSource?,
        timeout: TimeAmount, limits: WireLimits,
        client: HTTPClient
    ) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.database = database
        self.token = token
        self.tokenSource = tokenSource
        self.timeout = timeout
        self.limits = limits
        self.client = client
    }

    /// A transport for a configuration's `http(s)://host:port/database` endpoint, through
    /// `client`.
    public init?(endpoint: RemoteEndpoint, token: String?, client: HTTPClient = HTTPTransport.defaultClient) {
        guard case .http(let url, let database) = endpoint else { return nil }
        var components = URLComponents(url: url, resolvingAgainstBaseURL: false)
        components?.path = ""
        guard let base = components?.string else { return nil }
        self.init(baseURL: base, database: database, token: token, client: client)
    }

    /// A client like ``defaultClient`` that also trusts the certificate authorities of the PEM
    /// file `caFile` (`tls_ca_file`: a self-hosted server's own authority), as well as the
    /// system's. Certificates and host names are verified as always. Shut it down when done
    /// (`shutdown()`).
    /// - Throws: `ConfigurationError` when the file holds no PEM certificate.
    public static func client(trustingAuthoritiesIn caFile: String) throws(ConfigurationError) -> HTTPClient {
        let certificates: [NIOSSLCertificate]
        do {
            certificates = try NIOSSLCertificate.fromPEMFile(caFile)
        } catch {
            throw ConfigurationError(
                key: "persistence.tls_ca_file", expected: "a PEM file of certificate authorities",
                found: "\(caFile): \(error)")
        }
        guard !certificates.isEmpty else {
            throw ConfigurationError(
                key: "persistence.tls_ca_file", expected: "a PEM file of certificate authorities",
                found: "\(caFile): none")
        }
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.additionalTrustRoots = [.certificates(certificates)]
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout.connect = .seconds(10)
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }

    /// The protocol apart from the transport, with the token of this request.
    private func exchanges() async throws(SyncError) -> SyncHTTPProtocol {
        let current = try await SyncHTTPProtocol.token(fixed: token, source: tokenSource)
        return SyncHTTPProtocol(database: database, token: current, limits: limits, rawFrames: rawFrames)
    }

    /// Exchanges one request for its answer, trying once more if the connection was closed
    /// under it.
    private func send(_ request: SyncHTTPRequest) async throws(SyncError) -> SyncHTTPAnswer {
        var outgoing = HTTPClientRequest(url: baseURL + request.path)
        outgoing.method = .POST
        for (name, value) in request.headers { outgoing.headers.add(name: name, value: value) }
        outgoing.body = .bytes(ByteBuffer(bytes: request.body))
        var attempt = 0
        while true {
            attempt += 1
            do {
                let response = try await client.execute(
                    outgoing, timeout: timeout + .milliseconds(request.extraWaitMilliseconds))
                let body = try await response.body.collect(upTo: limits.maximumFrameBytes)
                return SyncHTTPAnswer(
                    status: Int(response.status.code), headers: response.headers.map { ($0.name, $0.value) },
                    body: Array(buffer: body))
            } catch {
                // Every request here is idempotent (a push twice is applied once), so a connection
                // the other end closed under it is tried once more, on a fresh one.
                if attempt == 1 && Self.closedUnderRequest(error) { continue }
                throw Self.failure(error, limit: limits.maximumFrameBytes).error(request.operation, baseURL)
            }
        }
    }

    /// The failure `error` stands for, to be said in one sentence: NIO's own description of a
    /// refused connection reads `connection reset (error set): Connection refused) (errno: 111)`.
    static func failure(_ error: any Error, limit: Int) -> ExchangeFailure {
        var code: Int32?
        if let error = error as? IOError { code = error.errnoCode }
        if let error = error as? NIOConnectionError {
            code = error.connectionErrors.lazy.compactMap { ($0.error as? IOError)?.errnoCode }.first
            if code == nil && (error.dnsAError != nil || error.dnsAAAAError != nil) { return .unresolved }
        }
        switch code {
        case ECONNREFUSED?: return .refused
        case ETIMEDOUT?: return .connectTimedOut
        case ECONNRESET?, EPIPE?: return .reset
        case EHOSTUNREACH?, ENETUNREACH?: return .unreachable
        default: break
        }
        if error is NIOTooManyBytesError { return .tooLarge(limit: limit) }
        if let error = error as? HTTPClientError {
            if error == .connectTimeout { return .connectTimedOut }
            if error == .deadlineExceeded || error == .readTimeout { return .answerTimedOut }
            if error == .remoteConnectionClosed { return .other("the server closed the connection") }
            if error == .cancelled { return .cancelled }
        }
        if error is CancellationError { return .cancelled }
        return .other("\(error)")
    }

    /// Whether `error` says the connection was closed or reset by the other end while a request
    /// was on it: a pooled keep-alive connection the server (or a middlebox) had dropped, or a
    /// server that restarted. A refused connection or a timeout is not: those wait for the sync
    /// loop's backoff.
    static func closedUnderRequest(_ error: any Error) -> Bool {
        if let error = error as? HTTPClientError { return error == .remoteConnectionClosed }
        if let error = error as? IOError { return error.errnoCode == ECONNRESET || error.errnoCode == EPIPE }
        if let error = error as? ChannelError { return error == .eof || error == .outputClosed }
        return false
    }

    public func hello(_ request: HelloRequest) async throws(SyncError) -> HelloResponse {
        try await exchanges().hello(request, send: send)
    }

    public func push(_ request: PushRequest) async throws(SyncError) -> PushResponse {
        try await exchanges().push(request, send: send)
    }

    public func pull(_ request: PullRequest) async throws(SyncError) -> PullResponse {
        try await exchanges().pull(request, send: send)
    }
}
