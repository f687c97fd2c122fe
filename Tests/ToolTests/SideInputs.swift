import Foundation
import XCTest
import TestSupport
import TensorStream

func encodeStream(_ tensors: [Tensor]) throws -> [UInt8] {
    let sink = ArraySink()
    let w = try TensorStreamWriter(sink: sink)
    for t in tensors { try w.write(t) }
    try w.finish()
    return sink.bytes
}

/// Valid side inputs (posterior, corpus, basis, model) made by the programs themselves from small valid inputs, so that only standard input is bad.
func makeSideInputs(_ dir: URL) throws {
    func save(_ name: String, _ tensors: [Tensor]) throws {
        try Data(try encodeStream(tensors)).write(to: dir.appendingPathComponent(name))
    }
    func made(_ name: String, _ tool: String, _ args: [String], stdin: [Tensor]) throws {
        let r = try runTool(tool, args + ["-o", dir.appendingPathComponent(name).path], stdin: Data(try encodeStream(stdin)))
        XCTAssertEqual(r.status, 0, "making \(name): \(r.stderr)")
    }
    let wave = { (n: Int, d: Int, phase: Float) in (0..<n * d).map { Float(sin(Double($0) * 0.7 + Double(phase))) } }
    try save("idx.tsr", [Tensor(name: "i", shape: [2], int64s: [0, 1])])
    try made("post.tsr", "emb-laplace", ["fit", "--batch-size", "4"],
             stdin: [Tensor(name: "query", shape: [8, 4], floats: wave(8, 4, 0)),
                     Tensor(name: "positive", shape: [8, 4], floats: wave(8, 4, 0.3))])
    try made("corpus.tsr", "emb-laplace", ["apply", "--posterior", dir.appendingPathComponent("post.tsr").path],
             stdin: [Tensor(name: "embedding", shape: [6, 4], floats: wave(6, 4, 1))])
    try made("basis.tsr", "sve-decompose", ["--quiet"],
             stdin: [Tensor(name: "l.weight", shape: [3, 4], floats: wave(3, 4, 2)),
                     Tensor(name: "l.bias", shape: [3], floats: [0.1, 0.2, 0.3])])
    try made("model.tsr", "sve-train", ["--basis", dir.appendingPathComponent("basis.tsr").path, "--stack", "linear:l",
                                        "--members", "2", "--epochs", "1", "--val-fraction", "0.25"],
             stdin: [Tensor(name: "features", shape: [12, 4], floats: wave(12, 4, 3)),
                     Tensor(name: "labels", shape: [12], int64s: (0..<12).map { Int64($0 % 3) })])
}

