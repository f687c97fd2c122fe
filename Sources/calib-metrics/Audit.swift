import Calibration
import TensorStream
import ToolKit

// --confidence NAME / --uncertainty NAME: does a per-row signal predict the errors, and does it
// do better than the trivial baseline (max probability; score margin for retrieval)?

extension CalibMetrics {
    /// The audited signal's tensor name and direction, when one was asked for.
    var auditRequest: (name: String, direction: SignalDirection)? {
        if let c = confidenceName { return (c, .confidence) }
        if let u = uncertaintyName { return (u, .uncertainty) }
        return nil
    }

    /// One value per row from an N or N×1 tensor of the input.
    func signalValues(_ t: Tensor) throws -> [Double] {
        guard !t.info.isScalar, t.info.rowShape.isEmpty || t.info.rowShape == [1] else {
            throw ToolError.data("'\(t.name)' is \(t.info.signature): the audited signal must be one value per row ([N])")
        }
        guard t.info.dtype.isFloat || t.info.dtype.isInteger else {
            throw ToolError.data("'\(t.name)' is \(t.info.dtype.name): the audited signal must be numbers")
        }
        return t.doubles()
    }

    /// Runs the audit and writes the risk–coverage SVG when asked.
    func audit(values: [Double], baseline: Signal?, correct: [Bool], outcome: String) throws -> UncertaintyAudit {
        let (name, direction) = auditRequest!
        let signal = Signal(name: name, direction: direction, values: values)
        let a = try inContext("--\(direction.rawValue) \(name)") {
            try auditUncertainty(signal: signal, baseline: baseline, correct: correct, outcome: outcome,
                                 bootstrap: bootstrap, seed: seed)
        }
        if let svg = riskCoverageSVG {
            var curves = [RiskCoverageCurve(label: "\(name) (\(direction.rawValue)), AURC \(metric(a.signal.aurc))", confidence: signal.confidence)]
            if let b = baseline, let ba = a.baseline {
                curves.append(RiskCoverageCurve(label: "\(b.name) (baseline), AURC \(metric(ba.aurc))", confidence: b.confidence))
            }
            let subtitle = "\(a.rows) rows, \(a.errors) errors (\(outcome) is false) · most trusted rows kept first"
            try OutputFile.write(Calibration.riskCoverageSVG(curves, correct: correct, title: "Risk–coverage: does \(name) predict errors?",
                                                 subtitle: subtitle), to: svg)
        }
        return a
    }
}

/// The score margin of top-k lists (scores[:, 0] − scores[:, 1]): retrieval's baseline.
func marginBaseline(_ scores: Tensor, rows: [Int]) -> Signal? {
    guard scores.shape.count == 2, scores.shape[1] >= 2 else { return nil }
    let w = scores.shape[1], s = scores.doubles()
    return Signal(name: "margin of scores", direction: .confidence, values: rows.map { s[$0 * w] - s[$0 * w + 1] })
}

/// A report with an `audit` member beside its own (one JSON object).
struct WithAudit<R: Encodable>: Encodable {
    var report: R
    var audit: UncertaintyAudit?
    enum Keys: String, CodingKey { case audit }
    func encode(to encoder: Encoder) throws {
        try report.encode(to: encoder)
        var c = encoder.container(keyedBy: Keys.self)
        try c.encodeIfPresent(audit, forKey: .audit)
    }
}

/// The audit as a small table: one line per signal, and the paired difference.
func auditTable(_ a: UncertaintyAudit) -> String {
    func cell(_ v: Double?, _ i: Interval?) -> String {
        metric(v) + (i.map { " [\(metric($0.low)), \(metric($0.high))]" } ?? "")
    }
    func line(_ s: SignalAudit, _ role: String) -> [String] {
        ["\(s.name) (\(role))", cell(s.aurocErrors, s.intervals?["auroc_errors"]), cell(s.aurc, s.intervals?["aurc"]),
         cell(s.eaurc, s.intervals?["eaurc"]), metric(s.riskAtCoverage["0.80"]), metric(s.riskAtCoverage["0.50"])]
    }
    var rows = [line(a.signal, a.signal.direction.rawValue)]
    if let b = a.baseline { rows.append(line(b, "baseline")) }
    if let d = a.difference {
        func diff(_ k: String) -> String { d[k].map { "[\(metric($0.low)), \(metric($0.high))]" } ?? "n/a" }
        rows.append(["difference (signal − baseline)", diff("auroc_errors"), diff("aurc"), diff("eaurc"), "", ""])
    }
    var out = "\nDoes the signal predict errors? Outcome: \(a.outcome); \(a.rows) rows, \(a.errors) errors (\(metric(a.errorRate))).\n"
    out += "AUROC: an error is less trusted than a correct row (0.5 = chance); AURC, E-AURC: lower is better"
    out += a.bootstrap.map { "; 95% bootstrap intervals, \($0) resamples, seed \(a.seed ?? 0)" } ?? ""
    out += ".\n"
    out += grid(["signal", "auroc (errors)", "aurc", "e-aurc", "risk@80%", "risk@50%"], rows)
    return out
}
