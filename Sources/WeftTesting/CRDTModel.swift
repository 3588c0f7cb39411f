import WeftCRDT

/// What a replica knows while it applies an operation: its identity and its clock.
public struct ReplicaContext: Sendable {
    /// The replica's position in the history, from 0.
    public let index: Int
    /// The replica's identity.
    public let replica: ReplicaID
    /// The replica's clock, driven by ``time``.
    public var clock: HybridLogicalClock
    /// The physical time the clock reads; histories move it in small steps so equal wall
    /// times on different replicas are common.
    public let time: ManualTimeSource

    /// A fresh stamp from the replica's clock.
    public mutating func stamp() -> HLCTimestamp { clock.now() }
}

/// One mutation: a name for failure messages, and a function that mutates a state and returns
/// the delta.
public struct Operation<State: CRDT>: Sendable, CustomStringConvertible {
    /// A short description, printed when a law fails.
    public let description: String
    /// Mutates the state as the given replica and returns the delta.
    public let apply: @Sendable (inout State, inout ReplicaContext) -> State

    /// Creates an operation.
    public init(_ description: String, _ apply: @escaping @Sendable (inout State, inout ReplicaContext) -> State) {
        self.description = description
        self.apply = apply
    }
}

/// How to reach states of a CRDT: a starting state and random operations.
///
/// The law checkers generate *operation histories* over 2–4 replicas from a model, so only
/// reachable states are tested, and ties and concurrency come up often when the operations
/// draw from small value ranges.
///
/// ```swift
/// let model = CRDTModel<GCounter>(name: "GCounter", initial: GCounter()) { random in
///     let amount = UInt64.random(in: 0...3, using: &random)
///     return Operation("increment \(amount)") { state, replica in
///         state.increment(by: amount, replica: replica.replica)
///     }
/// }
/// ```
public struct CRDTModel<State: CRDT>: Sendable {
    /// A name used in failure messages.
    public let name: String
    /// The state every replica starts from. It must be the same on every replica.
    public let initial: @Sendable () -> State
    /// Draws a random operation.
    public let operation: @Sendable (inout any RandomNumberGenerator) -> Operation<State>

    /// Creates a model.
    public init(
        name: String,
        initial: @autoclosure @escaping @Sendable () -> State,
        operation: @escaping @Sendable (inout any RandomNumberGenerator) -> Operation<State>
    ) {
        self.name = name
        self.initial = initial
        self.operation = operation
    }
}

/// A random history: mutations by replicas and state transfers between them.
public struct History<State: CRDT>: Sendable, CustomStringConvertible {
    /// One step of a history.
    public enum Step: Sendable {
        /// Replica `replica` applies an operation.
        case mutate(replica: Int, Operation<State>)
        /// Replica `to` merges the whole state of replica `from`.
        case sync(from: Int, to: Int)
        /// Physical time moves on by this many milliseconds on every replica.
        case tick(UInt64)
    }

    /// The number of replicas.
    public let replicaCount: Int
    /// The steps in order.
    public let steps: [Step]
    /// A seed for choices made while checking (delivery orders, picks).
    public let checkSeed: UInt64

    public var description: String {
        var lines = ["\(replicaCount) replicas:"]
        for step in steps {
            switch step {
            case .mutate(let replica, let operation): lines.append("  r\(replica): \(operation.description)")
            case .sync(let from, let to): lines.append("  r\(from) -> r\(to)")
            case .tick(let milliseconds): lines.append("  +\(milliseconds) ms")
            }
        }
        return lines.joined(separator: "\n")
    }
}

/// The result of replaying a history.
public struct Trace<State: CRDT>: Sendable {
    /// Every state any replica passed through, including the initial one.
    public var snapshots: [State] = []
    /// Every mutation: the state before, the state after and the delta returned.
    public var mutations: [(before: State, after: State, delta: State, operation: String)] = []
    /// Every delta, in the order made.
    public var deltas: [State] = []
    /// Each replica's final state.
    public var finalStates: [State] = []
}

extension History {
    /// Draws a history of 1–24 steps over 2–4 replicas.
    public static func random(
        model: CRDTModel<State>, using random: inout any RandomNumberGenerator, maximumSteps: Int = 24
    ) -> History {
        let replicas = Int.random(in: 2...4, using: &random)
        let stepCount = Int.random(in: 1...maximumSteps, using: &random)
        var steps = [Step]()
        for _ in 0..<stepCount {
            switch Int.random(in: 0..<10, using: &random) {
            case 0..<6: steps.append(.mutate(replica: Int.random(in: 0..<replicas, using: &random), model.operation(&random)))
            case 6..<8:
                let from = Int.random(in: 0..<replicas, using: &random)
                let to = (from + Int.random(in: 1..<replicas, using: &random)) % replicas
                steps.append(.sync(from: from, to: to))
            default: steps.append(.tick(UInt64.random(in: 0...2, using: &random)))
            }
        }
        return History(replicaCount: replicas, steps: steps, checkSeed: UInt64.random(in: 0...UInt64.max, using: &random))
    }

    /// Replays the history from the model's initial state.
    public func replay(_ model: CRDTModel<State>) -> Trace<State> {
        var trace = Trace<State>()
        var states = Array(repeating: model.initial(), count: replicaCount)
        var contexts = (0..<replicaCount).map { index -> ReplicaContext in
            let time = ManualTimeSource(milliseconds: 1_000)
            let replica = ReplicaID(high: 0, low: UInt64(index + 1))
            return ReplicaContext(index: index, replica: replica, clock: HybridLogicalClock(replica: replica, timeSource: time), time: time)
        }
        trace.snapshots.append(model.initial())
        for step in steps {
            switch step {
            case .mutate(let replica, let operation):
                let before = states[replica]
                let delta = operation.apply(&states[replica], &contexts[replica])
                trace.mutations.append((before, states[replica], delta, operation.description))
                trace.deltas.append(delta)
                trace.snapshots.append(states[replica])
            case .sync(let from, let to):
                states[to].merge(states[from])
                trace.snapshots.append(states[to])
            case .tick(let milliseconds):
                for context in contexts { context.time.advance(by: milliseconds) }
            }
        }
        trace.finalStates = states
        return trace
    }
}
