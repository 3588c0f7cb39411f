import Synchronization
import Foundation
import Weft
import WeftCRDT
import WeftSQLite

/// A temporary directory removed when the value is deinitialised.
final class TemporaryDirectory: @unchecked Sendable {
    let url: URL
    init() {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("weft-tests-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    func path(_ name: String) -> String { url.appendingPathComponent(name).path }
    deinit { try? FileManager.default.removeItem(at: url) }
}

/// Every storage implementation, for the contract suites.
enum StorageKind: String, CaseIterable, Sendable, CustomStringConvertible {
    case memory, sqlite
    var description: String { rawValue }

    /// Fresh storage, and the directory that holds it (kept alive by the caller).
    func make(_ directory: TemporaryDirectory) throws -> any ReplicaStorage {
        switch self {
        case .memory: return MemoryReplicaStorage()
        case .sqlite: return try SQLiteReplicaStorage(path: directory.path("replica.sqlite"))
        }
    }
}

func key(_ collection: String, _ id: String) -> DocumentKey {
    // Test literals are valid by construction.
    DocumentKey(collection: try! CollectionName(collection), id: try! DocumentID(id))
}

/// A record written at `wall` by replica `r`, with field `field` = `value`.
func sampleRecord(_ field: String, _ value: Int64, wall: UInt64, replica: ReplicaID = ReplicaID(high: 0, low: 1))
    -> DocumentRecord
{
    let stamp = HLCTimestamp(wallMilliseconds: wall, counter: 0, replica: replica)
    var body = Document()
    body.set(field, to: .int(value), at: stamp)
    var version = VersionVector()
    version[replica] = wall
    return DocumentRecord(body: body, deletion: LWWRegister(false, stamp: stamp), version: version)
}

/// An executable product built next to the test bundle by `swift build --build-tests`.
func builtExecutable(_ name: String) throws -> URL {
    var directories = [URL]()
    if let first = CommandLine.arguments.first {
        directories.append(URL(fileURLWithPath: first).deletingLastPathComponent())
    }
    directories.append(Bundle.main.bundleURL.deletingLastPathComponent())
    directories.append(Bundle.main.bundleURL)
    if let executable = Bundle.main.executableURL { directories.append(executable.deletingLastPathComponent()) }
    for bundle in Bundle.allBundles where bundle.bundleURL.pathExtension == "xctest" {
        directories.append(bundle.bundleURL.deletingLastPathComponent())
    }
    for directory in directories {
        let candidate = directory.appendingPathComponent(name)
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
    }
    throw ExecutableNotFound(name: name, searched: directories.map(\.path))
}

struct ExecutableNotFound: Error, CustomStringConvertible {
    let name: String
    let searched: [String]
    var description: String {
        "the \(name) executable was not found next to the test bundle (searched: \(searched.joined(separator: ", "))); "
            + "build it with `swift build --build-tests` before `swift test --skip-build`"
    }
}

/// ``runProcess(_:_:)`` on a thread of its own: waiting for the child holds no thread of the
/// cooperative pool, which servers running in the test process need to answer it (on 2 cores the
/// pool has 2 threads, and two tests waiting for children at once would starve every server).
func runProcessDetached(_ executable: URL, _ arguments: [String]) async throws -> (status: Int32, output: String, error: String) {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread { continuation.resume(with: Result { try runProcess(executable, arguments) }) }
    }
}

/// Runs an executable to completion and returns its status, standard output and standard error.
func runProcess(_ executable: URL, _ arguments: [String]) throws -> (status: Int32, output: String, error: String) {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    let output = Pipe()
    let error = Pipe()
    process.standardOutput = output
    process.standardError = error
    try process.run()
    let outputData = output.fileHandleForReading.readDataToEndOfFile()
    let errorData = error.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: outputData, as: UTF8.self), String(decoding: errorData, as: UTF8.self))
}

// MARK: - PostgreSQL

import WeftPostgres

/// The throwaway PostgreSQL server `make test` starts (scripts/with-postgres.sh).
enum TestPostgres {
    struct Missing: Error, CustomStringConvertible {
        var description: String {
            "WEFT_POSTGRES_URL is not set: run the suite with `make test` (which starts a throwaway PostgreSQL), "
                + "or `bash scripts/with-postgres.sh swift test`; set WEFT_SKIP_POSTGRES=1 to leave the PostgreSQL tests out on purpose"
        }
    }

    /// Whether PostgreSQL tests were left out on purpose.
    static var skipped: Bool { ProcessInfo.processInfo.environment["WEFT_SKIP_POSTGRES"] == "1" }

