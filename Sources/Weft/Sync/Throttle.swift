/// A bandwidth limit for sync: bytes per second with a burst (`bandwidth_bytes_per_second`,
/// `bandwidth_burst_bytes`).
public struct BandwidthLimit: Hashable, Sendable {
    /// The sustained rate; 0 means unlimited.
    public var bytesPerSecond: Int
    /// The most bytes sent or received at once after an idle period. Batches and pull pages are
    /// made to fit in it.
    public var burstBytes: Int

    /// Creates a limit; the burst defaults to one second's worth (at least 64 KiB).
    public init(bytesPerSecond: Int, burstBytes: Int? = nil) {
        self.bytesPerSecond = max(0, bytesPerSecond)
        self.burstBytes = max(1, burstBytes ?? max(bytesPerSecond, 64 << 10))
    }

    /// Whether the limit limits anything.
    public var isUnlimited: Bool { bytesPerSecond == 0 }
}

/// A token bucket: `rate` tokens (bytes) a second, up to `burst` saved.
///
/// ``take(_:at:)`` spends tokens and says how long to wait before the bytes may go. Tokens may go
/// negative (a transfer larger than what is saved waits for the deficit), so over any long
/// stretch the bytes let through divided by the time taken is the rate, whatever the sizes of
/// the transfers. Time is passed in, so tests drive it with a manual clock.
public struct TokenBucket: Hashable, Sendable {
    /// Bytes per second.
    public let rate: Double
    /// The most tokens saved.
    public let burst: Double
    private var tokens: Double
    private var last: Duration

    /// A full bucket at time `now`.
    public init(limit: BandwidthLimit, now: Duration) {
        rate = Double(max(1, limit.bytesPerSecond))
        burst = Double(limit.burstBytes)
        tokens = burst
        last = now
    }

    /// Spends `bytes` tokens at time `now` and returns how long to wait before sending them.
    /// - Complexity: O(1).
    public mutating func take(_ bytes: Int, at now: Duration) -> Duration {
        if now > last {
            tokens = min(burst, tokens + (now - last).inSeconds * rate)
            last = now
        }
        tokens -= Double(bytes)
        guard tokens < 0 else { return .zero }
        return .nanoseconds(Int64((-tokens / rate * 1e9).rounded(.up)))
    }

}

extension Duration {
    /// The duration in seconds, as a `Double` (for rates and backoff arithmetic).
    var inSeconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}

/// How far a replay (``SyncEngine/pushAll()``) has got.
public struct SyncProgress: Hashable, Sendable {
    /// Queue entries confirmed (or set aside as dead letters) so far.
    public var entriesDone: Int
    /// Queue entries when the replay started.
    public var entriesTotal: Int
    /// Queue bytes confirmed so far (as the queue counts them).
    public var bytesDone: Int
    /// Queue bytes when the replay started.
    public var bytesTotal: Int
    /// Time since the replay started.
    public var elapsed: Duration
    /// Framed bytes sent so far (what the bandwidth limit counts); 0 when no limit is set.
    public var wireBytesSent: Int = 0
    /// The highest queue sequence the server has acknowledged so far (see
    /// ``Replica/acknowledgedThrough()``); 0 until the first acknowledgement of the replay.
    public var acknowledgedThrough: UInt64 = 0

    /// Queue bytes a second so far.
    public var bytesPerSecond: Double {
        let seconds = elapsed.inSeconds
        return seconds > 0 ? Double(bytesDone) / seconds : 0
    }

    /// Framed bytes sent a second so far (0 without a bandwidth limit).
    public var wireBytesPerSecond: Double {
        let seconds = elapsed.inSeconds
        return seconds > 0 ? Double(wireBytesSent) / seconds : 0
    }

    /// The time left at the rate so far, if there is a rate yet.
    public var estimatedRemaining: Duration? {
        let rate = bytesPerSecond
        guard rate > 0 else { return nil }
        return .nanoseconds(Int64(Double(max(0, bytesTotal - bytesDone)) / rate * 1e9))
    }

    /// The fraction done, from 0 to 1.
    public var fractionDone: Double {
        bytesTotal > 0 ? min(1, Double(bytesDone) / Double(bytesTotal)) : (entriesTotal > 0 ? Double(entriesDone) / Double(entriesTotal) : 1)
    }
}
