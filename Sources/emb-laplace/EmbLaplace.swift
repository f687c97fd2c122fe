import Failure
import ArgumentParser
import LinearAlgebra
import Parallel
import TensorStream
import ToolKit
import UEC
import UECStreams

@main
struct EmbLaplace: Tool {
    static let configuration = CommandConfiguration(
        commandName: "emb-laplace",
        abstract: "Make deterministic embeddings probabilistic with a last-layer Laplace approximation.",
        discussion: """
            'fit' takes positive pairs (tensors 'query' and 'positive') and computes the diagonal \
            empirical Fisher of the in-batch InfoNCE loss for the last linear layer z = W h + b, \
            exactly, by three GEMMs per batch; the posterior variance of every weight is 1/(F + λ), \
            with the prior precision λ fitted by evidence maximisation (MacKay) unless given. By \
            default the layer is the identity adapter on the embeddings themselves (W = I, b = 0); \
            with --layer it is a real last layer and the pairs are that layer's pooled inputs. \
            'apply' turns embeddings (or layer inputs) into a 'mean' and a per-dimension 'var'.

            With the identity adapter var_d(x) = Σ_i V[d,i] e_i² + V_b[d] depends on the embedding \
            e only through e∘e: flipping the sign of any coordinate changes the embedding completely \
            but leaves its variance unchanged. When most Fisher entries are below λ ('fit -v' and \
            the posterior's metadata say how many), the trace is then nearly a constant times \
            ‖e‖², and 'apply -v' shows its rank correlation with 1/‖e‖²: near ±1, the variance \
            knows no more than the norm. Check what it predicts with calib-metrics --uncertainty.

            Examples:
              tensor from npz pairs.npz > pairs.tsr     # tensors query, positive (N×D)
              emb-laplace fit --heldout val.tsr < pairs.tsr > post.tsr
              tensor from npy emb.npy --name embedding \\
                | emb-laplace apply --posterior post.tsr --normalize delta > prob.tsr
            """,
        version: toolboxVersion,
        subcommands: [Fit.self, Apply.self])
}

struct Fit: Tool, ThreadedTool {
    static let configuration = CommandConfiguration(
        abstract: "Fit the Laplace posterior of the last layer on positive pairs.",
        discussion: """
            Reads 'query' and 'positive' (N×P, row i of each is a positive pair) and groups \
            consecutive rows into batches of --batch-size pairs: the other positives of a batch are \
            the negatives of InfoNCE (shuffle the pairs upstream if their order is meaningful). \
            The variance scale c that makes the predicted variances match held-out pairs is fitted \
            by maximum likelihood on --heldout pairs, or set with --variance-scale; without either \
            it is 1. Everything it was fitted on is kept in the posterior's metadata \
            ('tensor info post.tsr' shows it).

            Examples:
              emb-laplace fit --heldout val.tsr < train.tsr > post.tsr
              emb-laplace fit --layer dense.tsr --weight-name output.dense.weight \\
                  --bias-name output.dense.bias < pooled-inputs.tsr > post.tsr
            """)

    @Argument(help: ArgumentHelp("Pairs stream with 'query' and 'positive' ('-' = standard input).", valueName: "FILE"))
    var input = "-"

    @Option(help: ArgumentHelp("Stream holding the last layer's weight (D×P) and bias (D); default: the identity adapter.", valueName: "FILE"))
    var layer: String?
    @Option(name: .customLong("weight-name"), help: "Name of the weight tensor in --layer.")
    var weightName = "weight"
    @Option(name: .customLong("bias-name"), help: "Name of the bias tensor in --layer (absent: b = 0).")
    var biasName = "bias"

