import WeftCRDT

// Which local writes the server has acknowledged: what a test, or an app that shows "saved to
// the server", needs to know.
extension Replica {
    /// The highest queue sequence the server has acknowledged to this file (0: none yet).
    ///
    /// Every write carries a queue sequence (``WriteReceipt/sequence``, ``QueueEntry/sequence``);
    /// sequences only grow, and the server acknowledges them in order. A write whose sequence is
    /// at or below this mark is durable on the server, unless the server refused it for good
    /// (then it is among the ``deadLetters(limit:)``); ``isAcknowledged(sequence:)`` checks
    /// both. The mark survives restarts.
    /// - Complexity: O(1).
    public func acknowledgedThrough() async throws(WeftError) -> UInt64 { try await storage.metadata().acknowledgedThrough }

    /// Whether the write with queue sequence `sequence` is durable on the server: at or below
    /// ``acknowledgedThrough()``, not a dead letter, and not waiting in the queue.
    ///
    /// A write to a document whose queue entry had not been sent yet joins that entry and shares
    /// its sequence; the entry, and so both writes, are acknowledged together.
    /// - Complexity: O(d + q) for d dead letters and q queued entries at or below the mark.
    public func isAcknowledged(sequence: UInt64) async throws(WeftError) -> Bool {
        guard sequence > 0, sequence <= (try await acknowledgedThrough()) else { return false }
        if try await storage.deadLetters(limit: Int.max).contains(where: { $0.sequence == sequence }) { return false }
        return !(try await storage.entries().contains { $0.sequence == sequence })
    }
}
