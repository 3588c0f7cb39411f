// Helpers for weft-sync-bench: logging, scratch directories, resident memory, percentiles.

import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

func log(_ message: String) {
    var line = "[weft-sync-bench] " + message + "\n"
    line.withUTF8 { buffer in _ = write(2, buffer.baseAddress, buffer.count) }
}

func fail(_ message: String) -> Never {
    log(message)
    exit(1)
}

struct BenchFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A fresh directory under the system temporary directory, removed by ``remove()``.
final class Scratch: Sendable {
    let path: String

    init(prefix: String = "weft-sync-bench") throws {
        var template = Array((NSTemporaryDirectory() + "/\(prefix).XXXXXX").utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buffer in mkdtemp(buffer.baseAddress!) }
        guard made != nil else { throw BenchFailure("mkdtemp failed with errno \(errno)") }
        path = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    func file(_ name: String) -> String { path + "/" + name }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

// MARK: - CPU

/// The whole machine's CPU time so far, busy and in all, in clock ticks, from the first line
/// of `/proc/stat` (Linux; every process, PostgreSQL's included); `nil` elsewhere.
func machineCPUTicks() -> (busy: UInt64, total: UInt64)? {
    #if os(Linux)
    guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
        let line = text.split(separator: "\n").first, line.hasPrefix("cpu ")
    else { return nil }
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let fields = line.split(separator: " ").dropFirst().prefix(8).compactMap { UInt64($0) }
    guard fields.count == 8 else { return nil }
    let total = fields.reduce(0, +)
    return (total - fields[3] - fields[4], total)
    #else
    return nil
    #endif
}

/// The share of the machine's CPU that was busy between two `machineCPUTicks()` readings.
func busyFraction(from start: (busy: UInt64, total: UInt64)?, to end: (busy: UInt64, total: UInt64)?) -> Double? {
    guard let start, let end, end.total > start.total else { return nil }
    return Double(end.busy - start.busy) / Double(end.total - start.total)
}

// MARK: - Memory

/// The process's resident memory in bytes, from `/proc/self/statm` (Linux); `nil` elsewhere.
func residentBytes() -> Int? {
    #if os(Linux)
    // Read with open/read: cheap enough to sample every few milliseconds, no Foundation allocation.
    let fd = open("/proc/self/statm", O_RDONLY)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 128)
    let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, 127) }
    guard count > 0 else { return nil }
    let fields = buffer[0..<count].split(separator: UInt8(ascii: " "))
    guard fields.count >= 2 else { return nil }
    var pages = 0
    for byte in fields[1] where byte >= 48 && byte <= 57 { pages = pages * 10 + Int(byte - 48) }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    #else
    return nil
    #endif
}

/// The process's peak resident memory in bytes (`VmHWM`, Linux); `nil` elsewhere.
func peakResidentBytes() -> Int? {
    #if os(Linux)
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
    for line in text.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        return Int(line.dropFirst("VmHWM:".count).filter(\.isNumber)).map { $0 * 1024 }
    }
    return nil
    #else
    return nil
    #endif
}

/// Resets `VmHWM` to the current resident size (`echo 5 > /proc/self/clear_refs`); whether it worked.
func resetPeakResident() -> Bool {
    #if os(Linux)
    let fd = open("/proc/self/clear_refs", O_WRONLY)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    return write(fd, "5", 1) == 1
    #else
    return false
    #endif
}

/// Gives freed heap back to the system, so a phase starts from what is really live.
func trimHeap() {
    #if canImport(Glibc)
    // malloc_trim is not in the Glibc module map; look it up (RTLD_DEFAULT is a null handle).
    typealias Trim = @convention(c) (Int) -> Int32
    if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") {
        _ = unsafeBitCast(symbol, to: Trim.self)(0)
    }
    #endif
}

/// Samples resident memory on its own thread every `intervalMicroseconds` and keeps the maximum.
final class MemorySampler: Sendable {
    private let peak = Atomic<Int>(0)
    private let running = Atomic<Bool>(true)
    private let stopped = DispatchSemaphore(value: 0)
    private let samples = Atomic<Int>(0)

    init(intervalMicroseconds: UInt32 = 2_000) {
        peak.store(residentBytes() ?? 0, ordering: .relaxed)
        Thread.detachNewThread { [self] in
            while running.load(ordering: .relaxed) {
                if let now = residentBytes() {
                    peak.max(now, ordering: .relaxed)
                    samples.add(1, ordering: .relaxed)
                }
                usleep(intervalMicroseconds)
            }
            stopped.signal()
        }
    }

    /// Stops sampling; returns the largest resident size seen and the number of samples.
    func stop() -> (peak: Int, samples: Int) {
        running.store(false, ordering: .relaxed)
        stopped.wait()
        if let now = residentBytes() { peak.max(now, ordering: .relaxed) }
        return (peak.load(ordering: .relaxed), samples.load(ordering: .relaxed))
    }
}

// MARK: - Numbers

func seconds(_ duration: Duration) -> Double {
    let (whole, attoseconds) = duration.components
    return Double(whole) + Double(attoseconds) / 1e18
}

func rounded(_ value: Double, _ places: Int = 2) -> Double {
    guard value.isFinite else { return value }
    let scale = pow(10, Double(places))
    return (value * scale).rounded() / scale
}

func mib(_ bytes: Int) -> Double { rounded(Double(bytes) / 1_048_576, 1) }

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return .nan }
    let middle = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

/// Nearest-rank percentiles of latencies in seconds, reported in milliseconds.
struct Latencies {
    let sorted: [Double]

    init(_ samples: [Double]) { sorted = samples.sorted() }

    func percentile(_ p: Double) -> Double {
        guard !sorted.isEmpty else { return .nan }
        let rank = Int((p / 100 * Double(sorted.count)).rounded(.up))
        return sorted[min(Swift.max(rank, 1), sorted.count) - 1]
    }

    var json: [String: Any] {
        guard !sorted.isEmpty else { return ["count": 0] }
        return [
            "count": sorted.count,
            "p50_ms": rounded(percentile(50) * 1e3, 3),
            "p90_ms": rounded(percentile(90) * 1e3, 3),
            "p99_ms": rounded(percentile(99) * 1e3, 3),
            "max_ms": rounded(sorted.last! * 1e3, 3),
            "mean_ms": rounded(sorted.reduce(0, +) / Double(sorted.count) * 1e3, 3),
        ]
    }
}

func target(_ value: Double, _ comparison: String, _ bound: Double, _ unit: String) -> [String: Any] {
    let met: Bool
    switch comparison {
    case ">=": met = value >= bound
    case "<": met = value < bound
    default: met = value <= bound
    }
    return ["value": rounded(value, 3), "target": "\(comparison) \(bound) \(unit)", "met": met]
}
