import Testing
import WeftWire

@testable import Weft

/// The chain of receipts a replica's pushes leave on the server (`ReceiptChain`): what shows a
/// push the server answered and then forgot, and what must never raise a false alarm.
@Suite("The receipt chain")
struct ReceiptChainTests {
    func link(_ previous: UInt64, _ current: UInt64) -> PushReceipt { PushReceipt(previous: previous, current: current) }

    @Test func linksInAnyOrderFormTheChain() {
        var chain = ReceiptChain(head: 1)
        chain.add(link(3, 4))
        chain.add(link(1, 2))
        chain.add(link(2, 3))
        let ok1 = chain.check()
        #expect(ok1)
        #expect(chain.head == 4)
        chain.add(link(4, 5))
        chain.add(link(4, 5))  // one push answered twice
        let ok2 = chain.check()
        #expect(ok2)
        #expect(chain.head == 5)
        let ok3 = chain.check()
        #expect(ok3, "nothing new")
    }

    @Test func twoPushesOverOnePredecessorMeanAForgottenPush() {
        // The restore between two pipelined pushes: the first moved 1 to 2 and was answered,
        // the store went back to 1, the second moved 1 to 3.
        var chain = ReceiptChain(head: 1)
        chain.add(link(1, 2))
        chain.add(link(1, 3))
        let ok4 = chain.check()
        #expect(!ok4)
        // Without a known head too.
        var unknown = ReceiptChain()
        unknown.add(link(1, 2))
        unknown.add(link(1, 3))
        let ok5 = unknown.check()
        #expect(!ok5)
    }

    @Test func aLinkThatDoesNotContinueTheHeadMeansAForgottenPush() {
        // A store restored to a backup older than the session's last answered push.
        var chain = ReceiptChain(head: 1)
        chain.add(link(1, 2))
        let ok6 = chain.check()
        #expect(ok6)
        chain.add(link(1, 3))
        let ok7 = chain.check()
        #expect(!ok7, "a predecessor checked before")
        var other = ReceiptChain(head: 1)
        other.add(link(7, 8))
        let ok8 = other.check()
        #expect(!ok8)
    }

    @Test func aPushThatChangedNothingForgetsTheHead() {
        // Sent again after its answer was lost, with another push applied in between: the
        // server answers (current, current), and the first application's link stays unknown.
        var chain = ReceiptChain(head: 1)
        chain.add(link(2, 3))
        chain.add(link(3, 3))
        let passed = chain.check()
        #expect(passed, "1 → 2 is the unknown link")
        #expect(chain.head == 3)
    }

    @Test func aCircleIsNoChain() {
        var chain = ReceiptChain()
        chain.add(link(1, 2))
        chain.add(link(2, 1))
        let ok9 = chain.check()
        #expect(!ok9)
    }

    @Test func aLostAnswerRaisesNoAlarm() {
        // Push 2 → 3 was applied but its answer was lost: the chain forgets its head.
        var chain = ReceiptChain(head: 1)
        chain.add(link(1, 2))
        chain.forget()
        chain.add(link(3, 4))
        let ok10 = chain.check()
        #expect(ok10)
        #expect(chain.head == nil, "two pieces: the end is not known")
        chain.add(link(4, 5))
        chain.add(link(5, 6))
        let ok11 = chain.check()
        #expect(ok11)
        #expect(chain.head == 6, "one piece again: its end is the head")
        chain.add(link(9, 10))
        let ok12 = chain.check()
        #expect(!ok12, "known again, so a link that does not continue it counts")
    }

    /// A model of a server and a replica's rounds of pipelined pushes: the server applies a
    /// round's pushes in a random order, answers may be lost, and the store may be restored to
    /// a backup taken earlier in the round. Without a restore the chain never raises an alarm
    /// (and knows the server's receipt when no answer was lost); a restore that loses an
    /// answered push, with every answer of the round received and a push applied after the
    /// restore, is always noticed.
    @Test(arguments: [1 as UInt64, 2, 3, 4])
    func modelOfRounds(seed: UInt64) {
        var random = SeededRandom(seed: seed)
        var noticed = 0
        var restoresThatMustBeNoticed = 0
        for _ in 0..<500 {
            var server: UInt64 = UInt64.random(in: 0...3, using: &random) == 0 ? 0 : PushReceipt.draw()
            var chain = ReceiptChain(head: server)
            var pushesApplied: [(receipt: UInt64, answered: Bool)] = []
            var states: [UInt64] = [server]  // the receipt after each push of the round
            let pushes = Int.random(in: 1...6, using: &random)
            let restoreAfter = Int.random(in: 0...5, using: &random) == 0 ? Int.random(in: 1...pushes, using: &random) : nil
            var restoredTo: Int?
            var lostAnswers = 0
            for index in 0..<pushes {
                if let after = restoreAfter, index == after, index > 0 {
                    let backup = Int.random(in: 0..<index, using: &random)
                    server = states[backup]
                    states = Array(states[...backup])
                    restoredTo = backup
                }
                let receipt = PushReceipt.draw()
                let answer = link(server, receipt)
                server = receipt
                states.append(receipt)
                let answered = Int.random(in: 0...7, using: &random) != 0
                pushesApplied.append((receipt, answered))
                if answered { chain.add(answer) } else { lostAnswers += 1 }
            }
            // The engine takes answers in the order it sent the pushes, and a failure makes it
            // forget; the links themselves were added in the server's order above, which
            // `ReceiptChain` must not depend on (the first test covers that).
            if lostAnswers > 0 { chain.forget() }
            let passed = chain.check()
            if let backup = restoredTo, let after = restoreAfter {
                let lost = pushesApplied[backup..<after]
                let afterRestore = pushesApplied[after...]
                if lostAnswers == 0 && lost.contains(where: \.answered) && !afterRestore.isEmpty {
                    restoresThatMustBeNoticed += 1
                    #expect(!passed, "a restore lost an answered push and every answer arrived")
                }
                if !passed { noticed += 1 }
            } else {
                #expect(passed, "no restore, no alarm")
                if lostAnswers == 0 { #expect(chain.head == server) }
            }
        }
        #expect(restoresThatMustBeNoticed > 10, "the model exercised the case")
        #expect(noticed >= restoresThatMustBeNoticed)
    }
}