    @Option(name: .customLong("batch-size"), parsing: .unconditional, help: "Pairs per InfoNCE batch.")
    var batchSize = 32
    @Option(parsing: .unconditional, help: "InfoNCE temperature τ (the reference uses 1 on unnormalised embeddings).")
    var temperature = 1.0
    @Option(name: .customLong("prior-precision"), parsing: .unconditional, help: ArgumentHelp("Prior precision λ (default: fitted by MacKay's fixed point; the reference code uses 1e-5).", valueName: "λ"))
    var priorPrecision: Double?
    @Option(help: ArgumentHelp("Held-out pairs ('query', 'positive') to fit the variance scale on.", valueName: "FILE"))
    var heldout: String?
    @Option(name: .customLong("variance-scale"), parsing: .unconditional, help: ArgumentHelp("Set the variance scale c by hand.", valueName: "c"))
    var varianceScale: Double?
    @Flag(name: .shortAndLong, help: "Print a summary (pairs, loss, λ, γ and the share of Fisher entries below λ, c) on standard error.")
    var verbose = false

    @OptionGroup var common: CommonOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var notes: NoteOptions

    func validate() throws {
        if batchSize < 2 { throw ValidationError("--batch-size must be at least 2 (InfoNCE needs negatives)") }
        // A batch costs B×B similarities in float64 (and the pairs themselves): 16384 is 2 GB.
        if batchSize > 16384 { throw ValidationError("--batch-size must be at most 16384 (a batch holds B×B similarities)") }
        if !(temperature > 0) || !temperature.isFinite { throw ValidationError("--temperature must be a positive number") }
        if let l = priorPrecision, !(l > 0) || !l.isFinite { throw ValidationError("--prior-precision must be a positive number") }
        if let c = varianceScale, !(c > 0) || !c.isFinite { throw ValidationError("--variance-scale must be a positive number") }
        if heldout != nil && varianceScale != nil { throw ValidationError("give --heldout or --variance-scale, not both") }
        let fromStdin = [("the pairs", input), ("--layer", layer), ("--heldout", heldout)].filter { $0.1 == "-" }.map(\.0)
        if fromStdin.count > 1 {
            let names = fromStdin.dropLast().joined(separator: ", ") + " and " + fromStdin.last!
            throw ValidationError("\(names) cannot \(fromStdin.count == 2 ? "both" : "all") be standard input")
        }
    }

    /// The layer of the stream `r` (--layer), opened already.
    func loadLayer(_ r: TensorStreamReader) throws -> LastLayer {
        let all = try r.readAll()
        guard let w = all.first(where: { $0.name == weightName }) else {
            throw ToolError.data("\(r.label) has no tensor '\(weightName)' (it has: \(all.map(\.name).joined(separator: ", "))); name it with --weight-name")
        }
        guard w.shape.count == 2, w.shape[0] > 0, w.shape[1] > 0 else {
            throw ToolError.data("\(r.label): '\(weightName)' must be D×P, it is \(w.info.signature)")
        }
        try requireFloat(w.info, in: r.label)
        let d = w.shape[0]
        var bias = [Double](repeating: 0, count: d)
        if let b = all.first(where: { $0.name == biasName }) {
            try requireFloat(b.info, in: r.label)
            guard b.shape == [d] else { throw ToolError.data("\(r.label): '\(biasName)' is \(b.info.signature), expected \(d) values") }
            bias = b.doubles()
        }
        let wd = w.doubles()
        if wd.contains(where: { !$0.isFinite }) || bias.contains(where: { !$0.isFinite }) {
            throw ToolError.data("\(r.label): the layer holds non-finite weights")
        }
        return LastLayer(weight: Matrix(rows: d, cols: w.shape[1], data: wd), bias: bias)
    }

