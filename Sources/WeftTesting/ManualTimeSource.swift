import Synchronization
import WeftCRDT

/// A physical time source that only moves when told to, for deterministic clock tests.
///
/// ```swift
/// let time = ManualTimeSource(milliseconds: 1_000)
/// var clock = HybridLogicalClock(replica: .random(), timeSource: time)
/// time.advance(by: 5)
/// time.set(500)   // the wall clock steps backwards; the HLC stays monotonic
/// ```
public final class ManualTimeSource: PhysicalTimeSource {
    private let now: Mutex<UInt64>

    /// Creates a source reading `milliseconds`.
    public init(milliseconds: UInt64 = 1_700_000_000_000) { now = Mutex(milliseconds) }

    public func currentMilliseconds() -> UInt64 { now.withLock { $0 } }

    /// Moves time forward by `milliseconds`.
    public func advance(by milliseconds: UInt64) { now.withLock { $0 &+= milliseconds } }

    /// Sets the time, forwards or backwards.
    public func set(_ milliseconds: UInt64) { now.withLock { $0 = milliseconds } }
}
