/// Element types a tensor stream can carry.
///
/// The raw value is the code stored in a HEAD record (see docs/tensor-stream.md); the
/// `name` is what people type and what `tensor info` prints.
public enum DType: UInt8, CaseIterable, Sendable {
    case f16 = 1, bf16 = 2, f32 = 3, f64 = 4
    case i8 = 5, i16 = 6, i32 = 7, i64 = 8
    case u8 = 9, u16 = 10, u32 = 11, u64 = 12
    case bool = 13

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .i8, .u8, .bool: return 1
        case .f16, .bf16, .i16, .u16: return 2
        case .f32, .i32, .u32: return 4
        case .f64, .i64, .u64: return 8
        }
    }

    public var name: String {
        switch self {
        case .f16: return "f16"
        case .bf16: return "bf16"
        case .f32: return "f32"
        case .f64: return "f64"
        case .i8: return "i8"
        case .i16: return "i16"
        case .i32: return "i32"
        case .i64: return "i64"
        case .u8: return "u8"
        case .u16: return "u16"
        case .u32: return "u32"
        case .u64: return "u64"
        case .bool: return "bool"
        }
    }

    public var isFloat: Bool { self == .f16 || self == .bf16 || self == .f32 || self == .f64 }
    public var isInteger: Bool { !isFloat && self != .bool }

    /// Parses a name as typed by people: `f32`, `float32`, `float`, `int64`, ...
    public init?(name: String) {
        switch name.lowercased() {
        case "f16", "float16", "half": self = .f16
        case "bf16", "bfloat16": self = .bf16
        case "f32", "float32", "float": self = .f32
        case "f64", "float64", "double": self = .f64
        case "i8", "int8": self = .i8
        case "i16", "int16": self = .i16
        case "i32", "int32": self = .i32
        case "i64", "int64", "int": self = .i64
        case "u8", "uint8": self = .u8
        case "u16", "uint16": self = .u16
        case "u32", "uint32": self = .u32
        case "u64", "uint64": self = .u64
        case "bool": self = .bool
        default: return nil
        }
    }
}
