import TensorStream
import ToolKit

/// One tensor of a side file, read whole: the one named by `preferred`, or the file's only one.
func readSideTensor(_ path: String, preferred names: [String], option: String) throws -> Tensor {
    try openStream(path).readTensor(RowSlot(names: names, orOnly: true, hint: sideHint(names, option: option)))
}

/// What an option that takes a side file expects of it.
func sideHint(_ names: [String], option: String) -> String {
    "\(option) takes a stream of one tensor, or one named \(names.map { "'\($0)'" }.joined(separator: " or "))"
}

/// A column of integers (labels, OOD flags) in a stream of its own, read in step with the main
/// input, a block at a time: its tensor is the one named by `preferred`, or the stream's only one.
final class SideColumn {
    let path: String, option: String
    private let source: RowBlockReader

    init(_ path: String, preferred names: [String], option: String) throws {
        self.path = path
        self.option = option
        source = RowBlockReader(try openStream(path), slots: [RowSlot(names: names, orOnly: true, hint: sideHint(names, option: option))], blockRows: 1)
        let t = try source.headers()[0]
        guard t.rowShape.isEmpty || t.rowShape == [1] else {
            throw ToolError.data("\(option) \(path): '\(t.name)' has shape [N, \(t.rowShape.map(String.init).joined(separator: ", "))], expected [N] (one value per row)")
        }
    }

    /// Reads the column's first rows now (see `RowBlockReader.readAhead`).
    func readAhead() throws { try source.readAhead() }

    /// The next `count` values, fewer at the end of the column.
    func next(_ count: Int) throws -> [Int64] {
        source.blockRows = max(1, count)
        guard var block = try source.next() else { return [] }
        defer { source.recycle(&block[0].data) }
        do { return try block[0].int64s() } catch let e as StreamError { throw ToolError.data("\(option) \(path): \(e)") }
    }

    /// The number of values after those handed out (read to the end).
    func remaining() throws -> Int {
        source.blockRows = 1 << 16
        var n = 0
        while let t = try source.next()?[0] { n += t.rows }
        return n
    }
}
