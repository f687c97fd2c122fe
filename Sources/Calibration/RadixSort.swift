// Sorting a million confidences with a comparison closure costs more than every metric computed
// from them; an LSD radix sort on the bit patterns does the same job in a few linear passes.

/// Rows ordered by confidence, highest first, ties in their original order: the same result as
/// a stable `sort { $0.c > $1.c }` (the tests compare them), in O(N) passes of 11 bits. The
/// confidences must be in [0, ∞) (no NaN): their bit patterns then order like their values
/// (−0 counts as +0). Passes over digits that every key shares are skipped, so float32 input
/// widened to Double (29 zero bits) costs three passes, not six.
public func sortedByConfidenceDescending(_ confidence: [Double], _ correct: [Bool]) -> [(c: Double, ok: Bool)] {
    precondition(confidence.count == correct.count)
    let n = confidence.count
    guard n > 1 else { return zip(confidence, correct).map { (c: $0, ok: $1) } }
    // Descending order = ascending order of the complemented bit patterns.
    var keys = confidence.map { ~($0 + 0.0).bitPattern }
    var flags = correct
    var keys2 = [UInt64](repeating: 0, count: n)
    var flags2 = [Bool](repeating: false, count: n)
    let bits = 11, radix = 1 << bits
    var counts = [Int](repeating: 0, count: radix)
    var shift: UInt64 = 0
    while shift < 64 {
        counts.withUnsafeMutableBufferPointer { c in
            for i in 0..<radix { c[i] = 0 }
            keys.withUnsafeBufferPointer { k in
                for key in k { c[Int((key >> shift) & UInt64(radix - 1))] += 1 }
            }
        }
        // Skip a digit every key shares: the pass would leave the order as it is.
        if counts.contains(n) { shift += UInt64(bits); continue }
        var total = 0
        for i in 0..<radix { let c = counts[i]; counts[i] = total; total += c }
        keys.withUnsafeBufferPointer { k in
            flags.withUnsafeBufferPointer { f in
                keys2.withUnsafeMutableBufferPointer { k2 in
                    flags2.withUnsafeMutableBufferPointer { f2 in
                        counts.withUnsafeMutableBufferPointer { c in
                            for i in 0..<n {
                                let d = Int((k[i] >> shift) & UInt64(radix - 1))
                                let to = c[d]
                                c[d] = to + 1
                                k2[to] = k[i]
                                f2[to] = f[i]
                            }
                        }
                    }
                }
            }
        }
        swap(&keys, &keys2)
        swap(&flags, &flags2)
        shift += UInt64(bits)
    }
    var out = [(c: Double, ok: Bool)]()
    out.reserveCapacity(n)
    for i in 0..<n { out.append((c: Double(bitPattern: ~keys[i]), ok: flags[i])) }
    return out
}
