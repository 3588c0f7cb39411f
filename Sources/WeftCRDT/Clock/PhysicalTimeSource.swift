#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A source of physical (wall-clock) time in milliseconds since the Unix epoch.
///
/// The hybrid logical clock reads physical time only through this protocol, so tests can
/// drive it with a manual source (see `ManualTimeSource` in WeftTesting) and exercise skew,
/// equal wall times and a clock stepping backwards deterministically.
///
/// Users may conform. A conforming type must be safe to call from any thread. It need not
/// be monotonic: the clock tolerates time going backwards.
public protocol PhysicalTimeSource: Sendable {
    /// The current wall-clock time in milliseconds since 1970-01-01T00:00:00Z.
    func currentMilliseconds() -> UInt64
}

/// The operating system's real-time clock.
public struct SystemTimeSource: PhysicalTimeSource {
    /// Creates the system time source.
    public init() {}

    public func currentMilliseconds() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        let seconds = UInt64(max(0, spec.tv_sec))
        return seconds &* 1000 &+ UInt64(max(0, spec.tv_nsec)) / 1_000_000
    }
}
