import ArgumentParser
import LinearAlgebra
import SVE
import TensorStream
import ToolKit

extension Averaging: ExpressibleByArgument {}

@main
struct SvePredict: Tool, ThreadedTool {
    static let configuration = CommandConfiguration(
        commandName: "sve-predict",
        abstract: "Predictions and uncertainties of a trained singular value ensemble.",
        discussion: """
            Each member's probabilities are p_m = softmax(logits_m / T) with the temperature fitted by \
            sve-train. The ensemble prediction 'probs' averages the members' probabilities (the paper; \
            --average logits averages their logits instead, as the public code does). Per row: 'entropy' \
            H[p̄] (total), 'expected_entropy' (1/M) Σ H[p_m] (aleatoric) and 'mutual_info', their difference \
            clamped at 0 (epistemic); natural log. 'member_probs' is N×M×K. Rows are streamed in chunks: \
            memory does not grow with N. Each chunk's rows are shared out to the --threads (256 rows \
            each), and every layer runs through the members' dense weights W_m = U diag(s_m⁺) Vᵀ, \
            formed once and shared by the threads, wherever a row costs less through them than through \
            the factors (every layer of full rank).

            Examples:
              sve-predict test.tsr --model model.tsr > pred.tsr
              sve-predict test.tsr --model model.tsr --pass labels | calib-metrics
              tensor select features < test.tsr \\
                | sve-predict --model model.tsr --average logits | tensor to csv

            A model over whole transformer layers (sve-train --layers) takes token rows: 'features' \
            (one row per token, the texts back to back) and 'lengths' (N); the output has one row per \
            text. That input is read whole and run in parts of at most --max-tokens token rows, each \
            part's texts shared out to the --threads.
            """,
        version: toolboxVersion)

    @Argument(help: ArgumentHelp("Input stream with 'features' ('-': standard input).", valueName: "FILE"))
    var input: String = "-"

    @Option(help: ArgumentHelp("The model from sve-train.", valueName: "FILE"))
    var model: String

    @Option(help: "probs: average member probabilities (default); logits: average member logits.")
    var average: Averaging = .probs

    @Flag(name: .customLong("no-temperature"), help: "Ignore the fitted temperature (T = 1).")
    var noTemperature = false

    @Option(name: .customLong("pass"), help: ArgumentHelp("Copy this row-aligned input tensor (e.g. labels) to the output (repeatable).", valueName: "NAME"))
    var pass: [String] = []

    @Option(name: .customLong("features"), help: ArgumentHelp("Name of the features tensor.", valueName: "NAME"))
    var featuresName = "features"

    @Option(name: .customLong("chunk"), parsing: .unconditional, help: ArgumentHelp("Rows per chunk.", valueName: "N"))
    var chunk: Int = 1024

    @Option(name: .customLong("lengths"), help: ArgumentHelp("Token level: name of the tensor of each text's token rows.", valueName: "NAME"))
    var lengthsName = "lengths"

    @Option(name: .customLong("max-tokens"), parsing: .unconditional, help: ArgumentHelp("Token level: at most N token rows per forward pass.", valueName: "N"))
    var maxTokens: Int = 8192

    @OptionGroup var common: CommonOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var notes: NoteOptions

    func validate() throws {
        if chunk < 1 || chunk > 1 << 20 { throw ValidationError("--chunk must be between 1 and 1048576") }
        if maxTokens < 1 { throw ValidationError("--max-tokens must be at least 1") }
        if pass.contains(featuresName) { throw ValidationError("--pass \(featuresName): the features are not copied") }
    }

    func run() throws {
        let threads = try prepareBLAS(threads: common.threadCount)
        keepLargeBuffersInHeap()   // a step's matrices are allocated again at every step
        let modelTensors = try openStream(model).readAll()
        guard let tt = modelTensors.first(where: { $0.name == ModelMeta.temperature }) else {
            throw ToolError.data("\(model) is not an sve-train model (no 'temperature' tensor)")
        }
        let arrays = modelTensors.map { NamedArray(name: $0.name, shape: $0.shape, values: $0.floats()) }
        let (net, fitted) = try inContext(model) { try EnsembleNetwork<Float>.load(arrays: arrays, meta: tt.meta) }
        net.parametersStay = true
        let T = noTemperature ? 1 : fitted
        let D = net.inputDim

        if net.spec.tokenLevel {
            try predictTokens(net, temperature: T, threads: threads, maxPositions: tt.meta[LayerRange.maxPositionsKey].flatMap { Int($0) })
            return
        }
        let reader = RowBlockReader(try openStream(input), names: [featuresName] + pass, blockRows: chunk)
        let infos = try reader.headers()
        guard infos[0].rowShape == [D] else {
            throw ToolError.data("'\(featuresName)' has rows of shape \(infos[0].rowShape); the model takes \(D) features")
        }
        guard infos[0].dtype.isFloat else { throw ToolError.data("'\(featuresName)' must be floating point, got \(infos[0].dtype.name)") }
        let out = try output.open()
        let sink = try PredictionSink(out.writer, net: net, temperature: T, average: average, pass: Array(infos.dropFirst()))
        // The features' bytes go back to the reader, and their floats to `spare`, once a block is
        // done: every block then fills the same pages.
        var spare: [Float] = []
        while var block = try reader.next() {
            let n = block[0].rows
            var xs: [Float] = []
            swap(&xs, &spare)
            block[0].floats(into: &xs)
            reader.recycle(&block[0].data)
            if let bad = firstNonFinite(xs) {
                throw ToolError.data("'\(featuresName)' holds \(xs[bad]) in row \(reader.rowsDone - n + bad / D)")
            }
            let x = Matrix(rows: n, cols: D, data: xs)
            xs = []
            defer { spare = x.data }
            try sink.write(memberLogits(net, x, chunk: 256, threads: threads), rows: n, pass: Array(block.dropFirst()))
        }
        try out.finish()
    }

