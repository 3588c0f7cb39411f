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

// Backups and restores of the central store and of replica files, as operators and users make them.
extension FaultRun {
    /// The files of a SQLite database.
    static let suffixes = ["", "-wal", "-shm"]

    static func copyFiles(_ from: String, _ to: String) throws {
        for suffix in suffixes {
            try? FileManager.default.removeItem(atPath: to + suffix)
            if FileManager.default.fileExists(atPath: from + suffix) { try FileManager.default.copyItem(atPath: from + suffix, toPath: to + suffix) }
        }
    }

    func stopServers() {
        for server in servers { server?.stop() }
        servers = servers.map { _ in nil }
    }

    /// An operator's backup of the central store, taken with the servers stopped.
    func backUpStore() async throws {
        stopServers()
        if let storeURL {
            storeBackup = try await TestPostgres.freshDatabase(options: "TEMPLATE \(storeURL.lastPathComponent)")
        } else {
            try Self.copyFiles(directory.path("central.sqlite"), directory.path("central-backup.sqlite"))
            storeBackup = URL(fileURLWithPath: directory.path("central-backup.sqlite"))
        }
        storeBackups += 1
        storeBackupGeneration = storeBackups
        for index in servers.indices { try await startServer(index) }
    }

    /// The central store restored from the backup: what was written since is gone from it, and
    /// the replicas must notice and push it back.
    func restoreStore() async throws {
        guard let backup = storeBackup else { return }
        stopServers()
        if storeURL != nil {
            storeURL = try await TestPostgres.freshDatabase(options: "TEMPLATE \(backup.lastPathComponent)")
        } else {
            try Self.copyFiles(backup.path, directory.path("central.sqlite"))
        }
        storeRestores += 1
        // A write synced after the backup was taken, whose replica's file then lost it in a
        // power cut under `normal`, is now nowhere: its replica's copy went by the durability
        // setting, the server's by the operator's restore. Only those no open replica holds
        // leave the model; a write some replica still holds must come back (the replicas notice
        // the restore and push back what the server lost).
        var held = [String: Set<String>]()
        for key in Set(serverOnly.filter { $0.generation >= storeBackupGeneration }.map(\.key)) {
            let parts = key.split(separator: "/").map(String.init)
            let documentKey = DocumentKey(collection: try CollectionName(parts[0]), id: try DocumentID(parts[1]))
            for node in nodes {
                let tags = try await node.replica.record(documentKey)?.body.set("tags") ?? []
                for case .string(let tag) in tags { held[key, default: []].insert(tag) }
            }
        }
        serverOnly.removeAll { write in
            guard write.generation >= storeBackupGeneration else { return false }
            guard held[write.key]?.contains(write.tag) != true else { return true }
            counters[write.key, default: 0] -= write.amount
            maybe[write.key, default: 0] += write.amount
            nested[write.key, default: 0] -= write.amount
            nestedMaybe[write.key, default: 0] += write.amount
            elements[write.key]?.remove(write.tag)
            history[write.key, default: []].append(
                "+\(write.amount) \(write.tag): synced after the restored backup was taken, and gone from its replica's file with a power cut")
            return true
        }
        for index in servers.indices { try await startServer(index) }
    }

    /// Closes replica `index` (waiting until nothing holds it, so its connection is closed), runs
    /// `body` on its files, and opens it again.
    func withReplicaClosed(_ index: Int, _ body: () throws -> Void) async throws {
        weak let probe = slots[index]?.replica
        slots[index] = nil
        for _ in 0..<3_000 where probe != nil { try await Task.sleep(for: .milliseconds(20)) }
        if probe != nil { throw OfflineTests.TestFailure("replica \(index) is still held (replay: \(replay))") }
        try body()
        slots[index] = try await openNode(index)
    }

    /// A copy of replica `index`'s file, taken while it is closed.
    func replicaSnapshot(_ index: Int) async throws {
        let path = directory.path("replica\(index).sqlite")
        try await withReplicaClosed(index) { try Self.copyFiles(path, directory.path("replica\(index)-copy.sqlite")) }
        replicaBackups.insert(index)
        replicaSnapshots += 1
    }

    /// Replica `index`'s file replaced by its older copy (a phone restored from a backup): its
    /// writes the server had not acknowledged are gone with the newer file.
    func replicaRestore(_ index: Int) async throws {
        guard replicaBackups.contains(index), slots[index] != nil else { return }
        for write in unconfirmed[index] ?? [] where try await slots[index]?.replica.isAcknowledged(sequence: write.sequence) == false {
            counters[write.key, default: 0] -= write.amount
            maybe[write.key, default: 0] += write.amount
            if write.nested {
                nested[write.key, default: 0] -= write.amount
                nestedMaybe[write.key, default: 0] += write.amount
            }
            if let tag = write.tag { elements[write.key]?.remove(tag) }
            history[write.key, default: []].append("r\(index) +\(write.amount) seq \(write.sequence) lost with the file's restore")
        }
        unconfirmed[index] = []
        let path = directory.path("replica\(index).sqlite")
        try await withReplicaClosed(index) { try Self.copyFiles(directory.path("replica\(index)-copy.sqlite"), path) }
        replicaRestores += 1
    }
}
