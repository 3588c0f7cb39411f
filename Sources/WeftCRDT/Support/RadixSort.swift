/// Sorts `keys`, whose values need at most `bits` bits, by least-significant-digit radix sort
/// with 11-bit digits: the encoders pack a sort key and a position into one integer each and
/// sort those, instead of comparing (and moving) whole rows.
/// - Complexity: O(*n* × ⌈`bits` / 11⌉).
@usableFromInline
func radixSortPacked(_ keys: inout [UInt64], bits: Int) {
    let digitBits = 11
    let buckets = 1 << digitBits
    var scratch = [UInt64](repeating: 0, count: keys.count)
    var counts = [Int](repeating: 0, count: buckets)
    var shift = 0
    while shift < bits {
        for bucket in 0..<buckets { counts[bucket] = 0 }
        for key in keys { counts[Int(truncatingIfNeeded: (key >> UInt64(shift)) & UInt64(buckets - 1))] += 1 }
        var total = 0
        for bucket in 0..<buckets {
            let count = counts[bucket]
            counts[bucket] = total
            total += count
        }
        for key in keys {
            let bucket = Int(truncatingIfNeeded: (key >> UInt64(shift)) & UInt64(buckets - 1))
            scratch[counts[bucket]] = key
            counts[bucket] += 1
        }
        swap(&keys, &scratch)
        shift += digitBits
    }
}

/// The bits `value` needs (0 for 0).
@usableFromInline
func bitWidth(of value: UInt64) -> Int { 64 - value.leadingZeroBitCount }
