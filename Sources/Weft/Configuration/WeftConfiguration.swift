import Foundation
import WeftCRDT
import WeftWire

/// How local writes reach the server.
public enum SyncMode: String, Hashable, Sendable, CaseIterable {
    /// A write returns once the remote confirms it.
    case writeThrough = "write_through"
    /// Writes are queued and pushed every `sync_interval_ms`.
    case writeBehind = "write_behind"
}

/// How concurrent versions of a document are resolved.
public enum ConflictPolicy: Hashable, Sendable, CustomStringConvertible {
    /// Last writer wins, field by field, by HLC stamp.
    case lastWriterWins
    /// The CRDT join of the two versions (counters add, sets merge, registers by stamp).
    case crdt
    /// A resolver registered under this name (``ResolverRegistry``).
    case custom(resolver: String)
    /// Field-by-field rules declared in the configuration, with no code
    /// (`[persistence.collections.NAME.fields]`); see `FieldRulesResolver`.
    case fields([String: FieldRule])

    public var description: String {
        switch self {
        case .lastWriterWins: return "lww"
        case .crdt: return "crdt"
        case .custom(let resolver): return "custom(\(resolver))"
        case .fields(let rules): return "fields(\(Self.describe(rules)))"
        }
    }

    /// Rules as text, `field=rule` sorted by field and joined by commas (as the conflict logs
    /// store them).
    public static func describe(_ rules: [String: FieldRule]) -> String {
        rules.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.rawValue)" }.joined(separator: ",")
    }
}

extension ConflictPolicy {
    /// The policy as the two text columns a conflict log stores: a name (`lww`, `crdt`, `custom`,
    /// `fields`) and an argument (the resolver's name, or the field rules as JSON).
    public var logColumns: (policy: String, argument: String?) {
        switch self {
        case .lastWriterWins: return ("lww", nil)
        case .crdt: return ("crdt", nil)
        case .custom(let name): return ("custom", name)
        case .fields(let rules):
            // JSON, so any field name round-trips.
            let encoder = JSONEncoder()
            encoder.outputFormatting = .sortedKeys
            let data = (try? encoder.encode(rules.mapValues(\.rawValue))) ?? Data("{}".utf8)
            return ("fields", String(decoding: data, as: UTF8.self))
        }
    }

    /// The policy stored as ``logColumns``.
    /// - Throws: ``WeftError/Kind/corrupt`` for columns no policy writes.
    public init(logColumns policy: String, argument: String?) throws(WeftError) {
        switch policy {
        case "lww": self = .lastWriterWins
        case "crdt": self = .crdt
        case "custom":
            guard let argument else { throw .corrupt("a custom policy in a conflict log names no resolver") }
            self = .custom(resolver: argument)
        case "fields":
            guard let argument,
                let names = try? JSONDecoder().decode([String: String].self, from: Data(argument.utf8))
            else {
                throw .corrupt("the field rules of a conflict log do not decode")
            }
            var rules = [String: FieldRule]()
            for (field, name) in names {
                guard let rule = FieldRule(rawValue: name) else {
                    throw .corrupt("unknown field rule \(name.debugDescription) in a conflict log")
                }
                rules[field] = rule
            }
            self = .fields(rules)
        default: throw .corrupt("unknown conflict policy \(policy.debugDescription) in a conflict log")
        }
    }
}

/// Where a replica syncs to.
public enum RemoteEndpoint: Hashable, Sendable, CustomStringConvertible {
    /// A Standalone server: `http(s)://host:port/database`.
    case http(url: URL, database: String)

    /// Whether the endpoint is plain `http://` to a host other than this machine (loopback
    /// addresses and `localhost` are this machine).
    public var isPlainHTTPToAnotherHost: Bool {
        guard case .http(let url, _) = self, url.scheme?.lowercased() == "http" else { return false }
        let host = (url.host ?? "").lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        return
            !(host == "localhost" || host.hasSuffix(".localhost") || host == "::1" || host.hasPrefix("127."))
    }
    /// A PostgreSQL central store: `postgres://user:pass@host:port/db`, used as written.
    case postgres(url: URL)

