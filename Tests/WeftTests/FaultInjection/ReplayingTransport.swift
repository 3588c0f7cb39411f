import Foundation
import Synchronization
import Weft
import WeftHTTP
import WeftWire

/// A transport that sometimes sends a push twice, and sometimes sends an old push again (late):
/// real frames through the same proxy, to a server that must apply each change once.
final class ReplayingTransport: SyncTransport {
    let inner: HTTPTransport
    let state: Mutex<(random: SeededRandom, old: [PushRequest], duplicates: Int, replays: Int)>

    init(_ inner: HTTPTransport, seed: UInt64) {
        self.inner = inner
        state = Mutex((SeededRandom(seed: seed), [], 0, 0))
    }

    func hello(_ request: HelloRequest) async throws(SyncError) -> HelloResponse { try await inner.hello(request) }

    func push(_ request: PushRequest) async throws(SyncError) -> PushResponse {
        let (duplicate, late) = state.withLock { state -> (Bool, PushRequest?) in
            let roll = state.random.next() % 100
            if state.old.count >= 8 { state.old.removeFirst() }
            let late = roll >= 80 && !state.old.isEmpty ? state.old[Int(state.random.next() % UInt64(state.old.count))] : nil
            state.old.append(request)
            if roll < 20 { state.duplicates += 1 }
            if late != nil { state.replays += 1 }
            return (roll < 20, late)
        }
        if let late { _ = try? await inner.push(late) }
        let answer = try await inner.push(request)
        return duplicate ? try await inner.push(request) : answer
    }

    func pull(_ request: PullRequest) async throws(SyncError) -> PullResponse { try await inner.pull(request) }

    var counts: (duplicates: Int, replays: Int) { state.withLock { ($0.duplicates, $0.replays) } }
}
