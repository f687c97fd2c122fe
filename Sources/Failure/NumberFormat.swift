#if canImport(Glibc)
import Glibc
#endif

/// printf-style formatting of numbers, `cFormat("%.4f", x)`, for the libraries and the programs
/// alike. FoundationEssentials has no String(format:), and full Foundation must not be linked:
/// its protocol conformances and ICU data slow every program's start.
public func cFormat(_ format: String, _ args: CVarArg...) -> String {
    var buffer = [CChar](repeating: 0, count: 128)
    let n = withVaList(args) { vsnprintf(&buffer, buffer.count, format, $0) }
    if n >= buffer.count {
        buffer = [CChar](repeating: 0, count: Int(n) + 1)
        _ = withVaList(args) { vsnprintf(&buffer, buffer.count, format, $0) }
    }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
