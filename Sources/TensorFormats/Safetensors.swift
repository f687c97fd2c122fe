import FoundationEssentials
import TensorStream

/// Reads the safetensors format: an 8-byte little-endian header length, a JSON header
/// {name: {dtype, shape, data_offsets}, "__metadata__": {...}}, then the data.
public enum Safetensors {
    static let dtypes: [String: DType] = [
        "F64": .f64, "F32": .f32, "F16": .f16, "BF16": .bf16, "I64": .i64, "I32": .i32, "I16": .i16,
        "I8": .i8, "U8": .u8, "U16": .u16, "U32": .u32, "U64": .u64, "BOOL": .bool,
    ]

    /// One tensor of a safetensors file: where its bytes are (`bytes`, counted from the start of
    /// the file, checked to lie inside it and to match the shape) and what they are.
    public struct Entry: Sendable {
        public let name: String
        public let dtype: DType
        public let shape: [Int]
        public let bytes: Range<Int>
    }

    /// The file's tensor entries, in the order of their data in the file, and its
    /// `__metadata__` as "safetensors.<key>" (plus "source" when given): the header parsed and
    /// checked, no data copied.
    public static func entries(_ bytes: UnsafeRawBufferPointer, source: String? = nil) throws -> (entries: [Entry], meta: [String: String]) {
        guard bytes.count >= 8 else { throw FormatError("not a safetensors file (shorter than 8 bytes)") }
        var n = 0
        for k in 0..<8 { n |= Int(bytes[k]) << (8 * k) }
        guard n > 1, n <= 100_000_000, 8 + n <= bytes.count else {
            throw FormatError("not a safetensors file (header length \(n) does not fit the file)")
        }
        guard let json = try? JSONDecoder().decode([String: HeaderValue].self, from: Data(bytes[8 ..< 8 + n])) else {
            throw FormatError("not a safetensors file (header is not a JSON object of tensor entries)")
        }
        let dataStart = 8 + n
        let available = bytes.count - dataStart
        var fileMeta: [String: String] = [:]
        if case .metadata(let m)? = json["__metadata__"] {
            for (k, v) in m { fileMeta["safetensors.\(k)"] = v }
        }
        if let source { fileMeta["source"] = source }
        var found: [Entry] = []
        for (name, value) in json where name != "__metadata__" {
            guard case .entry(let entry) = value, entry.data_offsets.count == 2 else {
                throw FormatError("safetensors entry '\(name)' lacks dtype, shape or data_offsets")
            }
            guard let dtype = dtypes[entry.dtype] else {
                throw FormatError("safetensors entry '\(name)' has unsupported dtype \(entry.dtype)")
            }
            let shape = entry.shape, offsets = entry.data_offsets, dtypeName = entry.dtype
            guard shape.allSatisfy({ $0 >= 0 }), shape.count <= Format.maxRank else {
                throw FormatError("safetensors entry '\(name)' has a malformed shape")
            }
            var expected = dtype.size
            var extent = dtype.size  // with zero dimensions counted as 1: strides must not overflow either
            for d in shape {
                let (p, o) = expected.multipliedReportingOverflow(by: d)
                let (q, o2) = extent.multipliedReportingOverflow(by: max(d, 1))
                guard !o, !o2, q < 1 << 50 else { throw FormatError("safetensors entry '\(name)' has an impossible shape") }
                expected = p
                extent = q
            }
            let (b, e) = (offsets[0], offsets[1])
            guard b >= 0, e >= b, e <= available, e - b == expected else {
                throw FormatError("safetensors entry '\(name)': offsets \(b)..<\(e) do not match shape \(shape) of \(dtypeName) in \(available) data bytes")
            }
            found.append(Entry(name: name, dtype: dtype, shape: shape, bytes: dataStart + b ..< dataStart + e))
        }
        found.sort { $0.bytes.lowerBound != $1.bytes.lowerBound ? $0.bytes.lowerBound < $1.bytes.lowerBound : $0.name < $1.name }
        return (found, fileMeta)
    }

    /// Every tensor, in the order of its data in the file. The file's `__metadata__` goes
    /// into each tensor's metadata under "safetensors.<key>".
    public static func read(_ bytes: [UInt8], source: String? = nil) throws -> [Tensor] {
        try bytes.withUnsafeBytes { raw in
            let (entries, meta) = try Self.entries(raw, source: source)
            return entries.map { e in
                Tensor(name: e.name, dtype: e.dtype, shape: e.shape, data: Array(bytes[e.bytes]), meta: meta)
            }
        }
    }
}

/// A value of the safetensors JSON header: a tensor entry, or the `__metadata__` map.
enum HeaderValue: Decodable {
    struct Entry: Decodable {
        let dtype: String
        let shape: [Int]
        let data_offsets: [Int]
    }
    case entry(Entry)
    case metadata([String: String])

    init(from decoder: Decoder) throws {
        if let e = try? Entry(from: decoder) { self = .entry(e); return }
        self = .metadata(try [String: String](from: decoder))
    }
}

extension Safetensors {
    /// The start of a safetensors file for tensors whose data will follow back to back in this
    /// order: the 8-byte header length and the JSON header (padded with spaces to a multiple of 8
    /// bytes, as the format recommends). `metadata` becomes `__metadata__`.
    public static func header(_ entries: [(name: String, dtype: DType, shape: [Int])],
                              metadata: [String: String] = [:]) throws -> [UInt8] {
        let names = Dictionary(uniqueKeysWithValues: dtypes.map { ($1, $0) })
        func quoted(_ s: String) throws -> String { String(decoding: try JSONEncoder().encode(s), as: UTF8.self) }
        var parts: [String] = []
        if !metadata.isEmpty {
            let m = try metadata.sorted { $0.key < $1.key }.map { "\(try quoted($0.key)):\(try quoted($0.value))" }
            parts.append("\"__metadata__\":{\(m.joined(separator: ","))}")
        }
        var offset = 0
        for e in entries {
            guard let dtype = names[e.dtype] else {
                throw FormatError("tensor '\(e.name)' is \(e.dtype.name), which safetensors cannot hold")
            }
            guard e.name != "__metadata__" else { throw FormatError("a tensor cannot be named __metadata__ in safetensors") }
            var bytes = e.dtype.size
            for d in e.shape {
                let (p, o) = bytes.multipliedReportingOverflow(by: d)
                guard !o else { throw FormatError("tensor '\(e.name)' is too large") }
                bytes = p
            }
            parts.append("\(try quoted(e.name)):{\"dtype\":\"\(dtype)\",\"shape\":[\(e.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + bytes)]}")
            offset += bytes
        }
        var json = Array("{\(parts.joined(separator: ","))}".utf8)
        while json.count % 8 != 0 { json.append(0x20) }
        var out = [UInt8](repeating: 0, count: 8)
        for k in 0..<8 { out[k] = UInt8((json.count >> (8 * k)) & 0xFF) }
        return out + json
    }
}
