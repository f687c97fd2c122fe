// What the toolbox's SVG plots (reliability diagram, risk–coverage curves) share: numbers, XML
// escaping, the document's head with title and subtitle, and the grid of the plot area.
import Failure
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A coordinate with two decimals.
func svgNumber(_ v: Double) -> String { cFormat("%.2f", v) }

/// Text made safe inside an SVG element.
func svgEscape(_ s: String) -> String {
    s.replacing("&", with: "&amp;").replacing("<", with: "&lt;").replacing(">", with: "&gt;")
}

/// The opening of the document: white background, title and subtitle centred on top; `defs`
/// (patterns and the like) as given.
func svgHead(width w: Double, height h: Double, title: String, subtitle: String, defs: String = "") -> String {
    let f = svgNumber
    return """
    <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(w))" height="\(Int(h))" viewBox="0 0 \(Int(w)) \(Int(h))" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">
    \(defs)<rect width="100%" height="100%" fill="white"/>
    <text x="\(f(w / 2))" y="26" text-anchor="middle" font-size="17" font-weight="bold">\(svgEscape(title))</text>
    <text x="\(f(w / 2))" y="47" text-anchor="middle" font-size="12.5" fill="#333">\(svgEscape(subtitle))</text>

    """
}

/// Grid lines at tenths of both axes (x from 0 to 1, y from 0 to yMax), labelled every fifth:
/// x with one decimal, y by `yLabel`.
func svgGrid(x: (Double) -> Double, y: (Double) -> Double, yMax: Double, yLabel: (Double) -> String) -> String {
    let f = svgNumber
    var s = ""
    for i in 0...10 {
        let v = Double(i) / 10
        s += "<line x1=\"\(f(x(v)))\" y1=\"\(f(y(0)))\" x2=\"\(f(x(v)))\" y2=\"\(f(y(yMax)))\" stroke=\"#eee\"/>\n"
        s += "<line x1=\"\(f(x(0)))\" y1=\"\(f(y(v * yMax)))\" x2=\"\(f(x(1)))\" y2=\"\(f(y(v * yMax)))\" stroke=\"#eee\"/>\n"
        if i % 2 == 0 {
            s += "<text x=\"\(f(x(v)))\" y=\"\(f(y(0) + 17))\" text-anchor=\"middle\" font-size=\"12\">\(cFormat("%.1f", v))</text>\n"
            s += "<text x=\"\(f(x(0) - 8))\" y=\"\(f(y(v * yMax) + 4))\" text-anchor=\"end\" font-size=\"12\">\(yLabel(v * yMax))</text>\n"
        }
    }
    return s
}
