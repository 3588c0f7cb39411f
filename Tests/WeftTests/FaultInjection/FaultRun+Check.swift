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

// The invariants checked at the end of a run.
extension FaultRun {
    /// The server's store, opened directly (the servers are stopped first).
    func openStore() async throws -> any CentralStore {
        for server in servers { server?.stop() }
        servers = servers.map { _ in nil }
        if let storeURL { return try await PostgresCentralStore(url: storeURL) }
        return try SQLiteCentralStore(path: directory.path("central.sqlite"))
    }

    func check() async throws {
        let store = try await openStore()
        defer { if let postgres = store as? PostgresCentralStore { Task { await postgres.shutdown() } } }
        let context = "seed \(seed) on \(kind) (replay: \(replay))"
        let collectedThrough = try await store.collectedThrough(database: Self.database)
        var keys = Set<DocumentKey>()
        for node in nodes {
            #expect(try await node.replica.queuedChanges().isEmpty, "a queue is not empty, \(context)")
            // A replica behind what the server forgot (a file restored, or rolled back by a
            // power cut, past tombstones the others pulled) sets aside its unpushed writes to
            // documents deleted since: by design, and the checks below still hold every write
            // that must survive. Any other dead letter is a failure.
            let all = try await node.replica.deadLetters(limit: 10_000)
            let forgottenReasons = [Replica.forgottenWhileAway, Replica.createdAgainWhileAway]
            let dead = all.filter { !(collectedThrough > 0 && forgottenReasons.contains($0.reason)) }
            setAside += all.count - dead.count
            #expect(dead.isEmpty, "a dead letter (\(dead.map { "\($0)" }.joined(separator: "; ").prefix(600))), \(context)")
            for collection in ["sensors", "orders", "notes", "churn", "stock"] {
                for (id, _) in try await node.replica.collection(collection).list(where: DocumentFilter(includeDeleted: true)) {
                    keys.insert(DocumentKey(collection: try CollectionName(collection), id: id))
                }
            }
        }
        for key in keys.sorted(by: { "\($0)" < "\($1)" }) {
            let server = try await store.record(database: Self.database, key: key)
            var locals = [DocumentRecord?]()
            for node in nodes { locals.append(try await node.replica.record(key)) }
            // The server forgets a tombstone once every replica pulled past it (`weft serve`'s
            // compaction pass, at each start); replicas keep theirs for tombstone_retention_ms.
            let forgotten = server == nil && locals.allSatisfy { $0.map { $0.isDeleted && $0.body.count == 0 } ?? true }
            if forgotten { forgottenTombstones += 1 }
            #expect(server != nil || forgotten, "\(key) is missing on the server, \(context)")
            for (index, node) in nodes.enumerated() {
                // (Compared here, not in #expect, so a failure prints a line, not two records.)
                let local = locals[index]
                if forgotten { continue }
                if let local, let server, local != server, storeRestores > 0 || collectedThrough > 0,
                    Self.claimsAhead(local, of: server)
                {
                    if storeRestores > 0 {
                        // A write relayed after the restored store lost it: the store cut what the
                        // relay claimed about other replicas to what it holds, so the relaying
                        // replica's claims stay ahead while the contents agree.
                        limitedRelays += 1
                    } else {
                        // A document created anew after the server forgot its tombstone, which
                        // this replica still holds: joined into the new record, the tombstone's
                        // history stays here (its context and version, no content) until the
                        // next write of the document carries it to the server.
                        keptHistories += 1
                    }
                } else if local != server {
                    let cursor = try await node.replica.pullCursor()
                    let last = try await store.changes(database: Self.database, after: 0, limit: 100_000, maxBytes: 1 << 30).changes.last?.sequence ?? 0
                    Issue.record(
                        "replica \(index) differs from the server on \(key) (its cursor \(cursor), the log's last change \(last); local n \(local?.body.counter("n") ?? -1) deleted \(local?.isDeleted ?? false) version \(local.map { "\($0.version)" } ?? "-"), server n \(server?.body.counter("n") ?? -1) deleted \(server?.isDeleted ?? false) version \(server.map { "\($0.version)" } ?? "-")); \(Self.explainDifference(local, server)); fields here \(Self.summary(local)), on the server \(Self.summary(server))), \(context)")
                }
            }
            guard let body = server?.body else { continue }
            let name = "\(key.collection.rawValue)/\(key.id.rawValue)"
            #expect(server?.holdsSiblings == false, "\(name): the server still holds siblings, \(context)")
            if let written = quantities[name] {
                #expect(body.int("qty").map(written.contains) == true, "\(name): qty is \(String(describing: body.int("qty"))), never written, \(context)")
            }
            if let expected = counters[name] {
                let total = body.counter("n") ?? 0
                let slack = maybe[name] ?? 0
                #expect(
                    (total >= expected || resettable.contains(name)) && total <= expected + slack,
                    "\(name): counter \(total), expected \(expected) (+ up to \(slack) rolled back), \(context); writes: \((history[name] ?? []).joined(separator: "; "))")
            }
            if let expected = nested[name] {
                guard case .map(let stats)? = body["stats"] else {
                    Issue.record("\(name) lost its nested document, \(context)")
                    continue
                }
                let value = stats.counter("m") ?? 0
                let slack = nestedMaybe[name] ?? 0
                #expect(value >= expected && value <= expected + slack, "\(name): nested counter \(value), expected \(expected) (+ up to \(slack)), \(context)")
            }
            if let expected = elements[name] {
                let present = Set((body.set("tags") ?? []).compactMap { if case .string(let text) = $0 { text } else { nil } })
                #expect(expected.isSubset(of: present), "\(name): set elements lost: \(expected.subtracting(present).sorted()), \(context)")
            }
            if let written = registers[name] {
                let field = key.collection.rawValue == "notes" ? "v" : "last"
                #expect(body.string(field).map(written.contains) == true, "\(name): register holds \(body.string(field) ?? "nothing"), \(context)")
            }
        }
        for name in counters.keys {
            let parts = name.split(separator: "/").map(String.init)
            #expect(keys.contains(DocumentKey(collection: try CollectionName(parts[0]), id: try DocumentID(parts[1]))), "\(name) is on no replica, \(context)")
        }
        // Concurrent "stock" versions the servers kept as siblings, for the replicas' resolver.
        let siblings = try await store.conflicts(database: Self.database, limit: 100_000).filter {
            if case .custom = $0.policy { true } else { false }
        }.count
        let duplicates = nodes.map { $0.transport.counts.duplicates }.reduce(0, +)
        let replays = nodes.map { $0.transport.counts.replays }.reduce(0, +)
        print(
            "FaultInjection: seed \(seed) on \(kind), restoring \(restores.rawValue): \(steps) steps, \(writes) writes, \(serverKills) server kills, \(replicaRestarts) replica restarts, \(replicaKills) replica processes killed (\(powerCuts) by a power cut), "
                + "\(partitions) partition toggles, \(storeBackups) store backups and \(storeRestores) restores, \(replicaSnapshots) replica copies and \(replicaRestores) restores, network \(proxy.counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")), "
                + "\(duplicates) duplicated and \(replays) late pushes, \(limitedRelays) relays with claims ahead, \(forgottenTombstones) tombstones forgotten by the server (through \(collectedThrough)) and \(keptHistories) of their histories kept by replicas, \(setAside) writes to deleted documents set aside, \(siblings) custom-resolver conflicts kept as siblings, sync failures \(syncFailures.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")); replay: \(replay)")
    }

    /// Whether `local` differs from `server` only by claiming more: the same visible contents
    /// and deletion, nothing `server` holds that `local` lacks, and a version vector equal or
    /// ahead.
    static func claimsAhead(_ local: DocumentRecord, of server: DocumentRecord) -> Bool {
        let order = local.version.compare(to: server.version)
        guard order == .equal || order == .after, local.deletion == server.deletion else { return false }
        guard local.body.merged(with: server.body) == local.body else { return false }
        return sameVisible(local.body, server.body)
    }

    /// Whether two documents show the same values (registers with their concurrent writes,
    /// counters, sets, nested documents field by field), whatever their causal contexts claim.
    static func sameVisible(_ a: Document, _ b: Document) -> Bool {
        guard a.keys == b.keys else { return false }
        return a.keys.allSatisfy { key in
            guard a.concurrentWrites(key) == b.concurrentWrites(key) else { return false }
            switch (a[key], b[key]) {
            case (.map(let x)?, .map(let y)?): return sameVisible(x, y)
            case (let x, let y): return x == y
            }
        }
    }

    /// A record's visible fields, briefly, for a failure's message.
    static func explainDifference(_ local: DocumentRecord?, _ server: DocumentRecord?) -> String {
        guard let local, let server else { return "one is missing" }
        var notes = [String]()
        notes.append("order \(local.version.compare(to: server.version))")
        if local.deletion != server.deletion { notes.append("deletion differs") }
        if local.body.keys != server.body.keys { notes.append("keys differ") }
        if local.body.merged(with: server.body) != local.body { notes.append("the server holds more") }
        for key in local.body.keys where local.body[key] != server.body[key] { notes.append("\(key) differs") }
        for key in local.body.keys where local.body.concurrentWrites(key) != server.body.concurrentWrites(key) { notes.append("\(key) writes differ") }
        if local.body.context != server.body.context { notes.append("contexts differ") }
        return notes.joined(separator: ", ")
    }

    static func summary(_ record: DocumentRecord?) -> String {
        guard let record else { return "none" }
        let fields = record.body.keys.map { "\($0.debugDescription)=\(String(describing: record.body[$0]).prefix(60))" }
        return "\(record.holdsSiblings ? "siblings " : "")[\(fields.joined(separator: ", ").prefix(300))]"
    }
}
