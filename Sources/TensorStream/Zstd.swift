import CZstd

@inline(__always)
func zstdCheck(_ code: Int, _ what: String) throws -> Int {
    if ZSTD_isError(code) != 0 {
        throw StreamError.invalid("\(what): zstd: \(String(cString: ZSTD_getErrorName(code)))")
    }
    return code
}

/// The zstd library version, e.g. "1.5.4".
public var zstdVersion: String { String(cString: ZSTD_versionString()) }
