#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TensorFormats
import TensorStream
import ToolKit

// `tensor to tsv|csv --lines FILE`: texts travel with results. The elements of an integer tensor
// (emb-sim's 'indices', emb-encode's 'id') are 0-based line numbers of FILE; each is replaced by
// that line, so that top-k hits read as texts without leaving the shell.

/// The lines of a text file, without their "\n" (or "\r\n").
func readTextLines(_ path: String) throws -> [String] {
    let src = try FileSource(path: path)
    let bytes = try src.readAll()
    var lines: [String] = []
    var start = 0
    for (i, b) in bytes.enumerated() where b == 0x0A {
        var end = i
        if end > start && bytes[end - 1] == 0x0D { end -= 1 }
        lines.append(String(decoding: bytes[start..<end], as: UTF8.self))
        start = i + 1
    }
    if start < bytes.count { lines.append(String(decoding: bytes[start...], as: UTF8.self)) }
    return lines
}

/// A line as one field: tabs become spaces in TSV; CSV quotes a field holding a comma, a quote or
/// a carriage return (RFC 4180).
func textField(_ s: String, separator: String) -> String {
    if separator == "\t" { return s.contains("\t") ? s.replacing("\t", with: " ") : s }
    if s.contains(",") || s.contains("\"") || s.contains("\r") {
        return "\"" + s.replacing("\"", with: "\"\"") + "\""
    }
    return s
}

/// Writes the chosen integer tensor (by default 'indices', else 'id', else the only integer tensor)
/// with every element replaced by its line of `linesPath`.
func writeWithLines(_ reader: TensorStreamReader, tensor: String?, linesPath: String, separator: String,
                    header: Bool, sink: ByteSink) throws {
    let lines = try readTextLines(linesPath)
    var chosen: Int? = nil
    var text = ""
    func flush() throws {
        var t = text
        try t.withUTF8 { try sink.write(UnsafeRawBufferPointer($0)) }
        text.removeAll(keepingCapacity: true)
    }
    func choose(_ i: Int) throws -> Bool {
        let info = reader.tensors[i]
        if let tensor { return info.name == tensor }
        return ["indices", "id"].contains(info.name)
    }
    var row = 0
    while let event = try reader.next() {
        switch event {
        case .tensor(let i):
            guard chosen == nil, try choose(i) else { continue }
            let info = reader.tensors[i]
            guard !info.dtype.isFloat else {
                throw ToolError.data("--lines replaces line numbers: tensor '\(info.name)' is \(info.dtype.name), not integer")
            }
            chosen = i
            if header {
                text += (0..<info.rowElements).map { info.rowElements == 1 ? "text" : "text\($0)" }.joined(separator: separator) + "\n"
            }
        case .data(let i, let rows, let bytes):
            guard i == chosen else { continue }
            let info = reader.tensors[i]
            let per = info.rowElements
            for r in 0..<rows {
                for c in 0..<per {
                    if c > 0 { text += separator }
                    let v = Int(formatElement(bytes, at: r * per + c, dtype: info.dtype)) ?? -1
                    guard v >= 0 && v < lines.count else {
                        throw ToolError.data("row \(row) of '\(info.name)' refers to line \(v), but \(linesPath) has lines 0 to \(lines.count - 1) (give the file the indices refer to)")
                    }
                    text += textField(lines[v], separator: separator)
                }
                text += "\n"
                row += 1
                if text.utf8.count > 1 << 16 { try flush() }
            }
        }
    }
    guard chosen != nil else {
        let have = reader.tensors.map(\.name).joined(separator: ", ")
        if let tensor { throw ToolError.data("input has no tensor '\(tensor)' (it has: \(have))") }
        throw ToolError.usage("--lines needs an integer tensor of line numbers: name it with --tensor (the input has: \(have))")
    }
    try flush()
}