    /// Parses an endpoint.
    /// - Throws: a message saying what is wrong with it.
    public static func parse(_ text: String) throws(ConfigurationError) -> RemoteEndpoint {
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
            let url = components.url
        else {
            throw ConfigurationError(key: "", expected: "a URL", found: text.debugDescription)
        }
        guard let host = components.host, !host.isEmpty else {
            throw ConfigurationError(key: "", expected: "a URL with a host", found: text.debugDescription)
        }
        if let port = components.port, !(1...65_535).contains(port) {
            throw ConfigurationError(key: "", expected: "a port between 1 and 65535", found: "\(port)")
        }
        switch scheme {
        case "http", "https":
            let path = components.path.split(separator: "/")
            guard path.count == 1, let database = path.first.map(String.init), DatabaseName.isValid(database)
            else {
                throw ConfigurationError(
                    key: "",
                    expected:
                        "http(s)://host:port/<database>, the database 1–64 characters of A–Z, a–z, 0–9, '_' or '-'",
                    found: text.debugDescription)
            }
            return .http(url: url, database: database)
        case "postgres", "postgresql":
            return .postgres(url: url)
        default:
            throw ConfigurationError(
                key: "", expected: "an http, https or postgres URL", found: text.debugDescription)
        }
    }

    public var description: String {
        switch self {
        case .http(let url, _): return url.absoluteString
        case .postgres(let url):
            // Never print the password.
            var components = URLComponents(url: url, resolvingAgainstBaseURL: false)
            if components?.password != nil { components?.password = "***" }
            return components?.string ?? "postgres://"
        }
    }
}

/// Names of server databases (tenants).
/// The rule for server database (tenant) names: 1–64 characters of A–Z, a–z, 0–9, `_` or `-`.
public enum DatabaseName {
    /// Whether `name` is a valid database name.
    public static func isValid(_ name: String) -> Bool {
        (1...64).contains(name.utf8.count)
            && name.utf8.allSatisfy { byte in
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a)
                    || (byte >= 0x61 && byte <= 0x7a)
                    || byte == 0x5f || byte == 0x2d
            }
    }
}

/// The `[persistence]` section: how a replica stores and syncs.
public struct PersistenceConfiguration: Hashable, Sendable {
    /// `remote_endpoint`: where to sync; `nil` keeps the replica local.
    public var remoteEndpoint: RemoteEndpoint?
    /// `mode`.
    public var mode: SyncMode = .writeBehind
    /// `sync_interval_ms`: how often write-behind pushes.
    public var syncIntervalMilliseconds: Int = 5_000
    /// `conflict_resolution` (and `resolver`): the default policy.
    public var conflictResolution: ConflictPolicy = .lastWriterWins
    /// `max_queue_bytes`.
    public var maxQueueBytes: Int = ReplicaConfiguration.defaultMaxQueueBytes
    /// `auth_token`: the bearer token for the server.
    public var authToken: String?
    /// `tls_ca_file`: a PEM file of the certificate authorities that a self-hosted server's
    /// certificate chains to, trusted besides the system's.
    public var tlsCAFile: String?
    /// `channels`: the channels this replica subscribes to, among those its token may read
    /// (`nil`: all of them). ``SyncEngine/subscribe(to:)`` changes it at run time.
    public var channels: [String]?
    /// `allow_insecure_http`: whether `remote_endpoint` may be plain `http://` to a host other
    /// than this machine (the token would cross the network in clear). Loopback needs no leave.
    public var allowInsecureHTTP = false
    /// `database_path`: the local SQLite file.
    public var databasePath: String = "weft.sqlite"
    /// `durability`.
    public var durability: Durability = .normal
    /// `bandwidth_bytes_per_second` and `bandwidth_burst_bytes`: the sync bandwidth limit
    /// (`nil` or a rate of 0: unlimited).
    public var bandwidth: BandwidthLimit?
    /// `[persistence.collections.NAME]`: per-collection policies.
    public var collections: [String: ConflictPolicy] = [:]
    /// `[persistence.collections.NAME] mode`: per-collection sync modes.
    public var collectionModes: [String: SyncMode] = [:]
    /// `[persistence.collections.NAME] indexes` (value fields) and `set_indexes` (set
    /// members): the fields queries on the collection find through an index.
    public var collectionIndexes: [String: [IndexedField]] = [:]
    /// `write_through_timeout_ms`.
    public var writeThroughTimeoutMilliseconds: Int = 5_000
    /// `write_through_fallback`: "queue" or "rollback".
    public var writeThroughFallback: WriteThroughFallback = .keepQueued
    /// `tombstone_retention_ms`: how long a replica keeps a deleted document's tombstone once
    /// nothing of it waits to be pushed (by default 30 days).
    public var tombstoneRetentionMilliseconds: UInt64 = TombstoneRetention.defaultMilliseconds

