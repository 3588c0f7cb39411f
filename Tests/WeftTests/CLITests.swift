import Foundation
import Testing
import Weft
import WeftSQLite

@Suite("The weft command", .serialized)
struct CLITests {
    @Test func theDemoConvergesAndExitsZero() throws {
        let weft = try builtExecutable("weft")
        let result = try runProcess(weft, ["demo"])
        #expect(result.status == 0, "\(result.error)")
        #expect(result.output.contains("identical on every replica: yes"))
        #expect(result.output.contains("Conflicts resolved by the server:"))
        #expect(result.output.contains("count=4"))
    }

    @Test func statusAndConflictsReadAReplicaFile() async throws {
        let directory = TemporaryDirectory()
        let path = directory.path("app.sqlite")
        do {
            let replica = try await Replica.open(path: path)
            try await replica.collection("c").create("d") { $0.set("v", to: 1) }
        }
        let weft = try builtExecutable("weft")
        let status = try runProcess(weft, ["status", path])
        #expect(status.status == 0, "\(status.error)")
        #expect(status.output.contains("queue        1 entries"))
        let conflicts = try runProcess(weft, ["conflicts", path])
        #expect(conflicts.status == 0 && conflicts.output.contains("no conflicts"))
        let missing = try runProcess(weft, ["status", directory.path("nope.sqlite")])
        #expect(missing.status != 0 && missing.error.contains("does not exist"))
    }

    @Test func serveRefusesABadConfigurationWithTheKeyAndLine() throws {
        let directory = TemporaryDirectory()
        let path = directory.path("bad.toml")
        try "[server]\nlisten = \"nowhere\"\n".write(toFile: path, atomically: true, encoding: .utf8)
        let result = try runProcess(try builtExecutable("weft"), ["serve", "--config", path])
        #expect(result.status != 0)
        #expect(result.error.contains("line 2") && result.error.contains("server.listen"), "\(result.error)")
    }
}
