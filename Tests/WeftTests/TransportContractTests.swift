import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import Testing
import Weft
import WeftCRDT
import WeftHTTP
import WeftServer
import WeftURLSession
import WeftWire

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// The two client transports: AsyncHTTPClient (servers, the CLI) and URLSession (apps).
enum TransportKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case asyncHTTPClient
    case urlSession

    var testDescription: String { rawValue }

    func make(
        // Five minutes by default: a guard against a hang, not a measure (the full suite on two
        // busy cores once kept a server from answering one request for a minute).
        _ baseURL: String, database: String = "mydb", token: String? = RunningServer.writeToken, timeout: Duration = .seconds(300),
        limits: WireLimits = .default, rawFrames: Bool = false
    ) -> any SyncTransport {
        switch self {
        case .asyncHTTPClient:
            let amount = TimeAmount.nanoseconds(timeout.components.seconds * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000)
            var transport = HTTPTransport(baseURL: baseURL, database: database, token: token, timeout: amount, limits: limits)
            transport.rawFrames = rawFrames
            return transport
        case .urlSession:
            // Test URLs are literals of this file.
            guard let url = URL(string: baseURL) else { preconditionFailure("bad test URL \(baseURL)") }
            var transport = URLSessionTransport(baseURL: url, database: database, token: token, timeout: timeout, limits: limits)
            transport.rawFrames = rawFrames
            return transport
        }
    }
}

/// The ``SyncTransport`` contract, run against both client transports over a real server on
/// loopback (and, for answers no real server gives, a scripted one): the same requests, the same
/// answers, the same errors.
@Suite("The transport contract, on both client transports", .serialized)
struct TransportContractTests {
    static let replica = ReplicaID(high: 7, low: 7)

    static func change(_ sequence: UInt64, _ id: String, wall: UInt64 = 1) -> WireChange {
        let stamp = HLCTimestamp(wallMilliseconds: wall, counter: 0, replica: replica)
        var body = Document()
        body.set("v", to: .string(id), at: stamp)
        let record = DocumentRecord(body: body, deletion: LWWRegister(false, stamp: stamp), version: VersionVector([replica: sequence]))
        return WireChange(sequence: sequence, key: WireKey(collection: "c", id: id), record: record)
    }

    /// The error `body` throws (a transport throws only ``SyncError``), `nil` if it returns.
    static func failure<T>(_ body: () async throws -> T) async -> SyncError? {
        do {
            _ = try await body()
            return nil
        } catch let error as SyncError {
            return error
        } catch {
            Issue.record("not a SyncError: \(error)")
            return nil
        }
    }

    /// Whether a pull waits on `server` within a minute (a guard against a hang, not a measure).
    static func aPullWaits(on server: RunningServer, count: Int = 1) async throws -> Bool {
        for _ in 0..<12_000 {
            if await server.running.service.waitingPulls >= count { return true }
            try await Task.sleep(for: .milliseconds(5))
        }
        return false
    }

