import LinearAlgebra
import XCTest

/// `converted` and `asFloats`: the specialised paths give what the element-by-element
/// conversion gives, bit for bit, special values included.
final class ConversionTests: XCTestCase {
    let floats: [Float] = [0, -0, 1, -1.5, .pi, .ulpOfOne, .leastNonzeroMagnitude, .leastNormalMagnitude,
                           .greatestFiniteMagnitude, -.greatestFiniteMagnitude, .infinity, -.infinity, .nan, 3e-39, 1e30]

    func testFloatsToFloatAndDouble() {
        let f: [Float] = converted(floats)
        XCTAssertEqual(f.map(\.bitPattern), floats.map(\.bitPattern))
        let d: [Double] = converted(floats)
        XCTAssertEqual(d.count, floats.count)
        for (x, y) in zip(floats, d) { XCTAssertEqual(y.bitPattern, Double(x).bitPattern, "\(x)") }
        XCTAssertEqual((converted([Float]()) as [Double]).count, 0)
    }

    func testBackToFloats() {
        XCTAssertEqual(asFloats(floats).map(\.bitPattern), floats.map(\.bitPattern))
        // Doubles that round: halfway cases, values beyond Float's range, subnormals.
        let doubles: [Double] = [1 + 0x1p-24, 1 + 0x1p-24 + 0x1p-40, 1e300, -1e300, 1e-50, 0x1p-149 * 1.5, .nan, -0.0, 0.1]
        XCTAssertEqual(asFloats(doubles).map(\.bitPattern), doubles.map { Float($0).bitPattern })
        XCTAssertEqual(asFloats(converted(floats) as [Double]).map(\.bitPattern), floats.map(\.bitPattern))
    }
}
