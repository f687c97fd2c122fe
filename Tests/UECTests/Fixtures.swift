import Foundation
import LinearAlgebra
import XCTest

/// A golden fixture made by scripts/fixtures/uec.py: arrays stored as {shape, data}.
struct Fixture {
    let arrays: [String: (shape: [Int], data: [Double])]

    init(_ name: String, file: String = #filePath) throws {
        let url = URL(fileURLWithPath: file).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/uec_\(name).json")
        let obj = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: [String: Any]]
        var a: [String: (shape: [Int], data: [Double])] = [:]
        for (k, v) in obj {
            let shape = (v["shape"] as! [NSNumber]).map(\.intValue)
            let data = (v["data"] as! [NSNumber]).map(\.doubleValue)
            a[k] = (shape, data)
        }
        arrays = a
    }

    func scalar(_ k: String) -> Double { arrays[k]!.data[0] }
    func int(_ k: String) -> Int { Int(arrays[k]!.data[0]) }
    func doubles(_ k: String) -> [Double] { arrays[k]!.data }
    func floats(_ k: String) -> [Float] { arrays[k]!.data.map { Float($0) } }

    func matrixD(_ k: String) -> Matrix<Double> {
        let a = arrays[k]!
        return Matrix(rows: a.shape[0], cols: a.shape.count > 1 ? a.shape[1] : 1, data: a.data)
    }

    func matrixF(_ k: String) -> Matrix<Float> {
        let a = arrays[k]!
        return Matrix(rows: a.shape[0], cols: a.shape.count > 1 ? a.shape[1] : 1, data: a.data.map { Float($0) })
    }
}

func assertClose<T: BinaryFloatingPoint>(_ a: [T], _ b: [T], rtol: Double = 1e-5, atol: Double = 1e-7,
                                         _ what: String, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, "\(what): sizes differ", file: file, line: line)
    for i in 0..<min(a.count, b.count) {
        let x = Double(a[i]), y = Double(b[i])
        if !(abs(x - y) <= atol + rtol * abs(y)) {
            XCTFail("\(what)[\(i)]: \(x) vs expected \(y)", file: file, line: line)
            return
        }
    }
}
