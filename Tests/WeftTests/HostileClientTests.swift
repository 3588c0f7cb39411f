import Dispatch
import Foundation
import Testing
import Weft
import WeftCRDT
import WeftServer
import WeftWire

#if canImport(Glibc)
import Glibc
#endif

/// A TCP connection to `port` on 127.0.0.1, or `nil` if nothing accepts it.
func connectToLoopback(port: Int) -> Int32? {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { return nil }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    let connected = withUnsafePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
    }
    guard connected else {
        close(descriptor)
        return nil
    }
    return descriptor
}

/// A plain TCP client on loopback, for requests no HTTP library would send: headers a byte at a
/// time, a body that never comes, a connection dropped mid-wait.
final class RawClient: @unchecked Sendable {
    let descriptor: Int32

    init(port: Int) throws {
        guard let connected = connectToLoopback(port: port) else { throw TestPostgres.TestFailure("connect() failed") }
        descriptor = connected
        // A guard, not a deadline a test waits for: no read blocks longer than a minute.
        var timeout = timeval(tv_sec: 60, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Sends `bytes`; false if the connection is gone.
    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == bytes.count
    }

    func send(_ text: String) -> Bool { send(Array(text.utf8)) }

    /// Reads until the server closes the connection (or the one-minute guard passes): what
    /// arrived, and whether it was closed.
    func readUntilClosed() async -> (text: String, closed: Bool) {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                var received = [UInt8]()
                var buffer = [UInt8](repeating: 0, count: 4096)
                while true {
                    let count = buffer.withUnsafeMutableBytes { recv(self.descriptor, $0.baseAddress, $0.count, 0) }
                    if count > 0 { received += buffer[0..<count]; continue }
                    // 0: closed by the server; -1: reset (also closed) or the guard passed.
                    let closed = count == 0 || errno == ECONNRESET
                    continuation.resume(returning: (String(decoding: received, as: UTF8.self), closed))
                    return
                }
            }
        }
    }

    deinit { close(descriptor) }
}

/// Issue #14, points 2 and 3: a hostile or vanished client never holds server resources
/// unbounded, and the server keeps serving others.
@Suite("Hostile and vanished clients", .serialized)
struct HostileClientTests {
    static func pullBytes(wait: UInt32) -> [UInt8] {
        WireMessage.encode(PullRequest(after: 0, waitMilliseconds: wait))
    }

    static func head(_ path: String, length: Int, token: String = RunningServer.writeToken) -> String {
        "POST \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\nContent-Length: \(length)\r\n\r\n"
    }

