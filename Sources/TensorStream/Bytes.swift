// Little-endian encoding of the fixed-width fields of records.

struct ByteWriter {
    var bytes: [UInt8] = []
    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func raw(_ s: String) { bytes.append(contentsOf: Array(s.utf8)) }
}

/// Reads fields from a record body, refusing to read past its end.
struct ByteReader {
    let base: UnsafeRawBufferPointer
    var offset = 0
    let what: String
    /// The rule a body that ends too early breaks.
    let short: StreamRule
    let label: String

    init(_ base: UnsafeRawBufferPointer, what: String, short: StreamRule, label: String) {
        self.base = base; self.what = what; self.short = short; self.label = label
    }

    var remaining: Int { base.count - offset }

    mutating func need(_ n: Int) throws {
        if n < 0 || n > remaining {
            throw StreamError.broken(short, "\(label): damaged \(what) record (a field runs past its end)")
        }
    }
    mutating func u8() throws -> UInt8 { try need(1); defer { offset += 1 }; return base[offset] }
    mutating func u16() throws -> UInt16 {
        try need(2); defer { offset += 2 }
        return UInt16(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }
    mutating func u32() throws -> UInt32 {
        try need(4); defer { offset += 4 }
        return UInt32(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }
    mutating func u64() throws -> UInt64 {
        try need(8); defer { offset += 8 }
        return UInt64(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }
    mutating func utf8(_ n: Int) throws -> String {
        try need(n); defer { offset += n }
        let slice = UnsafeRawBufferPointer(rebasing: base[offset..<offset + n])
        guard let s = String(validating: slice, as: UTF8.self) else {
            throw StreamError.broken(.headUTF8, "\(label): damaged \(what) record (a string is not valid UTF-8)")
        }
        return s
    }
}
