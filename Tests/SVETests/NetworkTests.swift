import Foundation
import LinearAlgebra
import XCTest
@testable import SVE
import Probability

/// Loads a JSON fixture written by scripts/fixtures/sve.py.
func fixture(_ name: String, _ file: String = #filePath) throws -> [String: Any] {
    let url = URL(fileURLWithPath: file).deletingLastPathComponent().appendingPathComponent("Fixtures/\(name)")
    return try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
}

func doubles(_ any: Any?) -> [Double] { (any as! [NSNumber]).map(\.doubleValue) }

/// A small random network in float64 for the gradient checks.
func smallNetwork(method: EnsembleMethod, stack: String, members: Int = 3, seed: UInt64 = 7,
                  rank: Int? = nil) throws -> EnsembleNetwork<Double> {
    var rng = SeededGenerator(seed: seed)
    let spec = try StackSpec(parsing: stack)
    var bases: [String: LayerBasis] = [:]
    var dim = 5
    let widths = [7, 5, 4, 6]
    var lns: [String: LayerNormWeights] = [:]
    var li = 0
    var saved: [Int] = []
    for op in spec.ops {
        switch op {
        case .linear(let n):
            // Inside a residual block the last linear layer must give back the block's width.
            let closesBlock: Bool = {
                guard let i = spec.ops.firstIndex(of: op) else { return false }
                return spec.ops[(i + 1)...].first { if case .linear = $0 { return true }; return $0 == .residualEnd } == .residualEnd
            }()
            let out = closesBlock && !saved.isEmpty ? saved.last! : widths[li % widths.count]
            li += 1
            let w = Matrix<Float>(rows: out, cols: dim, data: (0..<(out * dim)).map { _ in Float(rng.normal() * 0.6) })
            bases[n] = try decompose(weight: w, bias: (0..<out).map { _ in Float(rng.normal() * 0.2) }, rank: rank).basis
            dim = out
        case .layerNorm(let n, _):
            lns[n] = LayerNormWeights(weight: (0..<dim).map { _ in Float(1 + 0.2 * rng.normal()) },
                                      bias: (0..<dim).map { _ in Float(0.1 * rng.normal()) })
        case .residualBegin: saved.append(dim)
        case .residualEnd: saved.removeLast()
        default: break
        }
    }
    // Large initial noise so that members differ and every path carries gradient.
    return try EnsembleNetwork<Double>(spec: spec, method: method, members: members, inputDim: 5, classes: 4,
                                       bases: bases, layerNorms: lns,
                                       options: InitOptions(sigmaInit: 0.3, biasNoise: 0.2, headStd: 0.5), rng: &rng)
}

final class GradientTests: XCTestCase {
    let stacks = [
        "linear:a gelu linear:b",
        "residual(linear:a gelu linear:b) layernorm:n",
        "linear:a tanh residual(linear:b relu linear:c) layernorm:n:1e-5 linear:d",
        "layernorm:n0 linear:a relu",
    ]

