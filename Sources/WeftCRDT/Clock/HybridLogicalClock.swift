/// A hybrid logical clock (Kulkarni et al., "Logical Physical Clocks", 2014).
///
/// The clock issues ``HLCTimestamp`` values that:
/// 1. strictly increase with every call to ``now()`` and ``receive(_:)``, even when the
///    physical time source steps backwards;
/// 2. stay close to physical time: the wall part is the largest physical time seen, locally or
///    in an accepted remote stamp;
/// 3. follow causality: a stamp issued after receiving a remote stamp is greater than it.
///
/// A remote stamp whose wall time is more than ``maximumForwardDrift`` milliseconds ahead of
/// the local physical time is refused with ``ClockError``, and the clock is left unchanged; so is
/// a stamp at the last representable millisecond, after which no stamp could follow. No stamp
/// arithmetic wraps: at the very end of time the clock stays put instead of going back to 0.
/// Without the bound, one replica with a clock an hour fast would drag every clock it talks
/// to an hour into the future and win every last-writer-wins conflict for that hour.
///
/// The clock is a value type: keep it in one place (an actor or a lock) and mutate it there.
public struct HybridLogicalClock: Sendable {
    /// The replica whose stamps this clock issues.
    public let replica: ReplicaID
    /// How far ahead of local physical time, in milliseconds, a received stamp may be.
    public var maximumForwardDrift: UInt64
    private let timeSource: any PhysicalTimeSource
    /// The wall part of the last stamp issued or observed.
    public private(set) var lastWallMilliseconds: UInt64 = 0
    /// The logical part of the last stamp issued or observed.
    public private(set) var lastCounter: UInt32 = 0

    /// The default bound on forward drift: one minute.
    public static let defaultMaximumForwardDrift: UInt64 = 60_000

    /// Creates a clock for `replica`, reading physical time from `timeSource`.
    public init(
        replica: ReplicaID,
        timeSource: any PhysicalTimeSource = SystemTimeSource(),
        maximumForwardDrift: UInt64 = HybridLogicalClock.defaultMaximumForwardDrift
    ) {
        self.replica = replica
        self.timeSource = timeSource
        self.maximumForwardDrift = maximumForwardDrift
    }

    /// Restores a clock that must issue stamps above `last`, for example after a restart.
    public init(
        replica: ReplicaID,
        resumingAfter last: HLCTimestamp,
        timeSource: any PhysicalTimeSource = SystemTimeSource(),
        maximumForwardDrift: UInt64 = HybridLogicalClock.defaultMaximumForwardDrift
    ) {
        self.init(replica: replica, timeSource: timeSource, maximumForwardDrift: maximumForwardDrift)
        lastWallMilliseconds = last.wallMilliseconds
        lastCounter = last.counter
    }

    /// The last stamp issued or observed, as this replica's stamp.
    public var last: HLCTimestamp {
        HLCTimestamp(wallMilliseconds: lastWallMilliseconds, counter: lastCounter, replica: replica)
    }

    /// Issues a stamp for a local event.
    ///
    /// - Complexity: O(1).
    public mutating func now() -> HLCTimestamp {
        let physical = timeSource.currentMilliseconds()
        if physical > lastWallMilliseconds {
            lastWallMilliseconds = physical
            lastCounter = 0
        } else {
            advanceCounter()
        }
        return last
    }

    /// Observes a stamp received from another replica and issues a local stamp above it.
    ///
    /// - Throws: ``ClockError/stampTooFarAhead(remote:localMilliseconds:bound:)`` when `remote` is more than
    ///   ``maximumForwardDrift`` ahead of local physical time. The clock is unchanged then.
    /// - Complexity: O(1).
    @discardableResult
    public mutating func receive(_ remote: HLCTimestamp) throws(ClockError) -> HLCTimestamp {
        let physical = timeSource.currentMilliseconds()
        let (limit, overflow) = physical.addingReportingOverflow(maximumForwardDrift)
        if (!overflow && remote.wallMilliseconds > limit) || (remote.wallMilliseconds == .max && physical < .max) {
            throw ClockError.stampTooFarAhead(
                remote: remote, localMilliseconds: physical, bound: maximumForwardDrift)
        }
        let wall = max(lastWallMilliseconds, remote.wallMilliseconds, physical)
        if wall == lastWallMilliseconds && wall == remote.wallMilliseconds {
            lastCounter = max(lastCounter, remote.counter)
            advanceCounter()
        } else if wall == lastWallMilliseconds {
            advanceCounter()
        } else if wall == remote.wallMilliseconds {
            lastWallMilliseconds = wall
            lastCounter = remote.counter
            advanceCounter()
        } else {
            lastWallMilliseconds = wall
            lastCounter = 0
        }
        return last
    }

    private mutating func advanceCounter() {
        if lastCounter < UInt32.max {
            lastCounter += 1
        } else if lastWallMilliseconds < UInt64.max {
            // Four billion events in one millisecond: borrow the next millisecond rather than wrap.
            lastWallMilliseconds += 1
            lastCounter = 0
        }
        // At the very end of representable time the clock stays there rather than wrap to 0
        // (stamps going backwards would reorder every write); `receive(_:)` refuses stamps that
        // far ahead of any sane clock.
    }
}

/// An error from ``HybridLogicalClock``.
public struct ClockError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Code: Hashable, Sendable { case stampTooFarAhead }
    private let code: Code
    /// The refused remote stamp.
    public let remote: HLCTimestamp
    /// Local physical time when the stamp was refused.
    public let localMilliseconds: UInt64
    /// The configured bound, in milliseconds.
    public let bound: UInt64

    /// A received stamp was further ahead of local physical time than the configured bound.
    public static func stampTooFarAhead(remote: HLCTimestamp, localMilliseconds: UInt64, bound: UInt64) -> ClockError {
        ClockError(code: .stampTooFarAhead, remote: remote, localMilliseconds: localMilliseconds, bound: bound)
    }

    /// Whether this error is a stamp too far ahead.
    public var isStampTooFarAhead: Bool { code == .stampTooFarAhead }

    public var description: String {
        let ahead = remote.wallMilliseconds &- localMilliseconds
        return "stamp \(remote) is \(ahead) ms ahead of local time, beyond the bound of \(bound) ms"
    }
}
