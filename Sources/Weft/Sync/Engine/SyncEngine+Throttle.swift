import Foundation
import Logging
import Synchronization
import WeftCRDT
import WeftWire

// Bandwidth limits and progress events.
extension SyncEngine {
    /// Limits the bytes sent and received (framed, as on the wire) with a token bucket; `nil` or a
    /// rate of 0 removes the limit. Under a limit, push batches and pull pages shrink to fit the
    /// burst.
    public func setBandwidthLimit(_ limit: BandwidthLimit?) {
        guard let limit, !limit.isUnlimited else {
            bandwidthLimit = nil
            bucket = nil
            return
        }
        bandwidthLimit = limit
        bucket = TokenBucket(limit: limit, now: throttleClock.now - throttleEpoch)
    }

    /// Waits until the bucket lets `bytes` through (at once without a limit).
    func throttle(_ bytes: Int) async {
        guard var current = bucket else { return }
        let wait = current.take(bytes, at: throttleClock.now - throttleEpoch)
        bucket = current
        if wait > .zero { try? await Task.sleep(for: wait) }
    }

    /// A stream of progress events for every replay (``pushAll()``) from now on: one when it
    /// starts and one after each confirmed batch.
    public func progress() -> AsyncStream<SyncProgress> {
        let (stream, continuation) = AsyncStream<SyncProgress>.makeStream(bufferingPolicy: .bufferingNewest(256))
        let id = nextProgressObserver
        nextProgressObserver += 1
        progressObservers[id] = continuation
        continuation.onTermination = { [weak self] _ in
            guard let self else { return }
            Task { await self.removeProgressObserver(id) }
        }
        return stream
    }

    func removeProgressObserver(_ id: Int) { progressObservers[id] = nil }

    func report(_ progress: SyncProgress) {
        for observer in progressObservers.values { observer.yield(progress) }
    }
}
