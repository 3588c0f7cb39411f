import Foundation
import Logging
import Synchronization
import NIOCore
import NIOSSL
import PostgresNIO
import Weft
import WeftCRDT
import WeftServer

/// A central store on PostgreSQL (postgres-nio): the same contract as the SQLite store, for
/// several `weft serve` instances sharing one database, or a replica syncing straight into
/// PostgreSQL (`remote_endpoint = "postgres://…"`).
///
/// ## How several instances stay correct
///
/// - **Merges are serialized per document.** A push takes a transaction-scoped advisory lock on
///   each document key it touches (in key order, so two pushes never wait on each other in a
///   cycle) before reading and merging, so two instances merging into the same document take
///   turns and neither loses the other's update. An advisory lock rather than `SELECT … FOR
///   UPDATE`, because a document that does not exist yet has no row to lock: two instances
///   creating it at once would each insert their own version.
/// - **Pull cursors never skip a change.** A push does not number its change-log rows; it commits
///   them unnumbered. A *sequencer* then numbers every committed, unnumbered row of the tenant in
///   one short transaction under a per-tenant advisory lock, continuing from the tenant's
///   counter. A row is only numbered after its push committed, and each sequencer transaction
///   commits before the next one starts, so numbers become visible in increasing order: a
///   reader that has seen 42 has seen 41. (Numbering inside the pushes would let a transaction
///   that took 41 commit after one that took 42, and a reader that saw 42 would skip 41.) Every
///   pull first runs the sequencer if rows wait; a push runs it after it commits unless another
///   sequencer holds the lock (that one, or the next, numbers the push's rows), so pushes never
///   queue on the lock, and a busy sequencer or a crash in between only delays numbering.
///
/// The schema is versioned in `weft_migrations` and migrated at start-up under an advisory lock.
/// A database migrated by a newer Weft is refused with ``Weft/WeftError/Kind/schemaTooNew``.
public final class PostgresCentralStore: CentralStore {
    let client: PostgresClient
    private let runner: Task<Void, Never>
    private let logger: Logger
    /// Where the store connects, without the password.
    public let location: String
    /// How long one operation (a push, a page, a read) may take, waiting for a connection
    /// included. A server that is down makes operations fail after this long, as
    /// ``Weft/WeftError/Kind/storage`` (which sync reports as unavailable), instead of waiting
    /// forever for the pool to reconnect.
    public let operationTimeout: Duration

