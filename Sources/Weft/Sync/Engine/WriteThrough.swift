import Foundation
import Logging
import Synchronization
import WeftCRDT
import WeftWire

// MARK: - Write-through

/// What a write through ``SyncedCollection`` did: the record stored locally and whether the
/// server confirmed it.
public struct WriteReceipt: Hashable, Sendable {
    /// The document written.
    public let key: DocumentKey
    /// The record stored locally by the write.
    public let record: DocumentRecord
    /// The sequence number of the write's queue entry.
    public let sequence: UInt64
    /// Whether the server durably applied the write before the call returned. Always `false`
    /// for a write-behind collection; `false` for a write-through one whose server could not
    /// be reached in time under the `queue` fallback (the write stays queued).
    public let confirmed: Bool
    /// Why the write is not confirmed, when it is not.
    public let pendingReason: String?
}

extension SyncEngine {
    /// A collection whose writes follow the configured sync mode (``ReplicaConfiguration/mode(for:)``).
    public nonisolated func collection(_ name: String) throws(WeftError) -> SyncedCollection {
        SyncedCollection(engine: self, collection: try replica.collection(name))
    }

    /// Pushes the queue now, for at most `timeout`; returns whether entry `sequence` is
    /// confirmed (neither queued nor set aside as a dead letter), or the error that stopped it.
    func confirm(_ sequence: UInt64, within timeout: Duration) async -> (confirmed: Bool, reason: String?) {
        let push = Task { @Sendable () async throws -> Int in try await self.pushAll() }
        // Wait for the replay or the timeout, whichever comes first. A replay queued behind
        // another one cannot be interrupted, so the answer does not wait for it: it goes on in
        // the background, and the entry stays queued until it is confirmed.
        let failure: String? = await firstOf(
            { () async -> String? in
                switch await push.result {
                case .success: return nil
                case .failure(let error): return "the server did not confirm it: \(error)"
                }
            }, orAfter: timeout, "the server did not confirm it within \(timeout)")
        if failure != nil { push.cancel() }
        // Whatever the replay said, the queue decides: a batch acknowledged before a later one
        // failed is confirmed.
        let storage = replica.storage
        do {
            let queued = try await storage.entries().contains { $0.sequence == sequence }
            if let refused = try await storage.deadLetters(limit: 1_000).first(where: { $0.sequence == sequence }) {
                return (false, "the server refused it: \(refused.reason)")
            }
            if queued { return (false, failure ?? "the server did not confirm it") }
            return (true, nil)
        } catch {
            return (false, "local storage: \(error)")
        }
    }
}

/// The result of `body`, or `timedOut` if `timeout` passes first (`body` then goes on alone).
func firstOf<T: Sendable>(_ body: @escaping @Sendable () async -> T, orAfter timeout: Duration, _ timedOut: T) async -> T {
    let once = ResumeOnce<T>()
    return await withCheckedContinuation { (continuation: CheckedContinuation<T, Never>) in
        once.set(continuation)
        Task { once.resume(await body()) }
        Task {
            try? await Task.sleep(for: timeout)
            once.resume(timedOut)
        }
    }
}

/// A continuation resumed by the first of several tasks.
final class ResumeOnce<T: Sendable>: Sendable {
    let state = Mutex<CheckedContinuation<T, Never>?>(nil)
    func set(_ continuation: CheckedContinuation<T, Never>) { state.withLock { $0 = continuation } }
    func resume(_ value: T) {
        let continuation = state.withLock { current -> CheckedContinuation<T, Never>? in
            defer { current = nil }
            return current
        }
        continuation?.resume(returning: value)
    }
}

