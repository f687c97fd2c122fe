import ArgumentParser
import LinearAlgebra
import SVE
import TensorStream
import ToolKit

extension Averaging: ExpressibleByArgument {}

@main
struct SvePredict: Tool {
    static let configuration = CommandConfiguration(
        commandName: "sve-predict",
        abstract: "Predictions and uncertainties of a trained singular value ensemble.",
        discussion: """
            Each member's probabilities are p_m = softmax(logits_m / T) with the temperature fitted by \
            sve-train. The ensemble prediction 'probs' averages the members' probabilities (the paper; \
            --average logits averages their logits instead, as the public code does). Per row: 'entropy' \
            H[p̄] (total), 'expected_entropy' (1/M) Σ H[p_m] (aleatoric) and 'mutual_info', their difference \
            clamped at 0 (epistemic); natural log. 'member_probs' is N×M×K. Rows are streamed in chunks: \
            memory does not grow with N.

            Examples:
              sve-predict test.tsr --model model.tsr > pred.tsr
              sve-predict test.tsr --model model.tsr --pass labels | calib-metrics
              tensor select features < test.tsr \\
                | sve-predict --model model.tsr --average logits | tensor to csv
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

    @OptionGroup var common: CommonOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var notes: NoteOptions

    func validate() throws {
        if chunk < 1 || chunk > 1 << 20 { throw ValidationError("--chunk must be between 1 and 1048576") }
        if pass.contains(featuresName) { throw ValidationError("--pass \(featuresName): the features are not copied") }
    }

    func run() throws {
        try prepareBLAS(threads: common.threadCount)
        let modelTensors = try openStream(model).readAll()
        guard let tt = modelTensors.first(where: { $0.name == ModelMeta.temperature }) else {
            throw ToolError.data("\(model) is not an sve-train model (no 'temperature' tensor)")
        }
        let arrays = modelTensors.map { NamedArray(name: $0.name, shape: $0.shape, values: $0.floats()) }
        let (net, fitted) = try inContext(model) { try EnsembleNetwork<Float>.load(arrays: arrays, meta: tt.meta) }
        let T = noTemperature ? 1 : fitted
        let M = net.members, K = net.classes, D = net.inputDim

        let reader = RowBlockReader(try openStream(input), names: [featuresName] + pass, blockRows: chunk)
        let infos = try reader.headers()
        guard infos[0].rowShape == [D] else {
            throw ToolError.data("'\(featuresName)' has rows of shape \(infos[0].rowShape); the model takes \(D) features")
        }
        guard infos[0].dtype.isFloat else { throw ToolError.data("'\(featuresName)' must be floating point, got \(infos[0].dtype.name)") }
        let out = try output.open()
        let w = out.writer
        let meta = ["sve.temperature": "\(T)", "sve.average": average.rawValue, "sve.members": "\(M)"]
        let idProbs = try w.add(TensorInfo(name: "probs", dtype: .f32, rowShape: [K], meta: meta))
        let idMember = try w.add(TensorInfo(name: "member_probs", dtype: .f32, rowShape: [M, K], meta: meta))
        let idH = try w.add(TensorInfo(name: "entropy", dtype: .f32, rowShape: [], meta: meta))
        let idEH = try w.add(TensorInfo(name: "expected_entropy", dtype: .f32, rowShape: [], meta: meta))
        let idMI = try w.add(TensorInfo(name: "mutual_info", dtype: .f32, rowShape: [], meta: meta))
        var idPass: [Int] = []
        for info in infos.dropFirst() {
            var i = info
            i.rows = nil
            idPass.append(try w.add(i))
        }
        while let block = try reader.next() {
            let n = block[0].rows
            let xs = block[0].floats()
            if let bad = xs.firstIndex(where: { !$0.isFinite }) {
                throw ToolError.data("'\(featuresName)' holds \(xs[bad]) in row \(reader.rowsDone - n + bad / D)")
            }
            let logits = memberLogits(net, Matrix(rows: n, cols: D, data: xs), chunk: 256)
            let p = ensemblePrediction(memberLogits: logits, members: M, rows: n, classes: K, temperature: T, averaging: average)
            try w.write(idProbs, rows: n, values: p.probs.map { Float($0) })
            try w.write(idMember, rows: n, values: p.memberProbs.map { Float($0) })
            try w.write(idH, rows: n, values: p.entropy.map { Float($0) })
            try w.write(idEH, rows: n, values: p.expectedEntropy.map { Float($0) })
            try w.write(idMI, rows: n, values: p.mutualInfo.map { Float($0) })
            for (k, id) in idPass.enumerated() {
                try block[k + 1].data.withUnsafeBytes { try w.write(id, rows: n, bytes: $0) }
            }
        }
        try out.finish()
    }
}
