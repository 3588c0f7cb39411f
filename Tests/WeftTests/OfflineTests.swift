import AsyncHTTPClient
import Foundation
import Testing
import Weft
import WeftCRDT
import WeftHTTP
import WeftSQLite

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The server process really stops while replicas keep writing; it restarts and everything
/// converges.
@Suite("Offline and reconnect with a real server process", .serialized)
struct OfflineTests {
    static let token = "offline-token-0123456789"

    /// A TCP socket bound to a free port on 127.0.0.1 (not yet listening), and that port.
    static func boundLoopbackSocket() throws -> (descriptor: Int32, port: Int) {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw TestFailure("socket() failed") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0 }
        }
        guard bound else {
            close(descriptor)
            throw TestFailure("bind() failed")
        }
        return (descriptor, Int(UInt16(bigEndian: address.sin_port)))
    }

    /// A loopback port nothing listens on right now.
    static func freePort() throws -> Int {
        let (descriptor, port) = try boundLoopbackSocket()
        close(descriptor)
        return port
    }

    struct TestFailure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    /// `weft serve` in a child process.
    final class ServerProcess {
        let process = Process()
        let baseURL: String

        init(config: String, port: Int) throws {
            process.executableURL = try builtExecutable("weft")
            process.arguments = ["serve", "--config", config]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            baseURL = "http://127.0.0.1:\(port)"
            try process.run()
        }

        /// Waits until `/health` answers.
        func waitUntilServing() async throws {
            for _ in 0..<600 {
                if let response = try? await HTTPClient.shared.execute(HTTPClientRequest(url: "\(baseURL)/health"), timeout: .seconds(60)),
                    response.status.code == 200
                {
                    return
                }
                guard process.isRunning else { throw TestFailure("weft serve exited with \(process.terminationStatus)") }
                try await Task.sleep(for: .milliseconds(50))
            }
            throw TestFailure("weft serve did not answer /health")
        }

        /// Stops the process (SIGTERM, graceful) and waits for it to exit.
        func stop() {
            guard process.isRunning else { return }
            process.terminate()
            process.waitUntilExit()
        }
    }

    @Test("10,000 writes while the server is down, a replica restarted offline, then everything converges")
    func serverStoppedWhileReplicasWrite() async throws {
        let directory = TemporaryDirectory()
        let port = try Self.freePort()
        let config = directory.path("server.toml")
        try """
            [persistence]
            conflict_resolution = "crdt"

            [server]
            listen = "127.0.0.1:\(port)"
            store_path = "\(directory.path("central.sqlite"))"

            [[server.tokens]]
            token = "\(Self.token)"
            databases = ["fieldapp"]
            access = "read_write"
            """.write(toFile: config, atomically: true, encoding: .utf8)
        var server = try ServerProcess(config: config, port: port)
        defer { server.stop() }
        try await server.waitUntilServing()

        var configuration = ReplicaConfiguration()
        configuration.conflictResolution = .crdt
        func open(_ index: Int) async throws -> (Replica, SyncEngine) {
            let replica = try await Replica.open(path: directory.path("replica\(index).sqlite"), configuration: configuration)
            let transport = HTTPTransport(baseURL: server.baseURL, database: "fieldapp", token: Self.token, timeout: .seconds(60))
            return (replica, SyncEngine(replica: replica, transport: transport))
        }
        var replicas = [(Replica, SyncEngine)]()
        for index in 0..<3 { replicas.append(try await open(index)) }
        try await replicas[0].0.collection("readings").create("common") { $0.set("site", to: "north") }
        for (_, engine) in replicas { try await engine.syncOnce() }

        // The server process really stops.
        server.stop()
        #expect(!server.process.isRunning)

        // 10,000 writes across the replicas while it is down: counters on shared documents, so
        // a lost or doubled write shows in the totals.
        let writes = 10_000
        var expected = [String: Int64]()
        for write in 0..<writes {
            let (replica, _) = replicas[write % 3]
            let id = "sensor-\(write % 200)"
            try await replica.collection("readings").upsert(id) { editor in
                editor.increment("samples", by: 1)
                editor.set("last", to: .int(Int64(write)))
            }
            expected[id, default: 0] += 1
        }
        for (_, engine) in replicas {
            await #expect(throws: SyncError.self) { try await engine.syncOnce() }
        }
        let queued = try await replicas[2].0.queuedChanges().map(\.sequence)
        #expect(!queued.isEmpty)

        // A replica restarted while offline keeps its queue and carries on.
        replicas.removeLast()
        replicas.append(try await open(2))
        #expect(try await replicas[2].0.queuedChanges().map(\.sequence) == queued)
        try await replicas[2].0.collection("readings").upsert("sensor-0") { $0.increment("samples", by: 1) }
        expected["sensor-0", default: 0] += 1

        // One replica runs its write-behind loop through the outage: it must go offline and
        // come back by itself.
        let looping = replicas[0].1
        let states = await looping.connectionStates()
        let loop = Task {
            await looping.runWriteBehind(
                every: .milliseconds(100), backoff: Backoff(initial: .milliseconds(20), maximum: .milliseconds(200)),
                clock: ContinuousClock())
        }
        var seen = [ConnectionState]()
        var iterator = states.makeAsyncIterator()
        while let state = await iterator.next() {
            seen.append(state)
            if seen.filter({ $0 == .offline }).count >= 2 { break }
        }

        // The server restarts on the same store.
        server = try ServerProcess(config: config, port: port)
        try await server.waitUntilServing()
        while let state = await iterator.next() {
            seen.append(state)
            if state == .online { break }
        }
        loop.cancel()
        await loop.value
        #expect(seen.contains(.offline) && seen.last == .online)

        for _ in 0..<2 { for (_, engine) in replicas { try await engine.syncOnce() } }
        var states0 = [String: Document]()
        for (index, (replica, _)) in replicas.enumerated() {
            #expect(try await replica.queuedChanges().isEmpty, "replica \(index) still has queued changes")
            let documents = try await replica.collection("readings").list()
            #expect(documents.count == 201)
            var byID = [String: Document]()
            for document in documents { byID[document.id.rawValue] = document.document }
            for (id, count) in expected {
                #expect(byID[id]?.counter("samples") == count, "replica \(index): \(id)")
            }
            if index == 0 { states0 = byID } else { #expect(byID == states0, "replica \(index) differs from replica 0") }
        }
    }
}
