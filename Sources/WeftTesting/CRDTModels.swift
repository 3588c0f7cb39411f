import WeftCRDT

/// Models of the built-in CRDTs, drawing from small value ranges so that ties, duplicate
/// elements and concurrent edits of one key are common. Use them as examples for your own.
public enum CRDTModels {
    static func smallInt(_ random: inout any RandomNumberGenerator) -> Int64 { Int64.random(in: 0...3, using: &random) }
    static func key(_ random: inout any RandomNumberGenerator) -> String { ["a", "b", "c"].randomElement(using: &random) ?? "a" }
    /// A scalar from small ranges: 0–3, "a"–"c", Booleans, null.
    public static func scalar(_ random: inout any RandomNumberGenerator) -> Scalar {
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

    /// A scalar drawn mostly from small ranges, and a third of the time from the edges: the
    /// widest integers, integers and doubles around 2⁵³, NaNs with different payloads, ±0, ±∞,
    /// text spelled in two Unicode normalisation forms, emoji, bytes.
    public static func wideScalar(_ random: inout any RandomNumberGenerator) -> Scalar {
        if Int.random(in: 0..<3, using: &random) > 0 { return scalar(&random) }
        let edges: [Scalar] = [
            .int(.max), .int(.min), .int(1 << 53), .int((1 << 53) + 1), .double(9_007_199_254_740_992),
            .double(.nan), .double(Double(bitPattern: 0x7ff8_0000_0000_0001)), .double(-.nan), .double(0.0), .double(-0.0),
            .double(.infinity), .double(-.infinity), .string("\u{e9}"), .string("e\u{301}"), .string("🧪"), .string(""),
            .bytes([]), .bytes([0, 255]),
        ]
        return edges[Int.random(in: 0..<edges.count, using: &random)]
    }

    /// The rank of an intent's kind, as the document orders kinds (register < counter < set <
    /// nested document).
    static func rank(_ kind: String) -> Int {
        switch kind {
        case "register": return 0
        case "counter": return 1
        case "set": return 2
        case "remove": return -1
        default: return 3
        }
    }

    /// Whether `other`, concurrent with `edit`, may hide it in a document: a later write of the
    /// same register, or a write of a higher kind of the same field (any nested edit, a removal
    /// inside included, makes its field a nested document). A concurrent removal hides nothing:
    /// it removes only what it had seen.
    public static let documentInterference: @Sendable (Intent<Document>, Intent<Document>) -> Bool = { edit, other in
        let (field, nested) = split(edit.target)
        let (otherField, otherNested) = split(other.target)
        guard field == otherField else { return false }
        if nested == nil {
            // A top-level edit: hidden by a higher kind there, or a nested edit (a map).
            let otherRank = otherNested == nil ? rank(other.kind) : 3
            if otherRank > rank(edit.kind) { return true }
            if otherNested == nil, edit.kind == "register", other.kind == "register", let a = edit.stamp, let b = other.stamp { return b >= a }
            return false
        }
        guard let otherNested, otherNested == nested else { return false }
        if rank(other.kind) > rank(edit.kind) { return true }
        if edit.kind == "register", other.kind == "register", let a = edit.stamp, let b = other.stamp { return b >= a }
        return false
    }

    static func split(_ target: String) -> (String, String?) {
        guard let dot = target.firstIndex(of: ".") else { return (target, nil) }
        return (String(target[..<dot]), String(target[target.index(after: dot)...]))
    }

    /// A `Document` with registers, counters, sets and nested documents; wide values; removals
    /// and re-creations of fields; fields whose kind changes; two writes of one field with one
    /// stamp; restores (new edits that make a field as it was, as a rollback does); and the intent
    /// of every edit that adds something.
    public static let document = CRDTModel<Document>(name: "Document", initial: Document(), interferes: documentInterference) { random in
        let key = key(&random)
        let value = wideScalar(&random)
        let other = wideScalar(&random)
        let amount = Int64.random(in: -2...2, using: &random)
        let nestedKey = ["x", "y"].randomElement(using: &random) ?? "x"
        switch Int.random(in: 0..<12, using: &random) {
        case 0:
            return Operation("\(key) = \(value)", intent: Intent(target: key, kind: "register") { $0.scalar(key) == value }) { state, replica in
                let stamp = replica.stamp()
                return state.set(key, to: value, at: stamp)
            }
        case 1:
            return Operation("\(key) += \(amount)", intent: Intent(target: key, kind: "counter") { $0.counter(key) != nil }) { state, replica in
                state.increment(key, by: amount, at: replica.stamp())
            }
        case 2:
            return Operation("insert \(value) into \(key)", intent: Intent(target: key, kind: "set") { $0.set(key)?.contains(value) == true }) {
                state, replica in state.insert(value, intoSet: key, at: replica.stamp())
            }
        case 3: return Operation("remove \(value) from \(key)") { state, replica in state.remove(value, fromSet: key, at: replica.stamp()) }
        case 4: return Operation("remove field \(key)") { state, _ in state.removeField(key) }
        case 5:
            return Operation(
                "\(key).\(nestedKey) = \(value)",
                intent: Intent(target: "\(key).\(nestedKey)", kind: "register") { $0.map(key)?.scalar(nestedKey) == value }
            ) { state, replica in
                let stamp = replica.stamp()
                return state.updateMap(key, at: stamp) { $0.set(nestedKey, to: value, at: stamp) }
            }
        case 6:
            return Operation(
                "\(key).\(nestedKey) += \(amount)",
                intent: Intent(target: "\(key).\(nestedKey)", kind: "counter") { $0.map(key)?.counter(nestedKey) != nil }
            ) { state, replica in
                let stamp = replica.stamp()
                return state.updateMap(key, at: stamp) { $0.increment(nestedKey, by: amount, at: stamp) }
            }
        case 7:
            return Operation(
                "insert \(value) into \(key).\(nestedKey)",
                intent: Intent(target: "\(key).\(nestedKey)", kind: "set") { $0.map(key)?.set(nestedKey)?.contains(value) == true }
            ) { state, replica in
                let stamp = replica.stamp()
                return state.updateMap(key, at: stamp) { $0.insert(value, intoSet: nestedKey, at: stamp) }
            }
        case 8:
            // It makes `key` a nested document, whatever it removes inside.
            return Operation("remove field \(key).\(nestedKey)", intent: Intent(target: "\(key).\(nestedKey)", kind: "remove")) { state, replica in
                state.updateMap(key, at: replica.stamp()) { $0.removeField(nestedKey) }
            }
        case 9:
            // Two writes of one field in one edit: the second must win.
            return Operation(
                "\(key) = \(other) then \(value), one stamp", intent: Intent(target: key, kind: "register") { $0.scalar(key) == value }
            ) { state, replica in
                let stamp = replica.stamp()
                var delta = state.set(key, to: other, at: stamp)
                delta.merge(state.set(key, to: value, at: stamp))
                return delta
            }
        case 10:
            // A restore: the field made as it was before (here: absent) by new edits.
            return Operation("restore \(key) to absent") { state, replica in
                var target = state
                target.removeField(key)
                return state.assign(matching: target, at: replica.stamp())
            }
        default:
            // A field removed, then made again at once: the classic identity reuse.
            return Operation(
                "remove field \(key), then insert \(value)",
                intent: Intent(target: key, kind: "set") { $0.set(key)?.contains(value) == true }
            ) { state, replica in
                var delta = state.removeField(key)
                delta.merge(state.insert(value, intoSet: key, at: replica.stamp()))
                return delta
            }
        }
    }
}
