import CElementwise
import Foundation
import Layers
import XCTest

/// The C element-wise kernels (Sources/CElementwise): every kernel this CPU has gives the bits of
/// the scalar rule, written here in Swift, on odd sizes, strided rows and special values.
final class ElementwiseTests: XCTestCase {
    var seed: UInt64 = 7
    func rand() -> Float {
        seed = seed &* 6364136223846793005 &+ 1442695040888963407
        return Float(Double(seed >> 40) / Double(1 << 24) * 8 - 4)
    }

    /// The kernels this CPU runs, each chosen in turn (the best again afterwards).
    func forEachKernel(_ body: (String) -> Void) {
        let have = celem_kernels()
        XCTAssertNotEqual(have & Int32(CELEM_KERNEL_GENERIC), 0)
        for k in [CELEM_KERNEL_GENERIC, CELEM_KERNEL_AVX2, CELEM_KERNEL_AVX512] where have & Int32(k) != 0 {
            celem_use_kernel(Int32(k))
            body(String(cString: celem_kernel_name()))
        }
        celem_use_kernel(0)
    }

    func same(_ a: [Float], _ b: [Float], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, what, file: file, line: line)
        for i in a.indices where a[i].bitPattern != b[i].bitPattern && !(a[i].isNaN && b[i].isNaN) {
            XCTFail("\(what): element \(i): \(a[i]) against \(b[i])", file: file, line: line)
            return
        }
    }

    /// GELU and GELU': each kernel against the scalar rule on fastErf and fastExp, element by
    /// element, over lengths that leave every tail of a 16-wide loop, and special values.
    func testGELUKernelsGiveTheScalarRuleBits() {
        let specials: [Float] = [0, -0.0, .nan, .infinity, -.infinity, 4, -4, 4.0000005, 88, -87, 1e-38, -1e-45, 5.6568542, 12, -12,
                                 .greatestFiniteMagnitude, -.greatestFiniteMagnitude]
        for n in [1, 7, 15, 16, 17, 33, 100, 257] {
            let xs = (0..<n).map { i in i < specials.count && n > 20 ? specials[i] : rand() * 3 }
            let y = xs.map { v in v * 0.5 * (1 + fastErf(v * 0.70710678118654752)) }
            let d = xs.map { v in 0.5 * (1 + fastErf(v * 0.70710678118654752)) + v * fastExp(-0.5 * v * v) * 0.39894228040143268 }
            forEachKernel { name in
                var p = xs
                p.withUnsafeMutableBufferPointer { celem_gelu_f32($0.baseAddress!, n) }
                same(p, y, "gelu \(name) n \(n)")
                var q = xs, g = [Float](repeating: .nan, count: n)
                q.withUnsafeMutableBufferPointer { pq in g.withUnsafeMutableBufferPointer { celem_gelu_derivative_f32(pq.baseAddress!, $0.baseAddress!, n) } }
                same(q, y, "gelu (with derivative) \(name) n \(n)")
                same(g, d, "gelu' \(name) n \(n)")
            }
        }
    }

    /// The row kernels on a rows × cols block inside rows of ld elements: the elements between
    /// blocks untouched, c · (y + b) in this order, the sums added row after row, max(s, 0) as Swift's (−0 → +0, NaN stays),
    /// the products kept only where s ≥ 0 (0 included).
    func testRowKernelsGiveTheScalarLoopsBits() {
        for (rows, cols) in [(1, 1), (3, 5), (7, 16), (5, 17), (2, 47), (9, 64), (4, 129)] {
            let ld = cols + 3
            let x = (0..<(rows * ld)).map { _ in rand() }, y0 = (0..<(rows * ld)).map { _ in rand() }
            var s = (0..<cols).map { _ in rand() }, b = (0..<cols).map { _ in rand() }, acc0 = (0..<cols).map { _ in rand() }
            for (j, v) in [Float(0), -0.0, .nan, -1e-30, 1e-30].enumerated() where j < cols { s[cols - 1 - j] = v }
            if cols > 1 { b[0] = -0.0 }
            func rowwise(_ f: (Int, Int) -> Void) { for r in 0..<rows { for j in 0..<cols { f(r, j) } } }

            var addRow = y0; rowwise { r, j in addRow[r * ld + j] += b[j] }
            let c = rand()
            var addRowScale = y0; rowwise { r, j in addRowScale[r * ld + j] = c * (y0[r * ld + j] + b[j]) }
            let squares = x.map { $0 * $0 }
            var sums = acc0; rowwise { r, j in sums[j] += x[r * ld + j] }
            var scaled = y0; rowwise { r, j in scaled[r * ld + j] = x[r * ld + j] * max(s[j], 0) }
            var inPlace = x; rowwise { r, j in inPlace[r * ld + j] = x[r * ld + j] * max(s[j], 0) }
            var products = acc0
            rowwise { r, j in if s[j] >= 0 { products[j] += x[r * ld + j] * y0[r * ld + j] } }

            forEachKernel { name in
                let what = "\(name) \(rows)×\(cols)"
                var v = y0
                v.withUnsafeMutableBufferPointer { pv in b.withUnsafeBufferPointer { celem_add_row_f32(pv.baseAddress!, ld, $0.baseAddress!, rows, cols) } }
                same(v, addRow, "add_row \(what)")
                v = y0
                v.withUnsafeMutableBufferPointer { pv in b.withUnsafeBufferPointer { celem_add_row_scale_f32(pv.baseAddress!, ld, $0.baseAddress!, c, rows, cols) } }
                same(v, addRowScale, "add_row_scale \(what)")
                v = y0
                v.withUnsafeMutableBufferPointer { pv in x.withUnsafeBufferPointer { celem_square_f32(pv.baseAddress!, $0.baseAddress!, x.count) } }
                same(v, squares, "square \(what)")
                v = x
                v.withUnsafeMutableBufferPointer { celem_square_f32($0.baseAddress!, $0.baseAddress!, x.count) }
                same(v, squares, "square in place \(what)")
                var a = acc0
                a.withUnsafeMutableBufferPointer { pa in x.withUnsafeBufferPointer { celem_sum_rows_f32(pa.baseAddress!, $0.baseAddress!, ld, rows, cols) } }
                same(a, sums, "sum_rows \(what)")
                v = y0
                v.withUnsafeMutableBufferPointer { pv in
                    x.withUnsafeBufferPointer { px in s.withUnsafeBufferPointer { celem_scale_relu_f32(pv.baseAddress!, ld, px.baseAddress!, ld, $0.baseAddress!, rows, cols) } }
                }
                same(v, scaled, "scale_relu \(what)")
                v = x
                v.withUnsafeMutableBufferPointer { pv in s.withUnsafeBufferPointer { celem_scale_relu_f32(pv.baseAddress!, ld, pv.baseAddress!, ld, $0.baseAddress!, rows, cols) } }
                same(v, inPlace, "scale_relu in place \(what)")
                a = acc0
                a.withUnsafeMutableBufferPointer { pa in
                    x.withUnsafeBufferPointer { px in
                        y0.withUnsafeBufferPointer { py in
                            s.withUnsafeBufferPointer { celem_sum_products_where_nonnegative_f32(pa.baseAddress!, px.baseAddress!, ld, py.baseAddress!, ld, $0.baseAddress!, rows, cols) }
                        }
                    }
                }
                same(a, products, "sum_products_where_nonnegative \(what)")
            }
        }
    }

    /// Layer normalisation of several rows at once (eight rows' sums interleaved, then the rest one
    /// by one) against LayerNorm.normalize row by row: the same bits for the rows, x̂ and 1/σ,
    /// with and without x̂ and 1/σ asked for; rows of large mean (where the order of the sums shows).
    func testLayerNormKernelGivesTheRowByRowBits() {
        for (rows, d) in [(1, 1), (3, 7), (8, 16), (9, 33), (17, 384), (24, 5)] {
            let x = (0..<(rows * d)).map { i in rand() * 100 + Float(i % d) * 1e3 }
            let w = (0..<d).map { _ in rand() }, b = (0..<d).map { _ in rand() }
            let eps: Float = 1e-12
            var y = x, xhat = [Float](repeating: 0, count: rows * d), inv = [Float](repeating: 0, count: rows)
            for r in 0..<rows {
                y.withUnsafeMutableBufferPointer { py in
                    xhat.withUnsafeMutableBufferPointer { ph in
                        inv[r] = LayerNorm<Float>.normalize(py.baseAddress! + r * d, d, w, b, eps, xhat: ph.baseAddress! + r * d)
                    }
                }
            }
            forEachKernel { name in
                var v = x, h = [Float](repeating: .nan, count: rows * d), s = [Float](repeating: .nan, count: rows)
                v.withUnsafeMutableBufferPointer { pv in
                    h.withUnsafeMutableBufferPointer { ph in
                        s.withUnsafeMutableBufferPointer { celem_layer_norm_f32(pv.baseAddress!, rows, d, w, b, eps, ph.baseAddress!, $0.baseAddress!) }
                    }
                }
                same(v, y, "layer norm \(name) \(rows)×\(d)")
                same(h, xhat, "x̂ \(name) \(rows)×\(d)")
                same(s, inv, "1/σ \(name) \(rows)×\(d)")
                v = x
                v.withUnsafeMutableBufferPointer { celem_layer_norm_f32($0.baseAddress!, rows, d, w, b, eps, nil, nil) }
                same(v, y, "layer norm without x̂ \(name) \(rows)×\(d)")
            }
        }
    }

    /// A test's choice of kernel holds until reset; a kernel the CPU lacks (or two at once) is refused.
    func testKernelChoice() {
        let best = String(cString: celem_kernel_name())
        celem_use_kernel(Int32(CELEM_KERNEL_GENERIC))
        XCTAssertEqual(String(cString: celem_kernel_name()), "generic")
        celem_use_kernel(Int32(CELEM_KERNEL_GENERIC | CELEM_KERNEL_AVX2))
        XCTAssertEqual(String(cString: celem_kernel_name()), best)
        celem_use_kernel(0)
        XCTAssertEqual(String(cString: celem_kernel_name()), best)
        XCTAssertEqual(best, celem_kernels() & Int32(CELEM_KERNEL_AVX512) != 0 ? "avx512" : celem_kernels() & Int32(CELEM_KERNEL_AVX2) != 0 ? "avx2" : "generic")
    }
}
