/// What a HEAD record says about a tensor: its name, element type, shape and metadata.
public struct TensorInfo: Equatable, Sendable {
    public var name: String
    public var dtype: DType
    /// The shape of one row (the shape without its first axis). Empty for a vector.
    public var rowShape: [Int]
    /// Rows declared in advance, or nil when the writer did not know them. For a 0-d tensor, 1.
    public var rows: Int?
    /// True for a 0-d tensor (a scalar): it has no row axis and exactly one element.
    public var isScalar: Bool
    public var meta: [String: String]

    public init(name: String, dtype: DType, rowShape: [Int], rows: Int? = nil,
                meta: [String: String] = [:]) {
        self.name = name; self.dtype = dtype; self.rowShape = rowShape
        self.rows = rows; self.isScalar = false; self.meta = meta
    }

    /// A tensor of any rank from its full shape (rank 0 is a scalar).
    public init(name: String, dtype: DType, shape: [Int], meta: [String: String] = [:]) {
        self.name = name; self.dtype = dtype; self.meta = meta
        if shape.isEmpty {
            rowShape = []; rows = 1; isScalar = true
        } else {
            rowShape = Array(shape.dropFirst()); rows = shape[0]; isScalar = false
        }
    }

    /// Elements in one row (1 for vectors and scalars).
    public var rowElements: Int { rowShape.reduce(1, *) }
    /// Bytes in one row.
    public var rowBytes: Int { rowElements * dtype.size }

    /// The full shape given a number of rows.
    public func shape(rows n: Int) -> [Int] { isScalar ? [] : [n] + rowShape }

    /// "f32[1000,384]", with "?" for rows not declared.
    public var signature: String {
        if isScalar { return "\(dtype.name)[]" }
        let r = rows.map(String.init) ?? "?"
        return "\(dtype.name)[" + ([r] + rowShape.map(String.init)).joined(separator: ",") + "]"
    }
}
