import Foundation
import Layers
import LinearAlgebra
import XCTest

/// Each block against a direct Double-precision evaluation of its definition.
final class LayersTests: XCTestCase {
    var seed: UInt64 = 42
    func rand() -> Float {
        seed = seed &* 6364136223846793005 &+ 1442695040888963407
        return Float(Double(seed >> 40) / Double(1 << 24) * 2 - 1)
    }
    func randMatrix(_ r: Int, _ c: Int) -> Matrix<Float> { Matrix(rows: r, cols: c, data: (0..<(r * c)).map { _ in rand() }) }

    func testFastErfAgainstLibm() {
        var worst = 0.0, at = 0.0
        var x = -6.0
        while x <= 6.0 {
            let e = abs(Double(fastErf(Float(x))) - erf(x))
            if e > worst { worst = e; at = x }
            x += 1e-4
        }
        XCTAssertLessThan(worst, 5e-7, "fastErf is off by \(worst) at \(at)")
        XCTAssertEqual(fastErf(Float.infinity), 1)
        XCTAssertEqual(fastErf(-Float.infinity), -1)
    }

    func testFastExpAgainstLibm() {
        var worst = 0.0, at = 0.0
        var x = -87.0
        while x <= 88.0 {
            let f = Float(x)
            let e = abs(Double(fastExp(f)) - exp(Double(f))) / exp(Double(f))
            if e > worst { worst = e; at = Double(f) }
            x += 1.7e-3
        }
        XCTAssertLessThan(worst, 2e-7, "fastExp is off by \(worst) (relative) at \(at)")
        XCTAssertEqual(fastExp(0), 1)
        XCTAssertEqual(fastExp(-Float.infinity), fastExp(-87))
        XCTAssertGreaterThan(fastExp(-1000), 0)
    }

    /// The vectorised training path (fastErf, fastExp) against GELU and GELU' in Double with the
    /// C library's erf and exp: within 1e-6 absolute (and the forward value equals the inference
    /// path's bit for bit).
    func testGELUTrainingPathAgainstScalarErf() {
        let xs: [Float] = stride(from: -12, through: 12, by: 0.00731).map { Float($0) } + [0, -0.0, 1e-30, -1e-30, 40, -40]
        var p = xs, d = [Float](repeating: 0, count: xs.count)
        p.withUnsafeMutableBufferPointer { pb in d.withUnsafeMutableBufferPointer { GELU<Float>.apply(pb, derivative: $0) } }
        var inference = xs
        inference.withUnsafeMutableBufferPointer { GELU<Float>.apply($0) }
        var worstY = 0.0, worstD = 0.0
        for (i, x) in xs.enumerated() {
            let v = Double(x)
            let cdf = 0.5 * (1 + erf(v / 2.0.squareRoot()))
            worstY = max(worstY, abs(Double(p[i]) - v * cdf))
            worstD = max(worstD, abs(Double(d[i]) - (cdf + v * exp(-0.5 * v * v) / (2 * Double.pi).squareRoot())))
            XCTAssertEqual(p[i], inference[i], "x = \(x)")
        }
        XCTAssertLessThan(worstY, 1e-6, "GELU off by \(worstY)")
        XCTAssertLessThan(worstD, 1e-6, "GELU' off by \(worstD)")
    }

    func testGELUFloatAndDouble() {
        let values: [Float] = stride(from: -8, through: 8, by: 0.0137).map { Float($0) }  // not a multiple of 8
        var m = Matrix(rows: 1, cols: values.count, data: values)
        GELU<Float>().forwardInPlace(&m)
        var md = Matrix(rows: 1, cols: values.count, data: values.map(Double.init))
        var deriv: [Double] = []
        GELU<Double>().forwardInPlace(&md, derivative: &deriv)
        for (i, v) in values.enumerated() {
            let x = Double(v), exact = x * 0.5 * (1 + erf(x / 2.0.squareRoot()))
            XCTAssertEqual(Double(m.data[i]), exact, accuracy: 1e-6 * max(1, abs(x)))
            XCTAssertEqual(md.data[i], exact, accuracy: 1e-12)
            // The derivative against a central difference.
            let h = 1e-5
            func g(_ t: Double) -> Double { t * 0.5 * (1 + erf(t / 2.0.squareRoot())) }
            XCTAssertEqual(deriv[i], (g(x + h) - g(x - h)) / (2 * h), accuracy: 1e-7)
        }
    }

