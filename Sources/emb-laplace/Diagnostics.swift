import Failure
import Calibration
import LinearAlgebra
import ToolKit

/// apply -v: the Spearman rank correlation between each row's trace Σ_d var_d and 1/‖e‖² of its
/// embedding (identity adapter). Keeps two numbers per row.
struct TraceNormCorrelation {
    var trace: [Double] = []
    var inverseSquaredNorm: [Double] = []

    mutating func add(inputs h: Matrix<Float>, variance v: Matrix<Float>) {
        trace += rowTraces(v).map { Double($0) }
        for r in 0..<h.rows {
            inverseSquaredNorm.append(1 / h.row(r).reduce(0.0) { $0 + Double($1) * Double($1) })
        }
    }

    var summary: String {
        guard let rho = spearman(trace, inverseSquaredNorm) else {
            return "\(trace.count) rows: the rank correlation of the trace with 1/‖e‖² is undefined (fewer than 2 rows, or a constant)"
        }
        var s = "\(trace.count) rows, Spearman rank correlation of the trace Σ_d var_d with 1/‖e‖²: " + cFormat("%.4f", rho)
        if abs(rho) >= 0.9 { s += " (the variance ranks rows almost as the embedding norm does: it adds little beyond ‖e‖)" }
        return s
    }
}

/// A share as a percentage for messages ("99.7 %").
func percent(_ x: Double) -> String { cFormat("%.1f", 100 * x) + " %" }

/// Σ_d var_d of every row, summed in float64.
func rowTraces(_ v: Matrix<Float>) -> [Float] {
    (0..<v.rows).map { r in Float(v.row(r).reduce(0.0) { $0 + Double($1) }) }
}
