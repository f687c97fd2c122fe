// A reliability diagram as a self-contained SVG (methods.md section 3, "per-bin reliability
// data and a reliability diagram"): per bin, a bar of the accuracy, the gap to the mean
// confidence shaded, the diagonal of perfect calibration, and below it how many rows each bin holds.
import Failure
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public func reliabilityDiagramSVG(_ e: CalibrationErrors, title: String, subtitle: String) -> String {
    let w = 600.0, left = 70.0, right = 24.0, top = 64.0
    let plot = w - left - right                 // square plot
    let histTop = top + plot + 58, histH = 90.0
    let h = histTop + histH + 52
    func x(_ v: Double) -> Double { left + v * plot }
    func y(_ v: Double) -> Double { top + (1 - v) * plot }
    let f = svgNumber, esc = svgEscape
    var s = svgHead(width: w, height: h, title: title, subtitle: subtitle, defs: """
        <defs><pattern id="gap" width="7" height="7" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">
        <rect width="7" height="7" fill="#f4b3ad" fill-opacity="0.55"/><line x1="0" y1="0" x2="0" y2="7" stroke="#c0392b" stroke-width="2.2"/></pattern></defs>

        """)
    s += svgGrid(x: x, y: y, yMax: 1) { cFormat("%.1f", $0) }
    // Bars: accuracy (blue) and the gap to the mean confidence (red, hatched by opacity).
    let maxCount = Double(e.bins.map(\.count).max() ?? 1)
    for b in e.bins {
        let lo = b.lower, hi = max(b.upper, b.lower + 0.012)   // the torchmetrics [1, 1] bin gets a sliver
        let bx = x(min(lo, 1 - 0.012)), bw = (hi - lo) * plot
        if let a = b.accuracy, let c = b.confidence {
            s += "<rect x=\"\(f(bx))\" y=\"\(f(y(a)))\" width=\"\(f(bw))\" height=\"\(f(y(0) - y(a)))\" fill=\"#3b6fb6\" stroke=\"#1d3f73\" stroke-width=\"0.8\"/>\n"
            let g0 = min(a, c), g1 = max(a, c)
            s += "<rect x=\"\(f(bx))\" y=\"\(f(y(g1)))\" width=\"\(f(bw))\" height=\"\(f(y(g0) - y(g1)))\" fill=\"url(#gap)\" stroke=\"#b22\" stroke-width=\"1\"/>\n"
            s += "<circle cx=\"\(f(x(c)))\" cy=\"\(f(y(c)))\" r=\"2.5\" fill=\"#222\"/>\n"
        }
        let hh = Double(b.count) / maxCount * histH
        if b.count > 0 {
            s += "<rect x=\"\(f(bx))\" y=\"\(f(histTop + histH - hh))\" width=\"\(f(bw))\" height=\"\(f(hh))\" fill=\"#888\" stroke=\"#555\" stroke-width=\"0.6\"/>\n"
        }
    }
    s += """
    <line x1="\(f(x(0)))" y1="\(f(y(0)))" x2="\(f(x(1)))" y2="\(f(y(1)))" stroke="#222" stroke-dasharray="6,4" stroke-width="1.3"/>
    <rect x="\(f(x(0)))" y="\(f(y(1)))" width="\(f(plot))" height="\(f(plot))" fill="none" stroke="#222"/>
    <text x="\(f(x(0.5)))" y="\(f(y(0) + 36))" text-anchor="middle" font-size="13">confidence</text>
    <text transform="translate(22 \(f(y(0.5)))) rotate(-90)" text-anchor="middle" font-size="13">accuracy</text>
    <rect x="\(f(x(0.03)))" y="\(f(y(0.97)))" width="196" height="84" fill="white" fill-opacity="0.9" stroke="#bbb"/>
    <rect x="\(f(x(0.03) + 10))" y="\(f(y(0.97) + 10))" width="14" height="12" fill="#3b6fb6"/>
    <text x="\(f(x(0.03) + 30))" y="\(f(y(0.97) + 20))" font-size="12">accuracy in bin</text>
    <rect x="\(f(x(0.03) + 10))" y="\(f(y(0.97) + 29))" width="14" height="12" fill="url(#gap)" stroke="#b22"/>
    <text x="\(f(x(0.03) + 30))" y="\(f(y(0.97) + 39))" font-size="12">gap to mean confidence</text>
    <line x1="\(f(x(0.03) + 8))" y1="\(f(y(0.97) + 54))" x2="\(f(x(0.03) + 26))" y2="\(f(y(0.97) + 54))" stroke="#222" stroke-dasharray="6,4"/>
    <text x="\(f(x(0.03) + 30))" y="\(f(y(0.97) + 58))" font-size="12">perfect calibration</text>
    <circle cx="\(f(x(0.03) + 17))" cy="\(f(y(0.97) + 72))" r="2.5" fill="#222"/>
    <text x="\(f(x(0.03) + 30))" y="\(f(y(0.97) + 76))" font-size="12">mean confidence in bin</text>
    <rect x="\(f(x(0)))" y="\(f(histTop))" width="\(f(plot))" height="\(f(histH))" fill="none" stroke="#222"/>
    <text x="\(f(x(0) - 8))" y="\(f(histTop + 10))" text-anchor="end" font-size="11">\(Int(maxCount))</text>
    <text x="\(f(x(0) - 8))" y="\(f(histTop + histH))" text-anchor="end" font-size="11">0</text>
    <text transform="translate(22 \(f(histTop + histH / 2))) rotate(-90)" text-anchor="middle" font-size="13">rows</text>
    <text x="\(f(x(0)))" y="\(f(histTop + histH + 17))" text-anchor="middle" font-size="12">0.0</text>
    <text x="\(f(x(1)))" y="\(f(histTop + histH + 17))" text-anchor="middle" font-size="12">1.0</text>
    <text x="\(f(x(0.5)))" y="\(f(histTop + histH + 36))" text-anchor="middle" font-size="13">confidence</text>
    </svg>

    """
    return s
}
