import AsyncHTTPClient
import Foundation
import NIOCore
import Testing
import Weft
import WeftServer
import WeftWire

@testable import WeftHTTP

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A connection the other end resets under a request (a pooled keep-alive connection a server or
/// a middlebox dropped) is tried once more on a fresh one: every request is idempotent. The full
/// suite once failed a sync round on exactly that (`connection reset by peer` on a hello).
@Suite("Connections reset under a request")
struct ConnectionResetTests {
    @Test func whatCountsAsAConnectionClosedUnderARequest() {
        #expect(HTTPTransport.closedUnderRequest(HTTPClientError.remoteConnectionClosed))
        #expect(HTTPTransport.closedUnderRequest(IOError(errnoCode: ECONNRESET, reason: "read")))
        #expect(HTTPTransport.closedUnderRequest(IOError(errnoCode: EPIPE, reason: "write")))
        #expect(HTTPTransport.closedUnderRequest(ChannelError.eof))
        // A server that is down, or slow, waits for the sync loop's backoff.
        #expect(!HTTPTransport.closedUnderRequest(IOError(errnoCode: ECONNREFUSED, reason: "connect")))
        #expect(!HTTPTransport.closedUnderRequest(HTTPClientError.readTimeout))
        #expect(!HTTPTransport.closedUnderRequest(HTTPClientError.deadlineExceeded))
        #expect(!HTTPTransport.closedUnderRequest(SyncError(.unavailable, "down")))
    }
    // The retry itself, on both transports: TransportContractTests.aResetConnectionIsTriedOnceMore.
}

/// A TCP proxy on loopback, on plain sockets and a thread of its own: the first connection is
/// reset (SO_LINGER 0, then close) once bytes arrive on it; later ones are relayed to `target`.
final class ResettingProxy: @unchecked Sendable {
    // Written by the proxy thread, read by the test after the exchange: guarded by `lock`.
    private let lock = NSLock()
    private var accepted = 0
    private var stopped = false
    private let listener: Int32
    let port: Int

    var connections: Int { lock.withLock { accepted } }

    init(target: Int) throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(descriptor, 8) == 0 else { throw POSIXError(.EADDRINUSE) }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        listener = descriptor
        port = Int(UInt16(bigEndian: address.sin_port))
        let thread = Thread { [self] in self.run(target: target) }
        thread.start()
    }

    func stop() {
        lock.withLock { stopped = true }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    private func run(target: Int) {
        while true {
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { return }
            let number = lock.withLock { () -> Int in
                accepted += 1
                return accepted
            }
            if number == 1 {
                var byte: UInt8 = 0
                _ = read(connection, &byte, 1)
                var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
                setsockopt(
                    connection, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
                close(connection)
                continue
            }
            let upstream = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = UInt16(target).bigEndian
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(upstream, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            guard connected == 0 else {
                close(connection)
                close(upstream)
                continue
            }
            Thread { Self.relay(connection, upstream) }.start()
        }
    }

    /// Copies bytes both ways until either side closes.
    private static func relay(_ a: Int32, _ b: Int32) {
        var fds = [
            pollfd(fd: a, events: Int16(POLLIN), revents: 0),
            pollfd(fd: b, events: Int16(POLLIN), revents: 0),
        ]
        var buffer = [UInt8](repeating: 0, count: 65_536)
        loop: while poll(&fds, 2, 30_000) > 0 {
            for (index, descriptor) in fds.enumerated() where descriptor.revents != 0 {
                let count = read(descriptor.fd, &buffer, buffer.count)
                if count <= 0 { break loop }
                let other = index == 0 ? b : a
                var sent = 0
                while sent < count {
                    // send with MSG_NOSIGNAL: a peer gone must not raise SIGPIPE in the test process.
                    let written = buffer.withUnsafeBytes { bytes in
                        bytes.baseAddress.map { send(other, $0 + sent, count - sent, Int32(MSG_NOSIGNAL)) }
                            ?? -1
                    }
                    if written <= 0 { break loop }
                    sent += written
                }
            }
        }
        close(a)
        close(b)
    }
}
