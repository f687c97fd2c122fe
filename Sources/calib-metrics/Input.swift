import TensorStream
import ToolKit

/// Reads one named tensor (or, failing that, the only tensor) of a side file whole.
func readSideTensor(_ path: String, preferred names: [String], option: String) throws -> Tensor {
    let reader = try openStream(path)
    let all = try reader.readAll()
    if let t = all.first(where: { names.contains($0.name) }) { return t }
    if all.count == 1 { return all[0] }
    let have = all.map(\.name).joined(separator: ", ")
    throw ToolError.data("\(option) \(path): no tensor \(names.map { "'\($0)'" }.joined(separator: " or ")) and more than one tensor to choose from (it has: \(have.isEmpty ? "no tensors" : have))")
}

/// Labels or OOD flags as one integer per row from an N or N×1 tensor.
func vectorOfInts(_ t: Tensor, what: String) throws -> [Int64] {
    guard t.shape.count == 1 || (t.shape.count == 2 && t.shape[1] == 1) else {
        throw ToolError.data("\(what) '\(t.name)' has shape [\(t.shape.map(String.init).joined(separator: ", "))], expected [N] (one value per row)")
    }
    do { return try t.int64s() } catch let e as StreamError { throw ToolError.data("\(e)") }
}