    /// The defaults.
    public init() {}

    /// The replica settings these imply.
    public var replicaConfiguration: ReplicaConfiguration {
        var configuration = ReplicaConfiguration(maxQueueBytes: maxQueueBytes, durability: durability)
        configuration.conflictResolution = conflictResolution
        configuration.collectionPolicies = collections
        configuration.syncMode = mode
        configuration.collectionModes = collectionModes
        configuration.collectionIndexes = collectionIndexes
        configuration.writeThroughTimeoutMilliseconds = writeThroughTimeoutMilliseconds
        configuration.writeThroughFallback = writeThroughFallback
        configuration.tombstoneRetentionMilliseconds = tombstoneRetentionMilliseconds
        // A replica without a remote endpoint never syncs: one identity for all its sessions.
        configuration.sessionIdentities = remoteEndpoint != nil
        return configuration
    }

    /// The policy for `collection`.
    public func policy(for collection: String) -> ConflictPolicy {
        collections[collection] ?? conflictResolution
    }

    /// The policies as a server declares them (`conflict_resolution` and the collections').
    public var declaredPolicies: ServerPolicies {
        ServerPolicies(defaultPolicy: conflictResolution, collections: collections)
    }
}

/// One bearer token the server accepts.
public struct ServerToken: Hashable, Sendable {
    /// What a token may do.
    public enum Access: String, Hashable, Sendable, CaseIterable {
        case read, write
        case readWrite = "read_write"
    }

    /// Which routes a token opens.
    public enum Scope: String, Hashable, Sendable, CaseIterable {
        /// Replication: hello, push and pull.
        case sync
        /// The document API for backends: read, list, write, the change feed.
        case documents
    }

    /// The secret.
    public var token: String
    /// The databases it covers.
    public var databases: [String]
    /// What it may do there.
    public var access: Access
    /// The routes it opens (`scopes`; by default replication only).
    public var scopes: Set<Scope>
    /// The channels it may read and write (`read_channels`, `write_channels`; by default every
    /// channel).
    public var channels: ChannelGrantTemplates

    /// Creates a token.
    public init(
        token: String, databases: [String], access: Access, scopes: Set<Scope> = [.sync],
        channels: ChannelGrantTemplates = .everything
    ) {
        self.token = token
        self.databases = databases
        self.access = access
        self.scopes = scopes
        self.channels = channels
    }
}

/// Limits the server enforces on every request.
public struct ServerLimits: Hashable, Sendable {
    /// `max_request_bytes`: the largest request body, compressed.
    public var maxRequestBytes: Int = 16 << 20
    /// Whether zstd-compressed requests are read: whether this build has zstd (settable, to test
    /// a server without it, which answers such a request 415).
    package var readsCompressedFrames = WireFrame.hasZstd
    /// `max_decompressed_bytes`: the largest body once decompressed.
    public var maxDecompressedBytes: Int = 64 << 20
    /// `max_changes_per_batch`.
    public var maxChangesPerBatch: Int = 10_000
    /// `max_document_bytes`: the largest encoded document record.
    public var maxDocumentBytes: Int = 1 << 20
    /// `max_clock_skew_ms`: how far ahead of the server's clock a pushed write's stamp may be.
    public var maxClockSkewMilliseconds: Int = 60_000
    /// `max_long_poll_ms`: the longest a pull may wait for a change (a longer
    /// `waitMilliseconds` is cut to it). 30 s by default.
    public var maxLongPollMilliseconds: Int = 30_000
    /// `header_timeout_ms`: how long a connection may take to send a request's head (and, between
    /// requests, to start the next one) before it is closed. 10 s by default.
    public var headerTimeoutMilliseconds: Int = 10_000
    /// `idle_timeout_ms`: how long a connection may stay silent (no request part arriving, no
    /// response in progress) before it is closed. 60 s by default.
    public var idleTimeoutMilliseconds: Int = 60_000