    func run() throws {
        keepOneHeapForAllThreads()   // blocks are read on one thread and freed on another
        let blasThreads = try prepareBLAS(threads: common.threadCount)
        if verbose { writeStderr(BLASKernel.summary(threads: blasThreads) + "\n") }
        keepLargeBuffersInHeap()   // a block's matrices are allocated again for every block
        // Blocks of whole batches, about 256 pairs: the GEMMs of all of a block's batches at once.
        let batchesPerBlock = max(1, 256 / batchSize)
        // The layer is loaded on one thread while the pairs' headers and first block are read on
        // the other; the errors come in the order of a program that did one after the other
        // (the layer's file is opened first: a missing one is said at once, not after a block
        // of pairs has come through a pipe).
        let layerStream = try layer.map { try openStream($0) }
        var layerModel: LastLayer? = nil
        var opened: Result<PairBlocks, Error>? = nil, firstBlock: Result<PairBlocks.Block?, Error>? = nil
        let readFirst = {
            opened = Result { try PairBlocks(self.input, blockRows: batchSize * batchesPerBlock, progress: "emb-laplace fit: pairs") }
            if case .success(let blocks) = opened { firstBlock = Result { try blocks.next() } }
        }
        if let layerStream, blasThreads > 1 {
            try onTwoThreads({ layerModel = try self.loadLayer(layerStream) }, readFirst)
        } else {
            layerModel = try layerStream.map { try loadLayer($0) }
            readFirst()
        }
        let pairs = try opened!.get()
        if let layerModel { try pairs.require(width: layerModel.inputs, of: layer!) }
        var first = try firstBlock!.get(), firstTaken = false
        // Identity adapter: D is known from the first header.
        let model = layerModel ?? .identity(pairs.width)
        var acc = InfoNCEFisher(layer: model, temperature: temperature)
        // Block after block, each read while the one before is multiplied (InfoNCEFisher.add(blocks:)).
        try acc.add(blocks: {
            guard firstTaken else { firstTaken = true; defer { first = nil }; return first }
            return try pairs.next()
        }, batchSize: batchSize, threads: blasThreads)
        pairs.finish()
        let label = pairs.label, fisher = acc
        guard fisher.pairs > 0 else { throw ToolError.data("\(label): no pairs to fit on") }
        if fisher.batches == 1 && fisher.pairs < 2 { throw ToolError.data("\(label): one pair is not enough (InfoNCE needs negatives)") }

        var meta: [String: String] = [
            "method": "diagonal empirical Fisher of in-batch InfoNCE, last-layer Laplace (see emb-laplace(1))",
            "adapter": fisher.layer.isIdentity ? "identity" : "layer",
            "temperature": metaNumber(temperature), "batch_size": "\(batchSize)",
            "pairs": "\(fisher.pairs)", "batches": "\(fisher.batches)",
            "mean_loss": metaNumber(fisher.lossSum / Double(fisher.pairs)),
            "fitted_on": label,
        ]
        if let layer { meta["layer"] = layer }
        let lambda: Double
        if let given = priorPrecision {
            lambda = given
            meta["prior"] = "given"
        } else {
            let fit = fitPriorPrecision(fisher: fisher.flat, squaredNorm: fisher.layer.squaredNorm)
            // No λ > 0 when the Fisher is zero; and the variances 1/(F + λ) are applied in float32,
            // so a λ whose inverse overflows it makes every variance infinite. Both come from pairs
            // whose gradients all (but) vanish.
            let loss = cFormat("%.3g", fisher.lossSum / Double(fisher.pairs))
            guard fit.lambda > 0, fit.lambda.isFinite else {
                throw ToolError.data("\(label): the Fisher is zero, so the evidence has no maximum (mean loss \(loss): identical pairs, "
                    + "or an in-batch softmax saturated by embeddings of large norm); normalise the embeddings or raise --temperature, or give --prior-precision")
            }
            guard 1 / fit.lambda < Double(Float.greatestFiniteMagnitude) else {
                throw ToolError.data("\(label): the evidence puts the prior precision at λ = \(cFormat("%.3g", fit.lambda)): the Fisher is all but zero "
                    + "(mean loss \(loss): the in-batch softmax is saturated, each query far closer to its positive than to the others), "
                    + "so the variances 1/λ would overflow float32; normalise the embeddings or raise --temperature, or give --prior-precision")
            }
            lambda = fit.lambda
            meta["prior"] = "fitted (MacKay)"
            meta["gamma"] = metaNumber(fit.gamma)
            meta["prior_iterations"] = "\(fit.iterations)"
        }
        meta["prior_precision"] = metaNumber(lambda)
        // How far the data moved the posterior from the prior (UEC/Diagnostics.swift).
        let diag = PosteriorDiagnostics(fisher: fisher.flat, priorPrecision: lambda)
        meta["gamma"] = metaNumber(diag.gamma)
        meta["parameters"] = "\(diag.parameters)"
        meta["fisher_below_prior"] = metaNumber(diag.shareBelowPrior)
        if diag.priorDominated {
            meta["informative"] = "doubtful: \(percent(diag.shareBelowPrior)) of the Fisher entries are below the prior precision, so the variances are mostly the prior's"
                + (fisher.layer.isIdentity ? " and the trace tracks ‖e‖² (check it with calib-metrics --uncertainty)" : "")
        }
        var post = LaplacePosterior(fisher: fisher, priorPrecision: lambda)
        var scaleMeta: [String: String] = [:]
        if let c = varianceScale {
            post.varianceScale = c
            scaleMeta["source"] = "given"
        } else if let heldout {
            var est = VarianceScaleEstimator()
            let vw = post.weightVarianceFloat
            let held = try PairBlocks(heldout, blockRows: 4096)
            try held.require(width: fisher.layer.inputs, of: "the fitted layer")
            while let (q, p) = try held.next() {
                let a = post.predict(floatCopy(q), vw: vw, threads: blasThreads), b = post.predict(floatCopy(p), vw: vw, threads: blasThreads)
                est.add(queryMean: a.mean, queryVar: a.variance, positiveMean: b.mean, positiveVar: b.variance)
            }
            let hl = held.label
            guard let c = est.scale, c > 0, c.isFinite else { throw ToolError.data("\(hl): no held-out pairs to fit the variance scale on") }
            post.varianceScale = c
            scaleMeta["source"] = "maximum likelihood on held-out pairs"
            scaleMeta["heldout"] = hl
            scaleMeta["heldout_values"] = "\(est.count)"
        } else {
            scaleMeta["source"] = "not fitted: give --heldout pairs to fit it"
        }
        meta["variance_scale"] = metaNumber(post.varianceScale)
        if verbose {
            let loss = fisher.lossSum / Double(fisher.pairs)
            let gamma = ", γ = " + cFormat("%.5g", diag.gamma) + " of \(diag.parameters) parameters, "
                + percent(diag.shareBelowPrior) + " of Fisher entries below λ"
            writeStderr("emb-laplace fit: \(fisher.pairs) pairs in \(fisher.batches) batches, mean loss " + cFormat("%.4f", loss)
                        + ", λ = " + cFormat("%.5g", Double(lambda)) + gamma + ", c = " + cFormat("%.4g", Double(post.varianceScale))
                        + " (\(scaleMeta["source"]!))\n")
            if let note = meta["informative"] { writeStderr("emb-laplace fit: uncertainty \(note)\n") }
        }
        let out = try output.open()
        try PosteriorStream.write(post, to: out.writer, meta: meta, scaleMeta: scaleMeta)
        try out.finish()
    }
}