    /// The server's URL (the `weft_test` database).
    static func serverURL() throws -> URL {
        guard let text = ProcessInfo.processInfo.environment["WEFT_POSTGRES_URL"], let url = URL(string: text) else { throw Missing() }
        return url
    }

    /// A new, empty database on the throwaway server, for one test; `options` go to `CREATE
    /// DATABASE` (a locale, say).
    static func freshDatabase(options: String = "") async throws -> URL {
        let server = try serverURL()
        let name = "weft_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(20)
        let result = try runProcess(psql, [server.absoluteString, "-v", "ON_ERROR_STOP=1", "-qc", "CREATE DATABASE \(name) \(options)"])
        guard result.status == 0 else { throw TestFailure("CREATE DATABASE failed: \(result.error)") }
        var components = URLComponents(url: server, resolvingAgainstBaseURL: false)
        components?.path = "/\(name)"
        guard let url = components?.url else { throw TestFailure("cannot build the database URL") }
        return url
    }

    struct TestFailure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    static let psql = URL(fileURLWithPath: (ProcessInfo.processInfo.environment["WEFT_POSTGRES_BIN"] ?? "/usr/bin") + "/psql")

    /// ``query(_:_:)`` without holding a thread of the cooperative pool while `psql` runs.
    static func query(_ url: URL, _ sql: String) async throws -> String {
        let result = try await runProcessDetached(psql, [url.absoluteString, "-v", "ON_ERROR_STOP=1", "-qAtc", sql])
        guard result.status == 0 else { throw TestFailure("psql: \(result.error)") }
        return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Runs `sql` with `psql` on the database at `url`; its output, trimmed.
    static func query(_ url: URL, _ sql: String) throws -> String {
        let result = try runProcess(psql, [url.absoluteString, "-v", "ON_ERROR_STOP=1", "-qAtc", sql])
        guard result.status == 0 else { throw TestFailure("psql: \(result.error)") }
        return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A new database holding the first schema version's tables (`Fixtures/postgres/schema-v1.sql`),
    /// as a Weft build of that version left it; `options` as for ``freshDatabase(options:)``.
    static func versionOneDatabase(options: String = "") async throws -> URL {
        let url = try await freshDatabase(options: options)
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/postgres/schema-v1.sql")
        let loaded = try runProcess(psql, [url.absoluteString, "-v", "ON_ERROR_STOP=1", "-q", "-f", fixture.path])
        guard loaded.status == 0 else { throw TestFailure("loading \(fixture.path) failed: \(loaded.error)") }
        return url
    }

    /// Waits for `process` to exit without holding a thread of the cooperative pool.
    static func exit(of process: Process) async throws {
        while process.isRunning { try await Task.sleep(for: .milliseconds(20)) }
    }

    /// New documents `c/d<index>` for `range`, one change each with sequence `index + 1`, as one
    /// push batch of `replica`.
    static func newDocuments(_ range: Range<Int>, replica: ReplicaID) throws -> [(sequence: UInt64, key: DocumentKey, delta: DocumentRecord)] {
        try range.map { index in
            let stamp = HLCTimestamp(wallMilliseconds: UInt64(1_000 + index), counter: 0, replica: replica)
            var body = Document()
            body.set("n", to: .int(Int64(index)), at: stamp)
            var version = VersionVector()
            version.increment(replica)
            return (
                UInt64(index + 1), DocumentKey(collection: try CollectionName("c"), id: try DocumentID("d\(index)")),
                DocumentRecord(body: body, deletion: LWWRegister(false, stamp: stamp), version: version)
            )
        }
    }
}

/// Another session holding a tenant's sequencer lock (what a busy sequencer on another server
/// looks like): `psql` in a process of its own, never waited for on a test's thread (the
/// cooperative pool has as many threads as cores; a blocked one stalls every other test).
final class SequencerLockHolder {
    let url: URL
    let process = Process()
    /// The holder's session, if it holds an advisory lock (advisory locks belong to one
    /// database; other tests use other databases; the store's sessions are not the holder's).
    static let holders = """
        SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = 'weft-lock-holder'
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
        """

    /// Starts the session and returns once it holds the lock of `tenant`.
    init(url: URL, tenant: String) async throws {
        self.url = url
        process.executableURL = TestPostgres.psql
        var components = URLComponents(url: url, resolvingAgainstBaseURL: false)
        components?.queryItems = [URLQueryItem(name: "application_name", value: "weft-lock-holder")]
        process.arguments = [components?.url?.absoluteString ?? url.absoluteString, "-qAtc", "SELECT pg_advisory_lock(hashtextextended('\(tenant)', 7)); SELECT pg_sleep(120)"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        for _ in 0..<500 {
            if try isHolding { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        process.terminate()
        throw TestPostgres.TestFailure("the lock holder did not get the lock")
    }

    var isHolding: Bool { get throws { try !TestPostgres.query(url, Self.holders).isEmpty } }

    /// Ends the session, and so lets go of the lock.
    func release() async throws {
        _ = try await TestPostgres.query(url, "SELECT pg_terminate_backend(pid) FROM (\(Self.holders)) AS h")
        try await TestPostgres.exit(of: process)
    }

    deinit { if process.isRunning { process.terminate() } }
}

/// A PostgreSQL server of a test's own (initdb into a temporary folder, loopback only), for tests
/// that stop and restart it without disturbing the shared one.
final class PrivatePostgres: @unchecked Sendable {
    let root: URL
    let port: Int
    let bin: String
    let runAs: [String]
    var url: URL { URL(string: "postgres://weft@127.0.0.1:\(port)/weft_test")! }

    /// Starts a server that lives while process `owner` (this test process by default) does.
    init(owner: pid_t = getpid()) throws {
        let environment = ProcessInfo.processInfo.environment
        guard let bin = environment["WEFT_POSTGRES_BIN"] else { throw TestPostgres.Missing() }
        self.bin = bin
        runAs = (environment["WEFT_POSTGRES_RUN_AS"] ?? "").split(separator: " ").map(String.init)
        root = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("weft-pg-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        port = try Self.freePort()
        if !runAs.isEmpty { _ = try runProcess(URL(fileURLWithPath: "/usr/bin/chown"), ["postgres", root.path]) }
        try run("initdb", ["-D", root.appendingPathComponent("data").path, "-U", "weft", "--auth=trust", "-E", "UTF8"])
        try start()
        startWatchdog(owner: owner)
        try run("createdb", ["-h", "127.0.0.1", "-p", "\(port)", "-U", "weft", "weft_test"])
    }

    static func freePort() throws -> Int { try OfflineTests.freePort() }

    /// Runs a PostgreSQL tool and waits for it to exit, through `system(3)`: its output goes to a
    /// file, and the shell is reaped with `waitpid` (Foundation's `Process` did not notice the
    /// exit of a `pg_ctl start` whose server lives on).
    private func run(_ tool: String, _ arguments: [String]) throws {
        let command = (runAs + [bin + "/" + tool] + arguments).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        let log = root.appendingPathComponent("\(tool).out").path
        let status = system(command.joined(separator: " ") + " >'\(log)' 2>&1 </dev/null")
        guard status == 0 else {
            let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            throw TestPostgres.TestFailure("\(tool) failed (\(status)): \(output)")
        }
    }

    static func quoted(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'" }

    /// A killed test process (SIGKILL, a CI timeout) runs no `remove()`, and the server, a
    /// daemon, would live on: a watchdog in a session of its own polls `owner` once a second
    /// and, once it is gone, stops the server and removes its folder.
    private func startWatchdog(owner: pid_t) {
        let stop = (runAs + [bin + "/pg_ctl", "-D", root.appendingPathComponent("data").path, "-m", "immediate", "stop"]).map(Self.quoted)
        let script = "while kill -0 \(owner) 2>/dev/null; do sleep 1; done; \(stop.joined(separator: " ")) >/dev/null 2>&1; rm -rf \(Self.quoted(root.path))"
        _ = system("setsid sh -c \(Self.quoted(script)) </dev/null >/dev/null 2>&1 &")
    }

    func start() throws {
        try run(
            "pg_ctl",
            [
                "-D", root.appendingPathComponent("data").path, "-l", root.appendingPathComponent("server.log").path, "-w", "-o",
                "-c listen_addresses=127.0.0.1 -p \(port) -k \(root.path)", "start",
            ])
    }

    func stop() throws {
        try run("pg_ctl", ["-D", root.appendingPathComponent("data").path, "-m", "fast", "-w", "stop"])
    }

    func remove() {
        try? stop()
        try? FileManager.default.removeItem(at: root)
    }
}

/// A value behind a lock, shareable between tasks.
final class Shared<Value: Sendable>: Sendable {
    private let lock: Mutex<Value>
    init(_ value: Value) { lock = Mutex(value) }
    func withLock<T>(_ body: (inout Value) -> T) -> T { lock.withLock { body(&$0) } }
}