    /// A token-level model: token rows and lengths read whole, run in parts of --max-tokens, each
    /// part's texts shared out to the threads.
    func predictTokens(_ net: EnsembleNetwork<Float>, temperature T: Double, threads: Int, maxPositions: Int?) throws {
        let ts = try openStream(input).readTensors([featuresName, lengthsName] + pass)
        let f = ts[0], l = ts[1]
        guard f.shape.count == 2, f.dtype.isFloat else { throw ToolError.data("'\(featuresName)' must be T×D floating point (one row per token), got \(f.dtype.name) \(f.shape)") }
        guard l.shape.count == 1, !l.dtype.isFloat else { throw ToolError.data("'\(lengthsName)' must be 1-d integers (one token count per text), got \(l.dtype.name) \(l.shape)") }
        let lengths = try checkedLengths(try l.int64s(), name: lengthsName, rows: f.shape[0])
        try checkTokens(lengths: lengths, width: f.shape[1], hidden: net.inputDim, maxPositions: maxPositions)
        let n = lengths.count
        for t in ts.dropFirst(2) where t.shape.first != n {
            throw ToolError.data("--pass \(t.name): it has \(t.shape.first ?? 1) rows but there are \(n) texts")
        }
        let xs = f.floats()
        if let bad = firstNonFinite(xs) { throw ToolError.data("'\(featuresName)' holds \(xs[bad]) in token row \(bad / f.shape[1])") }
        let data = Examples(x: Matrix(rows: f.shape[0], cols: f.shape[1], data: xs), labels: [Int](repeating: 0, count: n), lengths: lengths)
        let out = try output.open()
        let sink = try PredictionSink(out.writer, net: net, temperature: T, average: average, pass: ts.dropFirst(2).map(\.info))
        try sink.write(memberLogits(net, data, chunk: chunk, maxTokens: maxTokens, threads: threads), rows: n, pass: Array(ts.dropFirst(2)))
        try out.finish()
    }
}

/// The output tensors of sve-predict, written a block of rows at a time.
struct PredictionSink {
    let w: TensorStreamWriter
    let members: Int, classes: Int, temperature: Double, average: Averaging
    let ids: [Int]
    let passIDs: [Int]

    init(_ w: TensorStreamWriter, net: EnsembleNetwork<Float>, temperature T: Double, average: Averaging, pass: [TensorInfo]) throws {
        self.w = w; members = net.members; classes = net.classes; temperature = T; self.average = average
        let meta = ["sve.temperature": "\(T)", "sve.average": average.rawValue, "sve.members": "\(net.members)"]
        ids = try [("probs", [net.classes]), ("member_probs", [net.members, net.classes]), ("entropy", []),
                   ("expected_entropy", []), ("mutual_info", [])].map { try w.add(TensorInfo(name: $0.0, dtype: .f32, rowShape: $0.1, meta: meta)) }
        passIDs = try pass.map { info in
            var i = info
            i.rows = nil
            return try w.add(i)
        }
    }

    func write(_ logits: [Double], rows n: Int, pass: [Tensor]) throws {
        let p = ensemblePrediction(memberLogits: logits, members: members, rows: n, classes: classes, temperature: temperature, averaging: average)
        for (id, v) in zip(ids, [p.probs, p.memberProbs, p.entropy, p.expectedEntropy, p.mutualInfo]) {
            try w.write(id, rows: n, values: v.map { Float($0) })
        }
        for (k, id) in passIDs.enumerated() {
            try pass[k].data.withUnsafeBytes { try w.write(id, rows: n, bytes: $0) }
        }
    }
}
