import Failure

// Sorting a million confidences with a comparison closure costs more than every metric computed
// from them; an LSD radix sort on the bit patterns does the same job in a few linear passes.

/// Rows ordered by confidence, highest first (`sortedByConfidenceDescending`). Each confidence is
/// kept as the complement of its bit pattern (ascending keys = descending confidences). When the
/// bits in which the confidences differ fit in 31 (float32 input widened to Double: about 26),
/// only those are kept, in 32-bit keys whose lowest bit is the correctness flag, and the bits
/// they share are kept once (`shared`). Else 64-bit keys: the flag rides in the key's lowest bit
/// when no confidence uses that bit, or in an array beside the keys.
public struct RowsByConfidence: RandomAccessCollection, Sendable {
    let keys: [UInt64]
    /// nil: the flag is bit 0 of the key (whose own bit 0 is then 1).
    let flags: [Bool]?
    /// The narrow form: per row ~window << 1 | flag, where window is the confidence's bits
    /// low ..< low + 31 (`narrow` true, `keys` empty).
    let narrowKeys: [UInt32]
    let narrow: Bool
    /// The bits every confidence shares outside the window, the window's first bit, and its
    /// mask (from bit 0).
    let shared: UInt64, low: Int, window: UInt64

    init(keys: [UInt64], flags: [Bool]?) {
        self.keys = keys; self.flags = flags
        narrowKeys = []; narrow = false; shared = 0; low = 0; window = 0
    }

    init(narrowKeys: [UInt32], shared: UInt64, low: Int, window: UInt64) {
        self.narrowKeys = narrowKeys; self.shared = shared; self.low = low; self.window = window
        keys = []; flags = nil; narrow = true
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { narrow ? narrowKeys.count : keys.count }

    @inline(__always)
    public subscript(i: Int) -> (c: Double, ok: Bool) {
        if narrow {
            let k = narrowKeys[i]
            return (c: Double(bitPattern: shared | (UInt64(~k >> 1) & window) << UInt64(low)), ok: k & 1 == 1)
        }
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
/// differ in at most 33 bits, 26 when they are at least 1/16 (three passes of 9 bits, on 32-bit keys).
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
    let radix = 1 << bits
    var counts = [Int](repeating: 0, count: passes * radix)
    if sorting && packed && width <= 31 {
        // The window of differing bits, complemented, above the flag: 32-bit keys, half the
        // bytes to move (and to touch for the first time) of the 64-bit ones.
        let window = UInt64(1) << UInt64(width) - 1, mask = UInt32(radix - 1)
        var keys = [UInt32](unsafeUninitializedCapacity: n) { k, count in
            adviseHugePages(UnsafeRawPointer(k.baseAddress), bytes: n * 4)
            counts.withUnsafeMutableBufferPointer { c in
                for i in 0..<n {
                    let w = UInt32(truncatingIfNeeded: ~((confidence[i] + 0.0).bitPattern >> UInt64(low)) & window)
                    let key = w << 1 | (correct[i] ? 1 : 0)
                    k[i] = key
                    for p in 0..<passes { c[p * radix + Int((key >> UInt32(1 + p * bits)) & mask)] += 1 }
                }
            }
            count = n
        }
        var noFlags: [Bool] = []
        radixPasses(&keys, &noFlags, counts: &counts, low: 1, bits: bits, passes: passes)
        return RowsByConfidence(narrowKeys: keys, shared: first & ~(window << UInt64(low)), low: low, window: window)
    }
    let mask = UInt64(radix - 1)
    // The keys, and every pass's counts, in a second read.
    var keys = [UInt64](unsafeUninitializedCapacity: n) { k, count in
        adviseHugePages(UnsafeRawPointer(k.baseAddress), bytes: n * 8)
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
    if sorting { radixPasses(&keys, &flags, counts: &counts, low: low, bits: bits, passes: passes) }
    return RowsByConfidence(keys: keys, flags: packed ? nil : flags)
}

/// The stable passes of an LSD radix sort of `keys` (and of `flags` with them, unless empty) on
/// `passes` digits of `bits` bits from bit `low`, whose counts (pass after pass) are `counts`.
func radixPasses<Key: FixedWidthInteger & UnsignedInteger>(_ keys: inout [Key], _ flags: inout [Bool], counts: inout [Int],
                                                         low: Int, bits: Int, passes: Int) {
    let n = keys.count, radix = 1 << bits, mask = Key(radix - 1), moveFlags = !flags.isEmpty
    // Every element of the second buffers is written by the first pass that runs before it is
    // read, so they are not zeroed first (8 MB of memset and page faults per million rows).
    var keys2 = [Key](unsafeUninitializedCapacity: n) { k, count in
        adviseHugePages(UnsafeRawPointer(k.baseAddress), bytes: n * MemoryLayout<Key>.stride)
        count = n
    }
    var flags2 = [Bool](unsafeUninitializedCapacity: flags.count) { _, count in count = flags.count }
    for p in 0..<passes {
        let shift = Key(low + p * bits)
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
                                if moveFlags { f2[to] = f[i] }
                            }
                        }
                    }
                }
            }
        }
        swap(&keys, &keys2)
        swap(&flags, &flags2)
    }
}
