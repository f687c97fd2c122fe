import TensorStream
import ToolKit
import UEC

/// The per-query confidence tensors of --top-k and --merge: 'margin' (best minus second-best
/// score) and 'top1_sigma' (σ_s of the top-1 pair), declared next to 'indices' and 'scores'.
struct ConfidenceOutput {
    var margin: Int?
    var sigma: Int?

    /// Declares what applies: 'margin' when lists hold two or more hits, 'top1_sigma' when the
    /// σ of the top pair is known (probabilistic inputs, β ≠ 0).
    init(_ writer: TensorStreamWriter, width: Int, sigma hasSigma: Bool, beta: String?) throws {
        if width >= 2 {
            margin = try writer.add(TensorInfo(name: "margin", dtype: .f32, rowShape: [], meta: [
                "definition": "scores[:, 0] - scores[:, 1] (best minus second-best score; NaN with fewer than 2 hits)",
                "use": "higher = more confident top hit; audit it with calib-metrics --confidence margin"]))
        }
        if hasSigma {
            sigma = try writer.add(TensorInfo(name: "top1_sigma", dtype: .f32, rowShape: [], meta: [
                "definition": "sigma_s of the top-1 pair: sqrt(sum_d mu_qd^2 var_cd + var_qd mu_cd^2 + var_qd var_cd) (emb-sim(1))",
                "use": "higher = less certain top score; audit it with calib-metrics --uncertainty top1_sigma"].merging(beta.map { ["beta": $0] } ?? [:]) { a, _ in a }))
        }
    }

    /// Writes the rows of one block of queries: margins from the lists, σ as given.
    func write(_ writer: TensorStreamWriter, rows: Int, scores: [Float], indices: [Int64], width: Int,
               sigma values: [Float]?) throws {
        if let margin { try writer.write(margin, rows: rows, values: topKMargins(scores: scores, indices: indices, width: width)) }
        if let sigma, let values { try writer.write(sigma, rows: rows, values: values) }
    }
}
