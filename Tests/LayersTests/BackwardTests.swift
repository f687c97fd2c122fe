import XCTest
import LinearAlgebra
@testable import Layers

/// The backward methods of Layers' types (used by the SVE network) against central finite
/// differences of the loss L = Σ g ∘ forward(x), in Double.
final class BackwardTests: XCTestCase {
    /// Deterministic values in [-1, 1].
    func values(_ n: Int, _ seed: Int) -> [Double] { (0..<n).map { sin(Double($0 * 7 + seed) * 1.3) } }

    func loss(_ y: Matrix<Double>, _ g: [Double]) -> Double { zip(y.data, g).map(*).reduce(0, +) }

    func testLinearBackward() {
        let rows = 3, inF = 4, outF = 5, h = 1e-6
        var layer = Linear<Double>(weight: Matrix(rows: outF, cols: inF, data: values(outF * inF, 1)), bias: values(outF, 2))
        let x = Matrix<Double>(rows: rows, cols: inF, data: values(rows * inF, 3))
        let g = values(rows * outF, 4)
        var gw = Matrix<Double>(rows: outF, cols: inF), gb = [Double](repeating: 0, count: outF)
        let dx = layer.backward(Matrix(rows: rows, cols: outF, data: g), input: x, weightGrad: &gw, biasGrad: &gb)
        for i in x.data.indices {
            var xp = x, xm = x
            xp.data[i] += h; xm.data[i] -= h
            XCTAssertEqual(dx.data[i], (loss(layer.forward(xp), g) - loss(layer.forward(xm), g)) / (2 * h), accuracy: 1e-8)
        }
        for i in layer.weight.data.indices {
            let w0 = layer.weight.data[i]
            layer.weight.data[i] = w0 + h; let lp = loss(layer.forward(x), g)
            layer.weight.data[i] = w0 - h; let lm = loss(layer.forward(x), g)
            layer.weight.data[i] = w0
            XCTAssertEqual(gw.data[i], (lp - lm) / (2 * h), accuracy: 1e-8)
        }
        for j in 0..<outF { XCTAssertEqual(gb[j], (0..<rows).map { g[$0 * outF + j] }.reduce(0, +), accuracy: 1e-12) }
    }

    func testLayerNormBackward() {
        let rows = 3, d = 6, h = 1e-6
        var ln = LayerNorm<Double>(weight: values(d, 5).map { 1 + 0.3 * $0 }, bias: values(d, 6), eps: 1e-5)
        let x = Matrix<Double>(rows: rows, cols: d, data: values(rows * d, 7).map { 2 * $0 })
        let g = values(rows * d, 8)
        var cache = LayerNorm<Double>.Cache()
        let y = ln.forward(x, cache: &cache)
        XCTAssertEqual(y.data, ln.forward(x).data)
        var gw = [Double](repeating: 0, count: d), gb = [Double](repeating: 0, count: d)
        let dx = ln.backward(Matrix(rows: rows, cols: d, data: g), cache: cache, weightGrad: &gw, biasGrad: &gb)
        for i in x.data.indices {
            var xp = x, xm = x
            xp.data[i] += h; xm.data[i] -= h
            XCTAssertEqual(dx.data[i], (loss(ln.forward(xp), g) - loss(ln.forward(xm), g)) / (2 * h), accuracy: 1e-7)
        }
        for j in 0..<d {
            let w0 = ln.weight[j]
            ln.weight[j] = w0 + h; let lp = loss(ln.forward(x), g)
            ln.weight[j] = w0 - h; let lm = loss(ln.forward(x), g)
            ln.weight[j] = w0
            XCTAssertEqual(gw[j], (lp - lm) / (2 * h), accuracy: 1e-7)
            XCTAssertEqual(gb[j], (0..<rows).map { g[$0 * d + j] }.reduce(0, +), accuracy: 1e-12)
        }
    }