    /// Central finite differences of the loss against the analytic gradient of every trainable
    /// parameter (float64).
    func checkGradients(_ net: EnsembleNetwork<Double>, shared: Bool, file: StaticString = #filePath, line: UInt = #line) {
        var rng = SeededGenerator(seed: 99)
        let B = 4
        let rows = shared ? B : net.members * B
        let x = Matrix<Double>(rows: rows, cols: 5, data: (0..<(rows * 5)).map { _ in rng.normal() })
        let y = (0..<rows).map { _ in rng.below(4) }
        net.zeroGradients()
        _ = net.lossAndGradient(x, labels: y, shared: shared)
        var checked = 0
        let analyticAll = net.trainable.map(\.grad)  // before any perturbation
        for (p, analytic) in zip(net.trainable, analyticAll) {
            for j in 0..<p.count {
                let old = p.value[j]
                let h = 1e-6
                p.value[j] = old + h
                net.zeroGradients()
                let lp = net.lossAndGradient(x, labels: y, shared: shared)
                p.value[j] = old - h
                net.zeroGradients()
                let lm = net.lossAndGradient(x, labels: y, shared: shared)
                p.value[j] = old
                let numeric = (lp - lm) / (2 * h)
                XCTAssertEqual(analytic[j], numeric, accuracy: 1e-7 + 1e-5 * abs(numeric),
                               "\(net.spec) shared=\(shared) \(p.name)[\(j)]", file: file, line: line)
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 20, file: file, line: line)
    }

    func testSVEGradientsByFiniteDifferences() throws {
        for stack in stacks {
            try checkGradients(smallNetwork(method: .sve, stack: stack), shared: true)
            try checkGradients(smallNetwork(method: .sve, stack: stack), shared: false)
        }
    }

    func testTruncatedRankGradients() throws {
        try checkGradients(smallNetwork(method: .sve, stack: "linear:a gelu linear:b", rank: 3), shared: true)
    }

    func testDeepEnsembleGradientsByFiniteDifferences() throws {
        for stack in stacks {
            try checkGradients(smallNetwork(method: .deepEnsemble, stack: stack), shared: true)
            try checkGradients(smallNetwork(method: .deepEnsemble, stack: stack), shared: false)
        }
    }

    /// A negative singular value is clamped to 0 and gets no gradient.
    func testNegativeSingularValueIsClampedAndFrozen() throws {
        let net = try smallNetwork(method: .sve, stack: "linear:a gelu linear:b")
        let s = net.parameter("a.s")!
        s.value[1] = -0.5
        var rng = SeededGenerator(seed: 1)
        let x = Matrix<Double>(rows: 4, cols: 5, data: (0..<20).map { _ in rng.normal() })
        net.zeroGradients()
        let l1 = net.lossAndGradient(x, labels: [0, 1, 2, 3])
        XCTAssertEqual(s.grad[1], 0)
        XCTAssertNotEqual(s.grad[0], 0)
        s.value[1] = -3  // any negative value gives the same network
        net.zeroGradients()
        XCTAssertEqual(net.lossAndGradient(x, labels: [0, 1, 2, 3]), l1, accuracy: 1e-14)
    }

    /// Shared input computes Vᵀx once; it must give exactly what replicating the batch gives.
    func testSharedInputEqualsReplicatedInput() throws {
        let net = try smallNetwork(method: .sve, stack: "residual(linear:a gelu linear:b) layernorm:n")
        var rng = SeededGenerator(seed: 3)
        let x = Matrix<Double>(rows: 4, cols: 5, data: (0..<20).map { _ in rng.normal() })
        var rep = Matrix<Double>(rows: 12, cols: 5)
        for m in 0..<3 { rep.data.replaceSubrange(m * 20 ..< (m + 1) * 20, with: x.data) }
        let a = net.forward(x, shared: true), b = net.forward(rep, shared: false)
        for i in a.data.indices { XCTAssertEqual(a.data[i], b.data[i], accuracy: 1e-12) }
    }
}

final class GoldenTests: XCTestCase {
    /// Forward (logits, loss) and backward (every trainable gradient) against PyTorch autograd.
    func testForwardBackwardAgainstPyTorch() throws {
        let f = try fixture("sve_forward_backward.json")
        let M = f["M"] as! Int, B = f["B"] as! Int, C = f["C"] as! Int, D = f["D"] as! Int
        let spec = try StackSpec(parsing: f["stack"] as! String)
        let basesJSON = f["bases"] as! [String: [String: Any]]
        var shapes: [String: (out: Int, in: Int, rank: Int)] = [:]
        for (k, v) in basesJSON {
            let o = v["out"] as! Int, i = v["in"] as! Int
            shapes[k] = (o, i, min(o, i))
        }
        let x = Matrix<Double>(rows: B, cols: D, data: doubles(f["x"]))
        let labels = (f["labels"] as! [NSNumber]).map(\.intValue)
        for run in f["runs"] as! [[String: Any]] {
            let method = EnsembleMethod(rawValue: run["method"] as! String)!
            let net = try EnsembleNetwork<Double>(spec: spec, method: method, members: M, inputDim: D, classes: C,
                                                  shapes: shapes, layerNormDims: ["ln": D])
            let params = run["params"] as! [String: Any]
            for p in net.parameters {
                if p.name.hasSuffix(".U") || p.name.hasSuffix(".Vt") {
                    let base = String(p.name.split(separator: ".").first!)
                    p.value = doubles(basesJSON[base]![p.name.hasSuffix(".U") ? "U" : "Vt"])
                } else {
                    let v = doubles(params[p.name])
                    XCTAssertEqual(v.count, p.count, p.name)
                    p.value = v
                }
            }
            net.zeroGradients()
            let loss = net.lossAndGradient(x, labels: labels)
            XCTAssertEqual(loss, run["loss"] as! Double, accuracy: 1e-12, method.rawValue)
            let logits = net.forward(x)
            let ref = doubles(run["logits"])
            XCTAssertEqual(logits.data.count, ref.count)
            for i in ref.indices { XCTAssertEqual(logits.data[i], ref[i], accuracy: 1e-11, "logit \(i)") }
            let grads = run["grads"] as! [String: Any]
            XCTAssertEqual(Set(grads.keys), Set(net.trainable.map(\.name)), method.rawValue)
            for p in net.trainable {
                let g = doubles(grads[p.name])
                for i in g.indices { XCTAssertEqual(p.grad[i], g[i], accuracy: 1e-11, "\(method.rawValue) \(p.name)[\(i)]") }
            }
        }
    }

