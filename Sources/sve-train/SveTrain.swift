import Failure
import ArgumentParser
import LinearAlgebra
import SVE
import TensorStream
import ToolKit
import Probability

extension EnsembleMethod: ExpressibleByArgument {}

enum BatchMode: String, ExpressibleByArgument, CaseIterable {
    case shared, independent
}

@main
struct SveTrain: Tool, ThreadedTool {
    static let configuration = CommandConfiguration(
        commandName: "sve-train",
        abstract: "Train a singular value ensemble (or its baselines) over a pretrained stack.",
        discussion: """
            Every linear layer of the stack becomes y = U diag(max(s_m, 0)) Vᵀ x + b_m: U and Vᵀ (from \
            sve-decompose) are frozen and shared, each of the M members trains its own singular values s_m and \
            bias b_m (initialised at S∘(1+ε), ε ~ N(0, σ²), and b + N(0, 0.01²)) and its own linear head. \
            The loss is the mean cross-entropy over members; AdamW (weight decay on every trainable parameter, \
            the singular values included, as in the reference code), global gradient-norm clipping, linear \
            warm-up then cosine decay to 0. The epoch with the best validation accuracy is kept and one \
            temperature is fitted on validation NLL. --members 1 is plain singular-value fine-tuning (SVF); \
            --method deep-ensemble trains M independent dense copies of the stack (every weight and LayerNorm \
            trainable, own batch order, own gradient clipping). SVE keeps LayerNorms frozen at their \
            pretrained values.

            How long: --epochs E trains E epochs; --steps S trains at least S optimiser steps \
            (the epochs derived from the training rows and --batch-size); with both, whichever is \
            longer. With neither, at least 10 epochs and at least 100 steps: on a large set 10 \
            epochs are plenty, but with few labelled rows an epoch is one or two steps, and 10 \
            epochs leave the members near their initialisation (BBC with 10 rows per class: 20 \
            steps gave 86 % accuracy, 100 steps 93 %). The model's metadata records the epochs \
            and steps run.

            The stack (--stack) is a list of items separated by spaces or commas: linear:NAME (a layer of the \
            basis), gelu, relu, tanh, layernorm:NAME[:EPS] (pretrained weights from the basis file; eps \
            default 1e-12 as in BERT), and residual( ... ) for x + block(x). The member heads go on top.

            Whole transformer layers (the paper's setting): --layers A-B stands for the stack \
            "bert-layer:encoder.layer.A:H … bert-layer:encoder.layer.B:H mean-pool" (H = --heads); every \
            linear layer of each (attention query, key, value and output; FFN in and out) is wrapped as \
            above, LayerNorms stay frozen, attention runs within each text, and the members' heads sit \
            on the mean over each text's tokens. The input is then token level, as emb-encode --emit \
            layer.A.input writes it: 'features' holds one row per token (T×hidden, the texts back to \
            back) and 'lengths' (N) each text's rows; 'labels' and --split have one entry per text. A \
            mini-batch of --batch-size texts is run in parts of at most --max-tokens token rows (memory \
            is bounded by the part); every member sees the same mini-batch. With --threads T, the \
            mini-batch's texts are shared out to T threads (about equal work each, in parts of at most \
            --max-tokens/T rows) whose gradients are added in a fixed order: the same model for a given \
            T, and the model of --threads 1 up to float rounding.

            Input: 'features' (N×D) and 'labels' (N, integers 0..K-1). Output: the model stream \
            ('temperature' with the stack in its metadata, the shared basis once, per-member parameters \
            stacked on a first axis of length M), for sve-predict. When every member sees the same \
            mini-batch (--batches shared, SVE's default), --threads T shares its rows out to T threads \
            like texts above: the same model for a given T, the model of --threads 1 up to float \
            rounding. The same input, --seed and --threads give a byte-identical model.

            Examples:
              tensor from safetensors model.safetensors \\
                | sve-decompose --prefix encoder.layer.5. -o basis.tsr
              L=encoder.layer.5
              FFN="linear:$L.intermediate.dense gelu linear:$L.output.dense"
              sve-train train.tsr --basis basis.tsr --members 8 --seed 1 \\
                --stack "residual($FFN) layernorm:$L.output.LayerNorm" -o model.tsr
              sve-train data.tsr --split split.tsr --basis basis.tsr \\
                --stack "residual($FFN) layernorm:$L.output.LayerNorm" \\
                --method deep-ensemble -o de.tsr
              tensor from safetensors model.safetensors \\
                | sve-decompose --layers 4-5 -o basis45.tsr
              emb-encode --model M --emit layer.4.input docs.txt \\
                | tensor rename layer.4.input=features | tensor cat - labels.tsr \\
                | sve-train --basis basis45.tsr --layers 4-5 --max-tokens 4096 -o model.tsr
            """,
        version: toolboxVersion)

