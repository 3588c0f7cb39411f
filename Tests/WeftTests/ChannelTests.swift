import Foundation
import GRDB
import Synchronization
import Testing
import Weft
import WeftCRDT
import WeftPostgres
import WeftServer
import WeftWire

/// A transport whose grants can change while a replica syncs: what a token's claims say, as
/// they would after the app's auth provider issued a new token.
final class GrantedTransport: SyncTransport, Sendable {
    let service: SyncService
    let database: String
    let grants: Mutex<(read: ChannelGrant, write: ChannelGrant)>
    /// Every pull's page, as the replica received it.
    let pages = Mutex<[PullResponse]>([])

    init(service: SyncService, database: String = "field", read: ChannelGrant, write: ChannelGrant) {
        self.service = service
        self.database = database
        grants = Mutex((read, write))
    }

    func grant(read: ChannelGrant, write: ChannelGrant? = nil) {
        grants.withLock { $0 = (read, write ?? $0.write) }
    }

    var inner: InProcessTransport {
        let (read, write) = grants.withLock { $0 }
        return InProcessTransport(service: service, database: database, readable: read, writable: write)
    }

    /// Whether the server answers as one that predates channels (its hello never says it
    /// filters them).
    let predatesChannels = Mutex(false)

    func hello(_ request: HelloRequest) async throws(SyncError) -> HelloResponse {
        var request = request
        if predatesChannels.withLock({ $0 }) { request.handlesChannels = false }
        return try await inner.hello(request)
    }
    func push(_ request: PushRequest) async throws(SyncError) -> PushResponse {
        try await inner.push(request)
    }
    func pull(_ request: PullRequest) async throws(SyncError) -> PullResponse {
        let page = try await inner.pull(request)
        pages.withLock { $0.append(page) }
        return page
    }

    /// The documents the pages carried whole (not those that left), since the last call.
    func takeDelivered() -> [String] {
        pages.withLock { pages in
            defer { pages.removeAll() }
            return pages.flatMap { page in
                let left = Set(page.channels?.left ?? [])
                return page.changes.indices.filter { !left.contains($0) }.map { page.changes[$0].key.id }
            }
        }
    }
}

/// Channels: each replica pulls the documents its token may read, pushes only where it may
/// write, and follows documents and grants as they move.
@Suite("Channels")
struct ChannelTests {
    /// The field-service example: work orders are in their technician's channel and their
    /// site's.
    static let channels = ServerChannels([
        try! CollectionName("orders"): [ChannelTemplate("user:{assignee}"), ChannelTemplate("site:{site}")]
            .compactMap { $0 }
    ])

    static func service(_ store: any CentralStore) -> SyncService {
        SyncService(
            store: store, policiesByDatabase: { _ in ServerPolicies(defaultPolicy: .crdt) },
            channels: channels)
    }

    /// A dispatcher's replica, which may read and write every channel, and its engine.
    static func dispatcher(_ service: SyncService) async throws -> (Replica, SyncEngine) {
        let replica = try await Replica(storage: MemoryReplicaStorage())
        return (
            replica,
            SyncEngine(
                replica: replica, transport: GrantedTransport(service: service, read: .all, write: .all))
        )
    }

    /// A technician's replica, which reads and writes its own channel `user:NAME`, its engine and
    /// its link (whose grants a test may change).
    static func technician(_ name: String, _ service: SyncService) async throws -> (
        Replica, SyncEngine, GrantedTransport
    ) {
        let replica = try await Replica(storage: MemoryReplicaStorage())
        let link = GrantedTransport(
            service: service, read: .only(["user:\(name)"]), write: .only(["user:\(name)"]))
        return (replica, SyncEngine(replica: replica, transport: link), link)
    }

    static func ids(_ replica: Replica) async throws -> Set<String> {
        var found = Set<String>()
        for try await document in try replica.collection("orders").documents() {
            found.insert(document.id.rawValue)
        }
        return found
    }