    /// The float32 path agrees with the float64 path closely.
    func testFloatPathMatchesDouble() throws {
        let f = try fixture("sve_forward_backward.json")
        let run = (f["runs"] as! [[String: Any]])[0]
        let B = f["B"] as! Int, D = f["D"] as! Int
        let spec = try StackSpec(parsing: f["stack"] as! String)
        let basesJSON = f["bases"] as! [String: [String: Any]]
        var shapes: [String: (out: Int, in: Int, rank: Int)] = [:]
        for (k, v) in basesJSON { shapes[k] = (v["out"] as! Int, v["in"] as! Int, min(v["out"] as! Int, v["in"] as! Int)) }
        let net = try EnsembleNetwork<Float>(spec: spec, method: .sve, members: f["M"] as! Int, inputDim: D,
                                             classes: f["C"] as! Int, shapes: shapes, layerNormDims: ["ln": D])
        let params = run["params"] as! [String: Any]
        for p in net.parameters {
            if p.name.hasSuffix(".U") || p.name.hasSuffix(".Vt") {
                let base = String(p.name.split(separator: ".").first!)
                p.value = doubles(basesJSON[base]![p.name.hasSuffix(".U") ? "U" : "Vt"]).map(Float.init)
            } else {
                p.value = doubles(params[p.name]).map(Float.init)
            }
        }
        let x = Matrix<Float>(rows: B, cols: D, data: doubles(f["x"]).map(Float.init))
        net.zeroGradients()
        let loss = net.lossAndGradient(x, labels: (f["labels"] as! [NSNumber]).map(\.intValue))
        XCTAssertEqual(loss, run["loss"] as! Double, accuracy: 1e-5)
        let g = doubles((run["grads"] as! [String: Any])["a.s"])
        for i in g.indices { XCTAssertEqual(Double(net.parameter("a.s")!.grad[i]), g[i], accuracy: 1e-4) }
    }

    func testSVDAgainstNumpy() throws {
        let f = try fixture("sve_svd.json")
        let rows = f["rows"] as! Int, cols = f["cols"] as! Int
        let w = Matrix<Float>(rows: rows, cols: cols, data: doubles(f["w"]).map(Float.init))
        let (full, err) = try decompose(weight: w, bias: nil)
        let s = doubles(f["s"])
        XCTAssertEqual(full.rank, 4)
        for i in s.indices { XCTAssertEqual(Double(full.s[i]), s[i], accuracy: 1e-5) }
        XCTAssertLessThan(err, 1e-6)
        let rec = full.weight()
        for i in w.data.indices { XCTAssertEqual(rec.data[i], w.data[i], accuracy: 1e-5) }
        XCTAssertEqual(full.bias, [Float](repeating: 0, count: rows))
        // U has orthonormal columns.
        let utu = matmul(full.u, transA: true, full.u)
        for i in 0..<4 { for j in 0..<4 { XCTAssertEqual(utu[i, j], i == j ? 1 : 0, accuracy: 1e-5) } }
        let (r2, err2) = try decompose(weight: w, bias: nil, rank: 2)
        XCTAssertEqual(r2.rank, 2)
        XCTAssertEqual(r2.u.cols, 2); XCTAssertEqual(r2.vt.rows, 2)
        XCTAssertEqual(err2, f["rank2_relative_error"] as! Double, accuracy: 1e-5)
    }

    func testDecomposeRejectsBadInput() {
        XCTAssertThrowsError(try decompose(weight: Matrix<Float>(rows: 2, cols: 2, data: [1, .nan, 0, 1]), bias: nil))
        XCTAssertThrowsError(try decompose(weight: Matrix<Float>(rows: 2, cols: 2, data: [1, 0, 0, 1]), bias: [1, 2, 3]))
    }

    func testEntropyDecompositionAgainstNumpy() throws {
        let f = try fixture("sve_uncertainty.json")
        let M = f["M"] as! Int, N = f["N"] as! Int, K = f["K"] as! Int, T = f["T"] as! Double
        let logits = doubles(f["member_logits"])
        for mode in Averaging.allCases {
            let ref = f[mode.rawValue] as! [String: Any]
            let p = ensemblePrediction(memberLogits: logits, members: M, rows: N, classes: K, temperature: T, averaging: mode)
            func same(_ a: [Double], _ key: String) {
                let b = doubles(ref[key])
                XCTAssertEqual(a.count, b.count, key)
                for i in b.indices { XCTAssertEqual(a[i], b[i], accuracy: 1e-12, "\(mode) \(key)[\(i)]") }
            }
            same(p.probs, "probs"); same(p.memberProbs, "member_probs"); same(p.entropy, "entropy")
            same(p.expectedEntropy, "expected_entropy"); same(p.mutualInfo, "mutual_info")
            XCTAssertTrue(p.mutualInfo.allSatisfy { $0 >= 0 })
        }
    }
}
