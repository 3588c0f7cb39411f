import Foundation
import Weft
import WeftHTTPCore
import WeftWire

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// A `SyncTransport` to a Standalone server over HTTP on `URLSession`
/// (FoundationNetworking on Linux): the client transport for apps, without SwiftNIO.
///
/// It speaks the protocol of `Docs/Protocol.md` exactly as `HTTPTransport` (WeftHTTP) does, and
/// maps failures the same way: connection failures, timeouts and 5xx answers are
/// `SyncError.Kind.unavailable` (retry later); 401 and 403 are
/// `SyncError.Kind.unauthorized`; other 4xx answers are `SyncError.Kind.rejected`;
/// an answer that cannot be read, or is larger than ``limits``, is
/// `SyncError.Kind.badResponse`.
///
/// Given a bearer `token`:
///
/// ```swift
/// let replica = try await Replica.open(path: "app.sqlite")
/// let transport = URLSessionTransport(
///     baseURL: URL(string: "https://sync.example.com")!, database: "fieldapp", token: token)
/// let engine = SyncEngine(replica: replica, transport: transport)
/// ```
///
/// Each request has a deadline: ``timeout``, plus the wait a pull asks the server for. A
/// request whose task is cancelled ends at once (the engine cancels a waiting live pull when
/// `requestSync()` is called). A connection reset under a request is tried
/// once more on a fresh one: every request of the protocol is idempotent.
public struct URLSessionTransport: SyncTransport {
    /// The server's base URL, such as `https://sync.example.com` (a path in it is dropped).
    public let baseURL: URL
    /// The database (tenant).
    public let database: String
    /// The bearer token, if any (unless ``tokenSource`` gives each request's).
    public let token: String?
    /// Where each request's bearer token comes from, if the transport was made with one.
    public let tokenSource: BearerTokenSource?
    /// How long one request may take, beyond the wait a pull asks for.
    public let timeout: Duration
    /// Limits applied to the server's answers.
    public let limits: WireLimits
    /// Whether requests go raw and ask for raw answers: by default, when this build has no zstd
    /// (Apple platforms). Settable in tests.
    package var rawFrames = !WireFrame.hasZstd
    private let connection: URLSessionConnection
    private let origin: String

    /// Creates a transport.
    ///
    /// - Parameters:
    ///   - baseURL: the server's URL, such as `https://sync.example.com` (a path is dropped).
    ///   - database: the database (tenant) to sync.
    ///   - token: the bearer token, `nil` for none.
    ///   - timeout: how long one request may take, beyond the wait a pull asks for.
    ///   - limits: limits applied to the server's answers.
    ///   - configuration: the session's configuration; `nil` for an ephemeral one (no cookies,
    ///     no cache). Each transport has its own session (copies of it share it), closed when
    ///     the last copy goes: FoundationNetworking on Linux is known to stall transfers when
    ///     one session carries many concurrent requests.
    public init(
        baseURL: URL, database: String, token: String?, timeout: Duration = .seconds(60),
        limits: WireLimits = .default,
        configuration: URLSessionConfiguration? = nil
    ) {
        self.init(
            baseURL: baseURL, database: database, token: token, tokenSource: nil, timeout: timeout,
            limits: limits, configuration: configuration)
    }

    /// Creates a transport whose requests carry the token `tokenSource` gives at the time (the
    /// app's auth SDK, which refreshes its JSON Web Token): new claims, such as the channels a
    /// user may read, take effect with the next request. The other parameters are those of
    /// ``init(baseURL:database:token:timeout:limits:configuration:)``.
    public init(
        baseURL: URL, database: String, tokenSource: @escaping BearerTokenSource,
        timeout: Duration = .seconds(60),
        limits: WireLimits = .default, configuration: URLSessionConfiguration? = nil
    ) {
        self.init(
            baseURL: baseURL, database: database, token: nil, tokenSource: tokenSource, timeout: timeout,
            limits: limits,
            configuration: configuration)
    }

    private init(
        baseURL: URL, database: String, token: String?, tokenSource: BearerTokenSource?, timeout: Duration,
        limits: WireLimits,
        configuration: URLSessionConfiguration?
    ) {
        var components = URLComponents(url: baseURL, resolvingAgainstBaseURL: false) ?? URLComponents()
        components.path = ""
        components.query = nil
        components.fragment = nil
        self.baseURL = components.url ?? baseURL
        self.origin = components.string ?? baseURL.absoluteString
        self.database = database
        self.token = token
        self.tokenSource = tokenSource
        self.timeout = timeout
        self.limits = limits
        self.connection = URLSessionConnection(
            configuration: configuration ?? URLSessionConnection.defaultConfiguration)
    }

    /// A transport for a configuration's `http(s)://host:port/database` endpoint; `nil` for
    /// other endpoints.
    public init?(endpoint: RemoteEndpoint, token: String?, configuration: URLSessionConfiguration? = nil) {
        guard case .http(let url, let database) = endpoint else { return nil }
        self.init(baseURL: url, database: database, token: token, configuration: configuration)
    }

    /// The protocol apart from the transport, with the token of this request.
    private func exchanges() async throws(SyncError) -> SyncHTTPProtocol {
        let current = try await SyncHTTPProtocol.token(fixed: token, source: tokenSource)
        return SyncHTTPProtocol(database: database, token: current, limits: limits, rawFrames: rawFrames)
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

    /// Exchanges one request for its answer, trying once more if the connection was reset
    /// under it.
    private func send(_ request: SyncHTTPRequest) async throws(SyncError) -> SyncHTTPAnswer {
        guard let url = URL(string: origin + request.path) else {
            // A configuration problem, not the request's: keep the queue (nothing is set aside).
            throw SyncError(.unavailable, "\(request.operation): \(origin + request.path) is not a valid URL")
        }
        var outgoing = URLRequest(url: url)
        outgoing.httpMethod = "POST"
        for (name, value) in request.headers { outgoing.setValue(value, forHTTPHeaderField: name) }
        outgoing.httpBody = Data(request.body)
        let deadline = timeout + .milliseconds(request.extraWaitMilliseconds)
        outgoing.timeoutInterval = Self.seconds(deadline)
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await connection.exchange(
                    outgoing, deadline: deadline, limit: limits.maximumFrameBytes)
            } catch {
                if attempt == 1, case .reset = error { continue }
                throw error.error(request.operation, origin)
            }
        }
    }

    static func seconds(_ duration: Duration) -> TimeInterval {
        TimeInterval(duration.components.seconds) + TimeInterval(duration.components.attoseconds) / 1e18
    }
}
