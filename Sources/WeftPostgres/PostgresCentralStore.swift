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
/// - **Pull cursors never skip a change.** A push does not number its changes; it commits them
///   to a staging table (`weft_pending`). A *sequencer* then moves every committed, staged row of
///   the tenant into the change log with its number, in one short transaction under a per-tenant
///   advisory lock, continuing from the tenant's counter, and deletes the documents' previous
///   entries (the log keeps one per document). A row is only numbered after its push committed, and each sequencer transaction
///   commits before the next one starts, so numbers become visible in increasing order: a
///   reader that has seen 42 has seen 41. (Numbering inside the pushes would let a transaction
///   that took 41 commit after one that took 42, and a reader that saw 42 would skip 41.) Every
///   pull first runs the sequencer if rows wait; a push runs it after it commits unless another
///   sequencer holds the lock (that one, or the next, numbers the push's rows), so pushes never
///   queue on the lock, and a busy sequencer or a crash in between only delays numbering.
///
/// The schema is versioned in `weft_migrations` and migrated at start-up under an advisory lock.
/// A database migrated by a newer Weft is refused with `WeftError.Kind.schemaTooNew`.
public final class PostgresCentralStore: CentralStore {
    let client: PostgresClient
    let runner: Task<Void, Never>
    let logger: Logger
    /// Where the store connects, without the password.
    public let location: String
    /// How long one operation (a push, a page, a read) may take, waiting for a connection
    /// included. A server that is down makes operations fail after this long, as
    /// `WeftError.Kind.storage` (which sync reports as unavailable), instead of waiting
    /// forever for the pool to reconnect.
    public let operationTimeout: Duration

    let compacted = Mutex<UInt64>(0)
    let collected = Mutex<UInt64>(0)
    /// Where background compaction goes on: the tenant and the sequence it reached.
    let compaction = Mutex<(tenant: String, after: Int64)>(("", 0))

    /// Log entries this store object removed because a newer entry of the same document
    /// superseded them: as the sequencer numbers, or in ``compactLog(limit:)``'s steps.
    public var compactedEntries: UInt64 { compacted.withLock { $0 } }

    /// A fixed key for the migration advisory lock ("weft" in ASCII).
    static let migrationLock: Int64 = 0x7765_6674

    /// Connects to the PostgreSQL database `url` names and migrates its schema.
    ///
    /// `url` is `postgres://user:password@host:port/database`, with an optional `sslmode` of
    /// `disable` (the default), `prefer` or `require`; `sslrootcert=PATH` adds a CA file to
    /// trust. TLS settings pass through to postgres-nio.
    /// - Throws: `WeftError.Kind.invalidArgument` for a malformed URL,
    ///   `WeftError.Kind.storage` if the server cannot be reached or refuses the login,
    ///   `WeftError.Kind.schemaTooNew` for a schema from a newer Weft.
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
}

extension String {
    /// The URL text with any password replaced by `***`.
    var redactingPassword: String {
        guard var components = URLComponents(string: self), components.password != nil else { return self }
        components.password = "***"
        return components.string ?? self
    }
}
