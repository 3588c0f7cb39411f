// Channels (issue #19, point 6): a user with access to 1% of a large database pulls what it may
// see; the same user against a database holding only its documents. The pull's time must
// follow the user's share, not the database: the ratio of the two is the figure.

import Foundation
import Weft
import WeftCRDT
import WeftPostgres
import WeftServer
import WeftWire

/// One store's channel figures.
struct ChannelPulls {
    var store: String
    var documents: Int
    var userDocuments: Int
    var loadSeconds: Double
    /// Each pass's seconds: the large database's pull, then the small one's.
    var passes: [(large: Double, small: Double)]
    var caughtUp: (large: Double, small: Double)

    var ratio: Double { median(passes.map { $0.large / max($0.small, 1e-9) }) }

    var json: [String: Any] {
        [
            "store": store, "documents": documents, "user_documents": userDocuments,
            "load_seconds": rounded(loadSeconds, 1),
            "passes": passes.map {
                ["large_seconds": rounded($0.large, 3), "small_seconds": rounded($0.small, 3)]
            },
            "large_over_small_median": rounded(ratio, 3),
            "caught_up_pull_ms": [
                "large": rounded(caughtUp.large * 1_000, 2), "small": rounded(caughtUp.small * 1_000, 2),
            ],
        ]
    }
}

/// The channel templates of the benchmark: a work order is in its technician's channel and its
/// site's.
let benchChannels = ServerChannels([
    CollectionName.orders: [ChannelTemplate("user:{assignee}"), ChannelTemplate("site:{site}")].compactMap {
        $0
    }
])

extension CollectionName {
    static let orders: CollectionName = {
        guard let name = try? CollectionName("orders") else {
            preconditionFailure("a constant collection name")
        }
        return name
    }()
}

