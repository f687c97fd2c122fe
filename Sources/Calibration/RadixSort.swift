// Sorting a million confidences with a comparison closure costs more than every metric computed
// from them; an LSD radix sort on the bit patterns does the same job in a few linear passes.

/// Rows ordered by confidence, highest first (`sortedByConfidenceDescending`). Each confidence is
/// kept as the complement of its bit pattern (ascending keys = descending confidences); the
/// correctness flag rides in the key's lowest bit when no confidence uses that bit (float32 input
/// widened to Double leaves 29 bits free), else in an array beside the keys.
public struct RowsByConfidence: RandomAccessCollection, Sendable {
    let keys: [UInt64]
    /// nil: the flag is bit 0 of the key (whose own bit 0 is then 1).
    let flags: [Bool]?

    public var startIndex: Int { 0 }
    public var endIndex: Int { keys.count }

    @inline(__always)
    public subscript(i: Int) -> (c: Double, ok: Bool) {
        let k = keys[i]
        if let flags { return (c: Double(bitPattern: ~k), ok: flags[i]) }
        return (c: Double(bitPattern: ~(k | 1)), ok: k & 1 == 1)
    }
}

/// Rows ordered by confidence, highest first, ties in their original order: the same result as
/// a stable `sort { $0.c > $1.c }` (the tests compare them), in a few linear passes. The
/// confidences must be in [0, ∞) (no NaN): their bit patterns then order like their values
/// (−0 counts as +0). Only the bits that differ between keys are sorted on, in digits of at
/// most 11 bits, all counted in one pass: float32 confidences in (0, 1] widened to Double
/// differ in 33 bits, three passes.
public func sortedByConfidenceDescending(_ confidence: [Double], _ correct: [Bool]) -> RowsByConfidence {
    precondition(confidence.count == correct.count)
    let n = confidence.count
    // One read of the confidences for the bits any of them uses (a free bit 0 carries the flag)
    // and the bits in which some differs from the first: key_i ^ key_0 is b_i ^ b_0 (keys are
    // the complemented bit patterns b), the flag bit left out.
    var usedBits: UInt64 = 0, differ: UInt64 = 0
    let first = n > 0 ? (confidence[0] + 0.0).bitPattern : 0
    for c in confidence { let b = (c + 0.0).bitPattern; usedBits |= b; differ |= b ^ first }
    let packed = usedBits & 1 == 0
    if packed { differ &= ~1 }
    let sorting = n > 1 && differ != 0
    let low = differ.trailingZeroBitCount, width = sorting ? 64 - differ.leadingZeroBitCount - low : 0
    let passes = (width + 10) / 11, bits = passes > 0 ? (width + passes - 1) / passes : 0
    let radix = 1 << bits, mask = UInt64(radix - 1)
    // The keys, and every pass's counts, in a second read.
    var counts = [Int](repeating: 0, count: passes * radix)
    var keys = [UInt64](unsafeUninitializedCapacity: n) { k, count in
        counts.withUnsafeMutableBufferPointer { c in
            for i in 0..<n {
                let key = ~(confidence[i] + 0.0).bitPattern
                let kept = packed ? (key & ~1) | (correct[i] ? 1 : 0) : key
                k[i] = kept
                for p in 0..<passes { c[p * radix + Int((kept >> UInt64(low + p * bits)) & mask)] += 1 }
            }
        }
        count = n
    }
    var flags = packed ? [] : correct
    func result() -> RowsByConfidence { RowsByConfidence(keys: keys, flags: packed ? nil : flags) }
    guard sorting else { return result() }
    // Every element of the second buffers is written by the first pass that runs before it is
    // read, so they are not zeroed first (8 MB of memset and page faults per million rows).
    var keys2 = [UInt64](unsafeUninitializedCapacity: n) { _, count in count = n }
    var flags2 = [Bool](unsafeUninitializedCapacity: flags.count) { _, count in count = flags.count }
    for p in 0..<passes {
        let shift = UInt64(low + p * bits)
        let slice = p * radix ..< (p + 1) * radix
        // A digit every key shares leaves the order as it is.
        if counts[slice].contains(n) { continue }
        var total = 0
        for i in slice { let c = counts[i]; counts[i] = total; total += c }
        counts.withUnsafeMutableBufferPointer { c in
            let at = c.baseAddress! + p * radix
            keys.withUnsafeBufferPointer { k in
                keys2.withUnsafeMutableBufferPointer { k2 in
                    flags.withUnsafeBufferPointer { f in
                        flags2.withUnsafeMutableBufferPointer { f2 in
                            for i in 0..<n {
                                let d = Int((k[i] >> shift) & mask)
                                let to = at[d]
                                at[d] = to + 1
                                k2[to] = k[i]
                                if !packed { f2[to] = f[i] }
                            }
                        }
                    }
                }
            }
        }
        swap(&keys, &keys2)
        swap(&flags, &flags2)
    }
    return result()
}