    /// Creates limits; the defaults are 16 MiB requests, 64 MiB decompressed, 10,000 changes a
    /// batch and 1 MiB documents.
    public init(
        maxRequestBytes: Int = 16 << 20, maxDecompressedBytes: Int = 64 << 20,
        maxChangesPerBatch: Int = 10_000,
        maxDocumentBytes: Int = 1 << 20
    ) {
        self.maxRequestBytes = maxRequestBytes
        self.maxDecompressedBytes = maxDecompressedBytes
        self.maxChangesPerBatch = maxChangesPerBatch
        self.maxDocumentBytes = maxDocumentBytes
    }
}

/// The `[server]` section: the Standalone server's own settings.
public struct ServerConfiguration: Hashable, Sendable {
    /// `listen`: `host:port`.
    public var host: String = "127.0.0.1"
    /// The port from `listen`.
    public var port: Int = 20_000
    /// `store_path`: the SQLite central store.
    public var storePath: String = "weft-server.sqlite"
    /// `store_url`: a `postgres://` URL; when set, the central store is that PostgreSQL
    /// database instead of the SQLite file (several servers may share it).
    public var storeURL: URL?
    /// `[[server.tokens]]`.
    public var tokens: [ServerToken] = []
    /// `[server.limits]`.
    public var limits = ServerLimits()
    /// `tombstone_retention_ms`: the server forgets a deleted document's tombstone once every
    /// replica that pulled within this time has pulled past it (by default 30 days, as
    /// replicas keep theirs); a replica that has not pulled for longer resyncs when it
    /// returns.
    public var tombstoneRetentionMilliseconds: UInt64 = TombstoneRetention.defaultMilliseconds
    /// `[server.views.NAME]`: typed SQL views over collections' projections, by collection.
    public var views: [CollectionView] = []
    /// `[server.jwt]`: JSON Web Tokens the server accepts besides ``tokens``, if any.
    public var jwt: JWTConfiguration?
    /// `tls_certificate`: a PEM file of the server's certificate chain; with ``tlsKeyFile``, the
    /// server speaks HTTPS only.
    public var tlsCertificateFile: String?
    /// `tls_key`: the PEM file of the certificate's private key.
    public var tlsKeyFile: String?
    /// `[server.channels]`: the channels each collection's documents are in.
    public var channels = ServerChannels()

    /// The defaults: `127.0.0.1:20000`, `weft-server.sqlite`, no tokens.
    public init() {}
}

/// A whole configuration file: `[persistence]` for a replica, `[server]` for the Standalone.
public struct WeftConfiguration: Hashable, Sendable {
    /// `[persistence]`.
    public var persistence = PersistenceConfiguration()
    /// `[server]`, if present.
    public var server: ServerConfiguration?

    /// The defaults.
    public init() {}
}

/// A configuration that cannot be used: which key, what was expected, what was found, and where.
public struct ConfigurationError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The dotted key, such as `persistence.sync_interval_ms`.
    public var key: String
    /// What the key must hold.
    public var expected: String
    /// What it held.
    public var found: String
    /// The 1-based line in the file, when known.
    public var line: Int?
    /// The file, when loaded from one.
    public var file: String?

    /// Creates an error.
    public init(key: String, expected: String, found: String, line: Int? = nil, file: String? = nil) {
        self.key = key
        self.expected = expected
        self.found = found
        self.line = line
        self.file = file
    }

    public var description: String {
        let place = [file, line.map { "line \($0)" }].compactMap { $0 }.joined(separator: ", ")
        let prefix = place.isEmpty ? "" : "\(place): "
        let subject = key.isEmpty ? "" : "\(key): "
        return "\(prefix)\(subject)expected \(expected), found \(found)"
    }
}
