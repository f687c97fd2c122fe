import Failure
import ToolKit
import UEC

extension FusionWeights {
    /// Whether the mode can give different weights to different rows.
    var variesPerRow: Bool {
        switch self {
        case .uncertainty, .precision: return true
        case .uniform, .fixed: return false
        }
    }
}

/// The weights' metadata about their spread over rows.
func spreadMeta(_ s: WeightSpread) -> [String: String] {
    [
        "row_std": s.rowStd.map { cFormat("%.3g", $0) }.joined(separator: ","),
        "row_std_rows": "\(s.rows)",
        "varies_per_row": s.rows < 2 ? "unknown (one row)"
            : s.barelyVaries ? "no: " + spreadNote(s) : "yes: mean row std " + cFormat("%.3g", s.meanRowStd) + " ≥ 0.01",
    ]
}

/// One sentence on weights that barely vary per row.
func spreadNote(_ s: WeightSpread) -> String {
    "the fusion weights barely vary per row (mean per-model row std " + cFormat("%.2g", s.meanRowStd)
        + " < 0.01 over \(s.rows) rows; mean weights " + s.meanWeight.map { cFormat("%.3f", $0) }.joined(separator: ", ")
        + "): fixed per-model weights (--weights) would do the same"
}
