// Scale-out: push throughput through 1 and 2 `weft serve` processes on one PostgreSQL database.
//
// The servers here are real child processes of the `weft` executable, configured by a TOML file
// with `store_url = "postgres://…"`, as an operator runs them. Each can be held to a CPU quota
// (a cgroup v1 `cpu` group, Linux, root): a server held to Q cores stands for a server on a host
// of its own with Q cores, which is the only way to see server-bound scaling on a machine whose
// every core is shared by the servers, PostgreSQL and the replicas. Every process's CPU time is
// read from /proc, so the report says where the time went.

import AsyncHTTPClient
import Foundation
import Weft
import WeftHTTP

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Processes and their CPU time

/// A loopback port nothing listens on right now.
func freeLoopbackPort() throws -> Int {
    #if canImport(Glibc)
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    #else
    let descriptor = socket(AF_INET, SOCK_STREAM, 0)
    #endif
    guard descriptor >= 0 else { throw BenchFailure("socket() failed with errno \(errno)") }
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0 }
    }
    guard bound else { throw BenchFailure("bind() on 127.0.0.1 failed with errno \(errno)") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// The CPU seconds (user and system) a process has used so far, and its command name, from
/// `/proc/PID/stat`; `nil` when the process is gone or this is not Linux.
func processCPU(_ pid: String) -> (command: Substring, seconds: Double)? {
    #if os(Linux)
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let open = text.firstIndex(of: "("), let close = text.lastIndex(of: ")")
    else { return nil }
    // After the command's closing parenthesis: state (field 3), …, utime (14), stime (15).
    let fields = text[text.index(after: close)...].split(separator: " ")
    guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
    return (text[text.index(after: open)..<close], (user + system) / Double(sysconf(Int32(_SC_CLK_TCK))))
    #else
    return nil
    #endif
}

/// The CPU seconds used so far by every live process named `postgres` (the postmaster and its
/// backends, which serve the servers' connections).
func postgresCPUSeconds() -> Double {
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return 0 }
    var total = 0.0
    for entry in entries where entry.first?.isNumber == true {
        if let (command, seconds) = processCPU(entry), command == "postgres" { total += seconds }
    }
    return total
}

/// A cgroup v1 `cpu` group that holds its processes to `cores` CPUs (CFS quota), removed by
/// ``remove()``. Creating one needs Linux and root.
struct CPUQuotaGroup {
    let path: String
    static let root = "/sys/fs/cgroup/cpu"

    /// Why no group can be made here, or `nil` when one can.
    static var unavailable: String? {
        guard FileManager.default.fileExists(atPath: root + "/cpu.cfs_quota_us") else {
            return "no cgroup v1 cpu controller at \(root) (Linux only)"
        }
        guard access(root, W_OK) == 0 else { return "\(root) is not writable (run as root)" }
        return nil
    }

    init(name: String, cores: Double) throws {
        if let reason = Self.unavailable { throw BenchFailure("a CPU quota cannot be set: \(reason)") }
        path = "\(Self.root)/\(name)"
        rmdir(path)  // a group left by a run that was killed (cgroup folders go only by rmdir)
        guard mkdir(path, 0o755) == 0 else { throw BenchFailure("mkdir \(path) failed with errno \(errno)") }
        let period = 100_000
        try Self.put("\(period)", into: path + "/cpu.cfs_period_us")
        try Self.put("\(Int((cores * Double(period)).rounded()))", into: path + "/cpu.cfs_quota_us")
    }

    /// Moves a process (and so every thread it has or starts) into the group.
    func add(_ pid: Int32) throws { try Self.put("\(pid)", into: path + "/cgroup.procs") }

    /// Microseconds the group's processes were held back by the quota.
    var throttledMicroseconds: Double {
        guard let text = try? String(contentsOfFile: path + "/cpu.stat", encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix("throttled_time ") {
            return (Double(line.split(separator: " ").last ?? "") ?? 0) / 1_000
        }
        return 0
    }

    /// Removes the group; its processes must have exited.
    func remove() { rmdir(path) }

    private static func put(_ text: String, into file: String) throws {
        let descriptor = open(file, O_WRONLY)
        guard descriptor >= 0 else { throw BenchFailure("open \(file) failed with errno \(errno)") }
        defer { close(descriptor) }
        let written = text.withCString { write(descriptor, $0, strlen($0)) }
        guard written == text.utf8.count else { throw BenchFailure("write to \(file) failed with errno \(errno)") }
    }
}

/// `weft serve --config FILE` in a child process, on a free loopback port, on PostgreSQL.
final class ServeProcess {
    let process = Process()
    let port: Int
    let group: CPUQuotaGroup?
    var baseURL: String { "http://127.0.0.1:\(port)" }
    var pid: String { "\(process.processIdentifier)" }

