import CoreMetrics
import Hummingbird
import Logging
import Prometheus
import Synchronization
import Weft
import WeftCRDT
import WeftWire

/// The Standalone server's HTTP face: bearer-token auth, request limits, push and pull over the
/// Weft wire format, health and Prometheus metrics. See `Docs/Protocol.md`.
///
/// Routes:
/// - `POST /v1/{database}/hello` — body: a framed ``HelloRequest``; answer: a framed
///   ``HelloResponse`` (the session, and the database's policies).
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
    /// The header of a 409 (clock skew) answer that carries the server's clock, in
    /// milliseconds since 1970.
    public static let serverTimeHeaderName = "Weft-Server-Time"
    static let serverTimeHeader = HTTPFields.Element.Name(serverTimeHeaderName)!
    /// The header of a 409 (clock skew) answer that carries the server's bound, in milliseconds.
    public static let clockSkewHeaderName = "Weft-Max-Clock-Skew"
    static let clockSkewHeader = HTTPFields.Element.Name(clockSkewHeaderName)!
    /// The header of a 409 that is not about clocks: `forked` for a push whose session is not
    /// the replica's current one.
    public static let errorHeaderName = "Weft-Error"
    static let errorHeader = HTTPFields.Element.Name(errorHeaderName)!

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
        router.post("v1/:database/hello") { request, context -> Response in
            let database = try authorize(request, context, tokens: tokens, needs: .read, metrics: metrics)
            let hello: HelloRequest = try await decode(request, limits: wireLimits, metrics: metrics)
            do {
                let answer = try await service.hello(database: database, hello)
                metrics.count(.hellos)
                if answer.status == .forked { metrics.count(.forked) }
                return frame(answer)
            } catch let error as SyncError {
                throw HTTPError(.serviceUnavailable, message: error.description)
            }
        }
        router.post("v1/:database/push") { request, context -> Response in
            let database = try authorize(request, context, tokens: tokens, needs: .write, metrics: metrics)
            let push: PushRequest = try await decode(request, limits: wireLimits, metrics: metrics)
            for change in push.changes where change.record.encoded().count > limits.maxDocumentBytes {
                metrics.count(.rejected)
                throw HTTPError(
                    .contentTooLarge, message: "document \(change.key) is over max_document_bytes = \(limits.maxDocumentBytes)")
            }
            do {
                let started = ContinuousClock.now
                let response = try await service.push(database: database, push)
                metrics.record(metrics.pushDuration, since: started)
                metrics.count(.pushes)
                metrics.count(.changesPushed, by: push.changes.count)
                return frame(response)
            } catch let error as SyncError where error.kind == .clockSkew {
                // The replica's clock runs too far ahead: 409, with the server's time so the
                // replica can tell when its own clock is right again.
                metrics.count(.clockSkew)
                var headers = HTTPFields()
                headers[serverTimeHeader] = error.serverTimeMilliseconds.map { "\($0)" } ?? ""
                headers[clockSkewHeader] = error.maximumClockSkewMilliseconds.map { "\($0)" } ?? ""
                throw HTTPError(.conflict, headers: headers, message: error.message)
            } catch let error as SyncError where error.kind == .forked {
                // Another copy of the replica's file holds its session: 409, not about clocks.
                metrics.count(.forked)
                var headers = HTTPFields()
                headers[errorHeader] = "forked"
                throw HTTPError(.conflict, headers: headers, message: error.message)
            } catch let error as SyncError {
                metrics.count(.rejected)
                throw HTTPError(error.kind == .rejected ? .badRequest : .serviceUnavailable, message: error.description)
            }
        }
        router.post("v1/:database/pull") { request, context -> Response in
            let database = try authorize(request, context, tokens: tokens, needs: .read, metrics: metrics)
            let pull: PullRequest = try await decode(request, limits: wireLimits, metrics: metrics)
            do {
                let started = ContinuousClock.now
                let page = try await service.pull(database: database, pull)
                if pull.waitMilliseconds == 0 { metrics.record(metrics.pullDuration, since: started) }
                metrics.count(.pulls)
                metrics.count(.changesPulled, by: page.changes.count)
                return frame(page)
            } catch let error as SyncError where error.kind == .resync {
                // The cursor names a change this history does not hold: 410, and the replica resyncs.
                var headers = HTTPFields()
                headers[errorHeader] = "resync"
                throw HTTPError(.gone, headers: headers, message: error.message)
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

/// The server's metrics, recorded through swift-metrics and exported at `/metrics` in the
/// Prometheus text format (swift-prometheus).
///
/// Each server keeps its own registry, so several servers in one process do not mix their
/// figures; when the app has bootstrapped `MetricsSystem`, every figure goes to its backend too.
final class ServerMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let pushes: CoreMetrics.Counter
    let pulls: CoreMetrics.Counter
    let changesPushed: CoreMetrics.Counter
    let changesPulled: CoreMetrics.Counter
    let rejected: CoreMetrics.Counter
    let unauthorized: CoreMetrics.Counter
    let forbidden: CoreMetrics.Counter
    let clockSkew: CoreMetrics.Counter
    let hellos: CoreMetrics.Counter
    let forked: CoreMetrics.Counter
    let pushDuration: CoreMetrics.Timer
    let pullDuration: CoreMetrics.Timer

    init() {
        let prometheus = PrometheusMetricsFactory(registry: registry)
        let factory = MultiplexMetricsHandler(factories: [prometheus, MetricsSystem.factory])
        pushes = CoreMetrics.Counter(label: "weft_pushes_total", factory: factory)
        pulls = CoreMetrics.Counter(label: "weft_pulls_total", factory: factory)
        changesPushed = CoreMetrics.Counter(label: "weft_changes_pushed_total", factory: factory)
        changesPulled = CoreMetrics.Counter(label: "weft_changes_pulled_total", factory: factory)
        rejected = CoreMetrics.Counter(label: "weft_requests_rejected_total", factory: factory)
        unauthorized = CoreMetrics.Counter(label: "weft_requests_unauthorized_total", factory: factory)
        forbidden = CoreMetrics.Counter(label: "weft_requests_forbidden_total", factory: factory)
        clockSkew = CoreMetrics.Counter(label: "weft_clock_skew_rejections_total", factory: factory)
        hellos = CoreMetrics.Counter(label: "weft_hellos_total", factory: factory)
        forked = CoreMetrics.Counter(label: "weft_forked_replicas_total", factory: factory)
        pushDuration = CoreMetrics.Timer(label: "weft_push_duration_seconds", factory: factory)
        pullDuration = CoreMetrics.Timer(label: "weft_pull_duration_seconds", factory: factory)
    }

    enum Event { case pushes, pulls, changesPushed, changesPulled, rejected, unauthorized, forbidden, clockSkew, hellos, forked }

    func count(_ event: Event, by amount: Int = 1) {
        let counter: CoreMetrics.Counter
        switch event {
        case .pushes: counter = pushes
        case .pulls: counter = pulls
        case .changesPushed: counter = changesPushed
        case .changesPulled: counter = changesPulled
        case .rejected: counter = rejected
        case .unauthorized: counter = unauthorized
        case .forbidden: counter = forbidden
        case .clockSkew: counter = clockSkew
        case .hellos: counter = hellos
        case .forked: counter = forked
        }
        counter.increment(by: amount)
    }

    func record(_ timer: CoreMetrics.Timer, since start: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - start
        let (seconds, attoseconds) = elapsed.components
        timer.recordNanoseconds(seconds &* 1_000_000_000 &+ attoseconds / 1_000_000_000)
    }

    func render() -> String { registry.emitToString() }
}
