// The checks every program makes of the numbers it reads, vectorised: sixteen values at a time
// in integer lanes (no branch per value), a block of them at a time; a block that holds a
// suspect is searched value by value.

/// Values per block between two looks at the lanes.
private let block = 1024

/// The index of the first NaN or ±∞ in `v`, or nil.
public func firstNonFinite(_ v: [Float]) -> Int? { v.withUnsafeBufferPointer { firstNonFinite($0, bits: UInt32.self) } }

/// The index of the first NaN or ±∞ in `v`, or nil.
public func firstNonFinite(_ v: [Double]) -> Int? { v.withUnsafeBufferPointer { firstNonFinite($0, bits: UInt64.self) } }

/// `Bits`: the unsigned integer of F's width.
@inline(__always)
private func firstNonFinite<F: BinaryFloatingPoint, Bits: FixedWidthInteger & UnsignedInteger & SIMDScalar>(
    _ b: UnsafeBufferPointer<F>, bits: Bits.Type) -> Int? {
    guard let base = b.baseAddress else { return nil }
    precondition(MemoryLayout<F>.size == MemoryLayout<Bits>.size)
    // An exponent of all ones (±∞, NaN) carries into the top bit when one is added to it.
    let carry = Bits(1) << F.significandBitCount
    let exponent = ((Bits(1) << F.exponentBitCount) - 1) << F.significandBitCount
    let top = Bits(1) << (Bits.bitWidth - 1)
    let raw = UnsafeRawPointer(base), whole = b.count / 16 * 16
    var start = 0
    while start < whole {
        let end = min(start + block, whole)
        var acc = SIMD16<Bits>()
        for i in stride(from: start, to: end, by: 16) {
            let x = raw.loadUnaligned(fromByteOffset: i * MemoryLayout<Bits>.size, as: SIMD16<Bits>.self)
            acc |= (x & exponent) &+ carry
        }
        if (acc & top) != SIMD16() { break }
        start = end
    }
    for i in start..<b.count where !b[i].isFinite { return i }
    return nil
}

/// The index of the first value below zero in `v` (−0 is not), or nil.
public func firstNegative(_ v: [Float]) -> Int? {
    v.withUnsafeBufferPointer { b in
        guard let base = b.baseAddress else { return nil }
        let raw = UnsafeRawPointer(base), whole = b.count / 16 * 16
        var start = 0
        while start < whole {
            let end = min(start + block, whole)
            // The sign bits (of −0 too: a block with one is searched, and −0 is passed over).
            var acc = SIMD16<UInt32>()
            for i in stride(from: start, to: end, by: 16) {
                acc |= raw.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<UInt32>.self)
            }
            if (acc & 0x8000_0000) != SIMD16() {
                for i in start..<end where b[i] < 0 { return i }
            }
            start = end
        }
        for i in start..<b.count where b[i] < 0 { return i }
        return nil
    }
}
