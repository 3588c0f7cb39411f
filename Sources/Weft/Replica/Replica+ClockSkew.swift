import Logging
import Synchronization
import WeftCRDT
import WeftWire

// Repairing writes a server refused because the replica's clock ran ahead.
extension Replica {
    // MARK: Clock skew

    /// Repairs the queued writes a server refused because this replica's clock ran ahead
    /// (``SyncError/Kind/clockSkew``), once the device's clock is right again.
    ///
    /// If the physical clock still runs more than `bound` ahead of `serverTime`, nothing changes
    /// and it returns `false`: the replica stays refused. Otherwise every queued record's
    /// register stamps above `serverTime + bound` (the refused ones, which no one else has) take
    /// new stamps at `serverTime + bound`, and the replica's clock resumes after them, so later
    /// writes still order after every stored one. A fast clock thus wins conflicts for at most
    /// `bound` after it is fixed, never indefinitely.
    ///
    /// - Returns: whether the clock is right (and any refused writes were repaired).
    public func repairClockSkew(serverTimeMilliseconds serverTime: UInt64, bound: UInt64) async throws(WeftError) -> Bool {
        let physical = timeSource.currentMilliseconds()
        guard physical <= serverTime &+ bound else { return false }
        let limit = HLCTimestamp(wallMilliseconds: serverTime &+ bound, counter: UInt32.max, replica: ReplicaID(high: .max, low: .max))
        let entries = try await storage.entries()
        let skewed = entries.filter { $0.record.lastStamp > limit }.map(\.key)
        let replicaID = writerID
        let drift = configuration.maximumClockDrift
        try await exclusively { () async throws(WeftError) in
            // Stamps for the repaired writes: at the limit, counting up.
            var repairClock = HybridLogicalClock(
                replica: replicaID,
                resumingAfter: HLCTimestamp(wallMilliseconds: serverTime &+ bound, counter: 0, replica: replicaID),
                timeSource: FixedTimeSource(milliseconds: serverTime &+ bound), maximumForwardDrift: drift)
            let stamps = skewed.map { _ in repairClock.now() }
            if !skewed.isEmpty {
                _ = try await storage.commitLocalWrites(reading: skewed, maxQueueBytes: Int.max) { records throws(WeftError) in
                    zip(skewed, stamps).compactMap { key, stamp in
                        guard let record = records[key], record.lastStamp > limit else { return nil }
                        let deletion = record.deletion.stamp > limit ? LWWRegister(record.deletion.value, stamp: stamp) : record.deletion
                        return LocalWrite(
                            key: key,
                            record: DocumentRecord(body: record.body.restamped(above: limit, to: stamp), deletion: deletion, version: record.version))
                    }
                }
            }
            // The clock resumes after the repaired stamps (or at the limit), never above it.
            let resume = stamps.last ?? HLCTimestamp(wallMilliseconds: min(clock.last.wallMilliseconds, serverTime &+ bound), counter: 0, replica: replicaID)
            if clock.last > resume || !stamps.isEmpty {
                clock = HybridLogicalClock(replica: replicaID, resumingAfter: resume, timeSource: timeSource, maximumForwardDrift: drift)
                try await storage.saveLastStamp(resume)
            }
        }
        return true
    }
}
