import Weft
import WeftWire

/// One request of the sync protocol over HTTP, as names and bytes: what any HTTP client sends
/// (`Docs/Protocol.md`). Both client transports build their requests from it, so they say the
/// same thing to the server.
package struct SyncHTTPRequest: Sendable {
    /// `hello`, `push` or `pull`: the last part of the path, and the word error messages use.
    package let operation: String
    /// The path: `/v1/<database>/<operation>`.
    package let path: String
    /// The headers, in order: the content type, the bearer token, the operation's own.
    package let headers: [(name: String, value: String)]
    /// The body: one wire frame (`Docs/Encoding.md`).
    package let body: [UInt8]
    /// How much longer than the transport's timeout the answer may take: a long-poll's wait.
    package let extraWaitMilliseconds: Int64
}

/// The server's answer to a ``SyncHTTPRequest``: the status, the headers and the body.
package struct SyncHTTPAnswer: Sendable {
    /// The HTTP status code.
    package let status: Int
    /// The first value of each header, under its name in lower case.
    private let headers: [String: String]
    /// The body, at most ``Weft/WireLimits/maximumFrameBytes`` long (transports stop reading past
    /// it).
    package let body: [UInt8]

    /// Creates an answer; `headers` may repeat a name and use any case (the first value counts).
    package init(status: Int, headers: some Sequence<(String, String)>, body: [UInt8]) {
        self.status = status
        var firsts = [String: String]()
        for (name, value) in headers where firsts[name.lowercased()] == nil {
            firsts[name.lowercased()] = value
        }
        self.headers = firsts
        self.body = body
    }

    /// The first value of header `name` (any case), `nil` if absent.
    package func header(_ name: String) -> String? { headers[name.lowercased()] }
}

/// What a transport says when a request could not be exchanged at all, in words a user reads:
/// the same sentence whichever HTTP client is underneath.
package enum ExchangeFailure: Error, Sendable {
    /// Nothing listens on the port.
    case refused
    /// The connection could not be made in time.
    case connectTimedOut
    /// The connection was reset or closed under the request.
    case reset
    /// The network cannot reach the host.
    case unreachable
    /// The host name did not resolve.
    case unresolved
    /// The device has no network.
    case offline
    /// The server took longer than the request's deadline.
    case answerTimedOut
    /// The request was cancelled (by the task that made it).
    case cancelled
    /// TLS failed: the certificate is not trusted, or the handshake failed.
    case secureConnection
    /// The answer's body was larger than the limit.
    case tooLarge(limit: Int)
    /// Anything else, described by the HTTP client.
    case other(String)

    /// The sentence.
    package var sentence: String {
        switch self {
        case .refused: "nothing accepted the connection (is the server running?)"
        case .connectTimedOut: "the connection timed out"
        case .reset: "the connection was reset"
        case .unreachable: "the network cannot reach the server"
        case .unresolved: "the host name did not resolve"
        case .offline: "this device is not connected to a network"
        case .answerTimedOut: "the server did not answer in time"
        case .cancelled: "the request was cancelled"
        case .secureConnection: "the secure connection failed (is the server's certificate trusted?)"
        case .tooLarge(let limit): "the answer is larger than the limit of \(limit) bytes"
        case .other(let text): text
        }
    }

    /// The error a sync round sees: an answer over the limit is malformed (asking again gets the
    /// same answer), anything else is ``Weft/SyncError/Kind/unavailable`` (retry later).
    package func error(_ operation: String, _ baseURL: String) -> SyncError {
        if case .tooLarge = self {
            return SyncError(.badResponse, "\(operation) to \(baseURL) failed: \(sentence)")
        }
        return SyncError(.unavailable, "\(operation) to \(baseURL) failed: \(sentence)")
    }
}

