import Foundation
import TOMLKit
import WeftCRDT

// Reading `[persistence]`: a replica's settings.
extension TOMLReader {
    func persistence(_ table: TOMLTable) throws(ConfigurationError) -> PersistenceConfiguration {
        let path = "persistence"
        try checkKeys(
            table, at: path,
            allowed: [
                "remote_endpoint", "mode", "sync_interval_ms", "conflict_resolution", "resolver",
                "max_queue_bytes",
                "auth_token", "database_path", "durability", "collections", "bandwidth_bytes_per_second",
                "bandwidth_burst_bytes", "write_through_timeout_ms", "write_through_fallback",
                "tombstone_retention_ms",
                "tls_ca_file", "allow_insecure_http", "channels",
            ])
        var result = PersistenceConfiguration()
        if let endpoint = try string(table, "remote_endpoint", at: path) {
            do {
                result.remoteEndpoint = try RemoteEndpoint.parse(endpoint)
            } catch {
                throw self.error("\(path).remote_endpoint", expected: error.expected, found: error.found)
            }
        }
        result.tlsCAFile = try string(table, "tls_ca_file", at: path)
        if let channels = try channelTemplates(table, "channels", at: path, placeholders: false) {
            result.channels = channels.map(\.prefix)
        }
        if let allow = table["allow_insecure_http"] {
            guard let flag = allow.bool else {
                throw error("\(path).allow_insecure_http", expected: "true or false", found: describe(allow))
            }
            result.allowInsecureHTTP = flag
        }
        if let endpoint = result.remoteEndpoint, endpoint.isPlainHTTPToAnotherHost, !result.allowInsecureHTTP
        {
            throw error(
                "\(path).remote_endpoint",
                expected:
                    "https:// for a server on another machine (the token would cross the network in clear), or allow_insecure_http = true",
                found: "plain http://")
        }
        if let mode = try choice(table, "mode", at: path, SyncMode.self) { result.mode = mode }
        if let interval = try integer(
            table, "sync_interval_ms", at: path, range: 1...86_400_000, unit: " of milliseconds")
        {
            result.syncIntervalMilliseconds = interval
        }
        if let policy = try policy(table, at: path) { result.conflictResolution = policy }
        if let cap = try integer(table, "max_queue_bytes", at: path, range: 1...Int.max, unit: " of bytes") {
            result.maxQueueBytes = cap
        }
        result.authToken = try string(table, "auth_token", at: path)
        if let databasePath = try string(table, "database_path", at: path) {
            guard !databasePath.isEmpty else {
                throw error("\(path).database_path", expected: "a file path", found: "an empty string")
            }
            result.databasePath = databasePath
        }
        if let durability = try choice(table, "durability", at: path, Durability.self) {
            result.durability = durability
        }
        if let timeout = try integer(
            table, "write_through_timeout_ms", at: path, range: 1...3_600_000, unit: " of milliseconds")
        {
            result.writeThroughTimeoutMilliseconds = timeout
        }
        if let fallback = try choice(table, "write_through_fallback", at: path, WriteThroughFallback.self) {
            result.writeThroughFallback = fallback
        }
        if let retention = try integer(
            table, "tombstone_retention_ms", at: path, range: 1...315_360_000_000, unit: " of milliseconds")
        {
            result.tombstoneRetentionMilliseconds = UInt64(retention)
        }
        let rate = try integer(
            table, "bandwidth_bytes_per_second", at: path, range: 0...Int.max, unit: " of bytes a second")
        let burst = try integer(
            table, "bandwidth_burst_bytes", at: path, range: 1...Int.max, unit: " of bytes")
        if let rate, rate > 0 {
            result.bandwidth = BandwidthLimit(bytesPerSecond: rate, burstBytes: burst)
        } else if burst != nil && rate == nil {
            throw error(
                "\(path).bandwidth_burst_bytes", expected: "bandwidth_bytes_per_second alongside it",
                found: "a burst without a rate")
        }
        if let collections = try self.table(table, "collections", at: path) {
            for name in collections.keys {
                let collectionPath = "\(path).collections.\(name)"
                guard (try? CollectionName(name)) != nil else {
                    throw error(
                        collectionPath, expected: "a collection name of A–Z, a–z, 0–9, '_', '-' or '.'",
                        found: name.debugDescription)
                }
                guard let entry = try self.table(collections, name, at: "\(path).collections") else {
                    continue
                }
                try checkKeys(
                    entry, at: collectionPath,
                    allowed: ["conflict_resolution", "resolver", "fields", "mode", "indexes", "set_indexes"])
                if let mode = try choice(entry, "mode", at: collectionPath, SyncMode.self) {
                    result.collectionModes[name] = mode
                }
                let indexes =
                    try paths(entry, "indexes", at: collectionPath).map(IndexedField.value)
                    + paths(entry, "set_indexes", at: collectionPath).map(IndexedField.members)
                if !indexes.isEmpty { result.collectionIndexes[name] = indexes }
                let declaresPolicy =
                    try string(entry, "conflict_resolution", at: collectionPath) != nil
                    || entry.contains(key: "fields")
                if !declaresPolicy && (result.collectionModes[name] != nil || !indexes.isEmpty) { continue }
                if let fields = try self.table(entry, "fields", at: collectionPath) {
                    result.collections[name] = try fieldRules(entry, fields, at: collectionPath)
                    continue
                }
                guard let policy = try policy(entry, at: collectionPath) else {
                    throw error(
                        "\(collectionPath).conflict_resolution", expected: "a policy for the collection",
                        found: "none")
                }
                result.collections[name] = policy
            }
        }
        return result
    }
}