    /// The schema migrations, in order; the index plus one is the version.
    package static let migrations: [(name: String, sql: [String])] = [
        (
            "v1: documents, change log, tenant counters, high-water marks, conflicts",
            [
                """
                CREATE TABLE weft_documents (
                    tenant TEXT NOT NULL, collection TEXT NOT NULL, id TEXT NOT NULL, record BYTEA NOT NULL,
                    PRIMARY KEY (tenant, collection, id))
                """,
                "CREATE TABLE weft_tenants (tenant TEXT PRIMARY KEY, next_sequence BIGINT NOT NULL)",
                """
                CREATE TABLE weft_change_log (
                    id BIGSERIAL PRIMARY KEY, tenant TEXT NOT NULL, sequence BIGINT,
                    collection TEXT NOT NULL, doc_id TEXT NOT NULL, record BYTEA NOT NULL, bytes INTEGER NOT NULL)
                """,
                "CREATE UNIQUE INDEX weft_change_log_by_sequence ON weft_change_log (tenant, sequence) WHERE sequence IS NOT NULL",
                "CREATE INDEX weft_change_log_unnumbered ON weft_change_log (tenant, id) WHERE sequence IS NULL",
                """
                CREATE TABLE weft_high_water (
                    tenant TEXT NOT NULL, replica BYTEA NOT NULL, applied_through BIGINT NOT NULL,
                    PRIMARY KEY (tenant, replica))
                """,
                """
                CREATE TABLE weft_conflicts (
                    number BIGSERIAL PRIMARY KEY, tenant TEXT NOT NULL, collection TEXT NOT NULL, doc_id TEXT NOT NULL,
                    policy TEXT NOT NULL, resolver TEXT, local BYTEA NOT NULL, remote BYTEA NOT NULL, winner BYTEA NOT NULL)
                """,
            ]
        ),
        (
            // 1. Tenants, collections and document ids are identifiers, compared byte for byte:
            // the "C" collation makes every index comparison a memcmp instead of a locale's
            // strcoll (equality, and so every key, is the same under both).
            // 2. No planner statistics for `weft_change_log.sequence`. Whether a row is numbered
            // is a passing state: statistics taken while many rows waited say "most rows are
            // unnumbered" long after they were numbered, and the planner then reads the whole
            // log to find the few waiting rows. Without them it assumes few wait and reads the
            // partial index of unnumbered rows. (Changing the column to its own type drops the
            // statistics already taken.)
            // Both rebuild the indexes involved.
            // The tables are locked first, in the one order every push and sequencer takes them
            // (high-water marks, documents, tenants, change log, conflicts), so that servers
            // still running cannot deadlock with the migration; and analysed last, since
            // changing a column drops its statistics.
            "v2: byte-order keys; no statistics on the change log's sequence",
            [
                "LOCK TABLE weft_high_water, weft_documents, weft_tenants, weft_change_log, weft_conflicts IN ACCESS EXCLUSIVE MODE",
                """
                ALTER TABLE weft_documents ALTER COLUMN tenant TYPE TEXT COLLATE "C",
                    ALTER COLUMN collection TYPE TEXT COLLATE "C", ALTER COLUMN id TYPE TEXT COLLATE "C"
                """,
                #"ALTER TABLE weft_tenants ALTER COLUMN tenant TYPE TEXT COLLATE "C""#,
                """
                ALTER TABLE weft_change_log ALTER COLUMN tenant TYPE TEXT COLLATE "C",
                    ALTER COLUMN collection TYPE TEXT COLLATE "C", ALTER COLUMN doc_id TYPE TEXT COLLATE "C",
                    ALTER COLUMN sequence SET STATISTICS 0, ALTER COLUMN sequence TYPE BIGINT
                """,
                #"ALTER TABLE weft_high_water ALTER COLUMN tenant TYPE TEXT COLLATE "C""#,
                """
                ALTER TABLE weft_conflicts ALTER COLUMN tenant TYPE TEXT COLLATE "C",
                    ALTER COLUMN collection TYPE TEXT COLLATE "C", ALTER COLUMN doc_id TYPE TEXT COLLATE "C"
                """,
                "ANALYZE weft_documents, weft_tenants, weft_change_log, weft_high_water, weft_conflicts",
            ]
        ),
        (
            // Each replica's current session (the handshake): a new table, so nothing to lock.
            "v3: replica sessions",
            [
                """
                CREATE TABLE weft_sessions (
                    tenant TEXT COLLATE "C" NOT NULL, replica BYTEA NOT NULL, epoch BIGINT NOT NULL,
                    PRIMARY KEY (tenant, replica))
                """,
            ]
        ),
    ]

    /// A fixed key for the migration advisory lock ("weft" in ASCII).
    static let migrationLock: Int64 = 0x7765_6674

    /// Connects to the PostgreSQL database `url` names and migrates its schema.
    ///
    /// `url` is `postgres://user:password@host:port/database`, with an optional `sslmode` of
    /// `disable` (the default), `prefer` or `require`; `sslrootcert=PATH` adds a CA file to
    /// trust. TLS settings pass through to postgres-nio.
    /// - Throws: ``Weft/WeftError/Kind/invalidArgument`` for a malformed URL,
    ///   ``Weft/WeftError/Kind/storage`` if the server cannot be reached or refuses the login,
    ///   ``Weft/WeftError/Kind/schemaTooNew`` for a schema from a newer Weft.
    public init(
        url: URL, operationTimeout: Duration = .seconds(10), logger: Logger = PostgresCentralStore.defaultLogger
    ) async throws(WeftError) {
        let configuration = try Self.configuration(url)
        self.logger = logger
        self.operationTimeout = operationTimeout
        location = "\(url.host ?? "?"):\(url.port ?? 5432)\(url.path)"
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.client = client
        runner = Task { await client.run() }
        do {
            try await migrate()
        } catch {
            runner.cancel()
            throw error
        }
    }

    deinit { runner.cancel() }

    /// The default logger: errors only (postgres-nio reports every failed reconnection attempt,
    /// which an outage turns into a flood, and warns about a lease requested while the pool is
    /// still starting). Pass your own to see more.
    public static var defaultLogger: Logger {
        var logger = Logger(label: "weft.postgres")
        logger.logLevel = .error
        return logger
    }

    /// Closes the connections.
    public func shutdown() async {
        runner.cancel()
        await runner.value
    }

