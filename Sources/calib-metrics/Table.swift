import Failure
import Calibration
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An aligned three-column table: metric, value, note.
struct Table {
    var rows: [(String, String, String)] = []

    mutating func add(_ name: String, _ value: String, _ note: String = "") { rows.append((name, value, note)) }
    mutating func section(_ title: String) { rows.append(("", "", "")); rows.append((title, "", "")) }

    func render() -> String {
        let w0 = rows.map(\.0.count).max() ?? 0
        let w1 = rows.map(\.1.count).max() ?? 0
        var out = ""
        for (a, b, c) in rows {
            if b.isEmpty && c.isEmpty { out += a + "\n"; continue }
            var line = a + String(repeating: " ", count: w0 - a.count) + "  "
            line += String(repeating: " ", count: w1 - b.count) + b
            if !c.isEmpty { line += "  " + c }
            out += line + "\n"
        }
        return out
    }
}

/// A grid with a header row: first column left-aligned, the others right-aligned.
func grid(_ header: [String], _ rows: [[String]]) -> String {
    let all = [header] + rows
    let widths = header.indices.map { c in all.map { $0[c].count }.max() ?? 0 }
    return all.map { r in
        r.indices.map { c in
            c == 0 ? r[c] + String(repeating: " ", count: widths[c] - r[c].count)
                   : String(repeating: " ", count: widths[c] - r[c].count) + r[c]
        }.joined(separator: "  ")
    }.joined(separator: "\n") + "\n"
}

/// A metric as the table prints it: four decimals, or "n/a" when undefined.
func metric(_ v: Double?) -> String {
    guard let v else { return "n/a" }
    if v.isNaN { return "n/a" }
    return cFormat("%.4f", v)
}

func classificationTable(_ r: ClassificationReport, input: String, dtype: String, mode: Mode) -> String {
    var t = Table()
    let ci = { (name: String) -> String in
        guard let i = r.intervals?[name] else { return "" }
        return "95% CI [\(metric(i.low)), \(metric(i.high))]"
    }
    t.add("rows", "\(r.rows)", r.oodRows > 0 ? "in distribution; \(r.oodRows) OOD rows scored for detection only" : "")
    t.add("classes", "\(r.classes)", "\(input), \(dtype)")
    if !r.classesNeverOccurring.isEmpty {
        let list = r.classesNeverOccurring.prefix(10).map(String.init).joined(separator: ", ")
        t.add("classes never in labels", "\(r.classesNeverOccurring.count)", list + (r.classesNeverOccurring.count > 10 ? ", ..." : ""))
    }
    t.add("accuracy", metric(r.accuracy), joined(["argmax, ties to the lowest class", ci("accuracy")]))
    let binsNote = "top-label, \(r.bins) equal-width bins, " + conventionNote(mode)
    t.add("ece", metric(r.calibration.ece), joined([binsNote, ci("ece")]))
    t.add("mce", metric(r.calibration.mce), "max over non-empty bins")
    t.add("rmsce", metric(r.calibration.rmsce))
    if let e = r.equalMassECE { t.add("ece equal-mass", metric(e), "quantile bins (sklearn calibration_curve 'quantile')") }
    if let e = r.classwiseECE { t.add("ece classwise", metric(e), "mean over classes of each class's ECE") }
    for m in Mode.allCases where m != mode {
        t.add("ece [\(m.rawValue) binning]", metric(r.eceByConvention[m.convention.rawValue]), conventionNote(m))
    }
    if let pos = r.positiveClass {
        t.add("ece positive-class", metric(pos.ece), "class 1 vs label; torchmetrics binary / netcal report this")
        for m in Mode.allCases where m != mode {
            t.add("ece positive-class [\(m.rawValue)]", metric(r.positiveClassECEByConvention?[m.convention.rawValue]))
        }
    }
    t.add("nll", metric(r.nll), joined([r.nllClippedRows > 0 ? "\(r.nllClippedRows) rows clipped at eps" : "no row clipped at eps", ci("nll")]))
    t.add("brier", metric(r.brier), joined(["sum over classes, range [0, 2]", ci("brier")]))
    if let b = r.brierSklearnBinary { t.add("brier (sklearn binary)", metric(b), "scikit-learn halves it for two classes") }
    if let a = r.aurc { t.add("aurc", metric(a), "area under risk-coverage") }
    if let e = r.eaurc { t.add("e-aurc", metric(e), "aurc minus a perfect ranking's") }
    if let rc = r.riskAtCoverage {
        for k in rc.keys.sorted() { t.add("risk at coverage \(k)", metric(rc[k])) }
    }
    if let h = r.meanEntropy { t.add("entropy", metric(h), "mean predictive entropy (nats)") }
    if let h = r.meanExpectedEntropy { t.add("expected entropy", metric(h), "mean over rows; aleatoric") }
    if let h = r.meanMutualInfo { t.add("mutual information", metric(h), "mean over rows; epistemic") }
    if r.rowsNotSummingToOne > 0 {
        t.add("rows not summing to 1", "\(r.rowsNotSummingToOne)", "scored as given")
    }
    if let n = r.bootstrap { t.add("bootstrap", "\(n)", "resamples, seed \(r.seed ?? 0), percentile intervals") }
    var out = t.render()
    if let members = r.members {
        out += "\n" + grid(["member", "accuracy", "ece", "nll", "brier"],
                           members.map { ["\($0.member)", metric($0.accuracy), metric($0.ece), metric($0.nll), metric($0.brier)] })
    }
    if let o = r.ood {
        let keys = ["max_prob", "entropy", "mutual_info"].filter { o[$0] != nil }
        out += "\n" + grid(["OOD score (uncertainty)", "auroc", "aupr-in", "aupr-out", "fpr@95tpr"],
                           keys.map { k in let s = o[k]!; return [k, metric(s.auroc), metric(s.auprIn), metric(s.auprOut), metric(s.fpr95)] })
    }
    return out
}

func conventionNote(_ m: Mode) -> String {
    switch m {
    case .default: return "bins (lo, hi]"
    case .torchmetrics: return "torchmetrics: [lo, hi) + a bin for 1.0"
    case .netcal: return "netcal: eps-clipped, [lo, hi)"
    }
}

func joined(_ parts: [String]) -> String { parts.filter { !$0.isEmpty }.joined(separator: "; ") }
