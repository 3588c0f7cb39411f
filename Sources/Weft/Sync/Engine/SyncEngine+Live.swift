import Foundation
import Synchronization
import WeftCRDT
import WeftWire

// Live sync: between write-behind rounds, one pull at a time waits on the server for changes.
extension SyncEngine {
    /// Asks write-behind for a round now: local writes are pushed without waiting for the
    /// interval (a live pull in progress is ended). Calls before the loop's next wait count
    /// once.
    public nonisolated func requestSync() { wake.signal() }

    /// Subscribes to `channels` among those the token may read (`nil`: all of them). The next
    /// pull changes the replica's view: documents of channels it no longer subscribes to are
    /// removed here (which is not a deletion), and those of newly subscribed channels arrive,
    /// without what it holds already. A live sync is woken to do it at once.
    public func subscribe(to channels: [String]?) {
        subscription = channels.map { Array(Set($0)).sorted() }
        requestSync()
    }

    /// Turns live pulls between write-behind rounds on or off (``livePulls``), and sets how long
    /// one may wait on the server.
    public func setLivePulls(_ enabled: Bool, wait: Duration = .seconds(25)) {
        livePulls = enabled
        livePullWait = max(.milliseconds(1), wait)
    }

    /// Pulls with the long-poll until `deadline` on `clock`, applying each change as it comes:
    /// one request at a time. Ends early, without error, when ``requestSync()`` is called or
    /// the task is cancelled.
    func pullLive<C: Clock>(until deadline: C.Instant, clock: C) async throws(SyncError)
    where C.Duration == Duration {
        while !Task.isCancelled, !wake.isPending {
            let remaining = clock.now.duration(to: deadline)
            guard remaining >= .milliseconds(1) else { return }
            let wait = min(remaining, livePullWait)
            let milliseconds = UInt32(
                clamping: wait.components.seconds * 1_000 + wait.components.attoseconds
                    / 1_000_000_000_000_000)
            let pulled: Int
            do {
                pulled = try await livePull(milliseconds)
            } catch {
                // A pull cut short by requestSync() or cancellation is not a failure.
                if Task.isCancelled || wake.isPending { return }
                throw error
            }
            livePulled += pulled
        }
    }

    /// One live pull: a request that waits up to `milliseconds` for a change, and the pages
    /// after it. It ends early when ``requestSync()`` is called.
    func livePull(_ milliseconds: UInt32) async throws(SyncError) -> Int {
        /// What ended the race: the pull, or a wake-up for a round.
        enum Ending: Sendable {
            case pulled(Int)
            case failed(SyncError)
            case woken
        }
        let ending = await withTaskGroup(of: Ending.self) { group in
            group.addTask {
                do throws(SyncError) {
                    return .pulled(try await self.pullAll(waitingMilliseconds: milliseconds).changes)
                } catch {
                    return .failed(error)
                }
            }
            group.addTask { [wake] in
                // Woken for a round: end the waiting pull (its request is cancelled).
                _ = await wake.waitWithoutTaking()
                return .woken
            }
            let first = await group.next() ?? .woken
            group.cancelAll()
            return first
        }
        switch ending {
        case .pulled(let count): return count
        case .failed(let error): throw error
        case .woken: return 0
        }
    }
}

/// A wake-up for a waiting loop: ``signal()`` wakes the current waiter, or the next one if none
/// waits (signals before a wait count once).
final class WakeSignal: Sendable {
    struct State {
        var pending = false
        var waiters: [Int: CheckedContinuation<Bool, Never>] = [:]
        var next = 0
    }
    let state = Mutex(State())

    /// Wakes the waiters, or marks a wake-up pending for the next wait.
    func signal() {
        let woken = state.withLock { state -> [CheckedContinuation<Bool, Never>] in
            state.pending = true
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in woken { waiter.resume(returning: true) }
    }

    /// Whether a wake-up is pending.
    var isPending: Bool { state.withLock { $0.pending } }

    /// Waits for a wake-up and takes it: true when woken, false when the task is cancelled.
    func wait() async -> Bool {
        let woken = await waitWithoutTaking()
        if woken { state.withLock { $0.pending = false } }
        return woken
    }

    /// Waits for a wake-up and leaves it pending (for the next ``wait()``).
    func waitWithoutTaking() async -> Bool {
        let id = state.withLock { state -> Int in
            defer { state.next += 1 }
            return state.next
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let now = state.withLock { state -> Bool? in
                    if state.pending { return true }
                    if Task.isCancelled { return false }
                    state.waiters[id] = continuation
                    return nil
                }
                if let now { continuation.resume(returning: now) }
            }
        } onCancel: {
            let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
            waiter?.resume(returning: false)
        }
    }
}