    /// The postgres-nio configuration for `url`.
    static func configuration(_ url: URL) throws(WeftError) -> PostgresClient.Configuration {
        guard let components = URLComponents(url: url, resolvingAgainstBaseURL: false),
            let scheme = components.scheme?.lowercased(), scheme == "postgres" || scheme == "postgresql",
            let host = components.host, !host.isEmpty
        else {
            throw .invalidArgument("expected postgres://user:password@host:port/database, got \(url.absoluteString.redactingPassword)")
        }
        let database = String(components.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty else { throw .invalidArgument("the PostgreSQL URL names no database") }
        let user = components.percentEncodedUser?.removingPercentEncoding ?? "postgres"
        let password = components.percentEncodedPassword?.removingPercentEncoding
        var options = [String: String]()
        for item in components.queryItems ?? [] { options[item.name] = item.value ?? "" }
        var tlsConfiguration = TLSConfiguration.makeClientConfiguration()
        if let root = options["sslrootcert"] {
            tlsConfiguration.trustRoots = .file(root)
        }
        let tls: PostgresClient.Configuration.TLS
        switch options["sslmode"] ?? "disable" {
        case "disable": tls = .disable
        case "prefer", "allow": tls = .prefer(tlsConfiguration)
        case "require", "verify-ca", "verify-full": tls = .require(tlsConfiguration)
        case let other: throw .invalidArgument("unknown sslmode \(other.debugDescription): use disable, prefer or require")
        }
        var configuration = PostgresClient.Configuration(
            host: host, port: components.port ?? 5432, username: user, password: password, database: database, tls: tls)
        configuration.options.maximumConnections = 32
        return configuration
    }

    /// Maps an error from postgres-nio to a ``Weft/WeftError``.
    func map(_ error: any Error) -> WeftError {
        let error = Self.unwrap(error)
        if let weft = error as? WeftError { return weft }
        if let timedOut = error as? TimedOut { return .storage(timedOut.description) }
        if let psql = error as? PSQLError {
            let detail = psql.serverInfo?[.message] ?? "\(psql.code)"
            return .storage("PostgreSQL at \(location): \(detail)")
        }
        return .storage("PostgreSQL at \(location): \(String(reflecting: error))")
    }

    struct TimedOut: Error, CustomStringConvertible {
        let location: String
        let timeout: Duration
        var description: String { "PostgreSQL at \(location) did not answer within \(timeout)" }
    }

    /// Runs `body`, giving up after ``operationTimeout``.
    ///
    /// The operation runs in a task of its own that is cancelled, not awaited, when the time is
    /// up: a query on a connection the server dropped mid-transaction can outlive its
    /// cancellation in postgres-nio, and waiting for it would hang the caller.
    func withDeadline<T: Sendable>(_ limit: Duration? = nil, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let (timeout, location) = (limit ?? operationTimeout, location)
        let operation = Task { try await body() }
        let outcome = Outcome<T>()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                outcome.set(continuation)
                let timer = Task {
                    try? await Task.sleep(for: timeout)
                    guard !Task.isCancelled else { return }
                    if outcome.resume(with: .failure(TimedOut(location: location, timeout: timeout))) { operation.cancel() }
                }
                Task {
                    let result = await operation.result
                    outcome.resume(with: result)
                    timer.cancel()
                }
            }
        } onCancel: {
            operation.cancel()
        }
    }

    /// A continuation resumed once, by whichever of the operation and the timer finishes first.
    final class Outcome<T: Sendable>: Sendable {
        private let state = Mutex<(continuation: CheckedContinuation<T, any Error>?, done: Bool)>((nil, false))
        func set(_ continuation: CheckedContinuation<T, any Error>) {
            let pending = state.withLock { state -> Bool in
                if state.done { return true }
                state.continuation = continuation
                return false
            }
            if pending { continuation.resume(throwing: CancellationError()) }
        }
        @discardableResult
        func resume(with result: Result<T, any Error>) -> Bool {
            let continuation = state.withLock { state -> CheckedContinuation<T, any Error>? in
                guard !state.done else { return nil }
                state.done = true
                defer { state.continuation = nil }
                return state.continuation
            }
            continuation?.resume(with: result)
            return continuation != nil
        }
    }

    /// The error inside a `PostgresTransactionError` (postgres-nio wraps everything thrown in or
    /// around a transaction), or the error itself.
    static func unwrap(_ error: any Error) -> any Error {
        guard let transaction = error as? PostgresTransactionError else { return error }
        return transaction.closureError ?? transaction.commitError ?? transaction.beginError ?? transaction.rollbackError ?? error
    }

    /// Whether an error is a serialization failure or deadlock worth retrying.
    static func isRetryable(_ error: any Error) -> Bool {
        let state = sqlState(error)
        return state == "40001" || state == "40P01"
    }

    /// The SQLSTATE of an error from PostgreSQL, if it is one.
    static func sqlState(_ error: any Error) -> String? {
        (unwrap(error) as? PSQLError)?.serverInfo?[.sqlState]
    }

    // MARK: Schema

    private func migrate() async throws(WeftError) {
        do {
            // Connecting gets a minute, whatever the operation timeout, so an unreachable server
            // fails the start-up soon. Migrating then gets an hour: a migration that rebuilds
            // indexes takes about a second per million rows.
            let logger = logger
            try await withDeadline(max(operationTimeout, .seconds(60))) { try await self.client.query("SELECT 1", logger: logger) }
            try await withDeadline(.seconds(3_600)) { try await self.migrateNow() }
        } catch {
            throw map(error)
        }
    }

    private func migrateNow() async throws {
        do {
            let logger = logger
            try await client.withConnection { connection in
                try await connection.query("SELECT pg_advisory_lock(\(Self.migrationLock))", logger: logger)
                do {
                    try await connection.query(
                        """
                        CREATE TABLE IF NOT EXISTS weft_migrations (
                            version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())
                        """, logger: logger)
                    var applied = 0
                    for try await version in try await connection.query("SELECT max(version) FROM weft_migrations", logger: logger)
                        .decode(Int?.self)
                    {
                        applied = version ?? 0
                    }
                    guard applied <= Self.migrations.count else {
                        throw WeftError.schemaTooNew(
                            "the PostgreSQL schema is at version \(applied); this build of Weft knows \(Self.migrations.count)")
                    }
                    for (index, migration) in Self.migrations.enumerated() where index + 1 > applied {
                        let logger = logger
                        // Servers still running an older build may hold the tables: a migration
                        // waits at most 2 s for each lock, so pushes do not queue long behind
                        // the locks it already holds, and starts again after such a wait or a
                        // deadlock (for about five minutes) rather than failing the start-up.
                        var attempt = 0
                        while true {
                            attempt += 1
                            do {
                                try await connection.withTransaction(logger: logger) { connection in
                                    try await connection.query("SET LOCAL lock_timeout = '2s'", logger: logger)
                                    for statement in migration.sql {
                                        try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                                    }
                                    try await connection.query(
                                        "INSERT INTO weft_migrations (version, name) VALUES (\(index + 1), \(migration.name))", logger: logger)
                                }
                                break
                            } catch {
                                guard attempt < 120, Self.isRetryable(error) || Self.sqlState(error) == "55P03" else { throw error }
                                try await Task.sleep(for: .milliseconds(100 * min(attempt, 5)))
                            }
                        }
                    }
                } catch {
                    _ = try? await connection.query("SELECT pg_advisory_unlock(\(Self.migrationLock))", logger: logger)
                    throw error
                }
                try await connection.query("SELECT pg_advisory_unlock(\(Self.migrationLock))", logger: logger)
            }
        } catch {
            throw map(error)
        }
    }

    // MARK: CentralStore

    public func hello(database: String, replica: ReplicaID, confirmedEpoch: UInt64, epoch: UInt64, acknowledgedThrough: UInt64) async throws(WeftError)
        -> (accepted: Bool, appliedThrough: UInt64)
    {
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await withDeadline { try await self.helloTransaction(
                        database: database, replica: replica, confirmedEpoch: confirmedEpoch, epoch: epoch, acknowledgedThrough: acknowledgedThrough) }
            } catch {
                if attempt < 5, Self.isRetryable(error) { continue }
                throw map(error)
            }
        }
    }

    /// The handshake's compare-and-set, under an advisory lock on the replica (so two copies of
    /// a file saying hello at once are answered one after the other).
    private func helloTransaction(database: String, replica: ReplicaID, confirmedEpoch: UInt64, epoch: UInt64, acknowledgedThrough: UInt64) async throws
        -> (accepted: Bool, appliedThrough: UInt64)
    {
        let logger = logger
        return try await client.withTransaction(logger: logger) { connection -> (accepted: Bool, appliedThrough: UInt64) in
            let replicaBytes = ByteBuffer(bytes: replica.bytes)
            let lockName = database + "\u{1F}" + replica.description
            var current: Int64?
            var mark: Int64 = 0
            for try await row in try await connection.query(
                """
                SELECT (SELECT count(*) FROM (SELECT pg_advisory_xact_lock(hashtextextended(\(lockName), 5))) AS locked),
                       (SELECT applied_through FROM weft_high_water WHERE tenant = \(database) AND replica = \(replicaBytes))
                """, logger: logger
            ).decode((Int64, Int64?).self) {
                mark = row.1 ?? 0
            }
            // Read after the lock, so a hello that held it is seen.
            for try await value in try await connection.query(
                "SELECT epoch FROM weft_sessions WHERE tenant = \(database) AND replica = \(replicaBytes)", logger: logger
            ).decode(Int64.self) {
                current = value
            }
            if let current, current != Int64(bitPattern: confirmedEpoch), current != Int64(bitPattern: epoch) {
                return (false, UInt64(max(mark, 0)))
            }
            if UInt64(max(mark, 0)) > acknowledgedThrough { return (false, UInt64(max(mark, 0))) }
            try await connection.query(
                """
                INSERT INTO weft_sessions (tenant, replica, epoch) VALUES (\(database), \(replicaBytes), \(Int64(bitPattern: epoch)))
                ON CONFLICT (tenant, replica) DO UPDATE SET epoch = EXCLUDED.epoch
                """, logger: logger)
            return (true, UInt64(max(mark, 0)))
        }
    }

    public func applyPush(
        database: String, replica: ReplicaID, epoch: UInt64, changes: [(sequence: UInt64, key: DocumentKey, delta: DocumentRecord)],
        merge: @escaping @Sendable (DocumentRecord?, DocumentKey, DocumentRecord) throws(WeftError) -> (
            record: DocumentRecord, kind: MergeKind, conflict: ConflictRecord?
        )
    ) async throws(WeftError) -> UInt64 {
        guard changes.allSatisfy({ Int64(exactly: $0.sequence) != nil }) else {
            throw .invalidArgument("a sequence number is out of range")
        }
        var attempt = 0
        while true {
            attempt += 1
            do {
                let mark = try await withDeadline {
                    try await self.pushTransaction(database: database, replica: replica, epoch: epoch, changes: changes, merge: merge)
                }
                // Number the new log rows now, unless a sequencer is already running: then it, or
                // the next one (every pull runs one first if rows wait), numbers them. Pushes
                // thus never queue behind one another on the tenant's sequencer lock, which
                // would serialize every push of a tenant across all instances.
                try? await withDeadline { try await self.sequence(database, unlessBusy: true) }
                return mark
            } catch {
                if attempt < 5, Self.isRetryable(error) { continue }
                throw map(error)
            }
        }
    }

    /// One push in one transaction of five statements whatever the batch size: `BEGIN`; lock
    /// the batch's documents (and read the high-water mark); read the documents; merge in
    /// Swift, then write the changed documents, the log rows, the conflicts (with `unnest`) and
    /// the high-water mark in one statement; `COMMIT`.
    private func pushTransaction(
        database: String, replica: ReplicaID, epoch: UInt64, changes: [(sequence: UInt64, key: DocumentKey, delta: DocumentRecord)],
        merge: @escaping @Sendable (DocumentRecord?, DocumentKey, DocumentRecord) throws(WeftError) -> (
            record: DocumentRecord, kind: MergeKind, conflict: ConflictRecord?
        )
    ) async throws -> UInt64 {
        let logger = logger
        let location = location
        return try await client.withTransaction(logger: logger) { connection -> UInt64 in
            let replicaBytes = ByteBuffer(bytes: replica.bytes)

            // Serialize merges per document: a transaction-scoped advisory lock on each document
            // key (which also covers documents that do not exist yet, where a row lock could not),
            // taken in key order so that two pushes never wait on each other in a cycle. The same
            // statement reads the replica's high-water mark (its snapshot predates the locks,
            // which is fine for the mark: it only ever rises, and the write below keeps the
            // greater). The documents are read in the next statement, whose snapshot follows
            // the locks, so a merge always sees the previous holder's committed result.
            let keys = Set(changes.map(\.key)).sorted {
                ($0.collection.rawValue, $0.id.rawValue) < ($1.collection.rawValue, $1.id.rawValue)
            }
            let lockNames = keys.map { database + "\u{1F}" + $0.collection.rawValue + "\u{1F}" + $0.id.rawValue }
            var mark: Int64 = 0
            var session: Int64?
            for try await value in try await connection.query(
                """
                SELECT (SELECT count(*) FROM (
                            SELECT pg_advisory_xact_lock(hashtextextended(name, 0))
                            FROM unnest(\(lockNames)::text[]) WITH ORDINALITY AS t(name, n) ORDER BY n
                        ) AS locked),
                       (SELECT applied_through FROM weft_high_water WHERE tenant = \(database) AND replica = \(replicaBytes)),
                       (SELECT epoch FROM weft_sessions WHERE tenant = \(database) AND replica = \(replicaBytes))
                """, logger: logger
            ).decode((Int64, Int64?, Int64?).self) {
                mark = value.1 ?? 0
                session = value.2
            }
            // The replica's session must be the push's (or both absent: a replica that predates
            // the handshake); a hello racing this read is one of the same file's sessions.
            guard session == (epoch == 0 ? nil : Int64(bitPattern: epoch)) else {
                throw WeftError.forked("replica \(replica) pushed in session \(epoch), which is not its current one")
            }
            var newMark = max(mark, 0)
            for change in changes { newMark = max(newMark, Int64(change.sequence)) }

            // The current records, in one read.
            var current = [DocumentKey: DocumentRecord](minimumCapacity: keys.count)
            let rows = try await connection.query(
                """
                SELECT d.collection, d.id, d.record FROM weft_documents d
                JOIN unnest(\(keys.map(\.collection.rawValue))::text[], \(keys.map(\.id.rawValue))::text[]) AS k(c, i)
                ON d.collection = k.c AND d.id = k.i
                WHERE d.tenant = \(database)
                """, logger: logger)
            for try await (collection, id, record) in rows.decode((String, String, ByteBuffer).self) {
                let key: DocumentKey
                do {
                    key = DocumentKey(collection: try CollectionName(collection), id: try DocumentID(id))
                    current[key] = try DocumentRecord(encoded: Array(buffer: record))
                } catch {
                    throw WeftError.corrupt("the record of \(database)/\(collection)/\(id) at \(location) does not decode: \(error)")
                }
            }

            // The one merge, in batch order.
            var logged = [(key: DocumentKey, record: [UInt8])]()
            var conflicts = [ConflictRecord]()
            var changed = Set<DocumentKey>()
            for change in changes {
                let local = current[change.key]
                let result = try merge(local, change.key, change.delta)
                if let conflict = result.conflict { conflicts.append(conflict) }
                guard result.record != local else { continue }
                current[change.key] = result.record
                changed.insert(change.key)
                logged.append((change.key, result.record.encoded()))
            }

            // Every write in one statement: the changed documents, their log rows in batch order
            // (so the log's ids follow it), the conflicts, and the high-water mark. Each part
            // runs exactly once, and with nothing changed its arrays are empty.
            let written = keys.filter { changed.contains($0) }
            let records = written.map { key in ByteBuffer(bytes: current[key].map { $0.encoded() } ?? []) }
            let columns = conflicts.map(\.policy.logColumns)
            try await connection.query(
                """
                WITH documents AS (
                    INSERT INTO weft_documents (tenant, collection, id, record)
                    SELECT \(database), c, i, r
                    FROM unnest(\(written.map(\.collection.rawValue))::text[], \(written.map(\.id.rawValue))::text[], \(records)::bytea[]) AS t(c, i, r)
                    ON CONFLICT (tenant, collection, id) DO UPDATE SET record = EXCLUDED.record
                ), log AS (
                    INSERT INTO weft_change_log (tenant, collection, doc_id, record, bytes)
                    SELECT \(database), c, i, r, b
                    FROM unnest(
                        \(logged.map(\.key.collection.rawValue))::text[], \(logged.map(\.key.id.rawValue))::text[],
                        \(logged.map { ByteBuffer(bytes: $0.record) })::bytea[], \(logged.map { Int32(clamping: $0.record.count) })::int4[]
                    ) WITH ORDINALITY AS t(c, i, r, b, n)
                    ORDER BY n
                ), conflicts AS (
                    INSERT INTO weft_conflicts (tenant, collection, doc_id, policy, resolver, local, remote, winner)
                    SELECT \(database), c, i, p, NULLIF(v, ''), l, r, w
                    FROM unnest(
                        \(conflicts.map(\.key.collection.rawValue))::text[], \(conflicts.map(\.key.id.rawValue))::text[],
                        \(columns.map(\.policy))::text[], \(columns.map { $0.argument ?? "" })::text[],
                        \(conflicts.map { ByteBuffer(bytes: $0.local.encoded()) })::bytea[],
                        \(conflicts.map { ByteBuffer(bytes: $0.remote.encoded()) })::bytea[],
                        \(conflicts.map { ByteBuffer(bytes: $0.winner.encoded()) })::bytea[]
                    ) WITH ORDINALITY AS t(c, i, p, v, l, r, w, n)
                    ORDER BY n
                )
                INSERT INTO weft_high_water (tenant, replica, applied_through) VALUES (\(database), \(replicaBytes), \(newMark))
                ON CONFLICT (tenant, replica) DO UPDATE SET applied_through = GREATEST(weft_high_water.applied_through, EXCLUDED.applied_through)
                """, logger: logger)
            return UInt64(newMark)
        }
    }

    /// Numbers the tenant's committed, unnumbered change-log rows, in commit order of the
    /// sequencer (see the type's documentation).
    ///
    /// Each run of up to ``sequencerRun`` rows is a transaction of its own, so a long backlog
    /// makes progress that stays even if a later run is cut short; a run's numbers continue
    /// from the previous run's, all above every number committed before. With `unlessBusy`, it
    /// returns at once if another sequencer of the tenant holds the lock. A sequencer that
    /// numbers nothing writes nothing, so its commit waits for no disk flush.
    ///
    /// At most ``sequencerRunsPerCall`` runs, so that a caller under a deadline (a pull) is not
    /// held by pushes that never stop; what is left waits for the next call.
    func sequence(_ database: String, unlessBusy: Bool = false) async throws {
        for _ in 0..<Self.sequencerRunsPerCall {
            guard try await sequenceRun(database, unlessBusy: unlessBusy) == Self.sequencerRun else { return }
        }
    }

    /// The most runs one ``sequence(_:unlessBusy:)`` call makes.
    static let sequencerRunsPerCall = 20

    /// The most rows one sequencer transaction numbers.
    static let sequencerRun = 5_000

    /// One sequencer transaction; how many rows it numbered (0 when the lock was busy).
    private func sequenceRun(_ database: String, unlessBusy: Bool) async throws -> Int {
        let logger = logger
        return try await client.withTransaction(logger: logger) { connection -> Int in
            if unlessBusy {
                var acquired = false
                for try await locked in try await connection.query(
                    "SELECT pg_try_advisory_xact_lock(hashtextextended(\(database), 7))", logger: logger
                ).decode(Bool.self) {
                    acquired = locked
                }
                guard acquired else { return 0 }
            } else {
                try await connection.query("SELECT pg_advisory_xact_lock(hashtextextended(\(database), 7))", logger: logger)
            }
            // The committed, unnumbered rows in id order, with the tenant's counter (read after
            // the lock was taken, so current). Without a counter row (before the tenant's first
            // run, or if the row was lost) numbering continues after the largest number in the
            // log. The ids go back as an array, and `id = ANY(…)` keeps the update on the
            // primary key's index whatever the statistics say: a join the planner chose alone
            // could scan the whole log, which grows for ever, to number a few rows. The next
            // statement moves the counter on. (The counter comes first in `FROM`, so the tenants
            // table is locked before the log, in the order of the schema migrations.)
            var ids = [Int64]()
            ids.reserveCapacity(Self.sequencerRun)
            var first: Int64 = 1
            for try await (id, counter) in try await connection.query(
                """
                SELECT l.id, c.first
                FROM (
                    SELECT COALESCE(
                        (SELECT next_sequence FROM weft_tenants WHERE tenant = \(database)),
                        (SELECT max(sequence) + 1 FROM weft_change_log WHERE tenant = \(database) AND sequence IS NOT NULL),
                        1) AS first
                ) AS c
                CROSS JOIN weft_change_log l
                WHERE l.tenant = \(database) AND l.sequence IS NULL ORDER BY l.id LIMIT \(Self.sequencerRun)
                """, logger: logger
            ).decode((Int64, Int64).self) {
                ids.append(id)
                first = counter
            }
            guard !ids.isEmpty else { return 0 }
            let numbers = (0..<Int64(ids.count)).map { first + $0 }
            try await connection.query(
                """
                WITH numbered AS (
                    UPDATE weft_change_log c SET sequence = v.sequence
                    FROM unnest(\(ids)::int8[], \(numbers)::int8[]) AS v(id, sequence)
                    WHERE c.id = v.id AND c.id = ANY(\(ids)::int8[])
                )
                INSERT INTO weft_tenants (tenant, next_sequence) VALUES (\(database), \(first + Int64(ids.count)))
                ON CONFLICT (tenant) DO UPDATE SET next_sequence = EXCLUDED.next_sequence
                """, logger: logger)
            return ids.count
        }
    }

    public func changes(database: String, after: UInt64, limit: Int, maxBytes: Int) async throws(WeftError)
        -> (changes: [LoggedChange], hasMore: Bool)
    {
        guard let cursor = Int64(exactly: after) else { throw .invalidArgument("cursor \(after) is out of range") }
        do {
            let page = try await withDeadline { try await self.page(database: database, after: cursor, limit: limit, maxBytes: maxBytes) }
            return (page.changes, page.hasMore)
        } catch {
            throw map(error)
        }
    }

    private struct Page: Sendable {
        var changes: [LoggedChange]
        var hasMore: Bool
    }

    private func page(database: String, after cursor: Int64, limit: Int, maxBytes: Int) async throws -> Page {
        let logger = logger
        let location = location
        do {
            var waiting = false
            for try await exists in try await client.query(
                "SELECT EXISTS (SELECT 1 FROM weft_change_log WHERE tenant = \(database) AND sequence IS NULL)", logger: logger
            ).decode(Bool.self) {
                waiting = exists
            }
            if waiting { try await sequence(database) }
            let rows = try await client.query(
                """
                SELECT sequence, collection, doc_id, record, bytes FROM weft_change_log
                WHERE tenant = \(database) AND sequence > \(cursor) ORDER BY sequence LIMIT \(max(1, limit) + 1)
                """, logger: logger)
            var page = [LoggedChange]()
            var bytes = 0
            var more = false
            for try await (sequence, collection, id, record, size) in rows.decode((Int64, String, String, ByteBuffer, Int32).self) {
                if page.count >= max(1, limit) || (!page.isEmpty && bytes + Int(size) > maxBytes) {
                    more = true
                    break
                }
                let key: DocumentKey
                do {
                    key = DocumentKey(collection: try CollectionName(collection), id: try DocumentID(id))
                } catch {
                    throw WeftError.corrupt("a stored key at \(location) is invalid: \(error)")
                }
                let decoded: DocumentRecord
                do {
                    decoded = try DocumentRecord(encoded: Array(buffer: record))
                } catch {
                    throw WeftError.corrupt("a logged record of \(database)/\(key) at \(location) does not decode: \(error)")
                }
                page.append(LoggedChange(sequence: UInt64(sequence), key: key, record: decoded, byteCount: Int(size)))
                bytes += Int(size)
            }
            return Page(changes: page, hasMore: more)
        }
    }

    public func record(database: String, key: DocumentKey) async throws(WeftError) -> DocumentRecord? {
        do {
            return try await withDeadline { try await self.readRecord(database: database, key: key) }
        } catch {
            throw map(error)
        }
    }

    private func readRecord(database: String, key: DocumentKey) async throws -> DocumentRecord? {
        do {
            var found: ByteBuffer?
            for try await record in try await client.query(
                """
                SELECT record FROM weft_documents
                WHERE tenant = \(database) AND collection = \(key.collection.rawValue) AND id = \(key.id.rawValue)
                """, logger: logger
            ).decode(ByteBuffer.self) {
                found = record
            }
            return try found.map { buffer throws(WeftError) in
                do {
                    return try DocumentRecord(encoded: Array(buffer: buffer))
                } catch {
                    throw WeftError.corrupt("the record of \(database)/\(key) at \(location) does not decode: \(error)")
                }
            }
        } catch {
            throw map(error)
        }
    }

    public func conflicts(database: String, limit: Int) async throws(WeftError) -> [ConflictRecord] {
        do {
            return try await withDeadline { try await self.readConflicts(database: database, limit: limit) }
        } catch {
            throw map(error)
        }
    }

    private func readConflicts(database: String, limit: Int) async throws -> [ConflictRecord] {
        do {
            var result = [ConflictRecord]()
            let rows = try await client.query(
                """
                SELECT collection, doc_id, policy, resolver, local, remote, winner FROM weft_conflicts
                WHERE tenant = \(database) ORDER BY number DESC LIMIT \(max(0, limit))
                """, logger: logger)
            for try await (collection, id, policy, resolver, local, remote, winner) in rows.decode(
                (String, String, String, String?, ByteBuffer, ByteBuffer, ByteBuffer).self)
            {
                func record(_ buffer: ByteBuffer) throws(WeftError) -> DocumentRecord {
                    do {
                        return try DocumentRecord(encoded: Array(buffer: buffer))
                    } catch {
                        throw .corrupt("a logged conflict at \(location) does not decode: \(error)")
                    }
                }
                let key: DocumentKey
                do {
                    key = DocumentKey(collection: try CollectionName(collection), id: try DocumentID(id))
                } catch {
                    throw WeftError.corrupt("a stored key at \(location) is invalid: \(error)")
                }
                result.append(
                    ConflictRecord(
                        key: key, local: try record(local), remote: try record(remote), winner: try record(winner),
                        policy: try ConflictPolicy(logColumns: policy, argument: resolver)))
            }
            return result
        } catch {
            throw map(error)
        }
    }
}

extension String {
    /// The URL text with any password replaced by `***`.
    var redactingPassword: String {
        guard var components = URLComponents(string: self), components.password != nil else { return self }
        components.password = "***"
        return components.string ?? self
    }
}
