import TensorStream

/// Reads numeric delimited text (CSV or TSV) line by line: every line the same number of
/// fields; an optional header line of names (detected when the first line is not numeric).
public final class DelimitedReader {
    public let separator: UInt8
    public private(set) var columnNames: [String]? = nil
    public private(set) var columns: Int? = nil
    public private(set) var line = 0
    /// Read numbers beyond a double's range as ±inf instead of refusing them.
    public var saturate = false
    private let source: ByteSource
    private let label: String
    private var buffer = [UInt8](repeating: 0, count: 1 << 16)
    private var pos = 0
    private var end = 0
    private var eof = false
    private var current: [UInt8] = []

    public init(_ source: ByteSource, label: String, separator: UInt8) {
        self.source = source; self.label = label; self.separator = separator
    }

    private func nextLine() throws -> [UInt8]? {
        current.removeAll(keepingCapacity: true)
        while true {
            if pos == end {
                if eof { return current.isEmpty ? nil : current }
                end = try buffer.withUnsafeMutableBytes { try source.read(into: $0) }
                pos = 0
                if end == 0 { eof = true; continue }
            }
            if let nl = buffer[pos..<end].firstIndex(of: 10) {
                current.append(contentsOf: buffer[pos..<nl])
                pos = nl + 1
                if current.last == 13 { current.removeLast() }
                return current
            }
            current.append(contentsOf: buffer[pos..<end])
            pos = end
        }
    }

    private func fields(_ l: [UInt8]) -> [Substring] {
        let s = String(decoding: l, as: UTF8.self)
        return s.split(separator: Character(UnicodeScalar(separator)), omittingEmptySubsequences: false)
            .map { f in
                var t = f.drop(while: { $0 == " " })
                while t.last == " " { t = t.dropLast() }
                if t.count >= 2, t.first == "\"", t.last == "\"" { t = t.dropFirst().dropLast() }
                return t
            }
    }

    /// The next row of numbers, or nil at the end. Blank lines and lines starting with '#'
    /// are skipped.
    public func next() throws -> [Double]? {
        while let l = try nextLine() {
            line += 1
            if l.isEmpty || l.allSatisfy({ $0 == 32 || $0 == 9 }) || l.first == UInt8(ascii: "#") { continue }
            let f = fields(l)
            var values: [Double] = []
            values.reserveCapacity(f.count)
            var numeric = true
            for x in f {
                if let v = parseNumber(x) {
                    if v.isInfinite && !saturate && !isInfinityLiteral(x) {
                        throw FormatError("\(label):\(line): '\(escaped(String(x)))' is beyond the range of a number (use --saturate to read it as \(v < 0 ? "-" : "")inf)")
                    }
                    values.append(v)
                } else { numeric = false; break }
            }
            if !numeric {
                if columns == nil && columnNames == nil {
                    columnNames = f.map(String.init)
                    columns = f.count
                    continue
                }
                let bad = f.first { parseNumber($0) == nil } ?? ""
                throw FormatError("\(label):\(line): '\(escaped(String(bad)))' is not a number")
            }
            if let c = columns, c != values.count {
                throw FormatError("\(label):\(line): \(values.count) fields where earlier lines have \(c)")
            }
            columns = values.count
            return values
        }
        return nil
    }
}

func isInfinityLiteral(_ s: Substring) -> Bool {
    ["inf", "+inf", "infinity", "-inf", "-infinity", "+infinity"].contains(s.lowercased())
}

func parseNumber(_ s: Substring) -> Double? {
    if let v = Double(s) { return v }
    switch s.lowercased() {
    case "nan": return .nan
    case "inf", "+inf", "infinity": return .infinity
    case "-inf", "-infinity": return -.infinity
    default: return nil
    }
}

/// Formats one element of a tensor for text output: integers as integers, floats in the
/// shortest form that reads back to the same value.
public func formatElement(_ b: UnsafeRawBufferPointer, at i: Int, dtype: DType) -> String {
    switch dtype {
    case .f32: return shortest(b.loadUnaligned(fromByteOffset: i * 4, as: Float.self))
    case .f64: return shortest(b.loadUnaligned(fromByteOffset: i * 8, as: Double.self))
    case .f16: return shortest(halfToFloat(b.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)))
    case .bf16: return shortest(bfloat16ToFloat(b.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)))
    case .i8: return String(b.loadUnaligned(fromByteOffset: i, as: Int8.self))
    case .i16: return String(b.loadUnaligned(fromByteOffset: i * 2, as: Int16.self))
    case .i32: return String(b.loadUnaligned(fromByteOffset: i * 4, as: Int32.self))
    case .i64: return String(b.loadUnaligned(fromByteOffset: i * 8, as: Int64.self))
    case .u8, .bool: return String(b[i])
    case .u16: return String(b.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self))
    case .u32: return String(b.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self))
    case .u64: return String(b.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self))
    }
}

func shortest<F: BinaryFloatingPoint & LosslessStringConvertible>(_ x: F) -> String {
    if x.isNaN { return "nan" }
    if x.isInfinite { return x < 0 ? "-inf" : "inf" }
    if x == x.rounded(), abs(x) < 1e15 { return String(Int64(x)) }
    return x.description
}
