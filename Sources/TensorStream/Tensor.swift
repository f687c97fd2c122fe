import Failure
/// A whole tensor in memory: its description and its bytes (C order, little-endian).
public struct Tensor: Sendable {
    public var info: TensorInfo
    public var data: [UInt8]

    public var name: String { get { info.name } set { info.name = newValue } }
    public var dtype: DType { info.dtype }
    public var rows: Int { info.rows ?? 0 }
    public var shape: [Int] { info.shape(rows: rows) }
    public var count: Int { info.isScalar ? 1 : rows * info.rowElements }
    public var meta: [String: String] { get { info.meta } set { info.meta = newValue } }

    public init(info: TensorInfo, data: [UInt8]) {
        self.info = info
        self.data = data
    }

    public init(name: String, dtype: DType, shape: [Int], data: [UInt8], meta: [String: String] = [:]) {
        self.info = TensorInfo(name: name, dtype: dtype, shape: shape, meta: meta)
        self.data = data
    }

    public init(name: String, shape: [Int], floats: [Float], meta: [String: String] = [:]) {
        self.init(name: name, dtype: .f32, shape: shape, data: floats.withUnsafeBytes { Array($0) }, meta: meta)
    }

    public init(name: String, shape: [Int], doubles: [Double], meta: [String: String] = [:]) {
        self.init(name: name, dtype: .f64, shape: shape, data: doubles.withUnsafeBytes { Array($0) }, meta: meta)
    }

    public init(name: String, shape: [Int], int64s: [Int64], meta: [String: String] = [:]) {
        self.init(name: name, dtype: .i64, shape: shape, data: int64s.withUnsafeBytes { Array($0) }, meta: meta)
    }

    public init(name: String, shape: [Int], int32s: [Int32], meta: [String: String] = [:]) {
        self.init(name: name, dtype: .i32, shape: shape, data: int32s.withUnsafeBytes { Array($0) }, meta: meta)
    }

    /// The elements as Float, converted from any dtype.
    public func floats() -> [Float] { data.withUnsafeBytes { convertToFloat($0, from: dtype) } }

    /// `floats()` into `out`, replacing what it held, in its storage when `out` holds the last
    /// reference to it (a loop over blocks then fills the same pages for every block instead of
    /// touching new ones). float32 is copied straight; other dtypes through a converted array.
    public func floats(into out: inout [Float]) {
        out.removeAll(keepingCapacity: true)
        let count = dtype.size == 0 ? 0 : data.count / dtype.size
        if out.capacity < count { out.reserveCapacityOnHugePages(count) }
        data.withUnsafeBytes { b in
            if dtype == .f32 {
                out.append(contentsOf: b.bindMemory(to: Float.self))
            } else {
                out.append(contentsOf: convertToFloat(b, from: dtype))
            }
        }
    }

    /// The elements as Double, converted from any dtype.
    public func doubles() -> [Double] { data.withUnsafeBytes { convertToDouble($0, from: dtype) } }

    /// The elements as Int64. Float tensors are accepted when every value is a whole number.
    public func int64s() throws -> [Int64] {
        try data.withUnsafeBytes { try convertToInt64($0, from: dtype, name: name) }
    }

    /// Rows `range` as a new tensor (same name, dtype, metadata).
    public func rows(_ range: Range<Int>) -> Tensor {
        precondition(!info.isScalar && range.lowerBound >= 0 && range.upperBound <= rows)
        var i = info
        i.rows = range.count
        let rb = info.rowBytes
        return Tensor(info: i, data: Array(data[range.lowerBound * rb ..< range.upperBound * rb]))
    }
}

// MARK: - Element conversions

public func convertToFloat(_ b: UnsafeRawBufferPointer, from dtype: DType) -> [Float] {
    switch dtype {
    case .f32: return Array(b.bindMemory(to: Float.self))
    case .f64: return b.bindMemory(to: Double.self).map { Float($0) }
    case .f16: return b.bindMemory(to: UInt16.self).map { halfToFloat(UInt16(littleEndian: $0)) }
    case .bf16: return b.bindMemory(to: UInt16.self).map { bfloat16ToFloat(UInt16(littleEndian: $0)) }
    default: return convertToDouble(b, from: dtype).map { Float($0) }
    }
}

public func convertToDouble(_ b: UnsafeRawBufferPointer, from dtype: DType) -> [Double] {
    switch dtype {
    case .f32: return b.bindMemory(to: Float.self).map { Double($0) }
    case .f64: return Array(b.bindMemory(to: Double.self))
    case .f16, .bf16: return convertToFloat(b, from: dtype).map { Double($0) }
    case .i8: return b.bindMemory(to: Int8.self).map { Double($0) }
    case .i16: return b.bindMemory(to: Int16.self).map { Double($0) }
    case .i32: return b.bindMemory(to: Int32.self).map { Double($0) }
    case .i64: return b.bindMemory(to: Int64.self).map { Double($0) }
    case .u8, .bool: return b.bindMemory(to: UInt8.self).map { Double($0) }
    case .u16: return b.bindMemory(to: UInt16.self).map { Double($0) }
    case .u32: return b.bindMemory(to: UInt32.self).map { Double($0) }
    case .u64: return b.bindMemory(to: UInt64.self).map { Double($0) }
    }
}