    /// Rule 0 to 2: a session opens, a push is applied once however often it is sent, and pulls
    /// return the changes in order after a cursor, once each.
    @Test(arguments: TransportKind.allCases)
    func helloPushAndPull(_ kind: TransportKind) async throws {
        let server = try await RunningServer.start(store: MemoryCentralStore())
        let transport = kind.make(server.baseURL)
        let hello = try await transport.hello(HelloRequest(replica: Self.replica, confirmedEpoch: 0, epoch: 3))
        #expect(hello.status == .accepted && hello.appliedThrough == 0)
        var push = PushRequest(replica: Self.replica, changes: [Self.change(1, "a"), Self.change(2, "b")])
        push.epoch = 3
        push.receipt = 77
        let first = try await transport.push(push)
        #expect(first.appliedThrough == 2 && first.rejected.isEmpty)
        #expect(first.receipt == PushReceipt(previous: 0, current: 77))
        // Sent again (its answer lost): applied once, the same answer.
        let again = try await transport.push(push)
        #expect(again.appliedThrough == 2 && again.receipt == first.receipt)
        #expect(try await server.store.changes(database: "mydb", after: 0, limit: 10, maxBytes: 1 << 20).changes.count == 2)

        let page = try await transport.pull(PullRequest(after: 0))
        #expect(page.changes.map(\.key.id) == ["a", "b"] && !page.hasMore)
        let rest = try await transport.pull(PullRequest(after: page.cursor))
        #expect(rest.changes.isEmpty && rest.cursor == page.cursor)
        // Small pages: every change once, in order.
        var cursor: UInt64 = 0
        var ids = [String]()
        while true {
            let small = try await transport.pull(PullRequest(after: cursor, maximumChanges: 1))
            ids += small.changes.map(\.key.id)
            cursor = small.cursor
            if !small.hasMore { break }
        }
        #expect(ids == ["a", "b"])
        #expect(try await transport.hello(HelloRequest(replica: Self.replica, confirmedEpoch: 3, epoch: 3)).receipt == 77)
        await server.stop()
    }

    /// Rule 2: a pull that may wait answers as soon as another client's change arrives; and
    /// cancelling the task of a waiting pull ends it at once (`requestSync()` relies on this).
    @Test(arguments: TransportKind.allCases)
    func aWaitingPullAnswersAChangeAndEndsWhenCancelled(_ kind: TransportKind) async throws {
        let server = try await RunningServer.start(store: MemoryCentralStore())
        let transport = kind.make(server.baseURL)
        let waiting = Task { try await transport.pull(PullRequest(after: 0, waitMilliseconds: 50_000)) }
        #expect(try await Self.aPullWaits(on: server))
        _ = try await kind.make(server.baseURL).push(PushRequest(replica: Self.replica, changes: [Self.change(1, "a")]))
        let answered = try await waiting.value
        #expect(answered.changes.map(\.key.id) == ["a"])

        let started = ContinuousClock.now
        let cancelled = Task { try await transport.pull(PullRequest(after: answered.cursor, waitMilliseconds: 50_000)) }
        #expect(try await Self.aPullWaits(on: server))
        cancelled.cancel()
        let outcome = await cancelled.result
        // The wait was 50 s; a request that ignored cancellation would answer then, with no change.
        #expect(ContinuousClock.now - started < .seconds(40))
        guard case .failure(let error) = outcome, let error = error as? SyncError else {
            Issue.record("a cancelled pull answered: \(outcome)")
            await server.stop()
            return
        }
        #expect(error.kind == .unavailable && error.message.hasSuffix("the request was cancelled"), "\(error)")
        await server.stop()
    }

    /// Rule 3, and the status codes of `Docs/Protocol.md`, from a real server.
    @Test(arguments: TransportKind.allCases)
    func refusalsHaveTheirKinds(_ kind: TransportKind) async throws {
        let server = try await RunningServer.start(store: MemoryCentralStore())
        let pull = PullRequest(after: 0)
        let push = PushRequest(replica: Self.replica, changes: [Self.change(1, "a")])
        #expect(await Self.failure { try await kind.make(server.baseURL, token: "wrong-token-0123456789").pull(pull) }?.kind == .unauthorized)
        #expect(await Self.failure { try await kind.make(server.baseURL, token: nil).pull(pull) }?.kind == .unauthorized)
        #expect(await Self.failure { try await kind.make(server.baseURL, database: "other").pull(pull) }?.kind == .unauthorized)
        #expect(await Self.failure { try await kind.make(server.baseURL, token: RunningServer.readToken).push(push) }?.kind == .unauthorized)
        let transport = kind.make(server.baseURL)
        // A cursor beyond the server's history: the server was restored, resync.
        #expect(await Self.failure { try await transport.pull(PullRequest(after: 500, afterTag: 99)) }?.kind == .resync)
        // A push expecting more than the server holds: forked, nothing applied.
        var expecting = push
        expecting.expectedAppliedThrough = 40
        #expect(await Self.failure { try await transport.push(expecting) }?.kind == .forked)
        // Stamps ten days ahead of the server's clock: clock skew, with the server's time.
        let ahead = UInt64(Date().timeIntervalSince1970 * 1_000) + 10 * 86_400_000
        let skewed = await Self.failure { try await transport.push(PushRequest(replica: Self.replica, changes: [Self.change(1, "a", wall: ahead)])) }
        #expect(skewed?.kind == .clockSkew && skewed?.serverTimeMilliseconds != nil && skewed?.maximumClockSkewMilliseconds != nil, "\(String(describing: skewed))")
        // A database name the server refuses: 400, rejected.
        #expect(await Self.failure { try await kind.make(server.baseURL, database: "bad%20name").pull(pull) }?.kind == .rejected)
        #expect(try await server.store.changes(database: "mydb", after: 0, limit: 10, maxBytes: 1 << 20).changes.isEmpty)
        await server.stop()
    }

