import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Weft
import WeftCRDT
import WeftWire

/// A ``Weft/SyncTransport`` to a Standalone server over HTTP (AsyncHTTPClient), with the Weft
/// wire format in the bodies. See `Docs/Protocol.md`.
///
/// Connection failures, timeouts and 5xx answers are ``Weft/SyncError/Kind/unavailable``
/// (retry later); 401 and 403 are ``Weft/SyncError/Kind/unauthorized``; other 4xx answers are
/// ``Weft/SyncError/Kind/rejected``.
public struct HTTPTransport: SyncTransport {
    /// The server's base URL, such as `http://127.0.0.1:20000`.
    public let baseURL: String
    /// The database (tenant).
    public let database: String
    /// The bearer token, if any.
    public let token: String?
    /// How long one request may take.
    public let timeout: TimeAmount
    /// Limits applied to the server's answers.
    public let limits: WireLimits
    private let client: HTTPClient

    /// The client transports use unless given one: AsyncHTTPClient with its default event loops,
    /// a 10-second connect timeout, and no retrying of a refused connection within a request. A
    /// server that is down then fails a request at once as
    /// ``Weft/SyncError/Kind/unavailable``, and the sync loop's backoff decides when to try
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
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.database = database
        self.token = token
        self.timeout = timeout
        self.limits = limits
        self.client = client
    }

    /// A transport for a configuration's `http(s)://host:port/database` endpoint.
    public init?(endpoint: RemoteEndpoint, token: String?) {
        guard case .http(let url, let database) = endpoint else { return nil }
        var components = URLComponents(url: url, resolvingAgainstBaseURL: false)
        components?.path = ""
        guard let base = components?.string else { return nil }
        self.init(baseURL: base, database: database, token: token)
    }

    /// Sends `request` and reads the answer: the status, the headers and the body.
    private func send(_ request: HTTPClientRequest, _ operation: String, extraWait: Int64) async throws(SyncError)
        -> (HTTPResponseStatus, HTTPHeaders, ByteBuffer)
    {
        var attempt = 0
        while true {
            attempt += 1
            do {
                let response = try await client.execute(request, timeout: timeout + .milliseconds(extraWait))
                let body = try await response.body.collect(upTo: limits.maximumFrameBytes)
                return (response.status, response.headers, body)
            } catch {
                // Every request here is idempotent (a push twice is applied once), so a connection
                // the other end closed under it is tried once more, on a fresh one.
                if attempt == 1 && Self.closedUnderRequest(error) { continue }
                throw SyncError(.unavailable, "\(operation) to \(baseURL) failed: \(Self.describe(error))")
            }
        }
    }

    /// What went wrong, in words: NIO's descriptions of a refused connection read
    /// `connection reset (error set): Connection refused) (errno: 111)`.
    static func describe(_ error: any Error) -> String {
        var code: Int32?
        if let error = error as? IOError { code = error.errnoCode }
        if let error = error as? NIOConnectionError {
            code = error.connectionErrors.lazy.compactMap { ($0.error as? IOError)?.errnoCode }.first
            if code == nil && (error.dnsAError != nil || error.dnsAAAAError != nil) { return "the host name did not resolve" }
        }
        switch code {
        case ECONNREFUSED?: return "nothing accepted the connection (is the server running?)"
        case ETIMEDOUT?: return "the connection timed out"
        case ECONNRESET?, EPIPE?: return "the connection was reset"
        case EHOSTUNREACH?, ENETUNREACH?: return "the network cannot reach the server"
        default: break
        }
        if let error = error as? HTTPClientError {
            if error == .connectTimeout { return "the connection timed out" }
            if error == .deadlineExceeded || error == .readTimeout { return "the server did not answer in time" }
            if error == .remoteConnectionClosed { return "the server closed the connection" }
            if error == .cancelled { return "the request was cancelled" }
        }
        if error is CancellationError { return "the request was cancelled" }
        return "\(error)"
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
        let (answer, headers) = try await exchange("hello", request, expecting: HelloResponse.self, extraWait: 0)
        var response = answer
        response.receipt = try Self.receipt(headers, "Weft-Receipt", "hello")
        return response
    }

    public func push(_ request: PushRequest) async throws(SyncError) -> PushResponse {
        var headers = [(String, String)]()
        if request.expectedAppliedThrough > 0 { headers.append(("Weft-Expect-Applied-Through", "\(request.expectedAppliedThrough)")) }
        if let pulled = request.pulledThrough { headers.append(("Weft-Pulled-Through", "\(pulled)")) }
        if let receipt = request.receipt, receipt != 0 { headers.append(("Weft-Receipt", "\(receipt)")) }
        let (answer, answerHeaders) = try await exchange("push", request, expecting: PushResponse.self, extraWait: 0, headers: headers)
        var response = answer
        if let previous = try Self.receipt(answerHeaders, "Weft-Receipt-Previous", "push"),
            let current = try Self.receipt(answerHeaders, "Weft-Receipt", "push")
        {
            response.receipt = PushReceipt(previous: previous, current: current)
        }
        return response
    }

    /// The receipt in header `name`, `nil` if the server sent none.
    /// - Throws: ``Weft/SyncError/Kind/badResponse`` if it is not a decimal 64-bit number.
    static func receipt(_ headers: HTTPHeaders, _ name: String, _ operation: String) throws(SyncError) -> UInt64? {
        guard let text = headers.first(name: name) else { return nil }
        guard let value = UInt64(text) else {
            throw SyncError(.badResponse, "\(operation): the \(name) header is not a decimal number: \(text.prefix(40).debugDescription)")
        }
        return value
    }

    public func pull(_ request: PullRequest) async throws(SyncError) -> PullResponse {
        try await exchange("pull", request, expecting: PullResponse.self, extraWait: Int64(request.waitMilliseconds)).0
    }

    private func exchange<Request: BinaryCodable, Response: BinaryCodable>(
        _ operation: String, _ message: Request, expecting: Response.Type, extraWait: Int64, headers: [(String, String)] = []
    ) async throws(SyncError) -> (Response, HTTPHeaders) {
        var request = HTTPClientRequest(url: "\(baseURL)/v1/\(database)/\(operation)")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/vnd.weft.v1")
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(bytes: WireMessage.encode(message)))
        let (status, answerHeaders, body) = try await send(request, operation, extraWait: extraWait)
        let serverTime = answerHeaders.first(name: "Weft-Server-Time").flatMap { UInt64($0) }
        let skewBound = answerHeaders.first(name: "Weft-Max-Clock-Skew").flatMap { UInt64($0) }
        let errorCode = answerHeaders.first(name: "Weft-Error")
        switch status.code {
        case 200:
            do {
                return (try WireMessage.decode(Response.self, from: Array(buffer: body), limits: limits), answerHeaders)
            } catch {
                throw SyncError(.badResponse, "\(operation): \(error)")
            }
        case 410 where errorCode == "resync":
            throw SyncError(.resync, "\(operation): \(String(buffer: body))")
        case 409 where errorCode == "forked":
            throw SyncError(.forked, "\(operation): \(String(buffer: body))")
        case 410 where errorCode == "too-far-behind":
            throw SyncError(.tooFarBehind, "\(operation): \(String(buffer: body))")
        case 409 where errorCode == "delta-base":
            throw SyncError(.deltaBaseUnknown, "\(operation): \(String(buffer: body))")
        case 409:
            throw SyncError(
                .clockSkew, "\(operation): \(String(buffer: body))", serverTimeMilliseconds: serverTime,
                maximumClockSkewMilliseconds: skewBound)
        case 404, 408, 429:
            // Not about the request's content: a wrong path, a proxy's timeout or rate limit.
            // Retry later; never set entries aside for it.
            throw SyncError(.unavailable, "\(operation): \(status.code) \(String(buffer: body))")
        case 401, 403:
            throw SyncError(.unauthorized, "\(operation): \(status.code) \(String(buffer: body))")
        case 400..<500:
            throw SyncError(.rejected, "\(operation): \(status.code) \(String(buffer: body))")
        default:
            throw SyncError(.unavailable, "\(operation): \(status.code) \(String(buffer: body))")
        }
    }
}