/// A collection of a replica synced by a ``SyncEngine``, whose writes follow the collection's
/// sync mode and return a ``WriteReceipt``.
///
/// - **Write-behind** (the default): the write is committed locally and queued, and the call
///   returns at once with an unconfirmed receipt; the engine's loop pushes it.
/// - **Write-through** (`mode = "write_through"`, for the replica or the collection): the write
///   is committed locally and queued, then the queue is pushed at once, and the call returns
///   when the server has durably applied it, with a confirmed receipt. If the server cannot
///   confirm it within `write_through_timeout_ms`, `write_through_fallback` decides: `queue`
///   keeps the write locally and queued and returns an unconfirmed receipt; `rollback` undoes
///   it locally and throws ``WeftError/Kind/writeNotConfirmed``.
///
/// Nothing is ever half-applied: locally the write is either stored and queued, or (after a
/// rollback) the document holds its earlier content again. A rollback is a compensating write,
/// so if the server did apply the write but its answer came too late, the undo still wins
/// there. A rollback that finds the document changed by another write since keeps the write
/// queued instead (undoing it would undo the other write too) and throws.
public struct SyncedCollection: Sendable {
    /// The engine that pushes the writes.
    public let engine: SyncEngine
    /// The underlying replica collection (reads go through it).
    public let collection: ReplicaCollection

    /// Creates document `id`.
    @discardableResult
    public func create(_ id: String, _ edit: @escaping @Sendable (inout DocumentEditor) throws(WeftError) -> Void)
        async throws(WeftError) -> WriteReceipt
    {
        try await write(id, .mustNotExist, deleting: false, edit)
    }

    /// Updates document `id`.
    @discardableResult
    public func update(_ id: String, _ edit: @escaping @Sendable (inout DocumentEditor) throws(WeftError) -> Void)
        async throws(WeftError) -> WriteReceipt
    {
        try await write(id, .mustExist, deleting: false, edit)
    }

    /// Creates or updates document `id`.
    @discardableResult
    public func upsert(_ id: String, _ edit: @escaping @Sendable (inout DocumentEditor) throws(WeftError) -> Void)
        async throws(WeftError) -> WriteReceipt
    {
        try await write(id, .any, deleting: false, edit)
    }

    /// Deletes document `id`.
    @discardableResult
    public func delete(_ id: String) async throws(WeftError) -> WriteReceipt {
        try await write(id, .mustExist, deleting: true) { _ in }
    }

    /// The live document `id`, or `nil`.
    public func get(_ id: String) async throws(WeftError) -> Document? { try await collection.get(id) }

    func write(
        _ id: String, _ expectation: Replica.Expectation, deleting: Bool,
        _ edit: @escaping @Sendable (inout DocumentEditor) throws(WeftError) -> Void
    ) async throws(WeftError) -> WriteReceipt {
        let replica = collection.replica
        let key = try collection.key(id)
        let committed = try await replica.commitReturningSequences([
            Replica.Operation(key: key, expectation: expectation, deleting: deleting, edit: edit)
        ])
        guard let written = committed.first else { throw .storage("the write produced no record") }
        let configuration = replica.configuration
        guard configuration.mode(for: key.collection) == .writeThrough else {
            return WriteReceipt(key: key, record: written.record, sequence: written.sequence, confirmed: false, pendingReason: "write-behind")
        }
        let timeout = Duration.milliseconds(configuration.writeThroughTimeoutMilliseconds)
        let (confirmed, reason) = await engine.confirm(written.sequence, within: timeout)
        if confirmed {
            return WriteReceipt(key: key, record: written.record, sequence: written.sequence, confirmed: true, pendingReason: nil)
        }
        switch configuration.writeThroughFallback {
        case .keepQueued:
            return WriteReceipt(key: key, record: written.record, sequence: written.sequence, confirmed: false, pendingReason: reason)
        case .rollBack:
            let undone = try await replica.compensate(key, written: written.record, previous: written.previous)
            throw .writeNotConfirmed(
                undone
                    ? "\(key) was rolled back: \(reason ?? "not confirmed")"
                    : "\(key) was changed by another write since, so this write stays queued: \(reason ?? "not confirmed")")
        }
    }
}
