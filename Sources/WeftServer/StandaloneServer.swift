import Hummingbird
import Logging
import Synchronization
import Weft
import WeftCRDT
import WeftWire

/// The Standalone server's HTTP face: bearer-token auth, request limits, push and pull over the
/// Weft wire format, health and Prometheus metrics. See `Docs/Protocol.md`.
///
/// Routes:
/// - `POST /v1/{database}/push` — body: a framed ``PushRequest``; answer: a framed ``PushResponse``,
///   sent after the batch is durable.
/// - `POST /v1/{database}/pull` — body: a framed ``PullRequest``; answer: a framed ``PullResponse``.
/// - `GET /health` — `ok`.
/// - `GET /metrics` — counters in the Prometheus text format.
///
/// Errors are JSON (`{"error":{"message":…}}`): 401 without a valid token, 403 for a database the
/// token does not cover or an access it lacks, 413 over a size limit, 400 for a malformed body.
public enum StandaloneServer {
    /// The content type of framed messages.
    public static let contentType = "application/vnd.weft.v1"

    /// Builds the application for `service` with the server section of a configuration.
    public static func application(
        service: SyncService, configuration: ServerConfiguration, logger: Logger = Logger(label: "weft.server"),
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let metrics = ServerMetrics()
        let limits = configuration.limits
        let wireLimits = WireLimits(
            maximumFrameBytes: limits.maxRequestBytes, maximumDecompressedBytes: limits.maxDecompressedBytes,
            maximumChanges: limits.maxChangesPerBatch)
        let tokens = configuration.tokens
        let router = Router()
        router.get("health") { _, _ in "ok" }
        router.get("metrics") { _, _ in metrics.render() }
        router.post("v1/:database/push") { request, context -> Response in
            let database = try authorize(request, context, tokens: tokens, needs: .write, metrics: metrics)
            let push: PushRequest = try await decode(request, limits: wireLimits, metrics: metrics)
            for change in push.changes where change.record.encoded().count > limits.maxDocumentBytes {
                metrics.count(.rejected)
                throw HTTPError(
                    .contentTooLarge, message: "document \(change.key) is over max_document_bytes = \(limits.maxDocumentBytes)")
            }
            do {
                let response = try await service.push(database: database, push)
                metrics.count(.pushes)
                metrics.count(.changesPushed, by: push.changes.count)
                return frame(response)
            } catch let error as SyncError {
                metrics.count(.rejected)
                throw HTTPError(error.kind == .rejected ? .badRequest : .serviceUnavailable, message: error.description)
            }
        }
        router.post("v1/:database/pull") { request, context -> Response in
            let database = try authorize(request, context, tokens: tokens, needs: .read, metrics: metrics)
            let pull: PullRequest = try await decode(request, limits: wireLimits, metrics: metrics)
            do {
                let page = try await service.pull(database: database, pull)
                metrics.count(.pulls)
                metrics.count(.changesPulled, by: page.changes.count)
                return frame(page)
            } catch let error as SyncError {
                throw HTTPError(.serviceUnavailable, message: error.description)
            }
        }
        return Application(
            router: router,
            configuration: ApplicationConfiguration(address: .hostname(configuration.host, port: configuration.port), serverName: "weft"),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? configuration.port) },
            logger: logger)
    }

    static func frame<M: BinaryCodable>(_ message: M) -> Response {
        Response(
            status: .ok, headers: [.contentType: contentType],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: WireMessage.encode(message))))
    }

    static func decode<M: BinaryCodable>(_ request: Request, limits: WireLimits, metrics: ServerMetrics) async throws -> M {
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: limits.maximumFrameBytes)
        } catch {
            metrics.count(.rejected)
            throw HTTPError(.contentTooLarge, message: "the body is over max_request_bytes = \(limits.maximumFrameBytes)")
        }
        do {
            return try WireMessage.decode(M.self, from: Array(buffer: body), limits: limits)
        } catch {
            metrics.count(.rejected)
            throw HTTPError(error.isTooLarge ? .contentTooLarge : .badRequest, message: error.description)
        }
    }

    /// The database the request names, if its bearer token covers it with the access needed.
    static func authorize(
        _ request: Request, _ context: some RequestContext, tokens: [ServerToken], needs: ServerToken.Access,
        metrics: ServerMetrics
    ) throws -> String {
        guard let database = context.parameters.get("database"), DatabaseName.isValid(database) else {
            metrics.count(.rejected)
            throw HTTPError(.badRequest, message: "invalid database name")
        }
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else {
            metrics.count(.unauthorized)
            throw HTTPError(.unauthorized, headers: [.wwwAuthenticate: "Bearer"], message: "a bearer token is required")
        }
        let presented = Array(header.dropFirst("Bearer ".count).utf8)
        // Compare against every token, in time that does not depend on where they differ.
        var match: ServerToken?
        for token in tokens where constantTimeEqual(Array(token.token.utf8), presented) { match = token }
        guard let token = match else {
            metrics.count(.unauthorized)
            throw HTTPError(.unauthorized, headers: [.wwwAuthenticate: "Bearer"], message: "the token is not valid")
        }
        let allowed = token.access == .readWrite || token.access == needs
        guard token.databases.contains(database), allowed else {
            metrics.count(.forbidden)
            throw HTTPError(.forbidden, message: "the token does not grant \(needs.rawValue) access to \(database)")
        }
        return database
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(truncatingIfNeeded: a.count ^ b.count)
        for index in 0..<max(a.count, b.count) {
            let x = index < a.count ? a[index] : 0
            let y = index < b.count ? b[index] : 0
            difference |= x ^ y
        }
        return difference == 0
    }
}

/// Counters exported at `/metrics` in the Prometheus text format.
final class ServerMetrics: Sendable {
    enum Counter: String, CaseIterable {
        case pushes = "weft_pushes_total"
        case pulls = "weft_pulls_total"
        case changesPushed = "weft_changes_pushed_total"
        case changesPulled = "weft_changes_pulled_total"
        case rejected = "weft_requests_rejected_total"
        case unauthorized = "weft_requests_unauthorized_total"
        case forbidden = "weft_requests_forbidden_total"
    }

    private let values = Mutex([String: Int]())

    func count(_ counter: Counter, by amount: Int = 1) { values.withLock { $0[counter.rawValue, default: 0] += amount } }

    func render() -> String {
        let snapshot = values.withLock { $0 }
        return Counter.allCases.map { counter in
            "# TYPE \(counter.rawValue) counter\n\(counter.rawValue) \(snapshot[counter.rawValue] ?? 0)\n"
        }.joined()
    }
}
