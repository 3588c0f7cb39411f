import Foundation
import Logging
import Synchronization
import NIOCore
import NIOSSL
import PostgresNIO
import Weft
import WeftCRDT
import WeftServer

extension PostgresCentralStore {
    public func hello(database: String, replica: ReplicaID, confirmedEpoch: UInt64, epoch: UInt64, acknowledgedThrough: UInt64) async throws(WeftError)
        -> (accepted: Bool, appliedThrough: UInt64, receipt: UInt64)
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
    func helloTransaction(database: String, replica: ReplicaID, confirmedEpoch: UInt64, epoch: UInt64, acknowledgedThrough: UInt64) async throws
        -> (accepted: Bool, appliedThrough: UInt64, receipt: UInt64)
    {
        let logger = logger
        return try await client.withTransaction(logger: logger) { connection -> (accepted: Bool, appliedThrough: UInt64, receipt: UInt64) in
            let replicaBytes = ByteBuffer(bytes: replica.bytes)
            let lockName = database + "\u{1F}" + replica.description
            var current: Int64?
            var mark: Int64 = 0
            var receipt: Int64 = 0
            for try await row in try await connection.query(
                """
                SELECT (SELECT count(*) FROM (SELECT pg_advisory_xact_lock(hashtextextended(\(lockName), 5))) AS locked),
                       (SELECT applied_through FROM weft_high_water WHERE tenant = \(database) AND replica = \(replicaBytes)),
                       (SELECT receipt FROM weft_high_water WHERE tenant = \(database) AND replica = \(replicaBytes))
                """, logger: logger
            ).decode((Int64, Int64?, Int64?).self) {
                mark = row.1 ?? 0
                receipt = row.2 ?? 0
            }
            let receiptValue = UInt64(bitPattern: receipt)
            // Read after the lock, so a hello that held it is seen.
            for try await value in try await connection.query(
                "SELECT epoch FROM weft_sessions WHERE tenant = \(database) AND replica = \(replicaBytes)", logger: logger
            ).decode(Int64.self) {
                current = value
            }
            if UInt64(max(mark, 0)) < acknowledgedThrough {
                // This store lost changes it had acknowledged (restored from a backup): the
                // replica resyncs; an older copy of its file must still be told it forked.
                guard let raised = Int64(exactly: acknowledgedThrough) else {
                    throw WeftError.invalidArgument("acknowledgedThrough \(acknowledgedThrough) is out of range")
                }
                try await connection.query(
                    """
                    INSERT INTO weft_sessions (tenant, replica, epoch) VALUES (\(database), \(replicaBytes), \(Int64(bitPattern: epoch)))
                    ON CONFLICT (tenant, replica) DO UPDATE SET epoch = EXCLUDED.epoch
                    """, logger: logger)
                try await connection.query(
                    """
                    INSERT INTO weft_high_water (tenant, replica, applied_through) VALUES (\(database), \(replicaBytes), \(raised))
                    ON CONFLICT (tenant, replica) DO UPDATE SET applied_through = EXCLUDED.applied_through
                    """, logger: logger)
                return (true, UInt64(max(mark, 0)), receiptValue)
            }
            if let current, current != Int64(bitPattern: confirmedEpoch), current != Int64(bitPattern: epoch) {
                return (false, UInt64(max(mark, 0)), receiptValue)
            }
            if UInt64(max(mark, 0)) > acknowledgedThrough { return (false, UInt64(max(mark, 0)), receiptValue) }
            try await connection.query(
                """
                INSERT INTO weft_sessions (tenant, replica, epoch) VALUES (\(database), \(replicaBytes), \(Int64(bitPattern: epoch)))
                ON CONFLICT (tenant, replica) DO UPDATE SET epoch = EXCLUDED.epoch
                """, logger: logger)
            return (true, UInt64(max(mark, 0)), receiptValue)
        }
    }

    public func knownReplicas(database: String, among replicas: Set<ReplicaID>) async throws(WeftError) -> Set<ReplicaID> {
        guard !replicas.isEmpty else { return [] }
        let ids = replicas.map { ByteBuffer(bytes: $0.bytes) }
        let logger = logger
        do {
            return try await withDeadline {
                var known = Set<ReplicaID>()
                for try await bytes in try await self.client.query(
                    """
                    SELECT replica FROM weft_sessions WHERE tenant = \(database) AND replica = ANY(\(ids)::bytea[])
                    UNION SELECT replica FROM weft_high_water WHERE tenant = \(database) AND replica = ANY(\(ids)::bytea[])
                    """, logger: logger
                ).decode(ByteBuffer.self) {
                    if let replica = ReplicaID(bytes: Array(bytes.readableBytesView)) { known.insert(replica) }
                }
                return known
            }
        } catch {
            throw map(error)
        }
    }
}
