import XCTest
@testable import TensorStream

final class RoundTripTests: XCTestCase {
    func encode(_ tensors: [Tensor], options: WriterOptions = WriterOptions()) throws -> [UInt8] {
        let sink = ArraySink()
        let w = try TensorStreamWriter(sink: sink, options: options)
        for t in tensors { try w.write(t) }
        try w.finish()
        return sink.bytes
    }

    func decode(_ bytes: [UInt8], step: Int = .max) throws -> [Tensor] {
        try TensorStreamReader(ArraySource(bytes, step: step)).readAll()
    }

    func testFloatMatrixRoundTrip() throws {
        let values = (0..<(37 * 5)).map { Float($0) * 0.25 - 3 }
        let t = Tensor(name: "embedding", shape: [37, 5], floats: values, meta: ["model": "m"])
        let back = try decode(try encode([t]))
        XCTAssertEqual(back.count, 1)
        XCTAssertEqual(back[0].shape, [37, 5])
        XCTAssertEqual(back[0].floats(), values)
        XCTAssertEqual(back[0].meta, ["model": "m"])
    }
}
