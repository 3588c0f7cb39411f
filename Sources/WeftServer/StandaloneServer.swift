import Hummingbird
import HummingbirdTLS
import struct HummingbirdCore.HTTP1Channel
import struct HummingbirdCore.HTTPServerBuilder
import NIOCore
import ServiceLifecycle
import Logging
import Synchronization
import Weft
import WeftCRDT
import WeftWire

/// The Standalone server's HTTP face: bearer-token auth, request limits, push and pull over the
/// Weft wire format, health and Prometheus metrics. See `Docs/Protocol.md`.
///
/// Routes (the request and answer types are WeftWire's):
/// - `POST /v1/{database}/hello` — body: a framed `HelloRequest`; answer: a framed
///   `HelloResponse` (the session, and the database's policies).
/// - `POST /v1/{database}/push` — body: a framed `PushRequest`; answer: a framed `PushResponse`,
///   sent after the batch is durable.
/// - `POST /v1/{database}/pull` — body: a framed `PullRequest`; answer: a framed `PullResponse`.
/// - `GET /health` — `ok`.
/// - `GET /metrics` — counters in the Prometheus text format.
///
/// Errors are JSON (`{"error":{"message":…}}`): 401 without a valid token, 403 for a database the
/// token does not cover or an access it lacks, 413 over a size limit, 400 for a malformed body.
public enum StandaloneServer {
    /// The content type of framed messages.
    public static let contentType = "application/vnd.weft.v1"
    /// The header of a 409 (clock skew) answer that carries the server's clock, in
    /// milliseconds since 1970.
    public static let serverTimeHeaderName = "Weft-Server-Time"
    static let serverTimeHeader = HTTPFields.Element.Name(serverTimeHeaderName)!
    /// The header of a 409 (clock skew) answer that carries the server's bound, in milliseconds.
    public static let clockSkewHeaderName = "Weft-Max-Clock-Skew"
    static let clockSkewHeader = HTTPFields.Element.Name(clockSkewHeaderName)!
    /// The header a push carries `PushRequest.expectedAppliedThrough` in.
    public static let expectHeaderName = "Weft-Expect-Applied-Through"
    static let expectHeader = HTTPFields.Element.Name(expectHeaderName)!
    /// The header a push carries `PushRequest.pulledThrough` in.
    public static let pulledHeaderName = "Weft-Pulled-Through"
    static let pulledHeader = HTTPFields.Element.Name(pulledHeaderName)!
    /// The header a push carries `PushRequest.receipt` in, and that the answers to a
    /// push and a hello carry the replica's current receipt in (`PushReceipt`).
    public static let receiptHeaderName = "Weft-Receipt"
    static let receiptHeader = HTTPFields.Element.Name(receiptHeaderName)!
    /// The header the answer to a push carries the receipt it replaced in
    /// (`PushReceipt.previous`).
    public static let previousReceiptHeaderName = "Weft-Receipt-Previous"
    static let previousReceiptHeader = HTTPFields.Element.Name(previousReceiptHeaderName)!
    /// The header of a 409 that is not about clocks: `forked` for a push whose session is not
    /// the replica's current one, or that expected more of the replica's changes than the
    /// server holds.
    public static let errorHeaderName = "Weft-Error"
    static let errorHeader = HTTPFields.Element.Name(errorHeaderName)!

    /// The answer to a replica behind the tombstones the server forgot: 410 with
    /// `Weft-Error: too-far-behind`, and the replica resyncs.
    static func tooFarBehind(_ error: SyncError) -> HTTPError {
        var headers = HTTPFields()
        headers[errorHeader] = "too-far-behind"
        return HTTPError(.gone, headers: headers, message: error.message)
    }