    @Argument(help: ArgumentHelp("Input stream with 'features' and 'labels' ('-': standard input).", valueName: "FILE"))
    var input: String = "-"

    @Option(help: ArgumentHelp("The basis from sve-decompose (with the LayerNorms the stack names).", valueName: "FILE"))
    var basis: String

    @Option(help: ArgumentHelp("The pretrained stack, e.g. \"residual(linear:A gelu linear:B) layernorm:C\".", valueName: "SPEC"))
    var stack: String?

    @Option(help: ArgumentHelp("Whole transformer layers A to B of the basis (token-level input; instead of --stack).", valueName: "A-B"))
    var layers: LayerRange?

    @Option(parsing: .unconditional, help: ArgumentHelp("Attention heads of each layer (--layers).", valueName: "H"))
    var heads: Int = 12

    @Option(name: .customLong("max-tokens"), parsing: .unconditional, help: ArgumentHelp("Token level: at most N token rows per forward pass.", valueName: "N"))
    var maxTokens: Int = 8192

    @Option(name: .customLong("lengths"), help: ArgumentHelp("Token level: name of the tensor of each text's token rows.", valueName: "NAME"))
    var lengthsName = "lengths"

    @Option(help: "sve (singular value ensemble) or deep-ensemble (the baseline).")
    var method: EnsembleMethod = .sve

    @Option(parsing: .unconditional, help: ArgumentHelp("Ensemble members M (1: a single model).", valueName: "M"))
    var members: Int = 4

    @Option(parsing: .unconditional, help: ArgumentHelp("Training epochs (default: 10, or more to reach 100 steps; see --steps).", valueName: "E"))
    var epochs: Int?

    @Option(parsing: .unconditional, help: ArgumentHelp("Train at least S optimiser steps (epochs derived from the training rows and --batch-size).", valueName: "S"))
    var steps: Int?

    @Option(parsing: .unconditional, help: "Peak learning rate (AdamW).")
    var lr: Double = 1e-3

    @Option(name: .customLong("weight-decay"), parsing: .unconditional, help: "AdamW decoupled weight decay.")
    var weightDecay: Double = 0.05

    @Option(name: .customLong("batch-size"), parsing: .unconditional, help: "Rows per mini-batch.")
    var batchSize: Int = 16

    @Option(parsing: .unconditional, help: "Global gradient-norm clip.")
    var clip: Double = 1.0

    @Option(parsing: .unconditional, help: ArgumentHelp("Warm-up as a fraction of all steps.", valueName: "FRACTION"))
    var warmup: Double = 0.1

    @Option(name: .customLong("sigma-init"), parsing: .unconditional, help: "σ of the multiplicative noise on the singular values at initialisation.")
    var sigmaInit: Double = 0.01

    @Option(name: .customLong("head-init-std"), parsing: .unconditional, help: "Standard deviation of the member heads' initial weights (biases start at 0).")
    var headInitStd: Double = 0.01

    @Option(help: ArgumentHelp("shared: every member sees the same mini-batch (SVE default); independent: each member its own order (deep-ensemble default).", valueName: "MODE"))
    var batches: BatchMode?

    @Option(parsing: .unconditional, help: "Seed of every random choice.")
    var seed: UInt64 = 0