struct Apply: Tool, ThreadedTool {
    static let configuration = CommandConfiguration(
        abstract: "Give embeddings a mean and a per-dimension variance from a fitted posterior.",
        discussion: """
            var_d(x) = c·(Σ_i V_W[d,i] h_i(x)² + V_b[d]): one GEMM per 512 rows, on --threads \
            threads (the same bits on any number), streamed in bounded memory. With --normalize the means become unit vectors and the variances follow \
            by the delta method (or, with 'simple', are divided by ‖μ‖²). With the identity \
            adapter var_d(x) depends on x only through e∘e (sign flips of coordinates do not change \
            it); -v prints the Spearman rank correlation of each row's trace Σ_d var_d with \
            1/‖e‖² (it keeps two numbers per row): near ±1, the variance tells no more than the norm.

            With the identity adapter and --normalize none the means are the input rows \
            themselves: the input's records are copied to the output as they came, still \
            compressed, instead of being compressed again (records under 256 KiB or over 8 MiB, \
            or of a tensor that is not the first of its segment, are compressed). --level or \
            --no-shuffle asks for every record to be written anew. The tensors are the same, bit \
            for bit, either way.

            Examples:
              tensor from npy emb.npy --name embedding \\
                | emb-laplace apply --posterior post.tsr > prob.tsr
              emb-laplace apply --posterior post.tsr --normalize delta \\
                corpus.tsr -o corpus-prob.tsr
            """)

