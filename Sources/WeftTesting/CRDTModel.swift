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

    /// The last stamp ``stamp()`` gave, if any.
    public private(set) var lastStamp: HLCTimestamp?

    /// A fresh stamp from the replica's clock.
    public mutating func stamp() -> HLCTimestamp {
        let stamp = clock.now()
        lastStamp = stamp
        return stamp
    }
}

/// One mutation: a name for failure messages, and a function that mutates a state and returns
/// the delta; optionally, its *intent*: what must stay visible after merges.
public struct Operation<State: CRDT>: Sendable, CustomStringConvertible {
    /// A short description, printed when a law fails.
    public let description: String
    /// Mutates the state as the given replica and returns the delta.
    public let apply: @Sendable (inout State, inout ReplicaContext) -> State
    /// What the edit means to its user, for ``CRDTLawChecker/checkIntent(_:count:sourceLocation:)``.
    public let intent: Intent<State>?

    /// Creates an operation.
    public init(
        _ description: String, intent: Intent<State>? = nil, _ apply: @escaping @Sendable (inout State, inout ReplicaContext) -> State
    ) {
        self.description = description
        self.intent = intent
        self.apply = apply
    }
}

/// What an edit means to its user: the part of the state it touches, and a test that the edit
/// is still visible.
///
/// The intent check (no lost update) merges the state right after the edit with every state
/// that had not seen it, and expects the edit to be visible in the result, unless one of the
/// edits that other state had seen (and this one had not) legitimately hides it; the model says
/// which do (``CRDTModel/interferes``). An edit made after a removal or a rollback must survive
/// like any other.
public struct Intent<State>: Sendable {
    /// What the edit touches, for the model's interference rule (a key, a path).
    public let target: String
    /// A label of the edit's kind, for the interference rule (`"set"`, `"insert"`, …).
    public let kind: String
    /// The edit's stamp: the last one the operation took from ``ReplicaContext/stamp()``, filled
    /// in when the history is replayed (last-writer-wins rules compare them).
    public internal(set) var stamp: HLCTimestamp?
    /// Whether a state shows the edit; `nil` for an edit that is not checked itself but may
    /// hide others (a write that changes a field's kind, say).
    public let isVisible: (@Sendable (State) -> Bool)?

    /// Creates an intent.
    public init(target: String, kind: String, isVisible: (@Sendable (State) -> Bool)? = nil) {
        self.target = target
        self.kind = kind
        self.isVisible = isVisible
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
    /// Whether a concurrent edit (the second argument's intent, recorded when it ran) may
    /// legitimately hide an edit (the first): a later write of the same register, a write of a
    /// higher kind of the same field. Edits without an intent never interfere.
    public let interferes: @Sendable (Intent<State>, Intent<State>) -> Bool

    /// Creates a model.
    public init(
        name: String,
        initial: @autoclosure @escaping @Sendable () -> State,
        interferes: @escaping @Sendable (Intent<State>, Intent<State>) -> Bool = { _, _ in false },
        operation: @escaping @Sendable (inout any RandomNumberGenerator) -> Operation<State>
    ) {
        self.name = name
        self.initial = initial
        self.interferes = interferes
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
        /// Replica `to` merges only the delta of the `mutation`-th mutation (if there was one):
        /// partial, out-of-order delivery, which leaves clouds of dots in causal contexts.
        case deliver(mutation: Int, to: Int)
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
            case .deliver(let mutation, let to): lines.append("  delta #\(mutation) -> r\(to)")
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
    /// For each snapshot, the mutations (by index) it has seen.
    public var seen: [Set<Int>] = []
    /// For each mutation, its intent, if its operation has one.
    public var intents: [Intent<State>?] = []
    /// For each mutation, the mutations its replica had seen when it ran, itself included.
    public var pasts: [Set<Int>] = []
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
            case 6, 7:
                let from = Int.random(in: 0..<replicas, using: &random)
                let to = (from + Int.random(in: 1..<replicas, using: &random)) % replicas
                if Int.random(in: 0..<3, using: &random) == 0 {
                    steps.append(.deliver(mutation: Int.random(in: 0..<maximumSteps, using: &random), to: to))
                } else {
                    steps.append(.sync(from: from, to: to))
                }
            default: steps.append(.tick(UInt64.random(in: 0...2, using: &random)))
            }
        }
        return History(replicaCount: replicas, steps: steps, checkSeed: UInt64.random(in: 0...UInt64.max, using: &random))
    }

    /// Replays the history from the model's initial state.
    public func replay(_ model: CRDTModel<State>) -> Trace<State> {
        var trace = Trace<State>()
        var states = Array(repeating: model.initial(), count: replicaCount)
        var seen = Array(repeating: Set<Int>(), count: replicaCount)
        var contexts = (0..<replicaCount).map { index -> ReplicaContext in
            let time = ManualTimeSource(milliseconds: 1_000)
            let replica = ReplicaID(high: 0, low: UInt64(index + 1))
            return ReplicaContext(index: index, replica: replica, clock: HybridLogicalClock(replica: replica, timeSource: time), time: time)
        }
        trace.snapshots.append(model.initial())
        trace.seen.append(Set<Int>())
        for step in steps {
            switch step {
            case .mutate(let replica, let operation):
                let before = states[replica]
                let delta = operation.apply(&states[replica], &contexts[replica])
                seen[replica].insert(trace.mutations.count)
                trace.pasts.append(seen[replica])
                trace.mutations.append((before, states[replica], delta, operation.description))
                var intent = operation.intent
                intent?.stamp = contexts[replica].lastStamp
                trace.intents.append(intent)
                trace.deltas.append(delta)
                trace.snapshots.append(states[replica])
                trace.seen.append(seen[replica])
            case .sync(let from, let to):
                states[to].merge(states[from])
                seen[to].formUnion(seen[from])
                trace.snapshots.append(states[to])
                trace.seen.append(seen[to])
            case .deliver(let mutation, let to):
                guard mutation < trace.deltas.count else { continue }
                states[to].merge(trace.deltas[mutation])
                seen[to].insert(mutation)
                trace.snapshots.append(states[to])
                trace.seen.append(seen[to])
            case .tick(let milliseconds):
                for context in contexts { context.time.advance(by: milliseconds) }
            }
        }
        trace.finalStates = states
        return trace
    }
}
