// Conversions for the 16-bit float formats, written with bit operations so that they do
// not depend on the platform's Float16 support.

/// IEEE 754 binary16 bits to Float (exact).
@inline(__always)
public func halfToFloat(_ h: UInt16) -> Float {
    let sign = UInt32(h & 0x8000) << 16
    let exp = UInt32(h >> 10) & 0x1F
    let man = UInt32(h & 0x3FF)
    if exp == 0 {
        if man == 0 { return Float(bitPattern: sign) }
        // Subnormal: value = man * 2^-24.
        let v = Float(man) * (1.0 / 16_777_216.0)
        return sign != 0 ? -v : v
    }
    if exp == 0x1F {
        return Float(bitPattern: sign | 0x7F80_0000 | (man << 13))
    }
    return Float(bitPattern: sign | ((exp + 112) << 23) | (man << 13))
}

/// Float to IEEE 754 binary16 bits, rounding to nearest even; overflow gives infinity.
@inline(__always)
public func floatToHalf(_ f: Float) -> UInt16 {
    let x = f.bitPattern
    let sign = UInt16((x >> 16) & 0x8000)
    let exp = Int((x >> 23) & 0xFF)
    var man = x & 0x7F_FFFF
    if exp == 0xFF {  // Inf or NaN
        return sign | 0x7C00 | (man != 0 ? 0x200 | UInt16(man >> 13) : 0)
    }
    let e = exp - 127 + 15
    if e >= 0x1F { return sign | 0x7C00 }
    if e <= 0 {
        if e < -10 { return sign }
        man |= 0x80_0000
        let shift = UInt32(14 - e)
        var half = man >> shift
        let rem = man & ((1 << shift) - 1)
        let halfway = UInt32(1) << (shift - 1)
        if rem > halfway || (rem == halfway && (half & 1) == 1) { half += 1 }
        return sign | UInt16(half)
    }
    var half = UInt32(e) << 10 | (man >> 13)
    let rem = man & 0x1FFF
    if rem > 0x1000 || (rem == 0x1000 && (half & 1) == 1) { half += 1 }
    return sign | UInt16(half)
}

/// bfloat16 bits to Float (exact).
@inline(__always)
public func bfloat16ToFloat(_ b: UInt16) -> Float { Float(bitPattern: UInt32(b) << 16) }

/// Float to bfloat16 bits, rounding to nearest even; NaN stays NaN.
@inline(__always)
public func floatToBFloat16(_ f: Float) -> UInt16 {
    let x = f.bitPattern
    if f.isNaN { return UInt16(x >> 16) | 0x40 }
    let rounding = UInt32(0x7FFF) + ((x >> 16) & 1)
    return UInt16((x &+ rounding) >> 16)
}
