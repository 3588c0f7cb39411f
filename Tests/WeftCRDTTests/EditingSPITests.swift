import Testing
@_spi(Editing) import WeftCRDT

/// The delta-free mutators the replica's write path uses leave exactly the state the public,
/// delta-returning ones do.
@Suite("Delta-free mutators")
struct EditingSPITests {
    @Test func assignAndAddMatchSetAndIncrement() {
        var random = SplitMix64(seed: 99)
        for _ in 0..<200 {
            var withDeltas = Document()
            var without = Document()
            // Another replica's edits, merged into both now and then: its dots advance, so each
            // merge adds a version concurrent with the one a field holds.
            var concurrent = Document()
            for step in 0..<Int.random(in: 1...30, using: &random) {
                let replica = ReplicaID(high: 0, low: UInt64.random(in: 1...3, using: &random))
                let stamp = HLCTimestamp(wallMilliseconds: UInt64(step + 1), counter: 0, replica: replica)
                let field = "f\(Int.random(in: 0..<4, using: &random))"
                if Bool.random(using: &random) {
                    let value = Scalar.int(Int64.random(in: 0...5, using: &random))
                    withDeltas.set(field, to: value, at: stamp)
                    without.assign(field, to: value, at: stamp)
                } else {
                    let amount = Int64.random(in: -3...3, using: &random)
                    withDeltas.increment(field, by: amount, at: stamp)
                    without.add(amount, toCounter: field, at: stamp)
                }
                if step % 5 == 4 {
                    // The field now holds two versions, which the next edit of it joins.
                    let other = HLCTimestamp(wallMilliseconds: UInt64(step + 1), counter: 1, replica: ReplicaID(high: 1, low: 9))
                    concurrent.set(field, to: .int(Int64(step)), at: other)
                    withDeltas.merge(concurrent)
                    without.merge(concurrent)
                }
                #expect(without == withDeltas)
                #expect(without.encoded() == withDeltas.encoded())
            }
        }
    }
}
