import ArgumentParser
import LinearAlgebra
import TensorStream
import ToolKit
import UEC
import UECStreams

@main
struct EmbFuse: Tool, ThreadedTool {
    static let configuration = CommandConfiguration(
        commandName: "emb-fuse",
        abstract: "Fuse the probabilistic embeddings of several models with uncertainty-driven weights.",
        discussion: """
            Reads K streams with 'mean' and 'var' (the same rows in the same order, the same D) and \
            writes their weighted sum of independent Gaussians: μ = Σ π_k μ_k, var = Σ π_k² var_k, \
            and the per-row coefficients as 'weights' (N×K). The default coefficients are the \
            paper's, π = softmax(−tr Σ_k(x)/T): the model least uncertain about a row gets the most \
            weight. T sets how sharp that is: about the spread of the traces between models (look \
            at Σ_d var in 'tensor info' or the output weights); large T tends to uniform weights, \
            small T to picking one model. Normalise the means first (emb-laplace apply --normalize \
            delta) when the models' embeddings have different norms.

            Uncertainty-driven weights help only if they vary from row to row. When the mean over \
            models of each model's row std of π is below 0.01 the weights are nearly per-model \
            constants (as with identity-adapter posteriors dominated by their prior, whose traces \
            track ‖e‖²): emb-fuse says so once on standard error (unless -q) and in the metadata \
            of 'weights' ('row_std', 'varies_per_row', measured on the first block of rows).

            Examples:
              emb-fuse a.tsr b.tsr c.tsr > fused.tsr
              emb-fuse --temperature 0.1 a.tsr b.tsr \\
                | emb-sim --corpus corpus.tsr --top-k 10
              emb-fuse --weights 0.5,0.3,0.2 a.tsr b.tsr c.tsr -o fused.tsr
            """,
        version: toolboxVersion)

    @Argument(help: ArgumentHelp("K streams with 'mean' and 'var' ('-' = standard input, at most once).", valueName: "FILE"))
    var files: [String]
    @Option(parsing: .unconditional, help: ArgumentHelp("uncertainty (the paper), precision (the public code: softmax of Σ 1/var / T), uniform, or K comma-separated fixed weights.", valueName: "MODE"))
    var weights = "uncertainty"
    @Option(parsing: .unconditional, help: "Temperature T of the uncertainty and precision weights.")
    var temperature = 1.0
    @Option(name: .customLong("block-rows"), parsing: .unconditional, help: "Rows per block (memory bound).")
    var blockRows = 4096
    @Flag(name: .shortAndLong, help: "Do not warn when the weights barely vary per row.")
    var quiet = false

    @OptionGroup var common: CommonOptions
    @OptionGroup var output: OutputOptions

    func mode() throws -> FusionWeights {
        switch weights {
        case "uncertainty": return .uncertainty(temperature: temperature)
        case "precision": return .precision(temperature: temperature)
        case "uniform": return .uniform
        default:
            let parts = weights.split(separator: ",").map { Double(String($0.filter { $0 != " " })) }
            guard !parts.isEmpty, parts.allSatisfy({ $0 != nil && $0!.isFinite }) else {
                throw ValidationError("--weights must be uncertainty, precision, uniform or comma-separated numbers, not '\(weights)'")
            }
            guard parts.count == files.count else {
                throw ValidationError("--weights gives \(parts.count) numbers for \(files.count) inputs")
            }
            guard parts.allSatisfy({ $0! >= 0 }), parts.reduce(0, { $0 + $1! }) > 0 else {
                throw ValidationError("--weights must be numbers ≥ 0 with a positive sum, not '\(weights)'")
            }
            return .fixed(parts.map { $0! })
        }
    }

    func validate() throws {
        if files.isEmpty { throw ValidationError("name the streams to fuse") }
        if files.filter({ $0 == "-" }).count > 1 { throw ValidationError("standard input ('-') can be named only once") }
        if !(temperature > 0) || !temperature.isFinite { throw ValidationError("--temperature must be a positive number") }
        if blockRows < 1 || blockRows > 1 << 20 { throw ValidationError("--block-rows must be between 1 and 1048576") }
        _ = try mode()
    }

    func run() throws {
        let w = try mode()
        let readers = try files.map { ProbReader(try openStream($0), blockRows: blockRows) }
        var dims: [Int] = []
        for r in readers {
            dims.append(try r.resolve())  // refuses non-float means and variances
            guard r.hasVariance else {
                throw ToolError.data("\(r.label) has no 'var' next to '\(r.meanName)' (make it probabilistic with 'emb-laplace apply')")
            }
        }
        if let bad = dims.firstIndex(where: { $0 != dims[0] }) {
            throw ToolError.data("dimensions differ: \(readers[0].label) has D = \(dims[0]) but \(readers[bad].label) has D = \(dims[bad]) (UEC fuses models of equal dimension)")
        }
        let d = dims[0], k = readers.count
        var meta: [String: String] = ["fused": readers.map(\.label).joined(separator: ","), "weights": weights,
                                      "temperature": metaNumber(temperature)]
        let models = readers.map { $0.meanMeta["model"] ?? $0.label }
        meta["models"] = models.joined(separator: ",")
        let out = try output.open()
        // Declared with the first fused block, so that the weights' metadata can say how much
        // they vary per row (over that block).
        var ids: (mean: Int, variance: Int, weights: Int)?
        var spread = WeightSpread(models: k)
        let perRow = w.variesPerRow
        func declare(_ first: WeightSpread) throws -> (Int, Int, Int) {
            var wmeta = ["columns": models.joined(separator: ",")]
            if perRow { wmeta.merge(spreadMeta(first)) { a, _ in a } }
            return (try out.writer.add(TensorInfo(name: "mean", dtype: .f32, rowShape: [d], meta: meta)),
                    try out.writer.add(TensorInfo(name: "var", dtype: .f32, rowShape: [d])),
                    try out.writer.add(TensorInfo(name: "weights", dtype: .f32, rowShape: [k], meta: wmeta)))
        }
        let progress = Progress("emb-fuse")
        while true {
            let blocks = try readers.map { try $0.next() }
            let present = blocks.indices.filter { blocks[$0] != nil }
            if present.isEmpty { break }
            let counts = blocks.map { $0?.rows ?? 0 }
            if present.count < k || counts.contains(where: { $0 != counts[0] }) {
                // Some input ended early: report the row counts reached.
                var ends: [String] = []
                for r in readers {
                    var n = r.rowsDone
                    while let b = try r.next() { n = r.rowsDone; _ = b }
                    ends.append("\(r.label) has \(n)")
                }
                throw ToolError.data("row counts differ: \(ends.joined(separator: ", ")) (fuse embeddings of the same rows)")
            }
            let res = fuse(means: blocks.map { $0!.mean }, variances: blocks.map { $0!.variance! }, weights: w)
            spread.add(res.coefficients.data, models: k)
            if ids == nil { ids = try declare(spread) }
            try writeRows(out.writer, [(ids!.mean, res.mean), (ids!.variance, res.variance), (ids!.weights, res.coefficients)])
            for (r, b) in zip(readers, blocks) { r.recycle(b!) }
            progress.update(readers[0].rowsDone)
        }
        progress.finish()
        if ids == nil { ids = try declare(spread) }
        try out.finish()
        if perRow && spread.barelyVaries && !quiet { writeStderr("emb-fuse: warning: " + spreadNote(spread) + "\n") }
    }
}
