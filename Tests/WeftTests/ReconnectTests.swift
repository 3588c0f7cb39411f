import Foundation
import Synchronization
import Testing
import Weft
import WeftCRDT
import WeftServer
import WeftWire

/// Offline detection and reconnect: the connection state machine and the backoff.
@Suite("Reconnect")
struct ReconnectTests {
    /// Unavailable for the first `failures` requests, then the real in-process server.
    final class FlakyTransport: SyncTransport {
        let inner: InProcessTransport
        let remaining: Mutex<Int>
        init(_ inner: InProcessTransport, failures: Int) {
            self.inner = inner
            remaining = Mutex(failures)
        }
        private func fail() -> Bool {
            remaining.withLock { count in
                guard count > 0 else { return false }
                count -= 1
                return true
            }
        }
        func hello(_ request: HelloRequest) async throws(SyncError) -> HelloResponse { try await inner.hello(request) }
        func push(_ request: PushRequest) async throws(SyncError) -> PushResponse {
            if fail() { throw SyncError(.unavailable, "connection refused") }
            return try await inner.push(request)
        }
        func pull(_ request: PullRequest) async throws(SyncError) -> PullResponse {
            if fail() { throw SyncError(.unavailable, "connection refused") }
            return try await inner.pull(request)
        }
    }

    @Test func backoffGrowsIsCappedAndJittered() {
        let backoff = Backoff(initial: .milliseconds(500), multiplier: 2, maximum: .seconds(60), jitter: 0.5)
        let plain = (1...10).map { backoff.delay(afterFailures: $0, random: 0) }
        #expect(plain.prefix(4) == [.milliseconds(500), .seconds(1), .seconds(2), .seconds(4)])
        #expect(plain.last == .seconds(60), "capped")
        #expect(zip(plain, plain.dropFirst()).allSatisfy { $0 <= $1 })
        for failures in 1...12 {
            let top = backoff.delay(afterFailures: failures, random: 0)
            for random in [0.1, 0.5, 0.999] {
                let delay = backoff.delay(afterFailures: failures, random: random)
                #expect(delay <= top && delay >= top / 2, "jitter takes at most half off")
            }
        }
        #expect(Backoff(jitter: 0).delay(afterFailures: 3, random: 0.9) == .seconds(2))
    }

    @Test func theEngineGoesOfflineBacksOffAndReplaysTheQueueOnReconnect() async throws {
        let store = MemoryCentralStore()
        let service = SyncService(store: store)
        let replica = try await Replica(storage: MemoryReplicaStorage())
        let c = try replica.collection("c")
        for index in 0..<30 { try await c.create("d\(index)") { $0.increment("n", by: 1) } }
        let engine = SyncEngine(replica: replica, transport: FlakyTransport(InProcessTransport(service: service, database: "db"), failures: 3))
        let states = await engine.connectionStates()
        let delays = Mutex([Duration]())
        let loop = Task {
            await engine.runWriteBehind(
                every: .seconds(3600), backoff: Backoff(initial: .milliseconds(2), maximum: .milliseconds(8), jitter: 0),
                clock: ContinuousClock()
            ) { result in
                if case .failure = result {
                    delays.withLock { $0.append(.zero) }
                }
            }
        }
        var seen = [ConnectionState]()
        for await state in states {
            seen.append(state)
            if state == .online { break }
        }
        loop.cancel()
        await loop.value
        #expect(seen == [.offline, .syncing, .offline, .syncing, .offline, .syncing, .offline, .syncing, .online])
        #expect(delays.withLock { $0.count } == 3)
        #expect(try await replica.queuedChanges().isEmpty)
        let central = await store.changes(database: "db", after: 0, limit: 100, maxBytes: 1 << 20).changes
        #expect(central.map(\.key.id.rawValue) == (0..<30).map { "d\($0)" }, "replayed in sequence order")
    }
}
