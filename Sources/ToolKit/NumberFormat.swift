#if canImport(Glibc)
import Glibc
#endif

/// printf-style formatting of numbers without Foundation (whose ICU data would add tens of
/// milliseconds to every program's start): `cFormat("%.4f", x)`.
public func cFormat(_ format: String, _ args: CVarArg...) -> String {
    var buffer = [CChar](repeating: 0, count: 128)
    let n = withVaList(args) { vsnprintf(&buffer, buffer.count, format, $0) }
    if n >= buffer.count {
        buffer = [CChar](repeating: 0, count: Int(n) + 1)
        _ = withVaList(args) { vsnprintf(&buffer, buffer.count, format, $0) }
    }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
