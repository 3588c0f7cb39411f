// Helpers shared by the replica workloads: scratch directories, resident memory, percentiles.

import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A fresh directory under the system temporary directory, removed by ``remove()``.
public final class ScratchDirectory: Sendable {
    /// The directory's path.
    public let path: String

    /// Creates a new, empty directory.
    public init(prefix: String = "weft-replica-bench") throws {
        var template = Array((NSTemporaryDirectory() + "/\(prefix).XXXXXX").utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buffer in mkdtemp(buffer.baseAddress!) }
        guard made != nil else { throw BenchmarkFailure("mkdtemp failed with errno \(errno)") }
        path = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The path of `name` inside the directory.
    public func file(_ name: String) -> String { path + "/" + name }

    /// Removes the directory and everything in it.
    public func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// The total size in bytes of the files in the directory (the database, its WAL and shm).
    public func sizeOnDisk() -> Int {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return names.reduce(0) { total, name in
            let attributes = try? FileManager.default.attributesOfItem(atPath: file(name))
            return total + ((attributes?[.size] as? NSNumber)?.intValue ?? 0)
        }
    }
}

/// A workload failed or produced a result it must not.
public struct BenchmarkFailure: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The process's resident memory in bytes, from `/proc/self/statm` (Linux); `nil` elsewhere.
public func residentMemoryBytes() -> Int? {
    #if os(Linux)
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return nil }
    let fields = text.split(separator: " ")
    guard fields.count >= 2, let pages = Int(fields[1]) else { return nil }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    #else
    return nil
    #endif
}

/// The process's peak resident memory in bytes (`VmHWM` of `/proc/self/status`, Linux); `nil` elsewhere.
public func peakResidentMemoryBytes() -> Int? {
    #if os(Linux)
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
    for line in text.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        let digits = line.dropFirst("VmHWM:".count).filter(\.isNumber)
        return Int(digits).map { $0 * 1024 }
    }
    return nil
    #else
    return nil
    #endif
}

/// Nanoseconds of a duration.
public func nanoseconds(_ duration: Duration) -> Double {
    let (seconds, attoseconds) = duration.components
    return Double(seconds) * 1e9 + Double(attoseconds) / 1e9
}

/// Summary statistics of latencies in nanoseconds.
public struct LatencySummary: Sendable {
    public let count: Int
    public let p50: Double
    public let p90: Double
    public let p99: Double
    public let mean: Double

    /// Summarises `samples` (nanoseconds); nearest-rank percentiles.
    public init(_ samples: [Double]) {
        let sorted = samples.sorted()
        count = sorted.count
        func percentile(_ p: Double) -> Double {
            guard !sorted.isEmpty else { return .nan }
            let rank = Int((p / 100 * Double(sorted.count)).rounded(.up))
            return sorted[min(max(rank, 1), sorted.count) - 1]
        }
        p50 = percentile(50)
        p90 = percentile(90)
        p99 = percentile(99)
        mean = sorted.isEmpty ? .nan : sorted.reduce(0, +) / Double(sorted.count)
    }

    /// The figures in microseconds, for JSON.
    public var microseconds: [String: Double] {
        ["p50_us": rounded(p50 / 1e3), "p90_us": rounded(p90 / 1e3), "p99_us": rounded(p99 / 1e3),
         "mean_us": rounded(mean / 1e3)]
    }
}

/// The median of `values`.
public func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return .nan }
    let middle = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

/// Rounds to `places` decimals, for readable JSON.
public func rounded(_ value: Double, _ places: Int = 3) -> Double {
    var scale = 1.0
    for _ in 0..<places { scale *= 10 }
    return (value * scale).rounded() / scale
}