    func testLinearMatchesLoops() {
        let x = randMatrix(7, 5), w = randMatrix(3, 5)
        let b: [Float] = [0.5, -1, 2]
        let y = Linear(weight: w, bias: b).forward(x)
        let y0 = Linear(weight: w).forward(x)
        for r in 0..<7 {
            for o in 0..<3 {
                var s = 0.0
                for i in 0..<5 { s += Double(x[r, i]) * Double(w[o, i]) }
                XCTAssertEqual(Double(y[r, o]), s + Double(b[o]), accuracy: 1e-5)
                XCTAssertEqual(Double(y0[r, o]), s, accuracy: 1e-5)
            }
        }
    }

    func testLayerNormMatchesDefinition() {
        let x = randMatrix(4, 6)
        let w: [Float] = [1, 2, 0.5, -1, 1, 3], b: [Float] = [0, 0.1, 0.2, 0.3, 0.4, 0.5]
        let ln = LayerNorm(weight: w, bias: b, eps: 1e-5)
        var cache = LayerNorm<Float>.Cache(xhat: Matrix(rows: 0, cols: 0), invStd: [])
        let y = ln.forward(x), y2 = ln.forward(x, cache: &cache)
        XCTAssertEqual(y, y2)
        for r in 0..<4 {
            let row = (0..<6).map { Double(x[r, $0]) }
            let mean = row.reduce(0, +) / 6
            let v = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 6
            for j in 0..<6 {
                let xh = (row[j] - mean) / (v + 1e-5).squareRoot()
                XCTAssertEqual(Double(y[r, j]), xh * Double(w[j]) + Double(b[j]), accuracy: 1e-5)
                XCTAssertEqual(Double(cache.xhat[r, j]), xh, accuracy: 1e-5)
            }
            XCTAssertEqual(Double(cache.invStd[r]), 1 / (v + 1e-5).squareRoot(), accuracy: 1e-4)
        }
    }

    func makeAttention(hidden: Int, heads: Int) -> SelfAttention<Float> {
        func lin() -> Linear<Float> { Linear(weight: randMatrix(hidden, hidden), bias: (0..<hidden).map { _ in rand() }) }
        return SelfAttention(query: lin(), key: lin(), value: lin(), output: lin(), heads: heads)
    }

    /// softmax(QKᵀ/√d)V per head and per sequence, in Double, straight from the definition.
    func referenceContext(_ a: SelfAttention<Float>, _ x: Matrix<Float>, _ seq: Range<Int>) -> [[Double]] {
        let h = a.hidden, dh = a.headDim
        func proj(_ l: Linear<Float>, _ r: Int) -> [Double] {
            (0..<h).map { o in (0..<h).reduce(Double(l.bias[o])) { $0 + Double(x[r, $1]) * Double(l.weight[o, $1]) } }
        }
        let q = seq.map { proj(a.query, $0) }, k = seq.map { proj(a.key, $0) }, v = seq.map { proj(a.value, $0) }
        var ctx = [[Double]](repeating: [Double](repeating: 0, count: h), count: seq.count)
        for head in 0..<a.heads {
            for i in 0..<seq.count {
                var s = (0..<seq.count).map { j in (0..<dh).reduce(0.0) { $0 + q[i][head * dh + $1] * k[j][head * dh + $1] } / Double(dh).squareRoot() }
                let m = s.max()!
                s = s.map { exp($0 - m) }
                let z = s.reduce(0, +)
                for c in 0..<dh { ctx[i][head * dh + c] = (0..<seq.count).reduce(0.0) { $0 + s[$1] / z * v[$1][head * dh + c] } }
            }
        }
        return ctx.map { c in (0..<h).map { o in (0..<h).reduce(Double(a.output.bias[o])) { $0 + c[$1] * Double(a.output.weight[o, $1]) } } }
    }

