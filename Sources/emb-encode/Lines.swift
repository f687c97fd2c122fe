import TensorStream

/// Lines of bytes from a source, without their "\n" (and a "\r" before it); the last line may lack
/// its newline.
final class LineReader {
    let source: ByteSource
    private var buffer = [UInt8](repeating: 0, count: 1 << 16)
    private var start = 0, end = 0
    private var eof = false
    private(set) var bytesRead = 0

    init(_ source: ByteSource) { self.source = source }

    func next() throws -> [UInt8]? {
        var line: [UInt8] = []
        while true {
            if start < end {
                var i = start
                while i < end && buffer[i] != 0x0A { i += 1 }
                line.append(contentsOf: buffer[start..<i])
                if i < end {
                    start = i + 1
                    if line.last == 0x0D { line.removeLast() }
                    return line
                }
                start = end
            }
            if eof { return line.isEmpty ? nil : line }
            let n = try buffer.withUnsafeMutableBytes { try source.read(into: $0) }
            bytesRead += n
            start = 0; end = n
            if n == 0 { eof = true }
        }
    }
}

/// The text of a line: strict UTF-8 (nil when invalid) or with U+FFFD for invalid bytes.
func decodeLine(_ bytes: [UInt8], replacing: Bool) -> String? {
    if replacing { return String(decoding: bytes, as: UTF8.self) }
    return String(validating: bytes, as: UTF8.self)
}

/// Column `col` (1-based) of a tab-separated line, or nil when the line has fewer columns.
func tsvColumn(_ bytes: [UInt8], _ col: Int) -> [UInt8]? {
    var c = 1, s = 0
    for (i, b) in bytes.enumerated() where b == 0x09 {
        if c == col { return Array(bytes[s..<i]) }
        c += 1; s = i + 1
    }
    return c == col ? Array(bytes[s...]) : nil
}