    @Test(
        "technicians pull their own orders; a reassigned order moves between them",
        arguments: CentralKind.testable)
    func ordersFollowTheirAssignee(_ kind: CentralKind) async throws {
        let directory = TemporaryDirectory()
        let service = Self.service(try await kind.make(directory))
        defer { Task { [store = service.store] in await (store as? PostgresCentralStore)?.shutdown() } }
        let (dispatch, dispatchEngine) = try await Self.dispatcher(service)
        let orders = try dispatch.collection("orders")
        for (id, assignee, site) in [
            ("o1", "alice", "north"), ("o2", "bob", "north"), ("o3", "alice", "south"),
            ("o4", "carol", "south"),
        ] {
            try await orders.create(id) { editor in
                editor.set("assignee", to: .string(assignee))
                editor.set("site", to: .string(site))
                editor.set("notes", to: .string("from dispatch"))
            }
        }
        _ = try await dispatchEngine.syncOnce()

        let (alice, aliceEngine, _) = try await Self.technician("alice", service)
        let (bob, bobEngine, _) = try await Self.technician("bob", service)
        _ = try await aliceEngine.syncOnce()
        _ = try await bobEngine.syncOnce()
        #expect(try await Self.ids(alice) == ["o1", "o3"])
        #expect(try await Self.ids(bob) == ["o2"])

        // Alice edits her own order; dispatch reassigns another of hers to Bob.
        try await alice.collection("orders").update("o3") {
            $0.set("notes", to: .string("replaced the pump"))
        }
        try await orders.update("o1") { $0.set("assignee", to: .string("bob")) }
        _ = try await aliceEngine.syncOnce()
        _ = try await dispatchEngine.syncOnce()
        _ = try await aliceEngine.syncOnce()
        _ = try await bobEngine.syncOnce()
        #expect(try await Self.ids(alice) == ["o3"], "the reassigned order left Alice's replica")
        #expect(try await Self.ids(bob) == ["o1", "o2"])
        #expect(try await bob.collection("orders").get("o1")?.scalar("notes") == .string("from dispatch"))
        // Leaving a view is not a deletion: dispatch and the server still hold o1, live.
        let central = try await service.store.record(database: "field", key: key("orders", "o1"))
        #expect(central?.isDeleted == false)
        #expect(try await Self.ids(dispatch) == ["o1", "o2", "o3", "o4"])
        #expect(
            try await dispatch.collection("orders").get("o3")?.scalar("notes") == .string("replaced the pump")
        )
        #expect(try await alice.deadLetters().isEmpty)
    }

    @Test(
        "a push outside the writer's channels is refused for that change and set aside",
        arguments: CentralKind.testable)
    func writesOutsideTheChannelsAreRefused(_ kind: CentralKind) async throws {
        let directory = TemporaryDirectory()
        let service = Self.service(try await kind.make(directory))
        defer { Task { [store = service.store] in await (store as? PostgresCentralStore)?.shutdown() } }
        let alice = try await Replica(storage: MemoryReplicaStorage())
        let engine = SyncEngine(
            replica: alice,
            transport: GrantedTransport(
                service: service, read: .only(["user:alice"]), write: .only(["user:alice"])))
        let orders = try alice.collection("orders")
        try await orders.create("mine") { $0.set("assignee", to: .string("alice")) }
        try await orders.create("planted") { $0.set("assignee", to: .string("bob")) }
        try await orders.create("handed") { $0.set("assignee", to: .string("alice")) }
        _ = try await engine.syncOnce()
        // Handing an order to someone else takes it out of every channel Alice may write.
        try await orders.update("handed") { $0.set("assignee", to: .string("bob")) }
        _ = try await engine.syncOnce()
        let store = service.store
        #expect(try await store.record(database: "field", key: key("orders", "mine")) != nil)
        #expect(
            try await store.record(database: "field", key: key("orders", "planted")) == nil,
            "a document planted in Bob's channel")
        #expect(
            try await store.record(database: "field", key: key("orders", "handed"))?.body.scalar("assignee")
                == .string("alice"),
            "the hand-off was not applied")
        let letters = try await alice.deadLetters()
        #expect(Set(letters.map(\.key.id.rawValue)) == ["planted", "handed"])
        #expect(
            letters.allSatisfy { $0.reason.contains("no channel this token may write") },
            "\(letters.map(\.reason))")
        #expect(
            letters.first { $0.key.id.rawValue == "handed" }?.record.body.scalar("assignee")
                == .string("bob"), "the refused write is kept")
        #expect(try await alice.queuedChanges().isEmpty)
        // The replica does not stay different from the server: the refused copies gave way, and
        // the one Alice may read came back as the server has it.
        _ = try await engine.syncOnce()
        #expect(try await orders.get("planted") == nil)
        #expect(try await orders.get("handed")?.scalar("assignee") == .string("alice"))
        #expect(try await Self.ids(alice) == ["mine", "handed"])
    }

    @Test(
        "a grant added during a live sync backfills, without what the replica holds; a grant removed takes documents away",
        arguments: CentralKind.testable)
    func grantsChange(_ kind: CentralKind) async throws {
        let directory = TemporaryDirectory()
        let service = Self.service(try await kind.make(directory))
        defer { Task { [store = service.store] in await (store as? PostgresCentralStore)?.shutdown() } }
        let (dispatch, dispatchEngine) = try await Self.dispatcher(service)
        let orders = try dispatch.collection("orders")
        for index in 0..<40 {
            try await orders.create("o\(index)") { editor in
                editor.set("assignee", to: .string(index % 4 == 0 ? "alice" : "tech\(index % 4)"))
                editor.set("site", to: .string(index % 2 == 0 ? "north" : "south"))
            }
        }
        _ = try await dispatchEngine.syncOnce()
        let alice = try await Replica(storage: MemoryReplicaStorage())
        let link = GrantedTransport(
            service: service, read: .only(["user:alice"]), write: .only(["user:alice"]))
        let engine = SyncEngine(replica: alice, transport: link)
        await engine.setPageSize(7)
        _ = try await engine.syncOnce()
        let own = Set((0..<40).filter { $0 % 4 == 0 }.map { "o\($0)" })
        #expect(try await Self.ids(alice) == own)
        _ = link.takeDelivered()

        // Alice now also covers the north site: she receives its orders, not her own again.
        link.grant(read: .only(["user:alice", "site:north"]))
        _ = try await engine.syncOnce()
        let north = Set((0..<40).filter { $0 % 2 == 0 }.map { "o\($0)" })
        #expect(try await Self.ids(alice) == own.union(north))
        let delivered = link.takeDelivered()
        #expect(Set(delivered) == north.subtracting(own), "the backfill sent only what Alice lacked")
        #expect(delivered.count == north.subtracting(own).count, "each once")

        // Changes after the backfill arrive as usual.
        try await orders.update("o2") { $0.set("status", to: .string("done")) }
        try await orders.create("o40") { editor in
            editor.set("assignee", to: .string("dave"))
            editor.set("site", to: .string("north"))
        }
        _ = try await dispatchEngine.syncOnce()
        _ = try await engine.syncOnce()
        #expect(try await alice.collection("orders").get("o2")?.scalar("status") == .string("done"))
        #expect(try await Self.ids(alice) == own.union(north).union(["o40"]))

        // The north grant is withdrawn: its orders go, hers stay.
        link.grant(read: .only(["user:alice"]))
        _ = try await engine.syncOnce()
        #expect(try await Self.ids(alice) == own)
        #expect(try await Self.ids(dispatch).count == 41, "nothing was deleted")
    }

    @Test("a replica changes its subscription at run time", arguments: CentralKind.testable)
    func subscriptions(_ kind: CentralKind) async throws {
        let directory = TemporaryDirectory()
        let service = Self.service(try await kind.make(directory))
        defer { Task { [store = service.store] in await (store as? PostgresCentralStore)?.shutdown() } }
        let (dispatch, dispatchEngine) = try await Self.dispatcher(service)
        let orders = try dispatch.collection("orders")
        for index in 0..<12 {
            try await orders.create("o\(index)") { editor in
                editor.set("assignee", to: .string("tech\(index % 3)"))
                editor.set("site", to: .string("site\(index % 3)"))
            }
        }
        _ = try await dispatchEngine.syncOnce()
        // A gateway that may read every site syncs only site 1.
        let gateway = try await Replica(storage: MemoryReplicaStorage())
        let engine = SyncEngine(
            replica: gateway, transport: GrantedTransport(service: service, read: .all, write: .all))
        await engine.subscribe(to: ["site:site1"])
        _ = try await engine.syncOnce()
        #expect(try await Self.ids(gateway) == ["o1", "o4", "o7", "o10"])
        await engine.subscribe(to: ["site:site2"])
        _ = try await engine.syncOnce()
        #expect(try await Self.ids(gateway) == ["o2", "o5", "o8", "o11"])
        await engine.subscribe(to: nil)
        _ = try await engine.syncOnce()
        #expect(try await Self.ids(gateway).count == 12)
        // A subscription cannot widen what the token may read.
        let tech = try await Replica(storage: MemoryReplicaStorage())
        let techEngine = SyncEngine(
            replica: tech,
            transport: GrantedTransport(service: service, read: .only(["user:tech0"]), write: .all))
        await techEngine.subscribe(to: ["user:tech0", "site:site1"])
        _ = try await techEngine.syncOnce()
        #expect(try await Self.ids(tech) == ["o0", "o3", "o6", "o9"])
    }

    @Test(
        "two servers on one PostgreSQL: a reassignment written through one reaches the technicians of the other",
        .enabled(if: !TestPostgres.skipped))
    func twoServersOnOnePostgres() async throws {
        let url = try await TestPostgres.freshDatabase()
        let first = try await PostgresCentralStore(url: url)
        let second = try await PostgresCentralStore(url: url)
        defer {
            Task {
                await first.shutdown()
                await second.shutdown()
            }
        }
        let dispatchService = Self.service(first)
        let techService = Self.service(second)
        let (dispatch, dispatchEngine) = try await Self.dispatcher(dispatchService)
        let orders = try dispatch.collection("orders")
        for index in 0..<30 {
            try await orders.create("o\(index)") { editor in
                editor.set("assignee", to: .string(index % 3 == 0 ? "alice" : "bob"))
                editor.set("site", to: .string("north"))
            }
        }
        _ = try await dispatchEngine.syncOnce()
        let (alice, aliceEngine, aliceLink) = try await Self.technician("alice", techService)
        let (bob, bobEngine, _) = try await Self.technician("bob", techService)
        _ = try await aliceEngine.syncOnce()
        _ = try await bobEngine.syncOnce()
        let alices = Set((0..<30).filter { $0 % 3 == 0 }.map { "o\($0)" })
        #expect(try await Self.ids(alice) == alices)
        #expect(try await Self.ids(bob).count == 20)
        // Dispatch moves two of Alice's orders to Bob while both technicians edit their own.
        try await orders.update("o0") { $0.set("assignee", to: .string("bob")) }
        try await orders.update("o3") { $0.set("assignee", to: .string("bob")) }
        try await alice.collection("orders").update("o6") { $0.set("notes", to: .string("alice was here")) }
        try await bob.collection("orders").update("o1") { $0.set("notes", to: .string("bob was here")) }
        async let a = dispatchEngine.syncOnce()
        async let b = aliceEngine.syncOnce()
        async let c = bobEngine.syncOnce()
        _ = try await (a, b, c)
        for engine in [aliceEngine, bobEngine, dispatchEngine] { _ = try await engine.syncOnce() }
        #expect(try await Self.ids(alice) == alices.subtracting(["o0", "o3"]))
        #expect(try await Self.ids(bob).count == 22)
        #expect(try await bob.collection("orders").get("o0") != nil)
        #expect(
            try await dispatch.collection("orders").get("o6")?.scalar("notes") == .string("alice was here"))
        #expect(try await dispatch.collection("orders").get("o1")?.scalar("notes") == .string("bob was here"))
        // Alice gains the north site through the other server: a backfill of what she lacks.
        _ = aliceLink.takeDelivered()
        aliceLink.grant(read: .only(["user:alice", "site:north"]))
        _ = try await aliceEngine.syncOnce()
        #expect(try await Self.ids(alice).count == 30)
        #expect(
            Set(aliceLink.takeDelivered())
                == ["o0", "o3"].reduce(into: Set((0..<30).filter { $0 % 3 != 0 }.map { "o\($0)" })) {
                    $0.insert($1)
                })
    }

    @Test(
        "channels come to a database that had none, and follow the templates when they change",
        arguments: CentralKind.testable)
    func channelsAreAssignedToExistingDocuments(_ kind: CentralKind) async throws {
        let directory = TemporaryDirectory()
        let store = try await kind.make(directory)
        defer { Task { await (store as? PostgresCentralStore)?.shutdown() } }
        // A server without channels: every replica sees everything.
        let before = SyncService(
            store: store, policiesByDatabase: { _ in ServerPolicies(defaultPolicy: .crdt) })
        #expect(try await before.assignChannels() == 0)
        let dispatch = try await Replica(storage: MemoryReplicaStorage())
        let orders = try dispatch.collection("orders")
        for index in 0..<12 {
            try await orders.create("o\(index)") { editor in
                editor.set("assignee", to: .string(index % 3 == 0 ? "alice" : "bob"))
                editor.set("site", to: .string(index % 2 == 0 ? "north" : "south"))
            }
        }
        _ = try await SyncEngine(
            replica: dispatch, transport: GrantedTransport(service: before, read: .all, write: .all)
        ).syncOnce()
        // Alice synced then, with a token that read everything.
        let alice = try await Replica(storage: MemoryReplicaStorage())
        _ = try await SyncEngine(
            replica: alice, transport: GrantedTransport(service: before, read: .all, write: .all)
        ).syncOnce()
        #expect(try await Self.ids(alice).count == 12)

        // The server restarts with channels: the documents get theirs in the background pass.
        let after = Self.service(store)
        #expect(try await after.assignChannels() == 12)
        #expect(try await after.assignChannels() == 0, "a second pass finds nothing to do")
        let link = GrantedTransport(service: after, read: .only(["user:alice"]), write: .only(["user:alice"]))
        let engine = SyncEngine(replica: alice, transport: link)
        _ = try await engine.syncOnce()
        let hers = Set((0..<12).filter { $0 % 3 == 0 }.map { "o\($0)" })
        #expect(try await Self.ids(alice) == hers, "what Alice may no longer read left her replica")
        let carol = try await Replica(storage: MemoryReplicaStorage())
        _ = try await SyncEngine(
            replica: carol,
            transport: GrantedTransport(
                service: after, read: .only(["site:north"]), write: .only(["site:north"]))
        ).syncOnce()
        #expect(try await Self.ids(carol) == Set((0..<12).filter { $0 % 2 == 0 }.map { "o\($0)" }))

        // The templates change: orders are now only in their site's channel.
        let sitesOnly = SyncService(
            store: store, policiesByDatabase: { _ in ServerPolicies(defaultPolicy: .crdt) },
            channels: ServerChannels([
                try CollectionName("orders"): [ChannelTemplate("site:{site}")].compactMap { $0 }
            ]))
        #expect(try await sitesOnly.assignChannels() == 12)
        _ = try await SyncEngine(
            replica: alice,
            transport: GrantedTransport(service: sitesOnly, read: .only(["user:alice"]), write: .all)
        )
        .syncOnce()
        #expect(try await Self.ids(alice).isEmpty)
        #expect(try await Self.ids(dispatch).count == 12)
    }

    @Test(
        "a replica that resyncs after its grant shrank drops what it may no longer see, and pushes back only what the server lost"
    )
    func aResyncKeepsTheView() async throws {
        let store = MemoryCentralStore()
        let service = Self.service(store)
        let (dispatch, dispatchEngine) = try await Self.dispatcher(service)
        let orders = try dispatch.collection("orders")
        for index in 0..<8 {
            try await orders.create("o\(index)") { editor in
                editor.set("assignee", to: .string(index % 2 == 0 ? "alice" : "bob"))
                editor.set("site", to: .string("north"))
            }
        }
        _ = try await dispatchEngine.syncOnce()
        let alice = try await Replica(storage: MemoryReplicaStorage())
        let link = GrantedTransport(
            service: service, read: .only(["user:alice", "site:north"]), write: .only(["user:alice"]))
        let engine = SyncEngine(replica: alice, transport: link)
        _ = try await engine.syncOnce()
        #expect(try await Self.ids(alice).count == 8)
        let backup = await store.backup()
        try await alice.collection("orders").create("mine-after-backup") {
            $0.set("assignee", to: .string("alice"))
        }
        _ = try await engine.syncOnce()
        // The server is restored from the backup, and Alice's token no longer covers the site.
        await store.restore(backup)
        link.grant(read: .only(["user:alice"]))
        _ = try await engine.syncOnce()
        _ = try await engine.syncOnce()
        #expect(try await Self.ids(alice) == ["o0", "o2", "o4", "o6", "mine-after-backup"])
        #expect(
            try await store.record(database: "field", key: key("orders", "mine-after-backup")) != nil,
            "pushed back")
        #expect(try await alice.deadLetters().isEmpty)
        #expect(await engine.resyncs >= 1)
    }

    @Test(
        "a set field puts a document in one channel per member, and a member removed loses it",
        arguments: CentralKind.testable)
    func setFieldsGiveOneChannelPerMember(_ kind: CentralKind) async throws {
        let directory = TemporaryDirectory()
        let store = try await kind.make(directory)
        defer { Task { await (store as? PostgresCentralStore)?.shutdown() } }
        let service = SyncService(
            store: store, policiesByDatabase: { _ in ServerPolicies(defaultPolicy: .crdt) },
            channels: ServerChannels([
                try CollectionName("jobs"): [ChannelTemplate("user:{crew}"), ChannelTemplate("everyone")]
                    .compactMap { $0 }
            ]))
        let (dispatch, dispatchEngine) = try await Self.dispatcher(service)
        let jobs = try dispatch.collection("jobs")
        try await jobs.create("j1") { editor in
            editor.insert("ann", intoSet: "crew")
            editor.insert("ben", intoSet: "crew")
        }
        try await jobs.create("j2") { $0.insert("ben", intoSet: "crew") }
        _ = try await dispatchEngine.syncOnce()
        var members = [String: (replica: Replica, engine: SyncEngine)]()
        for name in ["ann", "ben", "cat"] {
            let replica = try await Replica(storage: MemoryReplicaStorage())
            let engine = SyncEngine(
                replica: replica,
                transport: GrantedTransport(
                    service: service, read: .only(["user:\(name)"]), write: .only(["user:\(name)"])))
            _ = try await engine.syncOnce()
            members[name] = (replica, engine)
        }
        func held(_ name: String) async throws -> Set<String> {
            var found = Set<String>()
            for try await document in try #require(members[name]).replica.collection("jobs").documents() {
                found.insert(document.id.rawValue)
            }
            return found
        }
        #expect(try await held("ann") == ["j1"])
        #expect(try await held("ben") == ["j1", "j2"])
        #expect(try await held("cat").isEmpty)
        // Ben leaves j1's crew, Cat joins it.
        try await jobs.update("j1") { editor in
            editor.remove("ben", fromSet: "crew")
            editor.insert("cat", intoSet: "crew")
        }
        _ = try await dispatchEngine.syncOnce()
        for name in ["ann", "ben", "cat"] { _ = try await #require(members[name]).engine.syncOnce() }
        #expect(try await held("ann") == ["j1"])
        #expect(try await held("ben") == ["j2"])
        #expect(try await held("cat") == ["j1"])
        // A fixed channel: every job is in `everyone`.
        let board = try await Replica(storage: MemoryReplicaStorage())
        _ = try await SyncEngine(
            replica: board,
            transport: GrantedTransport(service: service, read: .only(["everyone"]), write: .all)
        ).syncOnce()
        var all = Set<String>()
        for try await document in try board.collection("jobs").documents() {
            all.insert(document.id.rawValue)
        }
        #expect(all == ["j1", "j2"])
    }

    @Test(
        "a replica writing straight into PostgreSQL puts documents in the channels the servers would",
        .enabled(if: !TestPostgres.skipped))
    func aDirectPostgresWriterUsesTheServersTemplates() async throws {
        let url = try await TestPostgres.freshDatabase()
        let serverStore = try await PostgresCentralStore(url: url)
        let service = Self.service(serverStore)
        // The server keeps its templates in the database as its background pass starts.
        #expect(try await service.assignChannels() == 0)
        var components = try #require(URLComponents(url: url, resolvingAgainstBaseURL: false))
        components.queryItems = [URLQueryItem(name: "tenant", value: "field")]
        let direct = try await PostgresEndpoint.connect(try #require(components.url))
        defer {
            Task {
                await direct.store.shutdown()
                await serverStore.shutdown()
            }
        }
        let writer = try await Replica(storage: MemoryReplicaStorage())
        try await writer.collection("orders").create("o1") { $0.set("assignee", to: .string("alice")) }
        try await writer.collection("orders").create("o2") { $0.set("assignee", to: .string("bob")) }
        _ = try await SyncEngine(replica: writer, transport: direct.transport).syncOnce()
        let alice = try await Replica(storage: MemoryReplicaStorage())
        _ = try await SyncEngine(
            replica: alice,
            transport: GrantedTransport(
                service: service, read: .only(["user:alice"]), write: .only(["user:alice"]))
        ).syncOnce()
        #expect(try await Self.ids(alice) == ["o1"])
        #expect(try await service.assignChannels() == 0, "nothing was left for the background pass")
    }

    @Test(
        "a view the server did not sign, or none past 0, is answered resync: no client lists documents it never had"
    )
    func forgedViewsAreRefused() async throws {
        let store = MemoryCentralStore()
        let service = Self.service(store)
        let dispatch = try await Replica(storage: MemoryReplicaStorage())
        for index in 0..<5 {
            try await dispatch.collection("orders").create("secret-\(index)") {
                $0.set("assignee", to: .string("bob"))
            }
        }
        _ = try await SyncEngine(
            replica: dispatch, transport: GrantedTransport(service: service, read: .all, write: .all)
        ).syncOnce()
        let logged = await store.changes(database: "field", after: 0, limit: 100, maxBytes: 1 << 20)
        let head = logged.changes.last?.sequence ?? 0
        let alice = ReplicaID(high: 7, low: 7)
        // A legitimate view, signed for Alice: she may read only her channel.
        let page = try await service.pull(
            database: "field", PullRequest(after: 0, replica: alice, handlesChannels: true),
            readable: .only(["user:alice"]))
        let signed = try #require(page.channels?.view)
        // The same bytes unsigned (claiming every channel), signed for someone else, tampered, or none.
        var tampered = signed
        tampered[1] ^= 1
        let forged = [UInt8]([1, 0, 0, 0]) + [UInt8](repeating: 0, count: 16)
        let bob = try await service.pull(
            database: "field",
            PullRequest(after: 0, replica: ReplicaID(high: 8, low: 8), handlesChannels: true), readable: .all)
        for view in [[], forged, tampered, try #require(bob.channels?.view)] {
            do {
                let answer = try await service.pull(
                    database: "field",
                    PullRequest(after: head, replica: alice, handlesChannels: true, view: view),
                    readable: .only(["user:alice"]))
                Issue.record("answered \(answer.changes.map(\.key.id)) to view \(view.prefix(8))")
            } catch {
                #expect(error.kind == .resync, "\(error)")
            }
        }
        // Her own view is taken.
        let next = try await service.pull(
            database: "field",
            PullRequest(after: page.cursor, replica: alice, handlesChannels: true, view: signed),
            readable: .only(["user:alice"]))
        #expect(next.changes.isEmpty)
    }

    @Test(
        "a replica that synced before the server had channels resyncs, and drops what its token may not read")
    func aReplicaFromBeforeChannelsResyncs() async throws {
        let store = MemoryCentralStore()
        let service = Self.service(store)
        let dispatch = try await Replica(storage: MemoryReplicaStorage())
        for index in 0..<6 {
            try await dispatch.collection("orders").create("o\(index)") {
                $0.set("assignee", to: .string(index < 2 ? "alice" : "bob"))
            }
        }
        _ = try await SyncEngine(
            replica: dispatch, transport: GrantedTransport(service: service, read: .all, write: .all)
        ).syncOnce()
        let alice = try await Replica(storage: MemoryReplicaStorage())
        let link = GrantedTransport(service: service, read: .all, write: .all)
        link.predatesChannels.withLock { $0 = true }
        _ = try await SyncEngine(replica: alice, transport: link).syncOnce()
        #expect(try await Self.ids(alice).count == 6)
        // The server now filters channels, and Alice's new token reads only hers.
        link.predatesChannels.withLock { $0 = false }
        link.grant(read: .only(["user:alice"]), write: .only(["user:alice"]))
        let engine = SyncEngine(replica: alice, transport: link)
        _ = try await engine.syncOnce()
        _ = try await engine.syncOnce()
        #expect(try await Self.ids(alice) == ["o0", "o1"])
        #expect(await engine.resyncs == 1)
        #expect(try await Self.ids(dispatch).count == 6, "nothing was deleted")
        #expect(try await store.record(database: "field", key: key("orders", "o3"))?.isDeleted == false)
    }

    @Test(
        "a view change's pages hold about maximumBytes of documents each, and the pass goes on from where one stopped"
    )
    func viewChangePagesAreBounded() async throws {
        let store = MemoryCentralStore()
        let service = Self.service(store)
        let dispatch = try await Replica(storage: MemoryReplicaStorage())
        for index in 0..<10 {
            try await dispatch.collection("orders").create("o\(index)") { editor in
                editor.set("assignee", to: .string("bob"))
                editor.set("site", to: .string("north"))
                editor.set("notes", to: .string(String(repeating: "n", count: 1_000)))
            }
        }
        _ = try await SyncEngine(
            replica: dispatch, transport: GrantedTransport(service: service, read: .all, write: .all)
        ).syncOnce()
        let alice = ReplicaID(high: 9, low: 9)
        var page = try await service.pull(
            database: "field", PullRequest(after: 0, replica: alice, handlesChannels: true),
            readable: .only(["user:alice"]))
        let cursor = page.cursor
        var received = Set<String>()
        var pages = 0
        // Alice gains the north site: the pass comes in pages of at most about 2,500 bytes.
        while true {
            page = try await service.pull(
                database: "field",
                PullRequest(
                    after: cursor, maximumBytes: 2_500, replica: alice, handlesChannels: true,
                    view: page.channels?.view ?? []),
                readable: .only(["user:alice", "site:north"]))
            guard page.channels?.isViewChange == true else { break }
            pages += 1
            #expect(page.changes.count <= 2, "\(page.changes.count) documents of 1 KB in one page")
            received.formUnion(page.changes.map(\.key.id))
            #expect(pages < 50)
            if pages >= 50 { break }
        }
        #expect(received.count == 10)
        #expect(pages >= 5)
    }

    @Test("a tombstone's fields keep a deleted document in its channels: no writer outside them revives it")
    func aTombstoneKeepsItsChannels() async throws {
        let store = MemoryCentralStore()
        let service = Self.service(store)
        let (dispatch, dispatchEngine) = try await Self.dispatcher(service)
        try await dispatch.collection("orders").create("d") { editor in
            editor.set("assignee", to: .string("bob"))
            editor.set("notes", to: .string("the gate code is 1234"))
        }
        _ = try await dispatchEngine.syncOnce()
        let (bob, bobEngine, _) = try await Self.technician("bob", service)
        _ = try await bobEngine.syncOnce()
        // Bob edits while dispatch deletes: the tombstone keeps Bob's concurrent fields.
        try await bob.collection("orders").update("d") { editor in
            editor.set("assignee", to: .string("bob"))
            editor.set("notes", to: .string("the gate code is now 5678"))
        }
        // The deletion's stamp follows Bob's edit's (a later millisecond), so the deletion wins.
        try await Task.sleep(for: .milliseconds(5))
        try await dispatch.collection("orders").delete("d")
        _ = try await dispatchEngine.syncOnce()
        _ = try await bobEngine.syncOnce()
        let tombstone = try #require(try await store.record(database: "field", key: key("orders", "d")))
        #expect(tombstone.isDeleted && tombstone.body.scalar("assignee") == .string("bob"))
        // Alice creates a document of the same id in her own channel.
        let alice = try await Replica(storage: MemoryReplicaStorage())
        try await alice.collection("orders").create("d") { $0.set("assignee", to: .string("alice")) }
        _ = try await SyncEngine(
            replica: alice,
            transport: GrantedTransport(
                service: service, read: .only(["user:alice"]), write: .only(["user:alice"]))
        )
        .syncOnce()
        #expect(
            try await store.record(database: "field", key: key("orders", "d"))?.isDeleted == true,
            "Bob's deleted order was not revived")
        #expect(try await alice.collection("orders").get("d") == nil)
        #expect(try await alice.deadLetters().map(\.key.id.rawValue) == ["d"])
    }

    @Test(
        "departures go with the tombstones a database forgets; a reader behind them resyncs and still drops what moved away",
        arguments: CentralKind.testable)
    func departuresAreCollected(_ kind: CentralKind) async throws {
        let directory = TemporaryDirectory()
        let store = try await kind.make(directory)
        defer { Task { await (store as? PostgresCentralStore)?.shutdown() } }
        let service = Self.service(store)
        let (dispatch, dispatchEngine) = try await Self.dispatcher(service)
        let orders = try dispatch.collection("orders")
        for id in ["moved", "kept", "deleted"] {
            try await orders.create(id) { $0.set("assignee", to: .string("alice")) }
        }
        _ = try await dispatchEngine.syncOnce()
        let alice = try await Replica(storage: MemoryReplicaStorage())
        let engine = SyncEngine(
            replica: alice,
            transport: GrantedTransport(
                service: service, read: .only(["user:alice"]), write: .only(["user:alice"])))
        _ = try await engine.syncOnce()
        #expect(try await Self.ids(alice) == ["moved", "kept", "deleted"])
        // While Alice is away, one order moves to Bob, then another is deleted and forgotten.
        try await orders.update("moved") { $0.set("assignee", to: .string("bob")) }
        _ = try await dispatchEngine.syncOnce()
        try await orders.delete("deleted")
        _ = try await dispatchEngine.syncOnce()
        while try await !store.collectTombstones(pulledSince: .max, limit: 100).passFinished {}
        #expect(try await store.collectedThrough(database: "field") > 0)
        if kind == .sqlite {
            let file = try DatabaseQueue(path: directory.path("central.sqlite"))
            #expect(
                try await file.read { db in
                    try Int.fetchOne(db, sql: "SELECT count(*) FROM channel_entries WHERE present = 0")
                } == 0)
        }
        _ = try await engine.syncOnce()
        _ = try await engine.syncOnce()
        #expect(try await Self.ids(alice) == ["kept"])
        #expect(await engine.resyncs == 1)
        #expect(try await store.record(database: "field", key: key("orders", "moved"))?.isDeleted == false)
    }
}