    func testAttentionOverRealTokensOnly() {
        let a = makeAttention(hidden: 8, heads: 2)
        // Padded batch of two sequences of lengths 3 and 5 in 5-row slots; padding rows hold junk.
        var x = randMatrix(10, 8)
        let seqs = [0..<3, 5..<10]
        let y = a.forward(x, sequences: seqs)
        for s in seqs {
            let ref = referenceContext(a, x, s)
            for (i, r) in s.enumerated() { for c in 0..<8 { XCTAssertEqual(Double(y[r, c]), ref[i][c], accuracy: 1e-4) } }
        }
        // Changing the padding rows changes nothing in the real rows.
        for c in 0..<8 { x[3, c] = 100; x[4, c] = -50 }
        let y2 = a.forward(x, sequences: seqs)
        for r in [0, 1, 2, 5, 6, 7, 8, 9] { for c in 0..<8 { XCTAssertEqual(y[r, c], y2[r, c]) } }
        // A packed batch gives the same rows.
        let packed = Matrix(rows: 8, cols: 8, data: Array(x.data[0 ..< 24] + x.data[40 ..< 80]))
        let yp = a.forward(packed, sequences: [0..<3, 3..<8])
        for c in 0..<8 {
            XCTAssertEqual(yp[1, c], y[1, c], accuracy: 1e-5)
            XCTAssertEqual(yp[6, c], y[8, c], accuracy: 1e-5)
        }
    }

    func testTransformerLayerComposition() {
        let hidden = 8, inter = 12
        let a = makeAttention(hidden: hidden, heads: 4)
        let ln1 = LayerNorm<Float>(weight: (0..<hidden).map { _ in 1 + rand() }, bias: (0..<hidden).map { _ in rand() }, eps: 1e-12)
        let ln2 = LayerNorm<Float>(weight: (0..<hidden).map { _ in 1 + rand() }, bias: (0..<hidden).map { _ in rand() }, eps: 1e-12)
        let w1 = Linear(weight: randMatrix(inter, hidden), bias: (0..<inter).map { _ in rand() })
        let w2 = Linear(weight: randMatrix(hidden, inter), bias: (0..<hidden).map { _ in rand() })
        let layer = TransformerLayer(attention: a, attentionNorm: ln1, intermediate: w1, output: w2, outputNorm: ln2)
        let x = randMatrix(6, hidden)
        var seen: [TransformerLayer<Float>.Point: Matrix<Float>] = [:]
        let y = layer.forward(x, sequences: [0..<6]) { seen[$0] = $1 }
        // Reference in Double: h = LN1(x + A(x)); y = LN2(h + W2 gelu(W1 h)).
        let att = referenceContext(a, x, 0..<6)
        func ln(_ v: [Double], _ l: LayerNorm<Float>) -> [Double] {
            let m = v.reduce(0, +) / Double(v.count)
            let s = v.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(v.count)
            return v.indices.map { ($0 < 0 ? 0 : (v[$0] - m) / (s + 1e-12).squareRoot()) * Double(l.weight[$0]) + Double(l.bias[$0]) }
        }
        for r in 0..<6 {
            let h = ln((0..<hidden).map { att[r][$0] + Double(x[r, $0]) }, ln1)
            let mid = (0..<inter).map { o -> Double in
                let z = (0..<hidden).reduce(Double(w1.bias[o])) { $0 + h[$1] * Double(w1.weight[o, $1]) }
                return z * 0.5 * (1 + erf(z / 2.0.squareRoot()))
            }
            let out = ln((0..<hidden).map { o in (0..<inter).reduce(Double(w2.bias[o])) { $0 + mid[$1] * Double(w2.weight[o, $1]) } + h[o] }, ln2)
            for c in 0..<hidden {
                XCTAssertEqual(Double(y[r, c]), out[c], accuracy: 1e-4)
                XCTAssertEqual(Double(seen[.ffnIn]![r, c]), h[c], accuracy: 1e-4)
            }
            for c in 0..<inter { XCTAssertEqual(Double(seen[.ffnHidden]![r, c]), mid[c], accuracy: 1e-4) }
        }
        XCTAssertEqual(seen[.output], y)
    }
}
