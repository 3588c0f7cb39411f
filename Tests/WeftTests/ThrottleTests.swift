import Foundation
import Synchronization
import Testing
import Weft
import WeftCRDT
import WeftServer
import WeftWire

/// Bandwidth throttling and sync progress.
@Suite("Throttling and progress")
struct ThrottleTests {
    @Test func theTokenBucketKeepsAReplayWithinTenPercentOfTheLimit() {
        // A 10-second replay on a manual clock: batches of random sizes, each sent when the bucket
        // allows, plus a little processing time per batch.
        var random = SplitMix64(seed: 7)
        for (rate, burst) in [(50_000, 16_000), (1_000_000, 64_000), (8_000, 8_000)] {
            var bucket = TokenBucket(limit: BandwidthLimit(bytesPerSecond: rate, burstBytes: burst), now: .zero)
            var now = Duration.zero
            var sent = 0
            while now < .seconds(10) {
                let bytes = Int.random(in: 200...burst, using: &random)
                now += bucket.take(bytes, at: now)
                sent += bytes
                now += .microseconds(Int64.random(in: 0...300, using: &random))
            }
            let (whole, fraction) = now.components
            let measured = Double(sent) / (Double(whole) + Double(fraction) / 1e18)
            #expect(abs(measured - Double(rate)) / Double(rate) <= 0.10, "rate \(rate): measured \(measured) B/s")
        }
        // A full bucket lets a burst through at once, then the rate applies.
        var bucket = TokenBucket(limit: BandwidthLimit(bytesPerSecond: 1_000, burstBytes: 500), now: .zero)
        #expect(bucket.take(500, at: .zero) == .zero)
        #expect(bucket.take(100, at: .zero) == .milliseconds(100))
        #expect(bucket.take(100, at: .seconds(10)) == .zero, "tokens refill up to the burst")
    }

    /// Records the framed size of every push.
    final class MeasuringTransport: SyncTransport {
        let inner: InProcessTransport
        let pushSizes = Mutex([Int]())
        init(_ inner: InProcessTransport) { self.inner = inner }
        func hello(_ request: HelloRequest) async throws(SyncError) -> HelloResponse { try await inner.hello(request) }
        func push(_ request: PushRequest) async throws(SyncError) -> PushResponse {
            pushSizes.withLock { $0.append(WireMessage.encode(request).count) }
            return try await inner.push(request)
        }
        func pull(_ request: PullRequest) async throws(SyncError) -> PullResponse { try await inner.pull(request) }
    }

    @Test func batchesShrinkToTheBurstAndProgressReachesTheTotal() async throws {
        let service = SyncService(store: MemoryCentralStore())
        let replica = try await Replica(storage: MemoryReplicaStorage())
        try await replica.batch { batch in
            for index in 0..<400 {
                try batch.create("c", "d\(index)") { editor in
                    editor.set("title", to: .string("work order \(index) " + String(repeating: "x", count: index % 50)))
                    editor.increment("n", by: 1)
                }
            }
        }
        let totalBytes = try await replica.queuedBytes()
        let transport = MeasuringTransport(InProcessTransport(service: service, database: "db"))
        let engine = SyncEngine(replica: replica, transport: transport)
        await engine.setBandwidthLimit(BandwidthLimit(bytesPerSecond: 10_000_000, burstBytes: 4_096))
        let events = await engine.progress()
        #expect(try await engine.pushAll() == 400)
        #expect(transport.pushSizes.withLock { $0.count } > totalBytes / 4_096, "batches shrank to fit the burst")
        #expect(transport.pushSizes.withLock { $0.allSatisfy { $0 <= 4_096 } })

        var seen = [SyncProgress]()
        for await event in events {
            seen.append(event)
            if event.entriesDone == event.entriesTotal { break }
        }
        #expect(seen.first?.entriesDone == 0 && seen.first?.entriesTotal == 400 && seen.first?.bytesTotal == totalBytes)
        #expect(zip(seen, seen.dropFirst()).allSatisfy { $0.entriesDone <= $1.entriesDone && $0.bytesDone <= $1.bytesDone })
        #expect(seen.last?.entriesDone == 400 && seen.last?.bytesDone == totalBytes && seen.last?.fractionDone == 1)
        #expect(seen.last.map { $0.bytesPerSecond > 0 } == true)
    }
}