/// Loads `documents` work orders into database `large` of `loader` (one in `1 / share` assigned
/// to the measured user, the others to one of 10,000 technicians with random ids, on 500
/// sites), and the user's orders alone into database `small`; then the user, reading only its
/// own channel, pulls each from 0 `repeats` times in alternating order, through `reader` (another
/// store object: a second server, for PostgreSQL).
func runChannelPulls(
    label: String, loader: any CentralStore, reader: any CentralStore, documents: Int, share: Int,
    repeats: Int
) async throws -> ChannelPulls {
    let writer = ReplicaID.random()
    let user = "tech-" + UUID().uuidString.lowercased()
    let others = (0..<10_000).map { _ in "tech-" + UUID().uuidString.lowercased() }
    let projector = DocumentProjector(
        policies: { _ in ServerPolicies(defaultPolicy: .crdt) }, channels: benchChannels)
    var wall: UInt64 = 1_700_000_000_000
    func order(_ index: Int, assignee: String) -> DocumentRecord {
        wall += 1
        let stamp = HLCTimestamp(wallMilliseconds: wall, counter: 0, replica: writer)
        var body = Document()
        body.set("title", to: .string("Work order \(index): replace the pump seal"), at: stamp)
        body.set("status", to: .string("open"), at: stamp)
        body.set("assignee", to: .string(assignee), at: stamp)
        body.set("site", to: .string("site-\(index % 500)"), at: stamp)
        return DocumentRecord(
            body: body, deletion: LWWRegister(false, stamp: stamp), version: VersionVector([writer: 1]))
    }
    func push(_ database: String, _ changes: [(sequence: UInt64, key: DocumentKey, delta: DocumentRecord)])
        async throws
    {
        _ = try await loader.applyPush(
            database: database, replica: writer, epoch: 0, expectedMark: 0, pulledThrough: 0,
            receipt: PushReceipt.draw(), changes: changes,
            projector: projector
        ) { local, key, remote throws(WeftError) in
            try DocumentMerge.merge(local: local, remote: remote, key: key, policy: .crdt)
        }
    }
    let started = ContinuousClock.now
    var large = [(sequence: UInt64, key: DocumentKey, delta: DocumentRecord)]()
    var small = [(sequence: UInt64, key: DocumentKey, delta: DocumentRecord)]()
    var userDocuments = 0
    for index in 0..<documents {
        let mine = index % share == 0
        let record = order(index, assignee: mine ? user : others[Int.random(in: 0..<others.count)])
        let key = DocumentKey(collection: .orders, id: try DocumentID("wo-\(UUID().uuidString.lowercased())"))
        large.append((UInt64(index + 1), key, record))
        if mine {
            userDocuments += 1
            small.append((UInt64(userDocuments), key, record))
        }
        if large.count == 1_000 {
            try await push("large", large)
            large.removeAll(keepingCapacity: true)
        }
        if small.count == 1_000 {
            try await push("small", small)
            small.removeAll(keepingCapacity: true)
        }
        if index % 100_000 == 99_999 {
            log("channels: \(label): loaded \(index + 1) of \(documents) documents")
        }
    }
    if !large.isEmpty { try await push("large", large) }
    if !small.isEmpty { try await push("small", small) }
    let loadSeconds = (ContinuousClock.now - started).seconds
    log("channels: \(label): loaded in \(rounded(loadSeconds, 1)) s")

    let service = SyncService(
        store: reader, policiesByDatabase: { _ in ServerPolicies(defaultPolicy: .crdt) },
        channels: benchChannels)
    let grant = ChannelGrant.only(["user:\(user)"])
    /// Pulls everything the user may see from `after` (0: a first sync); the seconds, the
    /// changes, and where it ended.
    // One replica: its views are signed for it.
    let replica = ReplicaID.random()
    func pullAll(_ database: String, after start: UInt64 = 0, view start2: [UInt8] = []) async throws -> (
        seconds: Double, changes: Int, cursor: UInt64, tag: UInt64, view: [UInt8]
    ) {
        var cursor = start
        var tag: UInt64 = 0
        var view = start2
        var changes = 0
        let clock = ContinuousClock.now
        while true {
            let page = try await service.pull(
                database: database,
                PullRequest(
                    after: cursor, afterTag: tag, replica: replica, handlesCollection: true,
                    handlesChannels: true, view: view),
                readable: grant)
            changes += page.changes.count
            if page.channels?.isViewChange != true {
                if page.cursor > cursor { tag = page.cursorTag }
                cursor = page.cursor
            }
            view = page.channels?.view ?? view
            if !page.hasMore { break }
        }
        return ((ContinuousClock.now - clock).seconds, changes, cursor, tag, view)
    }
    var passes = [(large: Double, small: Double)]()
    var ends = [String: (cursor: UInt64, view: [UInt8])]()
    for pass in 1...repeats {
        var figures = [String: Double]()
        for database in pass % 2 == 1 ? ["large", "small"] : ["small", "large"] {
            let result = try await pullAll(database)
            guard result.changes == userDocuments else {
                throw BenchFailure(
                    "channels: \(label): the user pulled \(result.changes) changes of \(database), expected \(userDocuments)"
                )
            }
            figures[database] = result.seconds
            ends[database] = (result.cursor, result.view)
        }
        let largeSeconds = figures["large"] ?? 0
        let smallSeconds = figures["small"] ?? 0
        log(
            "channels: \(label) pass \(pass)/\(repeats): \(rounded(largeSeconds, 3)) s from the large database, \(rounded(smallSeconds, 3)) s from the small one"
        )
        passes.append((largeSeconds, smallSeconds))
    }
    // A caught-up user pulls again: nothing new in its channel.
    var caughtUp = [String: Double]()
    for database in ["large", "small"] {
        guard let end = ends[database] else { continue }
        caughtUp[database] = try await pullAll(database, after: end.cursor, view: end.view).seconds
    }
    return ChannelPulls(
        store: label, documents: documents, userDocuments: userDocuments, loadSeconds: loadSeconds,
        passes: passes,
        caughtUp: (caughtUp["large"] ?? 0, caughtUp["small"] ?? 0))
}

extension Duration {
    /// The duration in seconds.
    fileprivate var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
