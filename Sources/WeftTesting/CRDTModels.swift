import WeftCRDT

/// Models of the built-in CRDTs, drawing from small value ranges so that ties, duplicate
/// elements and concurrent edits of one key are common. Use them as examples for your own.
public enum CRDTModels {
    static func smallInt(_ random: inout any RandomNumberGenerator) -> Int64 { Int64.random(in: 0...3, using: &random) }
    static func key(_ random: inout any RandomNumberGenerator) -> String { ["a", "b", "c"].randomElement(using: &random) ?? "a" }
    static func scalar(_ random: inout any RandomNumberGenerator) -> Scalar {
        switch Int.random(in: 0..<4, using: &random) {
        case 0: return .int(smallInt(&random))
        case 1: return .string(key(&random))
        case 2: return .bool(Bool.random(using: &random))
        default: return .null
        }
    }

    /// The register every replica starts from: written at time 0 by replica 0.
    public static let origin = HLCTimestamp(wallMilliseconds: 0, counter: 0, replica: ReplicaID(high: 0, low: 0))

    /// An `LWWRegister<Int64>` set to small values.
    public static let lwwRegister = CRDTModel<LWWRegister<Int64>>(name: "LWWRegister", initial: LWWRegister(0, stamp: origin)) { random in
        let value = smallInt(&random)
        return Operation("set \(value)") { state, replica in state.set(value, at: replica.stamp()) }
    }

    /// An `MVRegister<Int64>` set to small values.
    public static let mvRegister = CRDTModel<MVRegister<Int64>>(name: "MVRegister", initial: MVRegister()) { random in
        let value = smallInt(&random)
        return Operation("set \(value)") { state, replica in state.set(value, by: replica.replica) }
    }

    /// A `GCounter` incremented by small amounts.
    public static let gCounter = CRDTModel<GCounter>(name: "GCounter", initial: GCounter()) { random in
        let amount = UInt64.random(in: 0...3, using: &random)
        return Operation("increment \(amount)") { state, replica in state.increment(by: amount, replica: replica.replica) }
    }

    /// A `PNCounter` changed by small amounts either way.
    public static let pnCounter = CRDTModel<PNCounter>(name: "PNCounter", initial: PNCounter()) { random in
        let amount = Int64.random(in: -3...3, using: &random)
        return Operation("add \(amount)") { state, replica in state.increment(by: amount, replica: replica.replica) }
    }

    /// An `ORSet<Int64>` over the elements 0–3.
    public static let orSet = CRDTModel<ORSet<Int64>>(name: "ORSet", initial: ORSet()) { random in
        let element = smallInt(&random)
        if Bool.random(using: &random) {
            return Operation("insert \(element)") { state, replica in state.insert(element, by: replica.replica) }
        }
        return Operation("remove \(element)") { state, _ in state.remove(element) }
    }

    /// An `LWWMap<String, Int64>` over the keys a, b, c.
    public static let lwwMap = CRDTModel<LWWMap<String, Int64>>(name: "LWWMap", initial: LWWMap()) { random in
        let key = key(&random)
        let value = smallInt(&random)
        if Int.random(in: 0..<4, using: &random) == 0 {
            return Operation("remove \(key)") { state, replica in state.removeValue(forKey: key, at: replica.stamp()) }
        }
        return Operation("set \(key) = \(value)") { state, replica in state.set(key, to: value, at: replica.stamp()) }
    }

    /// An `ORMap<String, PNCounter>` over the keys a, b, c: nested counters and removals.
    public static let orMap = CRDTModel<ORMap<String, PNCounter>>(name: "ORMap", initial: ORMap()) { random in
        let key = key(&random)
        let amount = Int64.random(in: -2...2, using: &random)
        if Int.random(in: 0..<4, using: &random) == 0 {
            return Operation("remove \(key)") { state, _ in state.removeValue(forKey: key) }
        }
        return Operation("\(key) += \(amount)") { state, replica in
            state.update(key, by: replica.replica, default: PNCounter()) { $0.increment(by: amount, replica: replica.replica) }
        }
    }

    /// A `Document` with registers, counters, sets, nested documents, removals, and fields
    /// whose kind differs between replicas.
    public static let document = CRDTModel<Document>(name: "Document", initial: Document()) { random in
        let key = key(&random)
        let value = scalar(&random)
        let amount = Int64.random(in: -2...2, using: &random)
        let nestedKey = CRDTModels.key(&random)
        switch Int.random(in: 0..<7, using: &random) {
        case 0: return Operation("\(key) = \(value)") { state, replica in state.set(key, to: value, at: replica.stamp()) }
        case 1: return Operation("\(key) += \(amount)") { state, replica in state.increment(key, by: amount, at: replica.stamp()) }
        case 2: return Operation("insert \(value) into \(key)") { state, replica in state.insert(value, intoSet: key, at: replica.stamp()) }
        case 3: return Operation("remove \(value) from \(key)") { state, replica in state.remove(value, fromSet: key, at: replica.stamp()) }
        case 4: return Operation("remove field \(key)") { state, _ in state.removeField(key) }
        case 5:
            return Operation("\(key).\(nestedKey) = \(value)") { state, replica in
                let stamp = replica.stamp()
                return state.updateMap(key, at: stamp) { $0.set(nestedKey, to: value, at: stamp) }
            }
        default:
            return Operation("\(key).\(nestedKey) += \(amount)") { state, replica in
                let stamp = replica.stamp()
                return state.updateMap(key, at: stamp) { $0.increment(nestedKey, by: amount, at: stamp) }
            }
        }
    }
}
