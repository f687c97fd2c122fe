import Foundation
import XCTest
import TensorFormats
import TensorStream
import TestSupport

/// `tensor to safetensors`: weights go back to Hugging Face's format as they came.
final class SafetensorsExportTests: XCTestCase {
    func testRoundTripOfRealWeights() throws {
        let original = repositoryRoot().appendingPathComponent("examples/data/minilm_layer5_ffn.safetensors")
        let imported = try runTool("tensor", ["from", "safetensors", original.path])
        XCTAssertEqual(imported.status, 0, imported.stderr)
        let exported = try runTool("tensor", ["to", "safetensors"], stdin: imported.stdout)
        XCTAssertEqual(exported.status, 0, exported.stderr)
        let bytes = [UInt8](exported.stdout)
        // The header length is a multiple of 8 and the JSON header is followed by all the data.
        var n = 0
        for k in 0..<8 { n |= Int(bytes[k]) << (8 * k) }
        XCTAssertEqual(n % 8, 0)
        let a = try Safetensors.read([UInt8](try Data(contentsOf: original)))
        let b = try Safetensors.read(bytes)
        XCTAssertEqual(a.map(\.name), b.map(\.name))
        for (x, y) in zip(a, b) {
            XCTAssertEqual(x.dtype, y.dtype, x.name)
            XCTAssertEqual(x.shape, y.shape, x.name)
            XCTAssertEqual(x.data, y.data, x.name)
            // The file's __metadata__ comes back (what 'from safetensors' kept as safetensors.KEY).
            XCTAssertEqual(x.meta.filter { $0.key.hasPrefix("safetensors.") }, y.meta.filter { $0.key.hasPrefix("safetensors.") }, x.name)
        }
        XCTAssertEqual(bytes.count, try Data(contentsOf: original).count - (8 + headerLength(original)) + 8 + n)
    }

    func headerLength(_ url: URL) throws -> Int {
        let d = [UInt8](try Data(contentsOf: url))
        var n = 0
        for k in 0..<8 { n |= Int(d[k]) << (8 * k) }
        return n
    }

    func testRefusesWhatSafetensorsCannotHold() throws {
        let r = try runTool("tensor", ["to", "safetensors", "--tensor", "x"])
        XCTAssertEqual(r.status, 64, r.stderr)
        XCTAssertTrue(r.stderr.contains("takes every tensor"), r.stderr)
    }
}