/// The sync protocol over HTTP, apart from the HTTP client: how each ``Weft/SyncTransport``
/// operation becomes a request, and how an answer becomes a response or a ``Weft/SyncError``.
///
/// A transport gives it a `send` function that exchanges one ``SyncHTTPRequest`` for one
/// ``SyncHTTPAnswer`` (throwing an ``ExchangeFailure``'s error when there is no answer); the
/// status codes, the `Weft-*` headers and the body codec are all here.
package struct SyncHTTPProtocol: Sendable {
    /// The database (tenant).
    package let database: String
    /// The bearer token, if any.
    package let token: String?
    /// Limits applied to the server's answers.
    package let limits: WireLimits
    /// Whether requests go raw and ask for raw answers (`Weft-Accept-Codec: none`): a build
    /// without zstd cannot read a compressed frame.
    package let rawFrames: Bool

    /// Creates the protocol for one database; `rawFrames` defaults to whether this build lacks
    /// zstd.
    package init(database: String, token: String?, limits: WireLimits, rawFrames: Bool = !WireFrame.hasZstd) {
        self.database = database
        self.token = token
        self.limits = limits
        self.rawFrames = rawFrames
    }

    /// The media type of every body.
    package static let contentType = "application/vnd.weft.v1"

    /// Opens a session; the answer carries the server's current receipt.
    /// Sends `message`, and sends it again raw if the server cannot read compressed frames (415
    /// with `Weft-Accept-Codec: none`: a server built without zstd).
    package func exchange<Message: BinaryCodable>(
        _ operation: String, _ message: Message, headers: [(name: String, value: String)] = [],
        extraWait: Int64 = 0,
        send: (SyncHTTPRequest) async throws(SyncError) -> SyncHTTPAnswer
    ) async throws(SyncError) -> SyncHTTPAnswer {
        let answer = try await send(
            request(operation, message, headers: headers, extraWait: extraWait, raw: rawFrames))
        guard !rawFrames, answer.status == 415, answer.header("Weft-Accept-Codec")?.lowercased() == "none"
        else { return answer }
        return try await send(request(operation, message, headers: headers, extraWait: extraWait, raw: true))
    }

    package func hello(
        _ request: HelloRequest, send: (SyncHTTPRequest) async throws(SyncError) -> SyncHTTPAnswer
    ) async throws(SyncError) -> HelloResponse {
        let answer = try await exchange("hello", request, send: send)
        var response = try decode("hello", answer, as: HelloResponse.self)
        response.receipt = try Self.receipt(answer, "Weft-Receipt", "hello")
        return response
    }

    /// Pushes a batch: the expectation, the pulled position and the receipt go in headers, and
    /// the receipts come back in headers.
    package func push(
        _ request: PushRequest, send: (SyncHTTPRequest) async throws(SyncError) -> SyncHTTPAnswer
    ) async throws(SyncError) -> PushResponse {
        var headers = [(name: String, value: String)]()
        if request.expectedAppliedThrough > 0 {
            headers.append(("Weft-Expect-Applied-Through", "\(request.expectedAppliedThrough)"))
        }
        if let pulled = request.pulledThrough { headers.append(("Weft-Pulled-Through", "\(pulled)")) }
        if let receipt = request.receipt, receipt != 0 { headers.append(("Weft-Receipt", "\(receipt)")) }
        let answer = try await exchange("push", request, headers: headers, send: send)
        var response = try decode("push", answer, as: PushResponse.self)
        if let previous = try Self.receipt(answer, "Weft-Receipt-Previous", "push"),
            let current = try Self.receipt(answer, "Weft-Receipt", "push")
        {
            response.receipt = PushReceipt(previous: previous, current: current)
        }
        return response
    }

    /// Pulls a page; the request may wait `waitMilliseconds` on the server, so its deadline is
    /// that much later.
    package func pull(
        _ request: PullRequest, send: (SyncHTTPRequest) async throws(SyncError) -> SyncHTTPAnswer
    ) async throws(SyncError) -> PullResponse {
        let answer = try await exchange(
            "pull", request, extraWait: Int64(request.waitMilliseconds), send: send)
        return try decode("pull", answer, as: PullResponse.self)
    }

    /// The request for `operation` carrying `message`.
    package func request<Message: BinaryCodable>(
        _ operation: String, _ message: Message, headers: [(name: String, value: String)] = [],
        extraWait: Int64 = 0, raw: Bool
    ) -> SyncHTTPRequest {
        var all: [(name: String, value: String)] = [("Content-Type", Self.contentType)]
        if let token { all.append(("Authorization", "Bearer \(token)")) }
        if raw { all.append(("Weft-Accept-Codec", "none")) }
        all.append(contentsOf: headers)
        return SyncHTTPRequest(
            operation: operation, path: "/v1/\(database)/\(operation)", headers: all,
            body: WireMessage.encode(message, compressing: !raw), extraWaitMilliseconds: extraWait)
    }

    /// The response in a 200 answer, or the error its status and `Weft-Error` header mean.
    package func decode<Response: BinaryCodable>(
        _ operation: String, _ answer: SyncHTTPAnswer, as: Response.Type
    ) throws(SyncError) -> Response {
        let text = String(decoding: answer.body.prefix(2_000), as: UTF8.self)
        let errorCode = answer.header("Weft-Error")
        switch answer.status {
        case 200:
            do {
                return try WireMessage.decode(Response.self, from: answer.body, limits: limits)
            } catch {
                throw SyncError(.badResponse, "\(operation): \(error)")
            }
        case 410 where errorCode == "resync":
            throw SyncError(.resync, "\(operation): \(text)")
        case 409 where errorCode == "forked":
            throw SyncError(.forked, "\(operation): \(text)")
        case 410 where errorCode == "too-far-behind":
            throw SyncError(.tooFarBehind, "\(operation): \(text)")
        case 409 where errorCode == "delta-base":
            throw SyncError(.deltaBaseUnknown, "\(operation): \(text)")
        case 409:
            throw SyncError(
                .clockSkew, "\(operation): \(text)",
                serverTimeMilliseconds: answer.header("Weft-Server-Time").flatMap { UInt64($0) },
                maximumClockSkewMilliseconds: answer.header("Weft-Max-Clock-Skew").flatMap { UInt64($0) })
        case 404, 408, 429:
            // Not about the request's content: a wrong path, a proxy's timeout or rate limit.
            // Retry later; never set entries aside for it.
            throw SyncError(.unavailable, "\(operation): \(answer.status) \(text)")
        case 401, 403:
            throw SyncError(.unauthorized, "\(operation): \(answer.status) \(text)")
        case 400..<500:
            throw SyncError(.rejected, "\(operation): \(answer.status) \(text)")
        default:
            throw SyncError(.unavailable, "\(operation): \(answer.status) \(text)")
        }
    }

    /// The receipt in header `name`, `nil` if the server sent none.
    /// - Throws: ``Weft/SyncError/Kind/badResponse`` if it is not a decimal 64-bit number.
    package static func receipt(_ answer: SyncHTTPAnswer, _ name: String, _ operation: String)
        throws(SyncError) -> UInt64?
    {
        guard let text = answer.header(name) else { return nil }
        guard let value = UInt64(text) else {
            throw SyncError(
                .badResponse,
                "\(operation): the \(name) header is not a decimal number: \(text.prefix(40).debugDescription)"
            )
        }
        return value
    }
}

extension SyncHTTPProtocol {
    /// The token of the next request: the source's current one, else the fixed one.
    package static func token(fixed: String?, source: BearerTokenSource?) async throws(SyncError) -> String? {
        guard let source else { return fixed }
        do {
            return try await source()
        } catch {
            throw SyncError(.unavailable, "the bearer token could not be had: \(error)")
        }
    }
}