public func convertToInt64(_ b: UnsafeRawBufferPointer, from dtype: DType, name: String) throws -> [Int64] {
    switch dtype {
    case .i8: return b.bindMemory(to: Int8.self).map { Int64($0) }
    case .i16: return b.bindMemory(to: Int16.self).map { Int64($0) }
    case .i32: return b.bindMemory(to: Int32.self).map { Int64($0) }
    case .i64: return Array(b.bindMemory(to: Int64.self))
    case .u8, .bool: return b.bindMemory(to: UInt8.self).map { Int64($0) }
    case .u16: return b.bindMemory(to: UInt16.self).map { Int64($0) }
    case .u32: return b.bindMemory(to: UInt32.self).map { Int64($0) }
    case .u64:
        return try b.bindMemory(to: UInt64.self).map {
            guard $0 <= UInt64(Int64.max) else { throw StreamError.invalid("tensor '\(name)': value \($0) too large") }
            return Int64($0)
        }
    case .f16, .bf16, .f32, .f64:
        return try convertToDouble(b, from: dtype).map {
            guard $0.isFinite, $0 == $0.rounded(), abs($0) < 9.0e15 else {
                throw StreamError.invalid("tensor '\(name)' holds \($0), not a whole number (expected integer labels or indices)")
            }
            return Int64($0)
        }
    }
}

/// Encodes Float values as `dtype` bytes (rounding for narrower types).
public func convertFromFloat(_ v: [Float], to dtype: DType) -> [UInt8] {
    switch dtype {
    case .f32: return v.withUnsafeBytes { Array($0) }
    case .f64: return v.map { Double($0) }.withUnsafeBytes { Array($0) }
    case .f16: return v.map { floatToHalf($0).littleEndian }.withUnsafeBytes { Array($0) }
    case .bf16: return v.map { floatToBFloat16($0).littleEndian }.withUnsafeBytes { Array($0) }
    default: return convertFromDouble(v.map { Double($0) }, to: dtype)
    }
}

/// Why `x` cannot be stored as `dtype` without changing it, or nil when it can (floats may
/// round to the nearest representable value; that is what a narrower float is for). Integer
/// and bool dtypes take only whole numbers in their range (bool: 0 or 1); a finite value must
/// stay finite.
public func conversionLoss(_ x: Double, to dtype: DType) -> String? {
    func range<T: FixedWidthInteger>(_: T.Type) -> String? {
        if x.isNaN { return "NaN has no \(dtype.name) value" }
        if x.isInfinite || x < Double(T.min) || x > Double(T.max) { return "\(x) is out of the range of \(dtype.name)" }
        if x != x.rounded(.towardZero) { return "\(x) is not a whole number" }
        return nil
    }
    switch dtype {
    case .f64: return nil
    case .f32: return x.isFinite && !Float(x).isFinite ? "\(x) overflows f32" : nil
    case .f16: return x.isFinite && !halfToFloat(floatToHalf(Float(x))).isFinite ? "\(x) overflows f16 (largest 65504)" : nil
    case .bf16: return x.isFinite && !bfloat16ToFloat(floatToBFloat16(Float(x))).isFinite ? "\(x) overflows bf16" : nil
    case .i8: return range(Int8.self)
    case .i16: return range(Int16.self)
    case .i32: return range(Int32.self)
    case .i64: return x == 9.223372036854775807e18 ? "\(x) is out of the range of i64" : range(Int64.self)
    case .u8: return range(UInt8.self)
    case .u16: return range(UInt16.self)
    case .u32: return range(UInt32.self)
    case .u64: return x == 1.8446744073709551615e19 ? "\(x) is out of the range of u64" : range(UInt64.self)
    case .bool: return x == 0 || x == 1 ? nil : "\(x) is not 0 or 1 (bool)"
    }
}

/// Encodes Double values as `dtype` bytes (integers are rounded toward zero and clamped;
/// `conversionLoss` says when that changes a value).
public func convertFromDouble(_ v: [Double], to dtype: DType) -> [UInt8] {
    func ints<T: FixedWidthInteger>(_: T.Type) -> [UInt8] {
        v.map { x -> T in
            if x.isNaN { return 0 }
            if x >= Double(T.max) { return T.max }
            if x <= Double(T.min) { return T.min }
            return T(x)
        }.withUnsafeBytes { Array($0) }
    }
    switch dtype {
    case .f64: return v.withUnsafeBytes { Array($0) }
    case .f32, .f16, .bf16: return convertFromFloat(v.map { Float($0) }, to: dtype)
    case .i8: return ints(Int8.self)
    case .i16: return ints(Int16.self)
    case .i32: return ints(Int32.self)
    case .i64: return ints(Int64.self)
    case .u8: return ints(UInt8.self)
    case .u16: return ints(UInt16.self)
    case .u32: return ints(UInt32.self)
    case .u64: return ints(UInt64.self)
    case .bool: return v.map { $0 != 0 ? UInt8(1) : 0 }
    }
}
