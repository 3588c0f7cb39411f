// Robustness: decode many seeded random mutations of valid encodings of every type.
// Nothing may trap or hang, and any mutated input that decodes must re-encode to exactly the
// same bytes (the decoder accepts only canonical encodings).

import Foundation
import Testing
import WeftCRDT

struct CodecMutator {
    static let interesting: [UInt8] = [0x00, 0x01, 0x02, 0x03, 0x7f, 0x80, 0x81, 0xfe, 0xff]

    var rng: CodecRNG

    mutating func byte() -> UInt8 {
        rng.chance(50) ? rng.pick(Self.interesting) : UInt8(truncatingIfNeeded: rng.next())
    }

    /// One to three random edits; `donor` supplies chunks for splices.
    mutating func mutate(_ input: [UInt8], donor: [UInt8]) -> [UInt8] {
        var bytes = input
        let rounds = rng.chance(70) ? 1 : 2 + rng.below(2)
        for _ in 0..<rounds {
            // Mostly leave the envelope alone: its errors are trivial.
            let low = bytes.count > 2 && rng.chance(95) ? 2 : 0
            func position(_ inclusiveEnd: Bool = false) -> Int {
                let upper = bytes.count + (inclusiveEnd ? 1 : 0)
                return upper > low ? low + rng.below(upper - low) : min(low, bytes.count)
            }
            switch rng.below(10) {
            case 0, 1:  // bit flip
                if !bytes.isEmpty { bytes[position()] ^= 1 << UInt8(rng.below(8)) }
            case 2:  // overwrite a byte
                if !bytes.isEmpty { bytes[position()] = byte() }
            case 3:  // nudge a byte (shifts counts, counters, tags by one)
                if !bytes.isEmpty {
                    let at = position()
                    bytes[at] = rng.chance(50) ? bytes[at] &+ 1 : bytes[at] &- 1
                }
            case 4:  // insert bytes
                let at = position(true)
                bytes.insert(contentsOf: (0..<(1 + rng.below(3))).map { _ in byte() }, at: at)
            case 5:  // delete a short range
                if !bytes.isEmpty {
                    let at = position()
                    bytes.removeSubrange(at..<min(bytes.count, at + 1 + rng.below(rng.chance(70) ? 1 : 20)))
                }
            case 6:  // truncate
                bytes.removeSubrange(position(true)...)
            case 7, 8:  // splice a chunk of the donor in, replacing or inserting
                guard !donor.isEmpty else { break }
                let from = rng.below(donor.count)
                let chunk = donor[from..<min(donor.count, from + 1 + rng.below(24))]
                let at = position(true)
                let replaced = rng.chance(50) ? min(bytes.count - at, rng.below(chunk.count + 1)) : 0
                bytes.replaceSubrange(at..<at + replaced, with: chunk)
            default:  // duplicate a chunk of the input itself
                guard !bytes.isEmpty else { break }
                let from = position()
                let chunk = Array(bytes[from..<min(bytes.count, from + 1 + rng.below(20))])
                bytes.insert(contentsOf: chunk, at: position(true))
            }
        }
        return bytes
    }
}

@Suite("Codec robustness")
struct CodecRobustnessTests {
    /// 200,000 by default; set `WEFT_CODEC_MUTATIONS` for a longer (or shorter) run with the same seeds.
    static let mutationCount =
        ProcessInfo.processInfo.environment["WEFT_CODEC_MUTATIONS"].flatMap { Int($0) } ?? 200_000

    @Test("mutated encodings never trap or hang, and whatever decodes is canonical", .timeLimit(.minutes(2)))
    func mutations() {
        // The seed corpus: golden values plus random states of every type.
        var rng = CodecRNG(seed: 0x5EED_C0DE_C0DE_5EED)
        var corpus = [String: [[UInt8]]]()
        for subject in CodecRegistry.subjects {
            var items = CodecGoldenValues.all.filter { $0.subject == subject.name }.map { $0.encode() }
            for _ in 0..<40 { items.append(CodecGen.encoding(of: subject.name, &rng)) }
            corpus[subject.name] = items
        }
        let everything = corpus.values.flatMap { $0 }

        let seed =
            ProcessInfo.processInfo.environment["WEFT_CODEC_SEED"].flatMap { UInt64($0) } ?? 0xF022_F022
        var mutator = CodecMutator(rng: CodecRNG(seed: seed))
        var accepted = 0
        var kinds = [String: Int]()
        var unchanged = 0
        var nonCanonical: [String] = []
        var slowest: (Duration, String) = (.zero, "")
        let clock = ContinuousClock()
        let started = clock.now

        for index in 0..<Self.mutationCount {
            let subject = CodecRegistry.subjects[index % CodecRegistry.subjects.count]
            let seeds = corpus[subject.name]!
            let original = seeds[mutator.rng.below(seeds.count)]
            // Donors: mostly the same type (structurally plausible splices), sometimes any type.
            let donor =
                mutator.rng.chance(70)
                ? seeds[mutator.rng.below(seeds.count)] : everything[mutator.rng.below(everything.count)]
            let input = mutator.mutate(original, donor: donor)
            if input == original { unchanged += 1 }

            let before = clock.now
            do {
                let reencoded = try subject.reencode(input, .default)
                accepted += 1
                if input.first == 1 && BinaryFormat.version == 2 {
                    // A version 1 input is read and written as version 2: the same body for
                    // every type but Document (converted), and the result is canonical.
                    let again = try? subject.reencode(reencoded, .default)
                    let sameBody = subject.name == "Document" || Array(reencoded.dropFirst()) == Array(input.dropFirst())
                    if again != reencoded || !sameBody || reencoded.first != 2 {
                        nonCanonical.append("\(subject.name): version 1 input \(CodecHex.encode(input)) re-encodes to \(CodecHex.encode(reencoded))")
                    }
                } else if reencoded != input {
                    let report =
                        "\(subject.name): \(CodecHex.encode(input)) re-encodes to \(CodecHex.encode(reencoded))"
                    nonCanonical.append(report)
                }
            } catch {
                kinds[error.kind, default: 0] += 1
                if error.offset < 0 || error.offset > input.count {
                    nonCanonical.append(
                        "\(subject.name): error offset \(error.offset) outside input \(CodecHex.encode(input))"
                    )
                }
            }
            let took = before.duration(to: clock.now)
            if took > slowest.0 { slowest = (took, "\(subject.name) \(input.count) bytes") }
        }
        let elapsed = started.duration(to: clock.now)

        print(
            "CodecRobustness: \(Self.mutationCount) mutations in \(elapsed); accepted \(accepted) (\(unchanged) unchanged), "
                + "rejected by kind \(kinds.sorted { $0.key < $1.key }); slowest decode \(slowest.0) (\(slowest.1))")

        #expect(
            nonCanonical.isEmpty,
            "\(nonCanonical.count) accepted non-canonical inputs, e.g. \(nonCanonical.prefix(3))")
        // The mutations must exercise both paths and most error kinds.
        #expect(accepted > Self.mutationCount / 100)
        #expect(kinds.count >= 9, "error kinds seen: \(kinds.keys.sorted())")
        #expect(slowest.0 < .seconds(1), "slowest single decode: \(slowest)")
    }
}