    /// A refused connection: unavailable, in one sentence.
    @Test(arguments: TransportKind.allCases)
    func aServerThatIsDownIsUnavailable(_ kind: TransportKind) async throws {
        let error = await Self.failure { try await kind.make("http://127.0.0.1:1").hello(HelloRequest(replica: Self.replica, confirmedEpoch: 0, epoch: 1)) }
        #expect(error?.kind == .unavailable)
        #expect(error?.message == "hello to http://127.0.0.1:1 failed: nothing accepted the connection (is the server running?)", "\(String(describing: error))")
    }

    /// Answers no Weft server gives, from a scripted one: each is an error of the right kind,
    /// never a crash or a wrong response.
    @Test(arguments: TransportKind.allCases)
    func answersNoServerShouldGive(_ kind: TransportKind) async throws {
        let pullBody = WireMessage.encode(PullResponse(changes: [], cursor: 0, hasMore: false))
        let server = try await ScriptedServer.start { operation in
            switch operation {
            case "hello": ScriptedServer.Answer(status: 200, body: Array("not a frame".utf8))
            case "push": ScriptedServer.Answer(status: 200, headers: [("Weft-Receipt", "x12"), ("Weft-Receipt-Previous", "1")], body: WireMessage.encode(PushResponse(appliedThrough: 1)))
            case "pull": ScriptedServer.Answer(status: 200, body: pullBody + [UInt8](repeating: 0, count: 300_000))
            default: ScriptedServer.Answer(status: 503, body: Array("down for maintenance".utf8))
            }
        }
        let transport = kind.make(server.baseURL, limits: WireLimits(maximumFrameBytes: 100_000))
        let hello = await Self.failure { try await transport.hello(HelloRequest(replica: Self.replica, confirmedEpoch: 0, epoch: 1)) }
        #expect(hello?.kind == .badResponse, "\(String(describing: hello))")
        let push = await Self.failure { try await transport.push(PushRequest(replica: Self.replica, changes: [Self.change(1, "a")])) }
        #expect(push?.kind == .badResponse && push?.message.contains("Weft-Receipt") == true, "\(String(describing: push))")
        let pull = await Self.failure { try await transport.pull(PullRequest(after: 0)) }
        #expect(pull?.kind == .badResponse && pull?.message.contains("larger than the limit of 100000 bytes") == true, "\(String(describing: pull))")
        let other = await Self.failure { try await kind.make(server.baseURL, database: "down").pull(PullRequest(after: 0)) }
        #expect(other?.kind == .unavailable && other?.message.contains("503 down for maintenance") == true, "\(String(describing: other))")
        await server.stop()
    }