    @Argument(help: ArgumentHelp("Stream with the embeddings or layer inputs ('-' = standard input).", valueName: "FILE"))
    var input = "-"
    @Option(help: ArgumentHelp("Posterior from 'emb-laplace fit'.", valueName: "FILE"))
    var posterior: String
    @Option(name: .customLong("input-name"), help: "Tensor to read (N×P).")
    var inputName = "embedding"
    @Option(help: "Normalise the means: none, delta (delta-method variance) or simple (var/‖μ‖²).")
    var normalize: Normalization = .none
    @Option(name: .customLong("variance-scale"), parsing: .unconditional, help: ArgumentHelp("Override the posterior's variance scale c.", valueName: "c"))
    var varianceScale: Double?
    @Option(name: .customLong("block-rows"), parsing: .unconditional, help: "Rows per block (memory bound).")
    var blockRows = 4096
    @Flag(name: .shortAndLong, help: "Print the rank correlation of the per-row trace with 1/‖e‖² (identity adapter) on standard error.")
    var verbose = false
    @Flag(help: "Also write 'trace' (N): Σ_d var_d per row, a per-row uncertainty to audit with calib-metrics --uncertainty trace.")
    var trace = false

    @OptionGroup var common: CommonOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var notes: NoteOptions

    /// Input records smaller than this are compressed again rather than copied: the means are
    /// then written in records of the writer's size, not in many small ones.
    static let smallestCopiedRecord = 256 << 10

    func validate() throws {
        if let c = varianceScale, !(c > 0) || !c.isFinite { throw ValidationError("--variance-scale must be a positive number") }
        if blockRows < 1 || blockRows > 1 << 20 { throw ValidationError("--block-rows must be between 1 and 1048576") }
        if input == "-" && posterior == "-" { throw ValidationError("the input and --posterior cannot both be standard input") }
    }

