import TensorStream

/// Why a file in another format could not be read or written.
public struct FormatError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ d: String) { description = d }
}

/// The header of a .npy file (format versions 1.0, 2.0 and 3.0).
public struct NpyHeader: Equatable, Sendable {
    public var dtype: DType
    public var bigEndian: Bool
    public var fortranOrder: Bool
    public var shape: [Int]
    /// Bytes before the data.
    public var dataOffset: Int

    public var count: Int { shape.reduce(1, *) }
    public var dataBytes: Int { count * dtype.size }
}

public enum Npy {
    static let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)

    /// The numpy `descr` of a dtype, little-endian ("<f4", "|u1", ...).
    public static func descr(_ d: DType) throws -> String {
        switch d {
        case .f16: return "<f2"
        case .f32: return "<f4"
        case .f64: return "<f8"
        case .i8: return "|i1"
        case .i16: return "<i2"
        case .i32: return "<i4"
        case .i64: return "<i8"
        case .u8: return "|u1"
        case .u16: return "<u2"
        case .u32: return "<u4"
        case .u64: return "<u8"
        case .bool: return "|b1"
        case .bf16: throw FormatError("numpy has no bfloat16: convert first (tensor from ... --dtype f32)")
        }
    }

    /// Parses a descr such as "<f4", ">i8", "|b1", "float32".
    static func dtype(fromDescr s: String) throws -> (DType, Bool) {
        var body = Substring(s)
        var big = false
        if let first = body.first, "<>|=".contains(first) {
            big = first == ">"
            body = body.dropFirst()
        }
        let map: [String: DType] = ["f2": .f16, "f4": .f32, "f8": .f64, "i1": .i8, "i2": .i16, "i4": .i32,
                                    "i8": .i64, "u1": .u8, "u2": .u16, "u4": .u32, "u8": .u64, "b1": .bool]
        guard let d = map[String(body)] else {
            throw FormatError("unsupported numpy dtype '\(s)' (supported: float16/32/64, int8-64, uint8-64, bool)")
        }
        if d.size == 1 { big = false }
        return (d, big)
    }

    /// Parses the magic and header at the start of `bytes` (which needs only hold the header).
    public static func parseHeader(_ bytes: [UInt8]) throws -> NpyHeader {
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else {
            throw FormatError("not a .npy file (no \\x93NUMPY magic)")
        }
        let major = bytes[6]
        var headerLen: Int, start: Int
        switch major {
        case 1:
            headerLen = Int(bytes[8]) | Int(bytes[9]) << 8
            start = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw FormatError("truncated .npy header") }
            headerLen = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            start = 12
        default:
            throw FormatError("unsupported .npy format version \(major).\(bytes[7])")
        }
        guard headerLen <= 1 << 20 else { throw FormatError(".npy header of \(headerLen) bytes is implausible") }
        guard bytes.count >= start + headerLen else { throw FormatError("truncated .npy header") }
        let text = String(decoding: bytes[start ..< start + headerLen], as: UTF8.self)
        var p = PyLiteralParser(text)
        guard case .dict(let dict) = try p.parse() else { throw FormatError(".npy header is not a dict") }
        guard case .string(let descr)? = dict["descr"] else { throw FormatError(".npy header has no 'descr' string (structured dtypes are not supported)") }
        guard case .bool(let fortran)? = dict["fortran_order"] else { throw FormatError(".npy header has no 'fortran_order'") }
        guard case .tuple(let dims)? = dict["shape"] else { throw FormatError(".npy header has no 'shape'") }
        let (dtype, big) = try dtype(fromDescr: descr)
        guard dims.count <= Format.maxRank else { throw FormatError(".npy array of rank \(dims.count) (at most \(Format.maxRank))") }
        // Every dimension counts, even beside a zero one: strides are products of dimensions.
        var total = dtype.size
        for d in dims {
            guard d >= 0 else { throw FormatError(".npy shape has a negative dimension") }
            let (p, o) = total.multipliedReportingOverflow(by: max(d, 1))
            guard !o, p < 1 << 50 else { throw FormatError(".npy shape \(dims) is impossibly large") }
            total = p
        }
        return NpyHeader(dtype: dtype, bigEndian: big, fortranOrder: fortran, shape: dims, dataOffset: start + headerLen)
    }

    /// A whole .npy file in memory as a tensor.
    public static func read(_ bytes: [UInt8], name: String) throws -> Tensor {
        let h = try parseHeader(bytes)
        guard bytes.count - h.dataOffset >= h.dataBytes else {
            throw FormatError("truncated .npy data: \(bytes.count - h.dataOffset) bytes for \(h.dataBytes)")
        }
        var data = Array(bytes[h.dataOffset ..< h.dataOffset + h.dataBytes])
        if h.bigEndian { swapBytes(&data, size: h.dtype.size) }
        if h.fortranOrder && h.shape.count > 1 { data = fortranToC(data, shape: h.shape, size: h.dtype.size) }
        return Tensor(name: name, dtype: h.dtype, shape: h.shape, data: data)
    }

    /// The header bytes for a C-order little-endian array (version 1.0, or 2.0 when needed),
    /// padded so that the data starts on a 64-byte boundary as numpy does.
    public static func header(dtype: DType, shape: [Int]) throws -> [UInt8] {
        let shapeText = shape.isEmpty ? "()" : shape.count == 1 ? "(\(shape[0]),)"
            : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var dict = "{'descr': '\(try descr(dtype))', 'fortran_order': False, 'shape': \(shapeText), }"
        var version: UInt8 = 1
        var prefix = 10
        if dict.utf8.count + 11 > 65535 { version = 2; prefix = 12 }
        let total = prefix + dict.utf8.count + 1
        let padded = (total + 63) / 64 * 64
        dict += String(repeating: " ", count: padded - total) + "\n"
        var out = magic + [version, 0]
        let len = dict.utf8.count
        out += [UInt8(len & 0xFF), UInt8((len >> 8) & 0xFF)]
        if version == 2 { out += [UInt8((len >> 16) & 0xFF), UInt8((len >> 24) & 0xFF)] }
        out += Array(dict.utf8)
        return out
    }

    /// A whole tensor as .npy bytes.
    public static func write(_ t: Tensor) throws -> [UInt8] {
        try header(dtype: t.dtype, shape: t.shape) + t.data
    }
}

