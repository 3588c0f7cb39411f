import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Issue #14, point 7: a test run killed with SIGKILL leaves no PostgreSQL server behind, from
/// `scripts/with-postgres.sh` or from a test's own server.
@Suite(
    "No PostgreSQL outlives a killed test run", .serialized,
    .enabled(if: ProcessInfo.processInfo.environment["WEFT_POSTGRES_BIN"] != nil, "needs the PostgreSQL server binaries"))
struct LeftoverPostgresTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Whether a `postgres` process serves the data folder under `root`.
    static func serving(_ root: String) throws -> Bool {
        let result = try runProcess(URL(fileURLWithPath: "/usr/bin/pgrep"), ["-f", "postgres -D \(root)/data"])
        return result.status == 0
    }

    /// Waits (a minute at most: the watchdog polls once a second) until `root` is gone and no
    /// server uses it.
    static func cleanedUp(_ root: String) async throws -> Bool {
        for _ in 0..<600 {
            if !FileManager.default.fileExists(atPath: root), try !serving(root) { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    @Test func theScriptsServerGoesWhenTheScriptIsKilled() async throws {
        // Started through a shell that exits at once, so the script is nobody's child here and
        // is reaped once killed, as in a real run whose parent is gone or waits for it.
        let directory = TemporaryDirectory()
        let log = directory.path("script.out")
        let pidFile = directory.path("script.pid")
        let script = Self.repository.appendingPathComponent("scripts/with-postgres.sh").path
        let started = system(
            "bash \(PrivatePostgres.quoted(script)) sleep 613 >\(PrivatePostgres.quoted(log)) 2>&1 </dev/null & echo $! >\(PrivatePostgres.quoted(pidFile))")
        #expect(started == 0)
        defer { _ = try? runProcess(URL(fileURLWithPath: "/usr/bin/pkill"), ["-f", "sleep 613"]) }
        // "with-postgres: PostgreSQL 15.x on 127.0.0.1:PORT (/tmp/weft-postgres.XXXXXX)"
        var text = ""
        for _ in 0..<1_200 where !text.contains(")\n") {
            try await Task.sleep(for: .milliseconds(50))
            text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        }
        let root = try #require(text.split(separator: "(").last?.split(separator: ")").first.map(String.init), "\(text)")
        #expect(try Self.serving(root), "the server did not start: \(text)")
        let pid = try #require(Int32((try String(contentsOfFile: pidFile, encoding: .utf8)).trimmingCharacters(in: .whitespacesAndNewlines)))
        kill(pid, SIGKILL)
        #expect(try await Self.cleanedUp(root), "the server of a killed with-postgres.sh lives on")
    }

    @Test func aTestsOwnServerGoesWhenItsProcessIsKilled() async throws {
        let owner = Process()
        owner.executableURL = URL(fileURLWithPath: "/bin/sleep")
        owner.arguments = ["617"]
        try owner.run()
        let server = try PrivatePostgres(owner: owner.processIdentifier)
        #expect(try Self.serving(server.root.path))
        kill(owner.processIdentifier, SIGKILL)
        try await TestPostgres.exit(of: owner)
        #expect(try await Self.cleanedUp(server.root.path), "the server of a killed test process lives on")
    }
}
