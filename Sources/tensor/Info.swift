import Failure
import ArgumentParser
import TensorStream
import ToolKit

struct Info: Tool {
    static let configuration = CommandConfiguration(
        commandName: "info",  // given, not derived from the type name: that costs start-up time
        abstract: "Describe the tensors of streams: names, dtypes, shapes, metadata.",
        discussion: """
            Reads every stream to its end, so it also checks that the stream is complete and undamaged \
            (exit status 65 if not). Memory stays bounded whatever the size of the stream: one record at a time. \
            Names and metadata are printed with control characters escaped (\\n, \\t, \\x1b, ...; a backslash doubled).

            Examples:
              tensor info emb.tsr
              emb-laplace apply --posterior post.tsr < emb.tsr | tensor info --stats
            """)

    @Argument(help: ArgumentHelp("Streams to describe ('-' or nothing: standard input).", valueName: "FILE"))
    var files: [String] = []

    @Flag(help: "Also print min, max, mean and the count of NaN/Inf per tensor.")
    var stats = false

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func run() throws {
        let inputs = files.isEmpty ? ["-"] : files
        let out = try TextOutput()
        var jsonItems: [String] = []
        for path in inputs {
            let reader = try openStream(path)
            var acc: [Stats] = []
            var chunks: [Int] = []
            while let event = try reader.next() {
                switch event {
                case .tensor:
                    acc.append(Stats()); chunks.append(0)
                case .data(let i, _, let bytes):
                    chunks[i] += 1
                    if stats { acc[i].add(bytes, dtype: reader.tensors[i].dtype) }
                }
            }
            for (i, t) in reader.tensors.enumerated() {
                let shape = t.shape(rows: reader.rowsRead[i])
                if json {
                    var fields = ["\"file\": \(jsonString(path))", "\"name\": \(jsonString(t.name))",
                                  "\"dtype\": \"\(t.dtype.name)\"",
                                  "\"shape\": [\(shape.map(String.init).joined(separator: ", "))]",
                                  "\"chunks\": \(chunks[i])"]
                    let meta = t.meta.keys.sorted().map { "\(jsonString($0)): \(jsonString(t.meta[$0]!))" }
                    fields.append("\"meta\": {\(meta.joined(separator: ", "))}")
                    if stats { fields.append(acc[i].json) }
                    jsonItems.append("{" + fields.joined(separator: ", ") + "}")
                } else {
                    // Names and metadata come from the data: escaped, so that they cannot forge
                    // lines or drive the terminal.
                    let prefix = inputs.count > 1 ? "\(escaped(path)): " : ""
                    let dims = "[" + shape.map(String.init).joined(separator: ", ") + "]"
                    var line = "\(prefix)\(escaped(t.name))  \(t.dtype.name)  \(dims)"
                    if stats { line += "  " + acc[i].text }
                    try out.line(line)
                    for k in t.meta.keys.sorted() { try out.line("    \(escaped(k)) = \(escaped(t.meta[k]!))") }
                }
            }
        }
        if json { try out.line("[" + jsonItems.joined(separator: ",\n ") + "]") }
        try out.finish()
    }
}

struct Stats {
    var n = 0, nonFinite = 0
    var minV = Double.infinity, maxV = -Double.infinity, sum = 0.0

    mutating func add(_ b: UnsafeRawBufferPointer, dtype: DType) {
        for v in convertToDouble(b, from: dtype) {
            n += 1
            if !v.isFinite { nonFinite += 1; continue }
            minV = min(minV, v); maxV = max(maxV, v); sum += v
        }
    }

    var mean: Double { n - nonFinite > 0 ? sum / Double(n - nonFinite) : .nan }

    var text: String {
        n == 0 ? "(empty)" : "min \(statistic(minV))  max \(statistic(maxV))  mean \(statistic(mean))  nan/inf \(nonFinite)"
    }
    var json: String {
        n == 0 ? "\"stats\": null"
            : "\"stats\": {\"min\": \(jnum(minV)), \"max\": \(jnum(maxV)), \"mean\": \(jnum(mean)), \"nonfinite\": \(nonFinite)}"
    }
    func statistic(_ x: Double) -> String { x.isFinite ? cFormat("%.6g", x) : "-" }
    func jnum(_ x: Double) -> String { x.isFinite ? "\(x)" : "null" }
}

func jsonString(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        case "\r": out += "\\r"
        default:
            if u.value < 0x20 {
                let hex = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            } else { out.unicodeScalars.append(u) }
        }
    }
    return out + "\""
}
