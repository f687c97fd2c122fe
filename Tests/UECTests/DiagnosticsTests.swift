import XCTest
@testable import UEC

/// The figures that say when UEC's uncertainty is not informative, against direct computations.
final class DiagnosticsTests: XCTestCase {
    func testPosteriorDiagnosticsCountTheFisherBelowThePrior() {
        let fisher = [0.0, 0.5, 1.0, 2.0, 3.0, 10.0]
        let d = PosteriorDiagnostics(fisher: fisher, priorPrecision: 2.0)
        XCTAssertEqual(d.gamma, 0 + 0.5 / 2.5 + 1 / 3.0 + 2 / 4.0 + 3 / 5.0 + 10 / 12.0, accuracy: 1e-15)
        XCTAssertEqual(d.parameters, 6)
        XCTAssertEqual(d.shareBelowPrior, 3.0 / 6.0)       // 0, 0.5 and 1 (2 is not below 2)
        XCTAssertFalse(d.priorDominated)
        XCTAssertTrue(PosteriorDiagnostics(fisher: Array(repeating: 1e-3, count: 10), priorPrecision: 1).priorDominated)
        // MacKay's γ at its own fixed point is the same number.
        let fit = fitPriorPrecision(fisher: fisher, squaredNorm: 4)
        XCTAssertEqual(PosteriorDiagnostics(fisher: fisher, priorPrecision: fit.lambda).gamma, fit.gamma, accuracy: 1e-8)
    }

    func testWeightSpreadIsThePopulationStdPerModel() {
        let k = 3, n = 50
        var pi: [Float] = []
        for r in 0..<n {
            let a = 0.2 + 0.1 * sin(Double(r)), b = 0.3 + 0.001 * cos(Double(r))
            pi += [Float(a), Float(b), Float(1 - a - b)]
        }
        var s = WeightSpread(models: k)
        s.add(Array(pi[0 ..< 21 * k]), models: k)          // in two blocks
        s.add(Array(pi[21 * k ..< n * k]), models: k)
        XCTAssertEqual(s.rows, n)
        for i in 0..<k {
            let x = (0..<n).map { Double(pi[$0 * k + i]) }
            let m = x.reduce(0, +) / Double(n)
            let sd = (x.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(n)).squareRoot()
            XCTAssertEqual(s.rowStd[i], sd, accuracy: 1e-12)
            XCTAssertEqual(s.meanWeight[i], m, accuracy: 1e-12)
        }
        XCTAssertFalse(s.barelyVaries)                       // model 0 moves by ±0.07
        var flat = WeightSpread(models: 2)
        flat.add([0.6, 0.4, 0.605, 0.395, 0.598, 0.402], models: 2)
        XCTAssertTrue(flat.barelyVaries)
    }
}