    @Option(name: .customLong("val-fraction"), parsing: .unconditional, help: ArgumentHelp("Rows held out (at random, seeded) for validation.", valueName: "F"))
    var valFraction: Double = 0.1

    @Option(help: ArgumentHelp("Stream with an integer 'split' tensor per row: 0 train, 1 validation, anything else unused (test).", valueName: "FILE"))
    var split: String?

    @Option(parsing: .unconditional, help: ArgumentHelp("Number of classes (default: largest label + 1).", valueName: "K"))
    var classes: Int?

    @Option(name: .customLong("features"), help: ArgumentHelp("Name of the features tensor.", valueName: "NAME"))
    var featuresName = "features"

    @Option(name: .customLong("labels"), help: ArgumentHelp("Name of the labels tensor.", valueName: "NAME"))
    var labelsName = "labels"

    @Flag(name: .shortAndLong, help: "Report every epoch (loss, validation accuracy and NLL) on standard error.")
    var verbose = false

    @OptionGroup var common: CommonOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var notes: NoteOptions

    func validate() throws {
        if members < 1 || members > 1024 { throw ValidationError("--members must be between 1 and 1024") }
        if let e = epochs, e < 1 || e > 1_000_000 { throw ValidationError("--epochs must be between 1 and 1000000") }
        if let s = steps, s < 1 || s > 100_000_000 { throw ValidationError("--steps must be between 1 and 100000000") }
        if !(headInitStd >= 0) || !headInitStd.isFinite { throw ValidationError("--head-init-std must be a number ≥ 0") }
        if !(lr > 0) || !lr.isFinite { throw ValidationError("--lr must be positive") }
        if !(weightDecay >= 0) || !weightDecay.isFinite { throw ValidationError("--weight-decay must be a number ≥ 0") }
        if batchSize < 1 || batchSize > 1_000_000 { throw ValidationError("--batch-size must be between 1 and 1000000") }
        if !(clip > 0) || !clip.isFinite { throw ValidationError("--clip must be a positive number") }
        if !(warmup >= 0 && warmup <= 1) { throw ValidationError("--warmup must be a fraction between 0 and 1") }
        if !(sigmaInit >= 0) || !sigmaInit.isFinite { throw ValidationError("--sigma-init must be a number ≥ 0") }
        if !(valFraction >= 0 && valFraction < 1) { throw ValidationError("--val-fraction must be in [0, 1)") }
        if let k = classes, k < 2 || k > 100_000 { throw ValidationError("--classes must be between 2 and 100000") }
        if (stack == nil) == (layers == nil) { throw ValidationError("give the stack: --stack SPEC or --layers A-B") }
        if heads < 1 || heads > 4096 { throw ValidationError("--heads must be between 1 and 4096") }
        if maxTokens < 1 { throw ValidationError("--max-tokens must be at least 1") }
        do { _ = try spec() } catch { throw ValidationError("--stack: \(error)") }
    }

    func spec() throws -> StackSpec {
        if let layers { return try layers.stack(heads: heads) }
        return try StackSpec(parsing: stack!)
    }