    func run() throws {
        let blasThreads = try prepareBLAS(threads: common.threadCount)
        keepLargeBuffersInHeap()   // a block's matrices are allocated again for every block
        var (post, postMeta) = try PosteriorStream.read(posterior)
        if let c = varianceScale { post.varianceScale = c }
        let reader = try openStream(input)
        let blocks = RowBlockReader(reader, names: [inputName], blockRows: blockRows)
        let info = try blocks.headers()[0]
        guard !info.isScalar, info.rowShape.count == 1 else {
            throw ToolError.data("\(reader.label): '\(inputName)' must be a matrix N×P, it is \(info.signature)")
        }
        try requireFloat(info, in: reader.label)
        guard info.rowShape[0] == post.layer.inputs else {
            throw ToolError.data("\(reader.label): '\(inputName)' has \(info.rowShape[0]) columns but the posterior \(posterior) expects \(post.layer.inputs)")
        }
        var meta = info.meta
        meta["posterior"] = posterior
        meta["variance_scale"] = metaNumber(post.varianceScale)
        meta["normalize"] = normalize.rawValue
        if let a = postMeta["adapter"] { meta["adapter"] = a }
        let d = post.layer.outputs, p = post.layer.inputs
        // With the identity adapter the means are the input rows themselves: the input's records
        // are copied to the output as they came, not compressed again (unless --level or
        // --no-shuffle asks for another encoding).
        let copiesMeans = post.layer.isIdentity && normalize == .none && info.dtype == .f32 && output.leavesEncodingToTheProgram
        let out = try output.open()
        let mid = try out.writer.add(TensorInfo(name: "mean", dtype: .f32, rowShape: [d], meta: meta))
        let vid = try out.writer.add(TensorInfo(name: "var", dtype: .f32, rowShape: [d]))
        let tid = trace ? try out.writer.add(TensorInfo(name: "trace", dtype: .f32, rowShape: [], meta: ["definition": "sum over d of var (as written)"])) : nil
        let vw = post.weightVarianceFloat
        let progress = Progress("emb-laplace apply", total: info.rows)
        var traceAgainstNorm = verbose && post.layer.isIdentity ? TraceNormCorrelation() : nil
        /// One block's variances (and means, unless they were written already), written.
        func apply(_ h: Matrix<Float>, firstRow: Int) throws {
            let predicted = post.predict(h, vw: vw, threads: blasThreads)
            var mean = predicted.mean
            var v: Matrix<Float>? = predicted.variance
            if normalize != .none { UEC.normalize(mean: &mean, variance: &v, method: normalize == .delta ? .delta : .simple) }
            if let r = firstNonFiniteRow(mean, v!) {
                throw ToolError.data("\(reader.label): row \(firstRow + r) of '\(inputName)' " + whyNonFinite(h, predicted.mean, predicted.variance, row: r, posterior: post))
            }
            try writeRows(out.writer, copiesMeans ? [(vid, v!)] : [(mid, mean), (vid, v!)])
            if let tid { try out.writer.write(tid, rows: h.rows, values: rowTraces(v!)) }
            traceAgainstNorm?.add(inputs: h, variance: v!)
        }
        if copiesMeans {
            // Record by record: each record's rows are the means, written as they arrive (the
            // record copied when the reader offers it, else compressed); the variances are
            // computed in blocks of --block-rows from the first row, as below, so that they
            // have the same bits whatever the records.
            // `block` grows to a block's floats once and is filled again for every block.
            var block: [Float] = [], fill = 0, first = 0
            func applyBlock() throws {
                let h = Matrix(rows: fill, cols: p, data: fill * p == block.count ? block : Array(block[..<(fill * p)]))
                if let bad = firstNonFinite(h.data) {
                    throw ToolError.data("\(reader.label): '\(inputName)' holds \(h.data[bad]) at row \(first + bad / p) (expected finite numbers)")
                }
                block = []           // (h holds the only reference: filling it again copies nothing)
                try apply(h, firstRow: first)
                block = h.data
                first += fill; fill = 0
            }
            while let record = try blocks.nextRecord() {
                try out.writer.write(mid, rows: record.rows, bytes: record.bytes,
                                     orCopying: record.bytes.count >= Self.smallestCopiedRecord ? record.compressed : nil)
                var at = 0
                while at < record.rows {
                    let n = min(blockRows - fill, record.rows - at)
                    if block.count < (fill + n) * p { block.append(contentsOf: repeatElement(0, count: (fill + n) * p - block.count)) }
                    block.withUnsafeMutableBytes { dst in
                        dst.baseAddress!.advanced(by: fill * p * 4).copyMemory(from: record.bytes.baseAddress! + at * p * 4, byteCount: n * p * 4)
                    }
                    fill += n; at += n
                    if fill == blockRows { try applyBlock() }
                }
                progress.update(blocks.rowsDone)
            }
            if fill > 0 { try applyBlock() }
        } else {
            // The block's bytes go back to the reader and its floats to `spare` once a block is
            // done: every block then fills the same pages.
            var spare: [Float] = []
            while var block = try blocks.next() {
                let h = try floatMatrix(block[0], label: reader.label, firstRow: blocks.rowsDone - block[0].rows, reusing: &spare)
                blocks.recycle(&block[0].data)
                defer { spare = h.data }
                try apply(h, firstRow: blocks.rowsDone - h.rows)
                progress.update(blocks.rowsDone)
            }
        }
        progress.finish()
        try out.finish()
        if verbose { writeStderr("emb-laplace apply: " + (traceAgainstNorm?.summary ?? "a real last layer: no 1/‖e‖² to compare the trace with") + "\n") }
    }
}

/// A matrix of doubles from a tensor (pairs keep their precision for the float64 Fisher);
/// `firstRow` is the number of its first row in the stream, for messages.
func doubleMatrix(_ t: Tensor, label: String, firstRow: Int) throws -> Matrix<Double> {
    guard !t.info.isScalar, t.info.rowShape.count == 1 else {
        throw ToolError.data("\(label): '\(t.name)' must be a matrix N×P, it is \(t.info.signature)")
    }
    let d = t.doubles()
    if let bad = firstNonFinite(d) {
        throw ToolError.data("\(label): '\(t.name)' holds \(d[bad]) at row \(firstRow + bad / max(1, t.info.rowShape[0])) (expected finite numbers)")
    }
    return Matrix(rows: t.rows, cols: t.info.rowShape[0], data: d)
}