    init(executable: URL, postgres: URL, tenant: String, directory: Scratch, index: Int, cores: Double?) throws {
        port = try freeLoopbackPort()
        let config = directory.file("server\(index).toml")
        try """
            [persistence]
            conflict_resolution = "lww"

            [server]
            listen = "127.0.0.1:\(port)"
            store_url = "\(postgres.absoluteString)"

            [server.limits]
            max_changes_per_batch = 10000

            [[server.tokens]]
            token = "\(BenchServer.token)"
            databases = ["\(tenant)"]
            access = "read_write"
            """.write(toFile: config, atomically: true, encoding: .utf8)
        group = try cores.map { try CPUQuotaGroup(name: "weft-sync-bench-\(getpid())-\(index)", cores: $0) }
        process.executableURL = executable
        process.arguments = ["serve", "--config", config]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.standardError
        try process.run()
        do {
            try group?.add(process.processIdentifier)
        } catch {
            stop()
            throw error
        }
    }

    /// Waits until `/health` answers, for at most 30 seconds.
    func waitUntilServing() async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if let response = try? await HTTPClient.shared.execute(HTTPClientRequest(url: "\(baseURL)/health"), timeout: .seconds(1)),
                response.status.code == 200
            {
                return
            }
            guard process.isRunning else { throw BenchFailure("weft serve exited with status \(process.terminationStatus)") }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw BenchFailure("weft serve did not answer /health within 30 s")
    }

    /// SIGTERM (a graceful shutdown), waits for the exit, and removes the CPU group.
    func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        group?.remove()
    }
}

/// The `weft` executable: `explicit`, or beside this benchmark's own executable (built by
/// `swift build -c release --product weft` in this package).
func weftExecutable(_ explicit: String?) throws -> URL {
    let candidate =
        explicit.map { URL(fileURLWithPath: $0) }
        ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("weft")
    guard FileManager.default.isExecutableFile(atPath: candidate.path) else {
        throw BenchFailure(
            "no weft executable at \(candidate.path): run `swift build -c release --product weft` in Benchmarks/ or pass --weft PATH")
    }
    return candidate
}

// MARK: - The measurement

struct ScaleOutPass {
    var servers: Int
    var changesPerSecond: Int
    var seconds: Double
    var machineBusy: Double?
    /// CPU seconds over the push phase: all server processes, PostgreSQL, this process (the replicas).
    var serverCPU: Double
    var postgresCPU: Double
    var replicasCPU: Double
    var throttledSeconds: Double

    var json: [String: Any] {
        [
            "servers": servers, "changes_per_second": changesPerSecond, "seconds": rounded(seconds, 3),
            "machine_cpu_busy": machineBusy.map { rounded($0, 3) as Any } ?? NSNull(),
            "cpu_seconds": ["servers": rounded(serverCPU, 3), "postgres": rounded(postgresCPU, 3), "replicas_and_bench": rounded(replicasCPU, 3)],
            "server_cores_used": rounded(serverCPU / seconds, 3),
            "postgres_cores_used": rounded(postgresCPU / seconds, 3),
            "replica_cores_used": rounded(replicasCPU / seconds, 3),
            "servers_throttled_seconds": rounded(throttledSeconds, 3),
        ]
    }
}

/// `replicas` in-memory replicas in this process, spread over `servers` `weft serve` processes
/// on the PostgreSQL database at `postgres`, each replica pushing `changes` queued documents of
/// its own at once, `batchEntries` per request.
func runScaleOutPush(
    executable: URL, postgres: URL, servers count: Int, cores: Double?, replicas: Int, changes: Int, batchEntries: Int = 100
) async throws -> ScaleOutPass {
    let tenant = "scale\(count)x\(UInt32.random(in: 0...UInt32.max))"
    let scratch = try Scratch(prefix: "weft-scale-out")
    defer { scratch.remove() }
    var servers = [ServeProcess]()
    defer { for server in servers { server.stop() } }
    for index in 0..<count {
        servers.append(
            try ServeProcess(executable: executable, postgres: postgres, tenant: tenant, directory: scratch, index: index, cores: cores))
    }
    for server in servers { try await server.waitUntilServing() }

    let engines = try await queuedReplicas(
        replicas: replicas, changes: changes, baseURLs: servers.map(\.baseURL), tenant: tenant, batchEntries: batchEntries)

    func cpu() -> (servers: Double, postgres: Double, bench: Double) {
        (servers.reduce(0) { $0 + (processCPU($1.pid)?.seconds ?? 0) }, postgresCPUSeconds(), processCPU("self")?.seconds ?? 0)
    }
    let throttledBefore = servers.reduce(0) { $0 + ($1.group?.throttledMicroseconds ?? 0) }
    let before = cpu()
    let (elapsed, machineBusy) = try await pushAllAtOnce(engines, expected: replicas * changes)
    let after = cpu()
    let throttled = servers.reduce(0) { $0 + ($1.group?.throttledMicroseconds ?? 0) } - throttledBefore
    return ScaleOutPass(
        servers: count, changesPerSecond: Int(Double(replicas * changes) / elapsed), seconds: elapsed, machineBusy: machineBusy,
        serverCPU: after.servers - before.servers, postgresCPU: after.postgres - before.postgres, replicasCPU: after.bench - before.bench,
        throttledSeconds: throttled / 1e6)
}