    /// A server slower than the deadline: unavailable, "did not answer in time"; and a large
    /// body goes out at once, without an `Expect: 100-continue` round (a client that waited for
    /// `100 Continue` would lose a second per large push).
    @Test(arguments: TransportKind.allCases)
    func aSlowServerMissesTheDeadline(_ kind: TransportKind) async throws {
        let sawExpect = Mutex(false)
        let server = try await ScriptedServer.start { operation in
            if operation == "pull" { return ScriptedServer.Answer(status: 200, delay: .seconds(2), body: []) }
            return ScriptedServer.Answer(status: 200, body: WireMessage.encode(PushResponse(appliedThrough: 1)))
        } observe: { headers, _ in
            if headers.contains(where: { $0.0.lowercased() == "expect" && !$0.1.isEmpty }) { sawExpect.withLock { $0 = true } }
        }
        let transport = kind.make(server.baseURL, timeout: .milliseconds(300))
        let slow = await Self.failure { try await transport.pull(PullRequest(after: 0)) }
        #expect(slow?.kind == .unavailable && slow?.message.hasSuffix("the server did not answer in time") == true, "\(String(describing: slow))")
        // 1.6 MB of body.
        let big = PushRequest(replica: Self.replica, changes: (1...40).map { Self.change(UInt64($0), String(repeating: "x", count: 40_000) + "\($0)") })
        let patient = kind.make(server.baseURL, timeout: .seconds(60))
        #expect(try await patient.push(big).appliedThrough == 1)
        #expect(!sawExpect.withLock { $0 })
        await server.stop()
    }

    /// A build without zstd (Apple platforms) sends raw frames and asks for raw answers, and the
    /// server answers so: the whole exchange works with no compressed byte either way.
    @Test(arguments: TransportKind.allCases)
    func aClientWithoutZstdExchangesRawFrames(_ kind: TransportKind) async throws {
        let seen = Mutex<[(headers: [(String, String)], body: [UInt8])]>([])
        let scripted = try await ScriptedServer.start { _ in
            ScriptedServer.Answer(status: 200, body: WireMessage.encode(PushResponse(appliedThrough: 40)))
        } observe: { headers, body in
            seen.withLock { $0.append((headers, body)) }
        }
        let batch = PushRequest(replica: Self.replica, changes: (1...40).map { Self.change(UInt64($0), "same-prefix-\($0)") })
        _ = try await kind.make(scripted.baseURL, rawFrames: true).push(batch)
        _ = try await kind.make(scripted.baseURL).push(batch)
        await scripted.stop()
        let requests = seen.withLock { $0 }
        #expect(requests.count == 2)
        if requests.count == 2 {
            #expect(requests[0].headers.contains { $0.0.lowercased() == "weft-accept-codec" && $0.1 == "none" })
            #expect(requests[0].body[4] == 0, "the raw client's push is not compressed")
            #expect(!requests[1].headers.contains { $0.0.lowercased() == "weft-accept-codec" })
            #expect(requests[1].body[4] == 1, "a client with zstd compresses a large push")
        }
        // A real server answers raw frames to such a client.
        let server = try await RunningServer.start(store: MemoryCentralStore())
        _ = try await kind.make(server.baseURL, rawFrames: true).push(batch)
        let page = try await kind.make(server.baseURL, rawFrames: true).pull(PullRequest(after: 0))
        #expect(page.changes.count == 40)
        let request = WireMessage.encode(PullRequest(after: 0), compressing: false)
        let (_, raw) = try await server.postFrame("/v1/mydb/pull", request, headers: [("Weft-Accept-Codec", "none")])
        let (_, compressed) = try await server.postFrame("/v1/mydb/pull", request)
        #expect(raw[4] == 0 && compressed[4] == 1, "the answer is raw only when asked")
        await server.stop()
    }