    func testGELUBackwardAndTrainingPath() {
        let x = Matrix<Double>(rows: 2, cols: 5, data: values(10, 9).map { 3 * $0 })
        let g = values(10, 10)
        var y = x, deriv: [Double] = []
        GELU<Double>().forwardInPlace(&y, derivative: &deriv)
        XCTAssertEqual(y.data, GELU<Double>().forward(x).data)
        var dy = Matrix<Double>(rows: 2, cols: 5, data: g)
        GELU<Double>().backward(&dy, derivative: deriv)
        let h = 1e-6
        for i in x.data.indices {
            var xp = x, xm = x
            xp.data[i] += h; xm.data[i] -= h
            XCTAssertEqual(dy.data[i], (loss(GELU<Double>().forward(xp), g) - loss(GELU<Double>().forward(xm), g)) / (2 * h), accuracy: 1e-8)
        }
        // Float: the training path (libm erff) and the inference path (fastErf) agree to float precision.
        var f = Matrix<Float>(rows: 2, cols: 5, data: x.data.map(Float.init)), df: [Float] = []
        GELU<Float>().forwardInPlace(&f, derivative: &df)
        for (a, b) in zip(f.data, GELU<Float>().forward(Matrix(rows: 2, cols: 5, data: x.data.map(Float.init))).data) {
            XCTAssertEqual(a, b, accuracy: 2e-6)
        }
        for (a, b) in zip(df, deriv) { XCTAssertEqual(Double(a), b, accuracy: 1e-5) }
    }

    /// SelfAttention's backward (the softmax with the padding mask, the four projections): dL/dx
    /// and every weight and bias gradient, two sequences of 2 and 3 rows, 2 heads.
    func testAttentionBackward() {
        let hid = 4, rows = 5, h = 1e-6
        let seqs = [0 ..< 2, 2 ..< 5]
        func lin(_ seed: Int) -> Linear<Double> { Linear(weight: Matrix(rows: hid, cols: hid, data: values(hid * hid, seed)), bias: values(hid, seed + 50)) }
        var att = SelfAttention<Double>(query: lin(11), key: lin(12), value: lin(13), output: lin(14), heads: 2)
        let x = Matrix<Double>(rows: rows, cols: hid, data: values(rows * hid, 15).map { 1.5 * $0 })
        let g = values(rows * hid, 16)
        var cache = SelfAttention<Double>.Cache()
        let y = att.forward(x, sequences: seqs, cache: &cache)
        XCTAssertEqual(y, att.forward(x, sequences: seqs))
        var grads = SelfAttention<Double>.Gradients(hidden: hid)
        let dx = att.backward(Matrix(rows: rows, cols: hid, data: g), cache: cache, gradients: &grads)
        let f = { (a: SelfAttention<Double>, x: Matrix<Double>) in self.loss(a.forward(x, sequences: seqs), g) }
        for i in x.data.indices {
            var xp = x, xm = x
            xp.data[i] += h; xm.data[i] -= h
            XCTAssertEqual(dx.data[i], (f(att, xp) - f(att, xm)) / (2 * h), accuracy: 1e-8, "dx[\(i)]")
        }
        let paths: [(WritableKeyPath<SelfAttention<Double>, Linear<Double>>, (weight: Matrix<Double>, bias: [Double]))] =
            [(\.query, grads.query), (\.key, grads.key), (\.value, grads.value), (\.output, grads.output)]
        for (k, (path, grad)) in paths.enumerated() {
            for i in 0..<(hid * hid) {
                let w0 = att[keyPath: path].weight.data[i]
                att[keyPath: path].weight.data[i] = w0 + h; let lp = f(att, x)
                att[keyPath: path].weight.data[i] = w0 - h; let lm = f(att, x)
                att[keyPath: path].weight.data[i] = w0
                XCTAssertEqual(grad.weight.data[i], (lp - lm) / (2 * h), accuracy: 1e-8, "projection \(k) weight[\(i)]")
            }
            for i in 0..<hid {
                let b0 = att[keyPath: path].bias[i]
                att[keyPath: path].bias[i] = b0 + h; let lp = f(att, x)
                att[keyPath: path].bias[i] = b0 - h; let lm = f(att, x)
                att[keyPath: path].bias[i] = b0
                XCTAssertEqual(grad.bias[i], (lp - lm) / (2 * h), accuracy: 1e-8, "projection \(k) bias[\(i)]")
            }
        }
    }
}
