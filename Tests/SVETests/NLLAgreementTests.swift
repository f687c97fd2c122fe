import XCTest
import Calibration
import Probability
@testable import SVE

/// sve-train -v (ensembleNLL, also what the temperature fit minimises) and calib-metrics
/// (ClassificationAccumulator) report the same NLL for the same predictions: one clip, at the
/// eps of the dtype the predictions are held in (float32, as sve-predict writes them).
final class NLLAgreementTests: XCTestCase {
    func testTrainerAndCalibMetricsReportTheSameNLL() throws {
        let M = 2, N = 4, K = 3
        // Row 0 confidently wrong (p_y ≈ e^-40, far below float32 eps), row 1 confidently right
        // (p_y above 1 − eps), rows 2 and 3 ordinary.
        let rows: [[Double]] = [[40, 0, 0], [0, 0, 40], [0.3, -0.2, 0.1], [1, 2, 0.5]]
        let labels = [1, 2, 0, 1]
        var logits = [Double](repeating: 0, count: M * N * K)
        for m in 0..<M { for n in 0..<N { for k in 0..<K { logits[(m * N + n) * K + k] = rows[n][k] + Double(m) * 0.1 * Double(k) } } }
        let trainer = ensembleNLL(memberLogits: logits, members: M, rows: N, classes: K, labels: labels, temperature: 1)

        let probs = ensemblePrediction(memberLogits: logits, members: M, rows: N, classes: K).probs.map { Float($0) }
        var o = ClassificationOptions(); o.precision = .float32
        let acc = ClassificationAccumulator(classes: K, options: o)
        try probs.withUnsafeBufferPointer { try acc.add(block: $0, labels: labels.map(Int64.init), firstRow: 0) }
        let report = try acc.report()
        XCTAssertEqual(report.nllClippedRows, 1)
        // The same up to the float32 rounding of the probabilities calib-metrics reads.
        XCTAssertEqual(trainer, report.nll, accuracy: 1e-6)
        // Independently: the clipped row counts −ln(2⁻²³), not the ≈ 40 of the unclipped value.
        let eps = 0x1p-23
        let p = ensemblePrediction(memberLogits: logits, members: M, rows: N, classes: K).probs
        let expect = (0..<N).map { n in -log(min(max(p[n * K + labels[n]], eps), 1 - eps)) }.reduce(0, +) / Double(N)
        XCTAssertEqual(trainer, expect, accuracy: 1e-12)
        XCTAssertLessThan(trainer, 23 * log(2.0) / Double(N) + 2)
    }
}