    func run() throws {
        let blasThreads = try prepareBLAS(threads: common.threadCount)
        keepLargeBuffersInHeap()   // a step's matrices are allocated again at every step
        if verbose { writeStderr(BLASKernel.summary(threads: blasThreads) + "\n") }
        let spec = try spec()
        // The data: one row per example, or token rows with each text's length.
        let data = try openStream(input).readTensors(spec.tokenLevel ? [featuresName, labelsName, lengthsName] : [featuresName, labelsName])
        let f = data[0], l = data[1]
        guard f.shape.count == 2 else { throw ToolError.data("'\(featuresName)' must be \(spec.tokenLevel ? "T" : "N")×D, got shape \(f.shape)") }
        guard f.dtype.isFloat else { throw ToolError.data("'\(featuresName)' must be floating point, got \(f.dtype.name)") }
        let D = f.shape[1]
        let lengths = spec.tokenLevel ? try tokenLengths(data[2], rows: f.shape[0]) : nil
        let N = lengths?.count ?? f.shape[0]
        guard l.shape == [N] else {
            throw ToolError.data("'\(labelsName)' has shape \(l.shape) but there are \(N) \(spec.tokenLevel ? "texts in '\(lengthsName)'" : "rows in '\(featuresName)'") (expected [\(N)])")
        }
        let x = f.floats()
        if let bad = firstNonFinite(x) { throw ToolError.data("'\(featuresName)' holds \(x[bad]) in row \(bad / D)") }
        guard N >= 2 else {
            throw ToolError.data("'\(featuresName)' has \(N) row\(N == 1 ? "" : "s"): training needs at least 2 (and 2 classes)")
        }
        let labels = try l.int64s()
        let maxLabel = labels.max() ?? 0
        guard classes != nil || maxLabel < 100_000 else {
            throw ToolError.data("label \(maxLabel) would make \(maxLabel + 1) classes (labels must be 0..K-1; pass --classes K if that is right)")
        }
        let K = classes ?? Int(maxLabel + 1)
        if let bad = labels.firstIndex(where: { $0 < 0 || $0 >= Int64(K) }) {
            throw ToolError.data("label \(labels[bad]) in row \(bad) is out of range [0, \(K))\(classes == nil ? "" : " (--classes \(K))")")
        }
        guard K >= 2 else { throw ToolError.data("the labels hold a single class: nothing to learn") }
        let y = labels.map { Int($0) }

        // Train and validation rows.
        var trainRows: [Int] = [], valRows: [Int] = []
        if let split {
            let s = try openStream(split).readTensors(["split"])[0]
            guard s.shape == [N] else { throw ToolError.data("'split' in \(split) has shape \(s.shape), expected [\(N)]") }
            for (i, v) in try s.int64s().enumerated() {
                if v == 0 { trainRows.append(i) } else if v == 1 { valRows.append(i) }
            }
        } else {
            var r = SeededGenerator(seed: seed ^ 0x5EED_5A17_0000_0001)
            let perm = r.permutation(N)
            let nVal = Int((valFraction * Double(N)).rounded())
            valRows = perm[0..<nVal].sorted()
            trainRows = perm[nVal...].sorted()
        }
        guard !trainRows.isEmpty else { throw ToolError.data("no training rows (split 0)") }
        if valRows.isEmpty {
            let why = split != nil ? "no row of \(split!) is 1" : "--val-fraction \(valFraction) of \(N) rows is none"
            notes.note("sve-train", "warning: no validation rows (\(why)): keeping the last epoch, temperature 1 (not fitted)")
        }
        let all = Examples(x: Matrix(rows: f.shape[0], cols: D, data: x), labels: y, lengths: lengths)

        // The pretrained stack.
        let basisTensors = try openStream(basis).readAll()
        let arrays = basisTensors.map { NamedArray(name: $0.name, shape: $0.shape, values: $0.floats()) }
        let bases: [String: LayerBasis]
        bases = try inContext(basis) { try layerBases(from: arrays, names: spec.linearNames) }
        var maxPositions: Int? = nil
        if let lengths {
            maxPositions = basisTensors.lazy.compactMap { $0.meta[LayerRange.maxPositionsKey].flatMap { Int($0) } }.first
            try checkTokens(lengths: lengths, width: D, hidden: bases[spec.linearNames[0]]!.inDim, maxPositions: maxPositions)
        }
        var lns: [String: LayerNormWeights] = [:]
        for n in spec.layerNormNames {
            guard let w = arrays.first(where: { $0.name == "\(n).weight" }), let b = arrays.first(where: { $0.name == "\(n).bias" }) else {
                throw ToolError.data("\(basis) has no LayerNorm '\(n)' (need \(n).weight and \(n).bias: name it with sve-decompose --layer \(n))")
            }
            lns[n] = LayerNormWeights(weight: w.values, bias: b.values)
        }
        var rng = SeededGenerator(seed: seed)
        let net = try EnsembleNetwork<Float>(spec: spec, method: method, members: members, inputDim: D, classes: K,
                                             bases: bases, layerNorms: lns, options: InitOptions(sigmaInit: sigmaInit, headStd: headInitStd), rng: &rng)

        // Epochs: as given, or enough for --steps, or the default (at least 10 epochs and 100 steps).
        let epochs = SVE.epochs(minimumSteps: steps ?? (self.epochs == nil ? 100 : 0), minimumEpochs: self.epochs ?? (steps == nil ? 10 : 0),
                                rows: trainRows.count, batchSize: batchSize)
        var opts = TrainOptions()
        opts.epochs = epochs; opts.learningRate = lr; opts.weightDecay = weightDecay
        opts.batchSize = batchSize; opts.clipNorm = clip; opts.warmupFraction = warmup
        opts.sharedBatches = (batches ?? (method == .sve ? .shared : .independent)) == .shared
        opts.maxTokens = maxTokens
        opts.threads = blasThreads
        let progress = Progress("sve-train", total: epochs * ((trainRows.count + batchSize - 1) / batchSize), unit: "steps")
        let validation = valRows.isEmpty ? nil : all.subset(valRows)
        let result: TrainResult
        do {
            result = try train(net, data: all.subset(trainRows), validation: validation,
                               options: opts, rng: &rng) { step, total, loss, acc in
                progress.update(step, note: "loss \(decimal(loss))" + (acc.map { "  val acc \(decimal($0 * 100, 1))%" } ?? ""))
            }
        } catch {
            progress.finish()
            throw error
        }
        progress.finish()
        if verbose {
            for h in result.history {
                writeStderr("epoch \(h.epoch): loss \(decimal(h.trainLoss))" +
                            (h.valAccuracy.map { "  val acc \(decimal($0 * 100, 2))%  val nll \(decimal(h.valNLL ?? 0))" } ?? "") + "\n")
            }
            writeStderr("\(epochs) epochs of \(stepsPerEpoch(rows: trainRows.count, batchSize: batchSize)) steps; kept epoch \(result.bestEpoch), temperature \(decimal(result.temperature))\n")
        }

        // The model.
        let (modelArrays, meta) = net.archive(temperature: result.temperature)
        var trainMeta = meta
        trainMeta["sve.seed"] = "\(seed)"
        trainMeta["sve.epochs"] = "\(epochs)"
        trainMeta["sve.steps"] = "\(epochs * stepsPerEpoch(rows: trainRows.count, batchSize: batchSize))"
        trainMeta["sve.head_init_std"] = "\(headInitStd)"
        trainMeta["sve.best_epoch"] = "\(result.bestEpoch)"
        trainMeta["sve.validation_rows"] = "\(valRows.count)"
        if let maxPositions { trainMeta[LayerRange.maxPositionsKey] = "\(maxPositions)" }
        if valRows.isEmpty { trainMeta["sve.validation"] = "none: last epoch kept, temperature 1 (not fitted)" }
        if let acc = result.history[result.bestEpoch - 1].valAccuracy { trainMeta["sve.val_accuracy"] = "\(acc)" }
        let out = try output.open()
        for a in modelArrays {
            try out.writer.write(Tensor(name: a.name, shape: a.shape, floats: a.values,
                                        meta: a.name == ModelMeta.temperature ? trainMeta : [:]))
        }
        try out.finish()
    }
}

/// The texts' token counts of a token-level input (1-d integers).
func tokenLengths(_ t: Tensor, rows: Int) throws -> [Int] {
    guard t.shape.count == 1, !t.dtype.isFloat else { throw ToolError.data("'\(t.name)' must be 1-d integers (one token count per text), got \(t.dtype.name) \(t.shape)") }
    return try checkedLengths(try t.int64s(), name: t.name, rows: rows)
}

extension LayerRange: ExpressibleByArgument {
    public init?(argument: String) { self.init(parsing: argument) }
}

func decimal(_ v: Double, _ digits: Int = 4) -> String { cFormat("%.\(digits)f", v) }