    /// A server without zstd answers a compressed push 415 with `Weft-Accept-Codec: none`, and a
    /// client with zstd sends it again raw: the push is applied, nothing is refused.
    @Test(arguments: TransportKind.allCases)
    func aServerWithoutZstdGetsRawRequests(_ kind: TransportKind) async throws {
        var limits = ServerLimits()
        limits.readsCompressedFrames = false
        let server = try await RunningServer.start(store: MemoryCentralStore(), limits: limits)
        let batch = PushRequest(replica: Self.replica, changes: (1...40).map { Self.change(UInt64($0), "same-prefix-\($0)") })
        let (status, _) = try await server.postFrame("/v1/mydb/push", WireMessage.encode(batch))
        #expect(status == 415, "a compressed frame this server cannot read")
        let answer = try await kind.make(server.baseURL).push(batch)
        #expect(answer.appliedThrough == 40 && answer.rejected.isEmpty)
        #expect(try await server.store.changes(database: "mydb", after: 0, limit: 100, maxBytes: 1 << 20).changes.count == 40)
        await server.stop()
    }

    /// A connection reset as a request arrives is tried once more, on a fresh connection.
    @Test(arguments: TransportKind.allCases)
    func aResetConnectionIsTriedOnceMore(_ kind: TransportKind) async throws {
        let server = try await RunningServer.start(store: MemoryCentralStore())
        let proxy = try ResettingProxy(target: server.port)
        let outcome: Result<HelloResponse, SyncError>
        do {
            outcome = .success(try await kind.make("http://127.0.0.1:\(proxy.port)").hello(HelloRequest(replica: .random(), confirmedEpoch: 0, epoch: 1)))
        } catch {
            outcome = .failure(error)
        }
        proxy.stop()
        await server.stop()
        #expect(try outcome.get().status == .accepted)
        #expect(proxy.connections == 2, "the reset connection, then the one the retry opened")
    }
}

/// An HTTP server on loopback that answers each sync operation as a test scripts it.
struct ScriptedServer {
    struct Answer: Sendable {
        var status: Int
        var headers: [(String, String)] = []
        var delay: Duration = .zero
        var body: [UInt8]
    }

    let port: Int
    private let group: ServiceGroup
    private let task: Task<Void, any Error>
    var baseURL: String { "http://127.0.0.1:\(port)" }

    /// Starts the server: `answer` gets the path's last part (`hello`, `push`, `pull`; another
    /// for any other path), `observe` every request's headers.
    static func start(
        _ answer: @escaping @Sendable (String) -> Answer, observe: @escaping @Sendable ([(String, String)], [UInt8]) -> Void = { _, _ in }
    ) async throws -> ScriptedServer {
        let router = Router()
        router.post("/v1/:database/:operation") { request, context -> Response in
            let body = try await request.body.collect(upTo: 16 << 20)
            observe(request.headers.map { ($0.name.rawName, $0.value) }, Array(buffer: body))
            let database = context.parameters.get("database") ?? ""
            let operation = database == "mydb" ? context.parameters.get("operation") ?? "" : "other"
            let scripted = answer(operation)
            if scripted.delay > .zero { try await Task.sleep(for: scripted.delay) }
            var headers = HTTPFields()
            for (name, value) in scripted.headers {
                if let field = HTTPField.Name(name) { headers[field] = value }
            }
            return Response(
                status: HTTPResponse.Status(code: scripted.status), headers: headers,
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: scripted.body)))
        }
        var quiet = Logger(label: "weft.test.scripted")
        quiet.logLevel = .critical
        let (ports, ready) = AsyncStream<Int>.makeStream()
        let app = Application(
            router: router, configuration: ApplicationConfiguration(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in
                ready.yield(channel.localAddress?.port ?? 0)
                ready.finish()
            }, logger: quiet)
        let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: quiet))
        let task = Task { try await group.run() }
        var port = 0
        for await bound in ports {
            port = bound
            break
        }
        return ScriptedServer(port: port, group: group, task: task)
    }

    func stop() async {
        await group.triggerGracefulShutdown()
        _ = await task.result
    }
}
