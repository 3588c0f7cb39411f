import AsyncHTTPClient
import Foundation
import Synchronization
import Testing
import Weft
import WeftCRDT
import WeftHTTP
import WeftPostgres
import WeftServer
import WeftSQLite
import WeftWire

#if canImport(Glibc)
import Glibc
#endif

/// Issue #14: a seeded fault-injection suite. Three replicas on SQLite files sync through a
/// fault-injecting proxy (``FaultProxy``) with real `weft serve` processes: one on a SQLite
/// store, or two sharing a PostgreSQL database. Along a seeded run of writes and syncs:
///
/// - network faults: requests cut part-way (the server never sees them whole), answers cut
///   part-way (the server committed, the client does not know), partitions (connections
///   refused), pushes sent twice and old pushes replayed late (``ReplayingTransport``);
/// - process faults: a server killed with SIGKILL and restarted, a replica closed and reopened
///   from its file, and a replica's file handed to a child process (`WeftCrashWriter fault`)
///   that writes and syncs until it is killed with SIGKILL (its power cut is
///   ``PowerLossSyncTests``' subject);
/// - a mixed workload: counters, last-writer-wins registers, sets, nested documents, deletes and
///   re-creations, a last-writer-wins collection, write-through writes with both fallbacks, and
///   a collection whose custom resolver the servers lack (they keep siblings; the replicas
///   resolve them).
///
/// Then the network heals, everything syncs, and the invariants are checked: every queue and
/// dead-letter table is empty; every replica's records equal the server's; every counter is the
/// sum of its increments (write-through rollbacks may or may not count: their push can escape
/// before the undo); every inserted set element is there; every register holds a value
/// written to it; no record holds siblings, and every quantity under the custom resolver is one
/// written. A failing run prints the command that replays it.
///
/// Each run also restores from older copies, by its seed: nothing, the central store (a backup
/// taken with the servers stopped: the replicas must notice and push back what it lost), or
/// replica files (a phone restored from a backup: its writes the server had not acknowledged
/// are gone with the newer file, and may or may not count).
///
/// `WEFT_FAULT_SEED` replays one seed; `WEFT_FAULT_SEEDS=N` runs N random seeds per store
/// instead of the fixed ones; `WEFT_FAULT_STEPS` sets the steps a run (default 250);
/// `WEFT_FAULT_RESTORES=both` restores the store and replica files in the same run.
@Suite("Fault injection (seeded)", .serialized)
struct FaultInjectionTests {
    enum StoreKind: String, CaseIterable, Sendable, CustomStringConvertible {
        case sqlite, postgres
        var description: String { rawValue }
    }

    /// The seeds CI runs: on each store, runs that restore nothing, the store, and replica files.
    /// Seeds that found bugs, with the schedules of their day (each new kind of step changes
    /// every seed's schedule): 2851714868834001058 lost an acknowledged write before every sync
    /// round opened with a hello; 13516809551237828131 left a replica's version vector above the
    /// server's, then double-counted increments under a first design of relays after a restore;
    /// 6060483968877760327 lost an acknowledged write to a restore during a session, before
    /// pushes said what they expected.
    static let fixedSeeds: [StoreKind: [UInt64]] = [
        .sqlite: [1, 3, 4, 2851714868834001058, 6060483968877760327], .postgres: [11, 10, 14, 13516809551237828131],
    ]

    static func seeds(for kind: StoreKind) -> [UInt64] {
        let environment = ProcessInfo.processInfo.environment
        if let text = environment["WEFT_FAULT_SEED"], let seed = UInt64(text) { return [seed] }
        if let text = environment["WEFT_FAULT_SEEDS"], let count = Int(text) {
            var system = SystemRandomNumberGenerator()
            return (0..<count).map { _ in system.next() }
        }
        return fixedSeeds[kind] ?? []
    }

    static var steps: Int { ProcessInfo.processInfo.environment["WEFT_FAULT_STEPS"].flatMap(Int.init) ?? 250 }

    @Test func onTheSQLiteStore() async throws {
        for seed in Self.seeds(for: .sqlite) { try await FaultRun(kind: .sqlite, seed: seed, steps: Self.steps).run() }
    }

    @Test(.enabled(if: !TestPostgres.skipped)) func onPostgreSQLWithTwoServers() async throws {
        for seed in Self.seeds(for: .postgres) { try await FaultRun(kind: .postgres, seed: seed, steps: Self.steps).run() }
    }
}
