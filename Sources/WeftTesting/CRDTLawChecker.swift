import PropertyBased
import Testing
import WeftCRDT

/// Property-based checks of the CRDT laws stated on WeftCRDT's `CRDT`, for any conforming type.
///
/// Each check draws `count` random operation histories from a ``CRDTModel``, replays them
/// and records a Swift Testing issue for every violation, naming the law, the states and the
/// history. PropertyBased prints a `.fixedSeed(...)` trait that reproduces a failure.
///
/// Call the checks from a `@Test` function:
///
/// ```swift
/// @Test func counterLaws() async {
///     await CRDTLawChecker.checkAll(CRDTModels.gCounter)
/// }
/// ```
public enum CRDTLawChecker {
    /// The number of histories per law when none is given.
    public static let defaultCount = 200

    package static func histories<State: CRDT>(_ model: CRDTModel<State>) -> Generator<History<State>, Shrink.None<History<State>>> {
        Generator { seeded in
            var random: any RandomNumberGenerator = SplitMix64(seed: seeded.next())
            return History.random(model: model, using: &random)
        }
    }

    /// Picks a random snapshot of the trace.
    static func pick<State>(_ trace: Trace<State>, _ random: inout SplitMix64) -> State {
        trace.snapshots[Int.random(in: 0..<trace.snapshots.count, using: &random)]
    }

    /// Runs `body` on `count` random histories, each replayed, with a generator seeded by the history.
    static func forEachHistory<State: CRDT>(
        _ model: CRDTModel<State>, count: Int,
        _ body: (History<State>, Trace<State>, inout SplitMix64) -> Void
    ) async {
        await propertyCheck(count: count, input: histories(model)) { history in
            var random = SplitMix64(seed: history.checkSeed)
            body(history, history.replay(model), &random)
        }
    }

