// The byte-shuffle filter (as in Blosc and HDF5): the k-th bytes of all elements are
// stored together. Floats of similar magnitude share their sign/exponent bytes, which zstd
// then compresses well; the mantissa bytes stay as noisy as before.

/// Writes the shuffled bytes of `src` (elements of `size` bytes) to `dst` (same length).
public func byteShuffle(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer, size: Int) {
    precondition(src.count == dst.count && src.count % size == 0)
    let n = src.count / size
    guard n > 0 else { return }
    let s = src.baseAddress!, d = dst.baseAddress!
    var i = 0
    switch size {
    case 1:
        d.copyMemory(from: s, byteCount: n)
        return
    case 4:
        while i + 16 <= n {
            let v = s.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<UInt32>.self)
            for b in 0..<4 {
                let plane = SIMD16<UInt8>(truncatingIfNeeded: v &>> UInt32(8 * b))
                d.storeBytes(of: plane, toByteOffset: b * n + i, as: SIMD16<UInt8>.self)
            }
            i += 16
        }
    case 2:
        while i + 16 <= n {
            let v = s.loadUnaligned(fromByteOffset: i * 2, as: SIMD16<UInt16>.self)
            d.storeBytes(of: SIMD16<UInt8>(truncatingIfNeeded: v), toByteOffset: i, as: SIMD16<UInt8>.self)
            d.storeBytes(of: SIMD16<UInt8>(truncatingIfNeeded: v &>> 8), toByteOffset: n + i, as: SIMD16<UInt8>.self)
            i += 16
        }
    case 8:
        while i + 8 <= n {
            let v = s.loadUnaligned(fromByteOffset: i * 8, as: SIMD8<UInt64>.self)
            for b in 0..<8 {
                let plane = SIMD8<UInt8>(truncatingIfNeeded: v &>> UInt64(8 * b))
                d.storeBytes(of: plane, toByteOffset: b * n + i, as: SIMD8<UInt8>.self)
            }
            i += 8
        }
    default:
        break
    }
    let sb = s.assumingMemoryBound(to: UInt8.self), db = d.assumingMemoryBound(to: UInt8.self)
    while i < n {
        for b in 0..<size { db[b * n + i] = sb[i * size + b] }
        i += 1
    }
}

/// Inverse of `byteShuffle`.
public func byteUnshuffle(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer, size: Int) {
    precondition(src.count == dst.count && src.count % size == 0)
    let n = src.count / size
    guard n > 0 else { return }
    let s = src.baseAddress!, d = dst.baseAddress!
    var i = 0
    switch size {
    case 1:
        d.copyMemory(from: s, byteCount: n)
        return
    case 4:
        while i + 16 <= n {
            var v = SIMD16<UInt32>(truncatingIfNeeded: s.loadUnaligned(fromByteOffset: i, as: SIMD16<UInt8>.self))
            v |= SIMD16<UInt32>(truncatingIfNeeded: s.loadUnaligned(fromByteOffset: n + i, as: SIMD16<UInt8>.self)) &<< 8
            v |= SIMD16<UInt32>(truncatingIfNeeded: s.loadUnaligned(fromByteOffset: 2 * n + i, as: SIMD16<UInt8>.self)) &<< 16
            v |= SIMD16<UInt32>(truncatingIfNeeded: s.loadUnaligned(fromByteOffset: 3 * n + i, as: SIMD16<UInt8>.self)) &<< 24
            d.storeBytes(of: v, toByteOffset: i * 4, as: SIMD16<UInt32>.self)
            i += 16
        }
    case 2:
        while i + 16 <= n {
            var v = SIMD16<UInt16>(truncatingIfNeeded: s.loadUnaligned(fromByteOffset: i, as: SIMD16<UInt8>.self))
            v |= SIMD16<UInt16>(truncatingIfNeeded: s.loadUnaligned(fromByteOffset: n + i, as: SIMD16<UInt8>.self)) &<< 8
            d.storeBytes(of: v, toByteOffset: i * 2, as: SIMD16<UInt16>.self)
            i += 16
        }
    case 8:
        while i + 8 <= n {
            var v = SIMD8<UInt64>(repeating: 0)
            for b in 0..<8 {
                v |= SIMD8<UInt64>(truncatingIfNeeded: s.loadUnaligned(fromByteOffset: b * n + i, as: SIMD8<UInt8>.self)) &<< UInt64(8 * b)
            }
            d.storeBytes(of: v, toByteOffset: i * 8, as: SIMD8<UInt64>.self)
            i += 8
        }
    default:
        break
    }
    let sb = s.assumingMemoryBound(to: UInt8.self), db = d.assumingMemoryBound(to: UInt8.self)
    while i < n {
        for b in 0..<size { db[i * size + b] = sb[b * n + i] }
        i += 1
    }
}
