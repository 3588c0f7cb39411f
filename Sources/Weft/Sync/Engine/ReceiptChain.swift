import WeftWire

/// The links a replica's pushes left on the server in the open session, checked for a push
/// the server answered and then forgot (it was restored from a backup between two pushes on
/// the wire at once, which the high-water mark cannot show: see ``WeftWire/PushReceipt``).
///
/// The engine resets the chain at each hello with the receipt the server holds, adds the link
/// of every push answered, and checks the chain when no push is on the wire. Links arrive in
/// any order (pushes overtake each other); the server applied them in the order their
/// receipts link.
///
/// Laws, for the links of pushes a server applied without being restored, in any order:
/// ``check()`` answers `true`, and afterwards ``head`` is the server's current receipt (when
/// the chain began at a known head, or formed one unbroken chain). Two links over one
/// predecessor (the server went back to a receipt it had moved on from), or a link that does
/// not continue a known head, make ``check()`` answer `false`.
///
/// A push whose outcome is unknown (its answer was lost; it may be applied) leaves a link the
/// chain never sees, so ``forget()`` drops the head: until a check finds the links forming one
/// chain again, only repeated predecessors count. That keeps lost answers from raising false
/// alarms; a restore that coincides with a lost answer can then go unseen.
///
/// - Complexity: ``add(_:)`` O(1); ``check()`` O(*n*) in the links added since the last check.
struct ReceiptChain: Sendable {
    /// The receipt the server held after the last push checked; `nil` when unknown.
    private(set) var head: UInt64?
    /// The links added since the last check: previous → current.
    private var links: [UInt64: UInt64] = [:]
    /// Whether two links named the same predecessor with different successors.
    private var forked = false

    /// A chain starting at the hello's receipt (`nil`: the server does not say).
    init(head: UInt64? = nil) {
        self.head = head
    }

    /// Records the link of an answered push. The same link twice (one push answered twice) is
    /// one link. A push that changed nothing on the server answers (current, current): it may
    /// be a push applied before whose answer was lost, and sent again after another push moved
    /// the receipt, so its own link is unknown and the chain forgets its head.
    mutating func add(_ receipt: PushReceipt) {
        guard receipt.previous != receipt.current else {
            forget()
            return
        }
        if let earlier = links.updateValue(receipt.current, forKey: receipt.previous), earlier != receipt.current {
            forked = true
        }
    }

    /// Forgets the head after a push whose outcome is unknown, keeping the links not checked.
    mutating func forget() {
        head = nil
    }

    /// Checks the links added since the last check; `false` means the server forgot a push it
    /// had answered. Afterwards the links are consumed, and ``head`` is the end of the chain if
    /// it is known.
    mutating func check() -> Bool {
        defer {
            links.removeAll(keepingCapacity: true)
            forked = false
        }
        if forked { return false }
        guard !links.isEmpty else { return true }
        if let start = head {
            let end = walk(from: start)
            guard links.isEmpty else { return false }
            head = end
            return true
        }
        // No known head: the links must not go round in a circle, and if they form one chain,
        // its end is the head.
        let successors = Set(links.values)
        let starts = links.keys.filter { !successors.contains($0) }
        guard !starts.isEmpty else { return false }
        if starts.count == 1 {
            head = walk(from: starts[0])
            return links.isEmpty
        }
        return true
    }

    /// Follows the links from `start`, consuming them; answers the last receipt reached.
    private mutating func walk(from start: UInt64) -> UInt64 {
        var at = start
        while let next = links.removeValue(forKey: at) { at = next }
        return at
    }
}
