// Risk–coverage curves as a self-contained SVG: for each signal, the error rate of the most
// trusted rows as the coverage grows, beside a perfect ranking (errors last) and no ranking at
// all (the overall error rate at every coverage).
import Failure
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One curve: its label and the rows' confidence (higher = more trust).
public struct RiskCoverageCurve: Sendable {
    public var label: String
    public var confidence: [Double]
    public init(label: String, confidence: [Double]) { self.label = label; self.confidence = confidence }
}

public func riskCoverageSVG(_ curves: [RiskCoverageCurve], correct: [Bool], title: String, subtitle: String) -> String {
    let n = correct.count
    precondition(n > 0 && curves.allSatisfy { $0.confidence.count == n })
    let w = 640.0, left = 74.0, right = 24.0, top = 64.0, plotH = 380.0
    let plotW = w - left - right
    let legendTop = top + plotH + 52
    let h = legendTop + 20 * Double(curves.count + 2) + 16
    let errors = correct.lazy.filter { !$0 }.count
    let rate = Double(errors) / Double(n)
    // Points at coverage i/N, thinned to at most 600 per curve.
    let step = max(1, n / 600)
    let coverages = Array(stride(from: step, through: n, by: step)) + (n % step == 0 ? [] : [n])
    let risks: [[Double]] = curves.map { c in
        let rc = RiskCoverage(confidence: c.confidence, correct: correct)
        return coverages.map { rc.cumulativeErrors[$0] / Double($0) }
    }
    let optimal = coverages.map { Double(max(0, $0 - (n - errors))) / Double($0) }
    // The y axis: up to the highest risk drawn, rounded up to a tenth of a power of ten.
    let highest = max(rate, (risks.flatMap { $0 } + [1e-9]).max()!)
    let unit = pow(10, (log10(highest)).rounded(.down))
    let yMax = min(1, (highest / unit * 10).rounded(.up) * unit / 10)
    func x(_ v: Double) -> Double { left + v * plotW }
    func y(_ v: Double) -> Double { top + (1 - v / yMax) * plotH }
    let f = svgNumber, esc = svgEscape
    func path(_ r: [Double]) -> String {
        zip(coverages, r).enumerated().map { k, p in "\(k == 0 ? "M" : "L")\(f(x(Double(p.0) / Double(n)))),\(f(y(p.1)))" }.joined(separator: " ")
    }
    let colors = ["#c0392b", "#2c6fbb", "#27864a", "#8e44ad", "#d68910"]
    var s = svgHead(width: w, height: h, title: title, subtitle: subtitle)
    s += svgGrid(x: x, y: y, yMax: yMax) { cFormat("%.3g", $0) }
    s += "<line x1=\"\(f(x(0)))\" y1=\"\(f(y(rate)))\" x2=\"\(f(x(1)))\" y2=\"\(f(y(rate)))\" stroke=\"#888\" stroke-dasharray=\"2,3\" stroke-width=\"1.3\"/>\n"
    s += "<path d=\"\(path(optimal))\" fill=\"none\" stroke=\"#222\" stroke-dasharray=\"6,4\" stroke-width=\"1.3\"/>\n"
    for (k, r) in risks.enumerated() {
        s += "<path d=\"\(path(r))\" fill=\"none\" stroke=\"\(colors[k % colors.count])\" stroke-width=\"2\"/>\n"
    }
    s += """
    <rect x="\(f(x(0)))" y="\(f(y(yMax)))" width="\(f(plotW))" height="\(f(plotH))" fill="none" stroke="#222"/>
    <text x="\(f(x(0.5)))" y="\(f(y(0) + 36))" text-anchor="middle" font-size="13">coverage (share of rows kept, most trusted first)</text>
    <text transform="translate(20 \(f(y(yMax / 2)))) rotate(-90)" text-anchor="middle" font-size="13">selective risk (error rate of the kept rows)</text>

    """
    var ly = legendTop
    func legend(_ text: String, _ stroke: String, dash: String?) {
        s += "<line x1=\"\(f(left))\" y1=\"\(f(ly - 4))\" x2=\"\(f(left + 26))\" y2=\"\(f(ly - 4))\" stroke=\"\(stroke)\" stroke-width=\"2\"\(dash.map { " stroke-dasharray=\"\($0)\"" } ?? "")/>\n"
        s += "<text x=\"\(f(left + 34))\" y=\"\(f(ly))\" font-size=\"12.5\">\(esc(text))</text>\n"
        ly += 20
    }
    for (k, c) in curves.enumerated() { legend(c.label, colors[k % colors.count], dash: nil) }
    legend("perfect ranking (errors last)", "#222", dash: "6,4")
    legend(cFormat("no ranking (error rate %.4f)", rate), "#888", dash: "2,3")
    s += "</svg>\n"
    return s
}
