import Foundation
import Logging
import Synchronization
import WeftCRDT
import WeftWire

// Connection states and the write-behind loop.
extension SyncEngine {

    /// A stream of connection states: the current one first, then each change.
    public func connectionStates() -> AsyncStream<ConnectionState> {
        let (stream, continuation) = AsyncStream<ConnectionState>.makeStream(bufferingPolicy: .bufferingNewest(64))
        let id = nextStateObserver
        nextStateObserver += 1
        stateObservers[id] = continuation
        continuation.yield(connectionState)
        continuation.onTermination = { [weak self] _ in
            guard let self else { return }
            Task { await self.removeStateObserver(id) }
        }
        return stream
    }

    func removeStateObserver(_ id: Int) { stateObservers[id] = nil }

    func enter(_ state: ConnectionState) {
        guard state != connectionState else { return }
        connectionState = state
        for observer in stateObservers.values { observer.yield(state) }
    }

    /// Write-behind: syncs now and then every `interval` (`sync_interval_ms`) until the task is
    /// cancelled, keeping a pull waiting on the server in between (live sync, ``livePulls``).
    ///
    /// Between two rounds, one pull at a time waits on the server (the long-poll) and the
    /// changes it brings are applied at once: a change another replica pushes arrives within
    /// milliseconds, not at the next round. Local writes are pushed at the rounds, or at once
    /// after ``requestSync()``. The interval is measured on `clock`; live pulls wait on the
    /// server in real time.
    ///
    /// The connection state goes ``ConnectionState/syncing`` during a round,
    /// ``ConnectionState/online`` after one that succeeded (and while live pulls succeed), and
    /// ``ConnectionState/offline`` after a failure of either. After a failure the next round
    /// comes after `backoff`'s delay (exponential, jittered, capped), with no live pull until a
    /// round succeeds again; the first success resets it and replays the queue in sequence
    /// order. Nothing queued is lost on a failed round.
    ///
    /// - Parameters:
    ///   - interval: the time between two rounds, measured on `clock`.
    ///   - backoff: the delays between rounds after failures.
    ///   - clock: the clock that paces the rounds; inject a test clock to drive it.
    ///   - onRound: called after each round with its report, or the error that ended it (or
    ///     ended a live pull).
    public func runWriteBehind<C: Clock>(
        every interval: Duration, backoff: Backoff = Backoff(), clock: C,
        onRound: @Sendable (Result<SyncReport, SyncError>) async -> Void = { _ in }
    ) async where C.Duration == Duration {
        var failures = 0
        while !Task.isCancelled {
            var pause: Duration
            do {
                let report = try await syncOnce()
                failures = 0
                await onRound(.success(report))
                pause = interval
            } catch {
                failures += 1
                pause = backoff.delay(afterFailures: failures, random: Double.random(in: 0..<1))
                logger.info(
                    "sync round failed; retrying", metadata: ["error": "\(error)", "failures": "\(failures)", "retry_in": "\(pause)"])
                await onRound(.failure(error))
            }
            let deadline = clock.now.advanced(by: pause)
            if failures == 0 && livePulls {
                do {
                    try await pullLive(until: deadline, clock: clock)
                } catch {
                    // The live pull failed (a dropped connection, a server gone): offline, and
                    // the next round comes after the backoff.
                    failures += 1
                    enter(.offline)
                    logger.info("live pull failed; retrying", metadata: ["error": "\(error)"])
                    await onRound(.failure(error))
                    let retry = clock.now.advanced(by: backoff.delay(afterFailures: failures, random: Double.random(in: 0..<1)))
                    guard await wait(until: retry, clock: clock) else { return }
                    continue
                }
            }
            guard await wait(until: deadline, clock: clock) else { return }
        }
    }

    /// Sleeps on `clock` until `deadline`, or until ``requestSync()``; false if cancelled.
    func wait<C: Clock>(until deadline: C.Instant, clock: C) async -> Bool where C.Duration == Duration {
        guard clock.now < deadline else { return !Task.isCancelled }
        return await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                do {
                    try await clock.sleep(until: deadline, tolerance: nil)
                    return true
                } catch {
                    return false
                }
            }
            group.addTask { [wake] in await wake.wait() }
            let first = await group.next() ?? false
            group.cancelAll()
            return first && !Task.isCancelled
        }
    }

    /// Write-behind on the continuous clock, every `milliseconds` (`sync_interval_ms`).
    public func runWriteBehind(everyMilliseconds milliseconds: Int, backoff: Backoff = Backoff()) async {
        await runWriteBehind(every: .milliseconds(max(1, milliseconds)), backoff: backoff, clock: ContinuousClock())
    }
}

/// How a sync engine stands with the server.
public enum ConnectionState: String, Hashable, Sendable {
    /// The last round failed (or none ran yet); the engine retries with backoff.
    case offline
    /// A round is in progress.
    case syncing
    /// The last round succeeded.
    case online
}

/// Exponential backoff with jitter and a cap, for retrying a server that cannot be reached.
///
/// After `n` failures in a row the delay is `initial × multiplierⁿ⁻¹`, capped at `maximum`,
/// then reduced by a random part of up to `jitter` of it: `delay × (1 − jitter × u)` for `u` in
/// `0..<1`. The jitter spreads the retries of many replicas that lost the same server at once.
public struct Backoff: Hashable, Sendable {
    /// The delay after the first failure.
    public var initial: Duration
    /// The growth per failure.
    public var multiplier: Double
    /// The cap.
    public var maximum: Duration
    /// The largest fraction of a delay taken off at random, from 0 (none) to 1.
    public var jitter: Double

    /// Creates a backoff; the defaults go 0.5 s, 1 s, 2 s … up to 60 s, with half jitter.
    public init(initial: Duration = .milliseconds(500), multiplier: Double = 2, maximum: Duration = .seconds(60), jitter: Double = 0.5) {
        self.initial = initial
        self.multiplier = max(1, multiplier)
        self.maximum = max(initial, maximum)
        self.jitter = min(1, max(0, jitter))
    }

    /// The delay after `failures` failures in a row, for a random `random` in `0..<1`.
    public func delay(afterFailures failures: Int, random: Double) -> Duration {
        let cap = maximum.inSeconds
        let base = min(cap, initial.inSeconds * pow(multiplier, Double(max(0, failures - 1))))
        let jittered = base * (1 - jitter * min(max(random, 0), 1))
        return .nanoseconds(Int64(min(cap, max(0, jittered)) * 1e9))
    }
}
