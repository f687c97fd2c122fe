import CZstd

@inline(__always)
func zstdCheck(_ code: Int, _ what: String) throws -> Int {
    if ZSTD_isError(code) != 0 {
        throw StreamError.invalid("\(what): zstd: \(String(cString: ZSTD_getErrorName(code)))")
    }
    return code
}

/// One record as one zstd frame, with checksum: for tests that forge streams by hand.
func encodeRecord(tag: UInt32, body: [UInt8], level: Int32 = 3) -> [UInt8] {
    var w = ByteWriter()
    w.u32(tag); w.u32(UInt32(body.count))
    return encodeFrame(w.bytes + body, level: level)
}

/// Any bytes as one zstd frame with checksum.
func encodeFrame(_ record: [UInt8], level: Int32 = 3) -> [UInt8] {
    let cctx = ZSTD_createCCtx()!
    defer { ZSTD_freeCCtx(cctx) }
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level)
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1)
    var out = [UInt8](repeating: 0, count: ZSTD_compressBound(record.count))
    let n = record.withUnsafeBytes { src in
        out.withUnsafeMutableBytes { dst in
            ZSTD_compress2(cctx, dst.baseAddress, dst.count, src.baseAddress, src.count)
        }
    }
    return Array(out[0..<n])
}