func swapBytes(_ data: inout [UInt8], size: Int) {
    guard size > 1 else { return }
    var i = 0
    while i + size <= data.count {
        data[i ..< i + size].reverse()
        i += size
    }
}

/// Reorders column-major (Fortran) element bytes into row-major (C) order.
func fortranToC(_ data: [UInt8], shape: [Int], size: Int) -> [UInt8] {
    let n = shape.reduce(1, *)
    var out = [UInt8](repeating: 0, count: data.count)
    let rank = shape.count
    var cStrides = [Int](repeating: 1, count: rank)
    for k in stride(from: rank - 2, through: 0, by: -1) { cStrides[k] = cStrides[k + 1] * shape[k + 1] }
    var idx = [Int](repeating: 0, count: rank)
    // Walk elements in Fortran order (first index fastest).
    for f in 0..<n {
        var c = 0
        for k in 0..<rank { c += idx[k] * cStrides[k] }
        for b in 0..<size { out[c * size + b] = data[f * size + b] }
        var k = 0
        while k < rank {
            idx[k] += 1
            if idx[k] < shape[k] { break }
            idx[k] = 0
            k += 1
        }
    }
    return out
}

/// Values of the small Python-literal language .npy headers use.
enum PyValue: Equatable {
    case string(String), bool(Bool), int(Int), tuple([Int]), dict([String: PyValue]), none
}

/// Parses `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`.
struct PyLiteralParser {
    let chars: [Character]
    var i = 0
    init(_ s: String) { chars = Array(s) }

    mutating func skipSpace() { while i < chars.count, chars[i].isWhitespace { i += 1 } }

    mutating func expect(_ c: Character) throws {
        skipSpace()
        guard i < chars.count, chars[i] == c else { throw FormatError("malformed .npy header: expected '\(c)'") }
        i += 1
    }

    mutating func parse() throws -> PyValue {
        skipSpace()
        guard i < chars.count else { throw FormatError("malformed .npy header: unexpected end") }
        switch chars[i] {
        case "{":
            i += 1
            var d: [String: PyValue] = [:]
            while true {
                skipSpace()
                if i < chars.count, chars[i] == "}" { i += 1; return .dict(d) }
                guard case .string(let k) = try parse() else { throw FormatError("malformed .npy header: non-string key") }
                try expect(":")
                d[k] = try parse()
                skipSpace()
                if i < chars.count, chars[i] == "," { i += 1 }
            }
        case "(":
            i += 1
            var items: [Int] = []
            while true {
                skipSpace()
                if i < chars.count, chars[i] == ")" { i += 1; return .tuple(items) }
                guard case .int(let v) = try parse() else { throw FormatError("malformed .npy header: shape holds a non-integer") }
                items.append(v)
                skipSpace()
                if i < chars.count, chars[i] == "," { i += 1 }
            }
        case "'", "\"":
            let q = chars[i]
            i += 1
            var s = ""
            while i < chars.count, chars[i] != q { s.append(chars[i]); i += 1 }
            guard i < chars.count else { throw FormatError("malformed .npy header: unterminated string") }
            i += 1
            return .string(s)
        default:
            var word = ""
            while i < chars.count, chars[i].isLetter || chars[i].isNumber || chars[i] == "-" || chars[i] == "_" {
                word.append(chars[i]); i += 1
            }
            switch word {
            case "True": return .bool(true)
            case "False": return .bool(false)
            case "None": return .none
            default:
                let digits = word.hasSuffix("L") ? String(word.dropLast()) : word
                guard let v = Int(digits) else { throw FormatError("malformed .npy header near '\(word)'") }
                return .int(v)
            }
        }
    }
}