    /// Builds the application for `service` with the server section of a configuration: HTTPS
    /// when it names a certificate and key (``tlsConfiguration(_:)``), else HTTP. With
    /// `[server.jwt]`, pass the `authenticator` built from it (``JWTAuthenticator/make(_:environment:timeSource:)``),
    /// which fails on keys it cannot load; without one, the keys are loaded at the first request
    /// that needs them, and such a request is answered 503 if they cannot be.
    public static func application(
        service: SyncService, configuration: ServerConfiguration, authenticator: JWTAuthenticator? = nil,
        logger: Logger = Logger(label: "weft.server"), onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws(ConfigurationError) -> some ApplicationProtocol {
        let tls = try tlsConfiguration(configuration)
        let metrics = ServerMetrics()
        let limits = configuration.limits
        let credentials = Credentials(tokens: configuration.tokens, jwt: configuration.jwt, authenticator: authenticator)
        let router = Router()
        router.get("health") { _, _ in "ok" }
        router.get("openapi.json") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(string: openAPIDocument)))
        }
        router.get("metrics") { _, _ in
            metrics.compactedEntries.record(Double(await service.store.compactedEntries))
            metrics.collectedTombstones.record(Double(await service.store.collectedTombstones))
            return metrics.render()
        }
        addSyncRoutes(to: router, service: service, credentials: credentials, limits: limits, metrics: metrics)
        addDocumentRoutes(to: router, service: service, credentials: credentials, limits: limits, metrics: metrics)
        // Connections: a head must arrive within header_timeout_ms, a silent connection closes
        // after idle_timeout_ms, and a response saying `Connection: close` closes it.
        let headerTimeout = TimeAmount.milliseconds(Int64(limits.headerTimeoutMilliseconds))
        let http = HTTP1Channel.Configuration(
            additionalChannelHandlers: [RequestHeadTimeoutHandler(timeout: headerTimeout), CloseAfterConnectionCloseHandler()],
            idleTimeout: .milliseconds(Int64(limits.idleTimeoutMilliseconds)))
        // With a certificate, HTTPS only: no plain port is opened.
        let server: HTTPServerBuilder
        if let tls {
            do {
                server = try .tls(.http1(configuration: http), tlsConfiguration: tls)
            } catch {
                throw ConfigurationError(key: "server.tls_certificate", expected: "a certificate and key TLS can use", found: "\(error)")
            }
        } else {
            server = .http1(configuration: http)
        }
        var application = Application(
            router: router,
            server: server,
            configuration: ApplicationConfiguration(address: .hostname(configuration.host, port: configuration.port), serverName: "weft"),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? configuration.port) },
            logger: logger)
        application.addServices(
            LogCompaction(service: service, tombstoneRetention: configuration.tombstoneRetentionMilliseconds, logger: logger))
        return application
    }

    /// The header by which a client without zstd asks for raw frames (`none`).
    public static let acceptCodecHeaderName = "Weft-Accept-Codec"
    static let acceptCodecHeader = HTTPFields.Element.Name(acceptCodecHeaderName)!

    /// The answer carrying `message`: compressed when that helps, unless `request` asked for raw
    /// frames (`Weft-Accept-Codec: none`: a client built without zstd).
    static func frame<M: BinaryCodable>(_ message: M, for request: Request) -> Response {
        let raw = request.headers[acceptCodecHeader]?.lowercased() == "none"
        return Response(
            status: .ok, headers: [.contentType: contentType],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: WireMessage.encode(message, compressing: !raw))))
    }

    /// Decodes the body of `request` as `M`, collecting it into `request` (so that a route may
    /// then watch for the client closing the connection). A `Content-Length` over the limit is
    /// refused with 413 before any of the body is read, and the connection is closed.
    static func decode<M: BinaryCodable>(_ request: inout Request, limits: WireLimits, metrics: ServerMetrics) async throws -> M {
        if let declared = request.headers[.contentLength].flatMap({ Int($0) }), declared > limits.maximumFrameBytes {
            metrics.count(.rejected)
            throw HTTPError(
                .contentTooLarge, headers: [.connection: "close"],
                message: "the body of \(declared) bytes is over max_request_bytes = \(limits.maximumFrameBytes)")
        }
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: limits.maximumFrameBytes)
        } catch {
            metrics.count(.rejected)
            throw HTTPError(.contentTooLarge, message: "the body is over max_request_bytes = \(limits.maximumFrameBytes)")
        }
        do {
            return try WireMessage.decode(M.self, from: Array(buffer: body), limits: limits)
        } catch where error.isUnsupportedCodec {
            // A compressed frame this build cannot read: the client sends it again raw.
            throw HTTPError(.unsupportedMediaType, headers: [acceptCodecHeader: "none"], message: error.description)
        } catch {
            metrics.count(.rejected)
            throw HTTPError(error.isTooLarge ? .contentTooLarge : .badRequest, message: error.description)
        }
    }
}