    /// Polls `condition` until it holds, for at most a minute (a guard: the events tested come
    /// within milliseconds on a quiet machine).
    static func eventually(_ condition: () async throws -> Bool) async throws -> Bool {
        let start = ContinuousClock.now
        while ContinuousClock.now - start < .seconds(60) {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(20))
        }
        return false
    }

    /// A pull asking to wait ten minutes is answered after `max_long_poll_ms`.
    @Test func aLongPollIsCappedByTheServer() async throws {
        var limits = ServerLimits()
        limits.maxLongPollMilliseconds = 200
        let server = try await RunningServer.start(store: MemoryCentralStore(), limits: limits)
        let (status, body) = try await server.postFrame("/v1/mydb/pull", Self.pullBytes(wait: 600_000))
        #expect(status == 200)
        let page = try WireMessage.decode(PullResponse.self, from: body)
        #expect(page.changes.isEmpty)
        await server.stop()
    }

    /// Fifty clients start long-polls and vanish: every wait ends with its connection, and the
    /// server answers the next client at once.
    @Test func abandonedLongPollsEndWithTheirConnections() async throws {
        var limits = ServerLimits()
        limits.maxLongPollMilliseconds = 600_000
        let server = try await RunningServer.start(store: MemoryCentralStore(), limits: limits)
        let body = Self.pullBytes(wait: 600_000)
        var clients = [RawClient]()
        for _ in 0..<50 {
            let client = try RawClient(port: server.port)
            #expect(client.send(Self.head("/v1/mydb/pull", length: body.count)) && client.send(body))
            clients.append(client)
        }
        let service = server.running.service
        #expect(try await Self.eventually { await service.waitingPulls == 50 }, "the polls never started waiting")
        clients.removeAll()  // closes the connections
        let ended = try await Self.eventually { await service.waitingPulls == 0 }
        let left = await service.waitingPulls
        #expect(ended, "abandoned polls still wait: \(left)")
        let (status, _) = try await server.post("/v1/mydb/pull", WireMessage.encode(PullRequest(after: 0)))
        #expect(status == 200)
        await server.stop()
    }

    /// Watching a long-poll's connection takes over its input, so the answer says
    /// `Connection: close` and a pooled client opens a new connection for its next request
    /// instead of failing on the closed one; a pull without a wait keeps its connection.
    @Test func aLongPollSaysItClosesItsConnection() async throws {
        var limits = ServerLimits()
        limits.maxLongPollMilliseconds = 50
        let server = try await RunningServer.start(store: MemoryCentralStore(), limits: limits)
        let body = Self.pullBytes(wait: 60_000)
        let raw = try RawClient(port: server.port)
        #expect(raw.send(Self.head("/v1/mydb/pull", length: body.count)) && raw.send(body))
        let (text, closed) = await raw.readUntilClosed()
        #expect(text.hasPrefix("HTTP/1.1 200") && text.lowercased().contains("connection: close"), "\(text.prefix(300))")
        #expect(closed)
        for round in 0..<30 {
            let (polled, _) = try await server.postFrame("/v1/mydb/pull", Self.pullBytes(wait: 1))
            let (pulled, _) = try await server.postFrame("/v1/mydb/pull", Self.pullBytes(wait: 0))
            #expect(polled == 200 && pulled == 200, "round \(round)")
        }
        await server.stop()
    }

    /// A graceful shutdown answers waiting pulls at once instead of waiting out their long-poll.
    @Test func aGracefulShutdownAnswersWaitingPulls() async throws {
        var limits = ServerLimits()
        limits.maxLongPollMilliseconds = 600_000
        let server = try await RunningServer.start(store: MemoryCentralStore(), limits: limits)
        let poll = Task { try await server.postFrame("/v1/mydb/pull", Self.pullBytes(wait: 600_000)) }
        let service = server.running.service
        #expect(try await Self.eventually { await service.waitingPulls == 1 })
        let stopped = Task { await server.stop() }
        let (status, body) = try await poll.value
        #expect(status == 200)
        #expect(try WireMessage.decode(PullResponse.self, from: body).changes.isEmpty)
        await stopped.value
    }

    /// Headers a byte at a time: the connection is closed after `header_timeout_ms`, while
    /// another client is served meanwhile.
    @Test func slowHeadersAreCutOff() async throws {
        var limits = ServerLimits()
        limits.headerTimeoutMilliseconds = 500
        let server = try await RunningServer.start(store: MemoryCentralStore(), limits: limits)
        let slow = try RawClient(port: server.port)
        let dripping = Task.detached {
            for byte in Array(Self.head("/v1/mydb/pull", length: 10).utf8) {
                guard slow.send([byte]) else { return }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        let (status, _) = try await server.post("/v1/mydb/pull", WireMessage.encode(PullRequest(after: 0)))
        #expect(status == 200, "another client was not served")
        let (_, closed) = await slow.readUntilClosed()
        #expect(closed, "a client dripping its headers kept the connection")
        dripping.cancel()
        await server.stop()
    }

    /// A silent connection is closed after `idle_timeout_ms`.
    @Test func silentConnectionsAreClosed() async throws {
        var limits = ServerLimits()
        limits.idleTimeoutMilliseconds = 300
        limits.headerTimeoutMilliseconds = 3_600_000
        let server = try await RunningServer.start(store: MemoryCentralStore(), limits: limits)
        let silent = try RawClient(port: server.port)
        let (_, closed) = await silent.readUntilClosed()
        #expect(closed)
        await server.stop()
    }

    /// A `Content-Length` over `max_request_bytes` is refused with 413 before the body is read,
    /// and the connection is closed: the client need not send a byte of it.
    @Test func anOverSizeDeclaredLengthIsRefusedAtOnce() async throws {
        let server = try await RunningServer.start(store: MemoryCentralStore(), limits: ServerLimits(maxRequestBytes: 64 << 10))
        let liar = try RawClient(port: server.port)
        #expect(liar.send(Self.head("/v1/mydb/push", length: 1 << 30)))
        let (text, closed) = await liar.readUntilClosed()
        #expect(text.hasPrefix("HTTP/1.1 413"), "\(text.prefix(200))")
        #expect(text.contains("max_request_bytes"))
        #expect(closed, "the server kept reading an over-size body")
        await server.stop()
    }
}