/// Pairs ('query' and 'positive', N×P each) read block by block as float64 matrices, with
/// progress on a terminal (never in pipelines).
final class PairBlocks: @unchecked Sendable {
    typealias Block = (Matrix<Double>, Matrix<Double>)
    let label: String
    /// P.
    let width: Int
    private let blocks: RowBlockReader
    private let progress: Progress?
    private var done = 0

    /// Opens the stream and checks its headers.
    init(_ path: String, blockRows: Int, progress label: String? = nil) throws {
        let reader = try openStream(path)
        self.label = reader.label
        blocks = RowBlockReader(reader, names: ["query", "positive"], blockRows: blockRows)
        let infos = try blocks.headers()
        for info in infos where info.isScalar || info.rowShape.count != 1 {
            throw ToolError.data("\(reader.label): '\(info.name)' must be a matrix N×P, it is \(info.signature)")
        }
        for info in infos { try requireFloat(info, in: reader.label) }
        guard infos[0].rowShape == infos[1].rowShape else {
            throw ToolError.data("\(reader.label): 'query' is \(infos[0].signature) but 'positive' is \(infos[1].signature)")
        }
        width = infos[0].rowShape[0]
        guard width > 0 else { throw ToolError.data("\(reader.label): the pairs have no columns ('query' is \(infos[0].signature))") }
        progress = label.map { Progress($0, total: infos[0].rows) }
    }

    func require(width p: Int, of what: String) throws {
        if width != p { throw ToolError.data("\(label): pairs have \(width) columns but \(what) has \(p) inputs") }
    }

    /// The next block, nil at the end.
    func next() throws -> Block? {
        guard let block = try blocks.next() else { return nil }
        let first = blocks.rowsDone - block[0].rows
        let pair = (try doubleMatrix(block[0], label: label, firstRow: first), try doubleMatrix(block[1], label: label, firstRow: first))
        done += block[0].rows
        progress?.update(done)
        return pair
    }

    func finish() { progress?.finish() }
}

/// The first row of a block whose mean or variance is not finite, or nil. A program never writes
/// a non-finite value from finite inputs: such a row is refused, named, with the reason.
func firstNonFiniteRow(_ mean: Matrix<Float>, _ variance: Matrix<Float>) -> Int? {
    let rows = [firstNonFinite(mean.data), firstNonFinite(variance.data)].compactMap { $0.map { $0 / max(1, mean.cols) } }
    return rows.min()
}

/// Why row `row` gave a non-finite output: inputs so large that their squares overflow float32,
/// a posterior whose variances are so large that they do (a prior precision λ near 0), or (when
/// normalising) a mean so close to zero that the unit vector's variance does.
func whyNonFinite(_ h: Matrix<Float>, _ mean: Matrix<Float>, _ variance: Matrix<Float>, row: Int,
                  posterior: LaplacePosterior) -> String {
    let largest = h.row(row).map { abs(Double($0)) }.max() ?? 0
    let norm = mean.row(row).reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
    if largest > 1e18 {
        return "holds values up to " + cFormat("%.3g", largest) + ": their variance overflows float32 (scale the embeddings down)"
    }
    if variance.row(row).contains(where: { !$0.isFinite }) {
        let v = max(posterior.weightVariance.data.max() ?? 0, posterior.biasVariance.max() ?? 0) * posterior.varianceScale
        return "gets a variance beyond float32 from the posterior, whose variances reach " + cFormat("%.3g", v)
            + " (prior precision λ = " + cFormat("%.3g", posterior.priorPrecision) + "): fit it again with a larger --prior-precision"
    }
    return "has a mean of norm " + cFormat("%.3g", norm) + ": too close to 0 for its normalised variance to fit in float32 (drop the row, or use --normalize none)"
}

func floatCopy(_ m: Matrix<Double>) -> Matrix<Float> {
    Matrix(rows: m.rows, cols: m.cols, data: m.data.map { Float($0) })
}

/// `emb-laplace apply --normalize`: what becomes of the means (and with them the variances).
enum Normalization: String, CaseIterable, ExpressibleByArgument {
    case none, delta, simple
}
