import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A seeded random number generator (SplitMix64): the same seed gives the same run.
struct SeededRandom: RandomNumberGenerator, Sendable {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A TCP proxy on loopback between clients and one or more servers, which injects network
/// faults: a connection cut after some bytes of a request (the server never sees it whole), cut
/// after some bytes of a response (the server committed, the client never learns it), refused
/// while a partition lasts. Which connection gets which fault is drawn from a seeded generator,
/// so a run replays; the threads' timing is not seeded, so a replay repeats the faults, not
/// every interleaving.
final class FaultProxy: @unchecked Sendable {
    enum Fault: Sendable, Hashable {
        case none
        case cutRequest(afterBytes: Int)
        case cutResponse(afterBytes: Int)
        case refused
    }

    struct State {
        var upstreams: [Int]
        var partitioned = false
        var random: SeededRandom
        var faultRate: Double
        var counts: [String: Int] = [:]
    }

    let port: Int
    private let listener: Int32
    private let state: Mutex<State>

    init(upstreams: [Int], seed: UInt64, faultRate: Double) throws {
        state = Mutex(State(upstreams: upstreams, random: SeededRandom(seed: seed), faultRate: faultRate))
        let (descriptor, port) = try OfflineTests.boundLoopbackSocket()
        guard listen(descriptor, 128) == 0 else {
            close(descriptor)
            throw OfflineTests.TestFailure("the proxy cannot listen")
        }
        listener = descriptor
        self.port = port
        let thread = Thread { [self] in acceptLoop() }
        thread.start()
    }

    var baseURL: String { "http://127.0.0.1:\(port)" }

    /// While partitioned, every new connection is closed at once.
    func setPartitioned(_ partitioned: Bool) { state.withLock { $0.partitioned = partitioned } }

    /// The fraction of connections that get a cut (0 heals the network).
    func setFaultRate(_ rate: Double) { state.withLock { $0.faultRate = rate } }

    /// How many connections got each kind of fault so far.
    var counts: [String: Int] { state.withLock { $0.counts } }

    /// Stops accepting (connections in progress go on until they end).
    func stop() { shutdown(listener, Int32(SHUT_RDWR)); close(listener) }

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            guard client >= 0 else {
                if errno == EINTR { continue }
                return
            }
            let (fault, upstream) = state.withLock { state -> (Fault, Int) in
                let upstream = state.upstreams[Int(state.random.next() % UInt64(state.upstreams.count))]
                var fault = Fault.none
                if state.partitioned {
                    fault = .refused
                } else if Double(state.random.next() % 10_000) / 10_000 < state.faultRate {
                    let bytes = Int(state.random.next() % 900)
                    fault = state.random.next() % 2 == 0 ? .cutRequest(afterBytes: bytes) : .cutResponse(afterBytes: bytes % 300)
                }
                let name: String
                switch fault {
                case .none: name = "clean"
                case .cutRequest: name = "cut request"
                case .cutResponse: name = "cut response"
                case .refused: name = "refused"
                }
                state.counts[name, default: 0] += 1
                return (fault, upstream)
            }
            if fault == .refused {
                close(client)
                continue
            }
            Thread { Self.serve(client: client, upstream: upstream, fault: fault) }.start()
        }
    }

    private static func serve(client: Int32, upstream port: Int, fault: Fault) {
        guard let upstream = connectToLoopback(port: port) else {
            close(client)
            return
        }
        let remaining = Mutex(2)
        @Sendable func finish() {
            shutdown(client, Int32(SHUT_RDWR))
            shutdown(upstream, Int32(SHUT_RDWR))
            if remaining.withLock({ $0 -= 1; return $0 }) == 0 {
                close(client)
                close(upstream)
            }
        }
        var limits = (request: Int.max, response: Int.max)
        if case .cutRequest(let bytes) = fault { limits.request = bytes }
        if case .cutResponse(let bytes) = fault { limits.response = bytes }
        let (requestLimit, responseLimit) = limits
        Thread {
            pump(from: client, to: upstream, limit: requestLimit)
            finish()
        }.start()
        pump(from: upstream, to: client, limit: responseLimit)
        finish()
    }

    /// Copies bytes until either side closes, or until `limit` bytes have passed.
    private static func pump(from source: Int32, to destination: Int32, limit: Int) {
        var buffer = [UInt8](repeating: 0, count: 16_384)
        var passed = 0
        while passed < limit {
            let count = buffer.withUnsafeMutableBytes { recv(source, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { return }
            let allowed = min(count, limit - passed)
            var sent = 0
            while sent < allowed {
                let written = buffer.withUnsafeBytes { send(destination, $0.baseAddress! + sent, allowed - sent, Int32(MSG_NOSIGNAL)) }
                guard written > 0 else { return }
                sent += written
            }
            passed += allowed
        }
    }
}