    /// Law 1: `a ⊔ b == b ⊔ a`.
    public static func checkCommutativity<State: CRDT>(
        _ model: CRDTModel<State>, count: Int = defaultCount, sourceLocation: SourceLocation = #_sourceLocation
    ) async {
        await forEachHistory(model, count: count) { history, trace, random in
            for _ in 0..<4 {
                let a = pick(trace, &random)
                let b = pick(trace, &random)
                #expect(
                    a.merged(with: b) == b.merged(with: a),
                    "\(model.name): merge is not commutative.\na = \(a)\nb = \(b)\n\(history)",
                    sourceLocation: sourceLocation)
            }
        }
    }

    /// Law 2: `(a ⊔ b) ⊔ c == a ⊔ (b ⊔ c)`.
    public static func checkAssociativity<State: CRDT>(
        _ model: CRDTModel<State>, count: Int = defaultCount, sourceLocation: SourceLocation = #_sourceLocation
    ) async {
        await forEachHistory(model, count: count) { history, trace, random in
            for _ in 0..<4 {
                let a = pick(trace, &random)
                let b = pick(trace, &random)
                let c = pick(trace, &random)
                #expect(
                    a.merged(with: b).merged(with: c) == a.merged(with: b.merged(with: c)),
                    "\(model.name): merge is not associative.\na = \(a)\nb = \(b)\nc = \(c)\n\(history)",
                    sourceLocation: sourceLocation)
            }
        }
    }

    /// Law 3: `a ⊔ a == a`, and a state delivered twice changes nothing.
    public static func checkIdempotence<State: CRDT>(
        _ model: CRDTModel<State>, count: Int = defaultCount, sourceLocation: SourceLocation = #_sourceLocation
    ) async {
        await forEachHistory(model, count: count) { history, trace, random in
            let b = pick(trace, &random)
            for a in trace.snapshots {
                #expect(a.merged(with: a) == a, "\(model.name): merge is not idempotent.\na = \(a)\n\(history)",
                    sourceLocation: sourceLocation)
                let once = a.merged(with: b)
                #expect(once.merged(with: b) == once,
                    "\(model.name): merging the same state twice changed it.\na = \(a)\nb = \(b)\n\(history)",
                    sourceLocation: sourceLocation)
            }
        }
    }

    /// Law 4: every mutation is an inflation: `before ⊔ after == after`.
    public static func checkInflation<State: CRDT>(
        _ model: CRDTModel<State>, count: Int = defaultCount, sourceLocation: SourceLocation = #_sourceLocation
    ) async {
        await forEachHistory(model, count: count) { history, trace, _ in
            for mutation in trace.mutations {
                #expect(
                    mutation.before.merged(with: mutation.after) == mutation.after,
                    "\(model.name): '\(mutation.operation)' is not an inflation.\nbefore = \(mutation.before)\nafter = \(mutation.after)\n\(history)",
                    sourceLocation: sourceLocation)
            }
        }
    }

    /// Law 5: a mutation's delta joined into the old state gives the new state.
    public static func checkDeltas<State: CRDT>(
        _ model: CRDTModel<State>, count: Int = defaultCount, sourceLocation: SourceLocation = #_sourceLocation
    ) async {
        await forEachHistory(model, count: count) { history, trace, _ in
            for mutation in trace.mutations {
                #expect(
                    mutation.before.merged(with: mutation.delta) == mutation.after,
                    "\(model.name): the delta of '\(mutation.operation)' does not reproduce it.\nbefore = \(mutation.before)\ndelta = \(mutation.delta)\nafter = \(mutation.after)\n\(history)",
                    sourceLocation: sourceLocation)
            }
        }
    }

    /// Convergence: replicas that receive all deltas, in any order and with duplicates,
    /// end equal to the join of every replica's final state.
    public static func checkConvergence<State: CRDT>(
        _ model: CRDTModel<State>, count: Int = defaultCount, sourceLocation: SourceLocation = #_sourceLocation
    ) async {
        await forEachHistory(model, count: count) { history, trace, random in
            var expected = model.initial()
            for state in trace.finalStates { expected.merge(state) }
            for attempt in 0..<3 {
                var deliveries = trace.deltas
                for delta in trace.deltas where Bool.random(using: &random) { deliveries.append(delta) }
                deliveries.shuffle(using: &random)
                // Start from the initial state, or from a random replica's final state.
                var replica = attempt == 0 ? model.initial() : trace.finalStates[Int.random(in: 0..<trace.finalStates.count, using: &random)]
                for delta in deliveries { replica.merge(delta) }
                #expect(
                    replica == expected,
                    "\(model.name): delivering all deltas (shuffled, with duplicates) did not converge.\ngot = \(replica)\nexpected = \(expected)\n\(history)",
                    sourceLocation: sourceLocation)
            }
        }
    }

    /// Codec: every reachable state decodes to itself, and re-encodes to the same bytes.
    public static func checkCodecRoundTrip<State: CRDT & BinaryCodable>(
        _ model: CRDTModel<State>, count: Int = defaultCount, sourceLocation: SourceLocation = #_sourceLocation
    ) async {
        await forEachHistory(model, count: count) { history, trace, _ in
            for state in trace.snapshots + trace.deltas {
                let bytes = state.encoded()
                do {
                    let decoded = try State(encoded: bytes)
                    #expect(decoded == state, "\(model.name): decoding changed the state.\nstate = \(state)\n\(history)",
                        sourceLocation: sourceLocation)
                    #expect(decoded.encoded() == bytes, "\(model.name): the encoding is not deterministic.\n\(history)",
                        sourceLocation: sourceLocation)
                } catch {
                    Issue.record("\(model.name): its own encoding failed to decode: \(error)\nstate = \(state)\n\(history)",
                        sourceLocation: sourceLocation)
                }
            }
        }
    }

    /// Intent (no lost update): an edit stays visible after its state is merged with any state
    /// that had not seen it, in either order, unless an edit that state had seen (and it had not)
    /// legitimately hides it (``CRDTModel/interferes``). Covers edits made after removals,
    /// re-creations and rollbacks, which a merge that reuses identities would lose. Operations
    /// without an ``Intent`` are not checked.
    public static func checkIntent<State: CRDT>(
        _ model: CRDTModel<State>, count: Int = defaultCount, sourceLocation: SourceLocation = #_sourceLocation
    ) async {
        await forEachHistory(model, count: count) { history, trace, _ in
            for (index, intent) in trace.intents.enumerated() {
                guard let intent, let isVisible = intent.isVisible else { continue }
                let after = trace.mutations[index].after
                let past = trace.pasts[index]
                for (snapshot, seen) in zip(trace.snapshots, trace.seen) {
                    // Everything the other state knows of, directly or through what it saw.
                    var known = Set<Int>()
                    for other in seen { known.formUnion(trace.pasts[other]) }
                    guard !known.contains(index) else { continue }
                    let hidden = known.subtracting(past).contains { other in
                        trace.intents[other].map { model.interferes(intent, $0) } ?? false
                    }
                    guard !hidden else { continue }
                    for merged in [after.merged(with: snapshot), snapshot.merged(with: after)] where !isVisible(merged) {
                        Issue.record(
                            "\(model.name): '\(trace.mutations[index].operation)' was lost in a merge with a state that had not seen it.\nafter = \(after)\nother = \(snapshot)\nmerged = \(merged)\n\(history)",
                            sourceLocation: sourceLocation)
                        return
                    }
                }
            }
        }
    }

    /// Runs every law except the codec round trip.
    public static func checkMergeLaws<State: CRDT>(
        _ model: CRDTModel<State>, count: Int = defaultCount, sourceLocation: SourceLocation = #_sourceLocation
    ) async {
        await checkCommutativity(model, count: count, sourceLocation: sourceLocation)
        await checkAssociativity(model, count: count, sourceLocation: sourceLocation)
        await checkIdempotence(model, count: count, sourceLocation: sourceLocation)
        await checkInflation(model, count: count, sourceLocation: sourceLocation)
        await checkDeltas(model, count: count, sourceLocation: sourceLocation)
        await checkConvergence(model, count: count, sourceLocation: sourceLocation)
        await checkIntent(model, count: count, sourceLocation: sourceLocation)
    }

    /// Runs every law, including the codec round trip.
    public static func checkAll<State: CRDT & BinaryCodable>(
        _ model: CRDTModel<State>, count: Int = defaultCount, sourceLocation: SourceLocation = #_sourceLocation
    ) async {
        await checkMergeLaws(model, count: count, sourceLocation: sourceLocation)
        await checkCodecRoundTrip(model, count: count, sourceLocation: sourceLocation)
    }
}
