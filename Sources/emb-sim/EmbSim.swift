import ArgumentParser
import Failure
import LinearAlgebra
import TensorStream
import ToolKit
import UEC
import UECStreams
#if canImport(Glibc)
import Glibc
#endif

@main
struct EmbSim: Tool, ThreadedTool {
    static let configuration = CommandConfiguration(
        commandName: "emb-sim",
        abstract: "Uncertainty-aware similarity of probabilistic embeddings: pairs, top-k retrieval, matrices.",
        discussion: """
            Scores ŝ = μ_s / sqrt(1 + β·(π/8)·σ_s²) with μ_s = μ_qᵀμ_c the cosine of the unit means \
            and σ_s² = Σ_d (μ_qd² var_cd + var_qd μ_cd² + var_qd var_cd) the variance of that inner \
            product: pairs the models are unsure about are pulled toward 0. β = 1 is the paper's \
            probit approximation (the public code uses 0.1); β = 0, or inputs without 'var' \
            (e.g. a plain 'embedding'), give plain cosine. A block of queries against a block of \
            corpus rows costs two GEMMs (inner D and 2D) for a matrix of scores; --top-k computes \
            μ_s by one GEMM and σ_s² only for the pairs that can enter the top-k (ŝ ≤ μ_s), so it \
            costs about what plain cosine does. --top-k streams the corpus in blocks and \
            keeps bounded heaps, within --memory (default 25 % of the memory the process may use: \
            the machine's, or a cgroup's or ulimit -v's limit when lower): blocks of queries \
            as large as half of it holds, and the decoded corpus kept between them when it fits in \
            the rest, so that a corpus is decoded once (-v says which). Ties go to the lower corpus \
            row.

            --precision int16 (plain cosine) scores every pair with 12-bit integer codes first \
            (AVX-512 VNNI: about twice the multiplications per second of f32; AVX2: about 1.4×), \
            bounds each score's error by \
            Cauchy–Schwarz, and scores again exactly (double sums) only the pairs whose bound says \
            they could still enter the top-k: the result is the exact top-k, the f32 search's up to \
            float rounding (rows whose cosines tie exactly, e.g. duplicate texts, come in index \
            order, where the f32 GEMM's rounding may swap them). --precision int8 does the same \
            with 8-bit codes: twice int16's multiplications per instruction with AVX-512 VNNI (the \
            fastest search there), a bound about 16 times wider and so more pairs scored again; \
            without VNNI its codes are widened to 16 bits for int16's kernel, so it runs at \
            int16's rate and scores more pairs again: int16 is the better choice there (-v names \
            the kernel). Both give the same top-k, the same scores.

            Inputs hold 'mean' (+ 'var') or 'embedding'; means that are not unit vectors are \
            normalised (delta-method variance) unless --normalize says otherwise.

            A large corpus can be sharded ('tensor split', which records each shard's first row as \
            'row_offset'): each shard's top-k then carries global corpus indices, and --merge joins the \
            shards' results into exactly the single run's top-k.

            --top-k (K ≥ 2) also writes a confidence per query, unless --no-confidence: 'margin' \
            (N), the best minus the second-best score, and, when both sides have 'var' and β ≠ 0, \
            'top1_sigma' (N), σ_s of the top-1 pair (the square root of σ_s² above). A small margin \
            says the top hit is a coin toss: on real retrieval it predicts a missed top hit far \
            better than the embeddings' variance does. Check that on your data with calib-metrics \
            --relevant R --confidence margin (or --uncertainty top1_sigma). --merge recomputes both \
            from the merged lists (top1_sigma when every shard has it).

            Examples:
              emb-sim --corpus corpus.tsr --top-k 10 < queries.tsr > hits.tsr
              tensor split --shards 4 --prefix part- corpus.tsr \\
                | parallel 'emb-sim --corpus {} --top-k 10 q.tsr -o {.}.hits.tsr'
              emb-sim --merge part-*.hits.tsr --top-k 10 > hits.tsr
              emb-sim --paired b.tsr --beta 0.1 < a.tsr | tensor to csv
              emb-fuse a.tsr b.tsr c.tsr | emb-sim --matrix | tensor to npy > sim.npy
            """,
        version: toolboxVersion)

    @Argument(help: ArgumentHelp("Queries ('-' = standard input).", valueName: "FILE"))
    var input = "-"
    @Option(help: ArgumentHelp("Corpus stream (a file: it is decoded once, or once per block of queries when it does not fit in --memory).", valueName: "FILE"))
    var corpus: String?
    @Option(name: .customLong("top-k"), parsing: .unconditional, help: ArgumentHelp("Best K corpus rows per query: writes 'indices' (N×K) and 'scores' (N×K).", valueName: "K"))
    var topK: Int?
    @Option(help: ArgumentHelp("Score row i of the queries with row i of FILE: writes 'scores' (N).", valueName: "FILE"))
    var paired: String?
    @Flag(help: "Write the full matrix 'scores' (queries × corpus, or queries × queries without --corpus).")
    var matrix = false
    @Option(parsing: .unconditional, help: "β of the uncertainty penalty (0: plain cosine).")
    var beta: Float = 1
    @Option(help: "Normalise means: auto (rows that are not unit vectors, delta method), delta, simple, none.")
    var normalize: NormalizeMode = .auto
    @Option(name: .customLong("corpus-offset"), parsing: .unconditional, help: ArgumentHelp("Add N to the corpus indices (default: the corpus's 'row_offset' metadata, which 'tensor split' writes, or 0).", valueName: "N"))
    var corpusOffset: Int?
    @Option(parsing: .upToNextOption, help: ArgumentHelp("Merge top-k results of the same queries over corpus shards into one top-k (with --top-k).", valueName: "FILE"))
    var merge: [String] = []
    @Flag(inversion: .prefixedNo, help: "With --top-k K ≥ 2: write 'margin' (N, best minus second-best score) and, with variances, 'top1_sigma' (N, σ_s of the top-1 pair).")
    var confidence = true
    @Option(name: .customLong("query-block"), parsing: .unconditional, help: ArgumentHelp("Queries per block (default: with --top-k, as many as half of --memory holds; else 1024).", valueName: "N"))
    var queryBlock: Int?
    @Option(name: .customLong("corpus-block"), parsing: .unconditional, help: ArgumentHelp("Corpus rows per block (default: 4096; with --top-k, fewer, down to 256, when --memory cannot hold the search's buffers for 4096).", valueName: "N"))
    var corpusBlock: Int?
    @Option(help: ArgumentHelp("Memory for --top-k's blocks of queries and the decoded corpus kept between them: bytes with an optional K, M, G or T suffix (powers of 1024), or a percentage of the memory the process may use (the machine's, or a cgroup's or ulimit -v's limit when lower). The search holds at least its score buffers, one corpus block and 256 queries: a small budget takes smaller corpus blocks (see --corpus-block), and one below what 256 rows need is exceeded, with a warning.", valueName: "SIZE"))
    var memory = MemorySize.percent(25)
    @Option(help: ArgumentHelp("Arithmetic of --top-k's first pass: f32, or int16 or int8 (plain cosine: integer scores, then the pairs that can still enter the top-k scored again exactly; the same top-k).", valueName: "P"))
    var precision: Precision = .f32
    @Flag(name: .shortAndLong, help: "Print the BLAS kernel and threads, how --top-k uses its memory and, with --precision int16 or int8, its integer kernel and how many pairs were scored again, on standard error.")
    var verbose = false

    @OptionGroup var common: CommonOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var notes: NoteOptions

    func validate() throws {
        if !merge.isEmpty {
            guard let k = topK, k >= 1 else { throw ValidationError("--merge needs --top-k K") }
            if corpus != nil || paired != nil || matrix || precision != .f32 { throw ValidationError("--merge takes only the result files and --top-k") }
            if merge.filter({ $0 == "-" }).count > 1 { throw ValidationError("only one input can be standard input") }
            if let b = queryBlock, b < 1 || b > 1 << 20 { throw ValidationError("--query-block must be between 1 and 1048576") }
            return
        }
        let modes = [topK != nil, paired != nil, matrix].filter { $0 }.count
        if modes != 1 { throw ValidationError("choose one mode: --corpus FILE --top-k K, --paired FILE, --matrix, or --merge FILE... --top-k K") }
        if let off = corpusOffset, off < 0 || off > maxCorpusOffset { throw ValidationError("--corpus-offset must be between 0 and \(maxCorpusOffset)") }
        if let k = topK {
            if k < 1 { throw ValidationError("--top-k must be at least 1") }
            guard let c = corpus else { throw ValidationError("--top-k needs --corpus FILE") }
            if c == "-" { throw ValidationError("--corpus must be a file, not standard input (it is read once per block of queries)") }
        }
        if paired != nil && corpus != nil { throw ValidationError("--paired takes no --corpus") }
        if precision != .f32 && topK == nil { throw ValidationError("--precision \(precision.rawValue) applies to --top-k only") }
        if input == "-" && (paired == "-" || corpus == "-") { throw ValidationError("only one input can be standard input") }
        if !(beta >= 0) || !beta.isFinite { throw ValidationError("--beta must be a number ≥ 0") }
        if let b = queryBlock, b < 1 || b > 1 << 20 { throw ValidationError("--query-block must be between 1 and 1048576") }
        if memory.bytes < 1 << 20 { throw ValidationError("--memory must be at least 1M") }
        if let b = corpusBlock, b < 1 || b > 1 << 20 { throw ValidationError("--corpus-block must be between 1 and 1048576") }
    }

    var mode: NormalizeMode { normalize }

    func open(_ path: String, block: Int) throws -> ProbReader {
        let r = ProbReader(try openStream(path), blockRows: block, wantVariance: beta != 0)
        try r.resolve()  // refuses non-float means and variances
        return r
    }

    /// The next block, normalised; its all-zero rows counted unless `tally` is false (a corpus
    /// read again for the next block of queries).
    func nextBlock(_ r: ProbReader, _ role: String, tally: Bool = true) throws -> ProbBlock? {
        guard var b = try r.next() else { return nil }
        if tally { zeroRows.count(b, role: role, label: r.label) }
        normalizeBlock(&b, mode)
        return b
    }

    func checkDims(_ a: ProbReader, _ b: ProbReader) throws {
        guard a.dimension == b.dimension else {
            throw ToolError.data("dimensions differ: \(a.label) has D = \(a.dimension) but \(b.label) has D = \(b.dimension)")
        }
    }

    func meta(_ q: ProbReader, _ c: ProbReader?) -> [String: String] {
        let uncertain = beta != 0 && q.hasVariance && (c?.hasVariance ?? true)
        var m = ["similarity": uncertain ? "uncertainty-aware (see emb-sim(1))" : "cosine", "beta": "\(beta)"]
        if let model = q.meanMeta["model"] { m["model"] = model }
        return m
    }

    func run() throws {
        let blasThreads = try prepareBLAS(threads: common.threadCount)
        if verbose { writeStderr(BLASKernel.summary(threads: blasThreads) + "\n") }
        keepLargeBuffersInHeap()   // no fresh mmap (and page faults) for every decoded block
        if !merge.isEmpty, let k = topK { try runMerge(k: k) }
        else if let k = topK, let corpus { try runTopK(k: k, corpus: corpus, threads: blasThreads) }
        else if let paired { try runPaired(paired) }
        else { try runMatrix() }
        zeroRows.warn(notes)
    }

    /// `threads`: what prepareBLAS set (fewer than --threads when OpenBLAS's buffers for more do
    /// not fit under `ulimit -v`): each of them runs GEMMs of its own.
    func runTopK(k: Int, corpus: String, threads: Int) throws {
        let q = try open(input, block: queryBlock ?? 1024)
        let budget = memory.bytes
        let plan = TopKPlan(budget: budget, d: q.dimension, k: k, corpusBlock: corpusBlock,
                            variances: beta != 0 && q.hasVariance, queryBlock: queryBlock)
        q.rows.blockRows = plan.queryRows
        if let warning = plan.exceedsBudget { notes.note("emb-sim", warning) }
        let out = try output.open()
        var ids: (Int, Int)?
        var conf: ConfidenceOutput?
        let progress = Progress("emb-sim top-\(k)", unit: "queries")
        func declare(_ width: Int, _ meta: [String: String]) throws -> (Int, Int) {
            let i = try out.writer.add(TensorInfo(name: "indices", dtype: .i64, rowShape: [width], meta: meta.merging(["corpus": corpus], uniquingKeysWith: { a, _ in a })))
            let s = try out.writer.add(TensorInfo(name: "scores", dtype: .f32, rowShape: [width]))
            return (i, s)
        }
        var width = k
        var lastMeta = meta(q, nil)
        // The decoded corpus, kept while it fits in what the budget leaves beside the queries; nil
        // once it did not fit (it is then decoded again for every block of queries).
        var kept: [CorpusBlock]? = []
        var decodedBytes = 0, keptComplete = false
        var c: ProbReader?
        var queryBlocks = 0
        let reduced = precision.codes
        if let reduced, reduced.codeLimit(q.dimension) < 1 {
            throw ToolError.usage("\(q.label): rows of \(q.dimension) dimensions are too wide for --precision \(reduced.rawValue) codes (use f32 or int16)")
        }
        var stats = ReducedPrecisionStats()
        while let qb = try nextBlock(q, "query") {
            queryBlocks += 1
            let tile = queryBlock ?? BlockTopK.defaultTileRows
            let top: TopKSearch = if let reduced {
                ReducedTopK(queries: qb.mean, k: k, threads: threads, precision: reduced, tileRows: tile, measureRecall: verbose)
            } else {
                BlockTopK(queries: qb, k: k, beta: beta, threads: threads, tileRows: tile)
            }
            let withSide = beta != 0 && qb.variance != nil
            let room = plan.corpusBytes(queries: qb.rows)
            if keptComplete, let kept {
                for cb in kept { try top.add(cb) }
            } else {
                decodedBytes = 0
                // A block shorter than asked for is the last one: nothing to keep the corpus for.
                let last = qb.rows < q.rows.blockRows
                if last { kept = nil }
                let r = try open(corpus, block: plan.corpusBlock)
                c = r
                try checkDims(q, r)
                if let reduced, beta != 0 && q.hasVariance && r.hasVariance {
                    throw ToolError.usage("--precision \(reduced.rawValue) scores plain cosine only (give --beta 0, or inputs without 'var')")
                }
                let tally = ids == nil
                let blocks = Prefetcher { try nextBlock(r, "corpus", tally: tally).map { CorpusBlock($0, withSide: withSide, codes: reduced) } }
                while let cb = try blocks.next() {
                    try top.add(cb)
                    decodedBytes += cb.bytes
                    if kept != nil { if decodedBytes <= room { kept!.append(cb) } else { kept = nil } }
                }
                keptComplete = kept != nil
                if verbose && queryBlocks == 1 {
                    let fate = last ? "is decoded once (one block of queries)"
                        : keptComplete ? "is kept in memory" : "does not fit beside them: it is decoded again for each block of queries"
                    writeStderr("emb-sim: \(plan.describe(queries: qb.rows)); the decoded corpus (\(describeBytes(decodedBytes))) \(fate)\n")
                }
            }
            lastMeta = meta(q, c)
            let offset = top.corpusRows
            guard offset > 0 else { throw ToolError.data("\(c!.label) has no rows: nothing to retrieve") }
            if ids == nil {
                width = min(k, offset)
                ids = try declare(width, lastMeta)
                if confidence { conf = try ConfidenceOutput(out.writer, width: width, sigma: top.topOne != nil, beta: "\(beta)") }
            }
            var res = top.results(width: width)
            let base = try indexBase(c!, rows: offset)
            if base != 0 { for j in res.indices.indices where res.indices[j] >= 0 { res.indices[j] += base } }
            try out.writer.write(ids!.0, rows: qb.rows, values: res.indices)
            try out.writer.write(ids!.1, rows: qb.rows, values: res.scores)
            try conf?.write(out.writer, rows: qb.rows, scores: res.scores, indices: res.indices, width: width, sigma: top.topOne?.sigma)
            progress.update(q.rowsDone, note: "corpus \(offset) rows")
            if let r = top as? ReducedTopK {
                let st = r.stats
                stats.pairs += st.pairs; stats.rescored += st.rescored; stats.agreeing += st.agreeing; stats.listed += st.listed
            }
        }
        progress.finish()
        if verbose, let reduced, stats.pairs > 0 {
            let share = cFormat("%.3f", 100 * Double(stats.rescored) / Double(stats.pairs))
            writeStderr("emb-sim: \(reduced.rawValue) pass (\(ReducedTopK.kernelName) kernel): \(stats.rescored) of \(stats.pairs) pairs (\(share) %) scored again exactly"
                        + (stats.recall.map { "; its own top-\(width) (before scoring again) has recall \(cFormat("%.4f", $0))" } ?? "") + "\n")
        }
        if ids == nil { ids = try declare(width, lastMeta) }
        try out.finish()
    }

    /// What to add to the corpus's row numbers: --corpus-offset, or the corpus's 'row_offset'
    /// metadata (written by 'tensor split'), checked so that the indices cannot overflow.
    func indexBase(_ c: ProbReader, rows: Int) throws -> Int64 {
        var base = corpusOffset ?? 0
        if corpusOffset == nil, let meta = c.meanMeta["row_offset"] {
            guard let v = Int(meta), v >= 0, v <= maxCorpusOffset else {
                throw ToolError.data("\(c.label): metadata row_offset '\(meta)' is not a row number between 0 and \(maxCorpusOffset) (override it with --corpus-offset)")
            }
            base = v
        }
        guard base <= Int(Int64.max) - rows else {
            throw ToolError.data("corpus offset \(base) plus \(rows) corpus rows does not fit a 64-bit index")
        }
        return Int64(base)
    }

    /// Joins the top-k results of corpus shards (global indices) into one top-k. The shards must
    /// be disjoint: the same file twice, or a corpus index found in two shards, is refused.
    func runMerge(k: Int) throws {
        var seen: [String: String] = [:]
        for path in merge where path != "-" {
            var st = stat()
            guard stat(path, &st) == 0 else { continue }
            let id = "\(st.st_dev):\(st.st_ino)"
            if let first = seen[id] {
                throw ToolError.usage(first == path ? "\(path) is named twice: each shard's results can be merged once"
                                                     : "\(first) and \(path) are the same file: each shard's results can be merged once")
            }
            seen[id] = path
        }
        let blocks = try merge.map { RowBlockReader(try openStream($0), slots: [RowSlot("indices"), RowSlot("scores"), RowSlot("top1_sigma", optional: true)], blockRows: queryBlock ?? 1024) }
        // The merged width: k, or all the candidates when the shards hold fewer.
        var candidates = 0
        for b in blocks {
            let infos = try b.slotHeaders().prefix(2).map { $0! }
            let w = infos[0].rowShape.first ?? 1
            candidates = candidates > Int.max - w ? Int.max : candidates + w
        }
        let width = min(k, candidates)
        let out = try output.open()
        let ids = try out.writer.add(TensorInfo(name: "indices", dtype: .i64, rowShape: [width], meta: ["merged": merge.joined(separator: ",")]))
        let sid = try out.writer.add(TensorInfo(name: "scores", dtype: .f32, rowShape: [width]))
        let sigmaInfos = try blocks.map { try $0.slotHeaders()[2] }
        for (path, info) in zip(merge, sigmaInfos) where info != nil && !(info!.rowShape.isEmpty || info!.rowShape == [1]) {
            throw ToolError.data("\(path): 'top1_sigma' is \(info!.signature), expected one value per query")
        }
        let withSigma = sigmaInfos.allSatisfy { $0 != nil }
        let conf = confidence ? try ConfidenceOutput(out.writer, width: width, sigma: withSigma, beta: sigmaInfos.first??.meta["beta"]) : nil
        while true {
            var lists: [(scores: [Float], indices: [Int64], width: Int)] = []
            var sigmas: [[Float]] = []
            var rows: [Int] = []
            for b in blocks {
                guard let slots = try b.nextSlots() else { rows.append(0); continue }
                let blk = slots.prefix(2).map { $0! }
                if withSigma { sigmas.append(slots[2]!.floats()) }
                let width = blk[0].info.rowShape.first ?? 1
                guard blk[1].info.rowShape.first ?? 1 == width else {
                    throw ToolError.data("\(b.reader.label): 'indices' and 'scores' have different widths")
                }
                lists.append((blk[1].floats(), try blk[0].int64s(), width))
                rows.append(blk[0].rows)
            }
            if rows.allSatisfy({ $0 == 0 }) { break }
            guard let n = rows.first, rows.allSatisfy({ $0 == n }) else {
                throw ToolError.data("the results to merge have different numbers of queries (\(zip(merge, blocks).map { "\($0.0): \($0.1.rowsDone)" }.joined(separator: ", ")))")
            }
            try refuseOverlap(lists, queries: n, firstQuery: blocks[0].rowsDone - n)
            let merged = mergeTopK(lists, queries: n, k: width)
            try out.writer.write(ids, rows: n, values: merged.indices)
            try out.writer.write(sid, rows: n, values: merged.scores)
            try conf?.write(out.writer, rows: n, scores: merged.scores, indices: merged.indices, width: width,
                            sigma: withSigma ? mergeTopOneSigma(lists, sigmas: sigmas, queries: n) : nil)
        }
        try out.finish()
    }

    /// Refuses a corpus index that appears twice in the lists of one query (overlapping shards).
    func refuseOverlap(_ lists: [(scores: [Float], indices: [Int64], width: Int)], queries: Int, firstQuery: Int) throws {
        var where_: [Int64: Int] = [:]
        for q in 0..<queries {
            where_.removeAll(keepingCapacity: true)
            for (s, l) in lists.enumerated() {
                for j in 0..<l.width {
                    let i = l.indices[q * l.width + j]
                    guard i >= 0 else { continue }
                    if let other = where_.updateValue(s, forKey: i) {
                        throw ToolError.data("corpus index \(i) is in the results of both \(merge[other]) and \(merge[s]) (query \(firstQuery + q)): the shards overlap")
                    }
                }
            }
        }
    }

    func runPaired(_ path: String) throws {
        let a = try open(input, block: queryBlock ?? 1024), b = try open(path, block: queryBlock ?? 1024)
        try checkDims(a, b)
        let out = try output.open()
        let sid = try out.writer.add(TensorInfo(name: "scores", dtype: .f32, rowShape: [], meta: meta(a, b)))
        while true {
            let x = try nextBlock(a, "query"), y = try nextBlock(b, "paired")
            if x == nil && y == nil { break }
            guard let x, let y, x.rows == y.rows else {
                while try a.next() != nil {}
                while try b.next() != nil {}
                throw ToolError.data("row counts differ: \(a.label) has \(a.rowsDone) rows, \(b.label) has \(b.rowsDone) (paired mode scores row i with row i)")
            }
            try out.writer.write(sid, rows: x.rows, values: pairedSimilarity(x, y, beta: beta))
        }
        try out.finish()
    }

    func runMatrix() throws {
        let q = try open(input, block: queryBlock ?? 1024)
        // The corpus is held whole: the output is queries × corpus anyway.
        var corpusBlocks: [ProbBlock] = []
        var c: ProbReader?
        if let corpus {
            let r = try open(corpus, block: corpusBlock ?? TopKPlan.corpusBlocks[0])
            try checkDims(q, r)
            while let b = try nextBlock(r, "corpus") { corpusBlocks.append(b) }
            c = r
        }
        let queryBlocks: [ProbBlock]?
        if corpus == nil {
            var all: [ProbBlock] = []
            while let b = try nextBlock(q, "query") { all.append(b) }
            corpusBlocks = all
            queryBlocks = all
        } else {
            queryBlocks = nil
        }
        let whole = try concatenate(corpusBlocks, d: q.dimension)
        let out = try output.open()
        let sid = try out.writer.add(TensorInfo(name: "scores", dtype: .f32, rowShape: [whole.rows], meta: meta(q, c)))
        func emit(_ qb: ProbBlock) throws {
            try reserveMemory(count: checkedProduct(qb.rows, whole.rows, 2, what: "a block of the score matrix"), of: Float.self,
                              what: "a block of the score matrix (\(qb.rows) queries × \(whole.rows) corpus rows)")
            try out.writer.write(sid, rows: qb.rows, values: similarityMatrix(qb, whole, beta: beta).data)
        }
        if let queryBlocks { for b in queryBlocks { try emit(b) } } else { while let b = try nextBlock(q, "query") { try emit(b) } }
        try out.finish()
    }

    func concatenate(_ blocks: [ProbBlock], d: Int) throws -> ProbBlock {
        let n = blocks.reduce(0) { $0 + $1.rows }
        try reserveMemory(count: checkedProduct(n, d, 2, what: "the corpus"), of: Float.self, what: "the corpus (\(n) rows, held whole for --matrix)")
        let hasVar = !blocks.isEmpty && blocks.allSatisfy { $0.variance != nil }
        return ProbBlock(mean: Matrix(rows: n, cols: d, data: blocks.flatMap(\.mean.data)),
                         variance: hasVar ? Matrix(rows: n, cols: d, data: blocks.flatMap { $0.variance!.data }) : nil)
    }
}

/// Rows whose mean is all zero: their cosine with anything is 0, which looks like an answer.
/// Counted per input (a corpus read once per block of queries counts once) and reported once.
final class ZeroRows {
    private var byLabel: [[String]: Int] = [:]

    /// Counts the all-zero rows of a block of the `role` input ("query", "corpus") read from `label`.
    func count(_ b: ProbBlock, role: String, label: String) {
        let d = b.mean.cols
        var n = 0
        for row in 0..<b.rows where !(0..<d).contains(where: { b.mean.data[row * d + $0] != 0 }) { n += 1 }
        byLabel[[role, label], default: 0] += n
    }

    /// One warning on standard error, if any row was all zero.
    func warn(_ notes: NoteOptions) {
        let parts = byLabel.filter { $0.value > 0 }.sorted { $0.key.lexicographicallyPrecedes($1.key) }
            .map { "\($0.value) \($0.key[0]) row\($0.value == 1 ? "" : "s") of \($0.key[1])" }
        guard !parts.isEmpty else { return }
        notes.note("emb-sim", "warning: all zero, so their cosine with anything is 0: \(parts.joined(separator: ", "))")
    }
}

nonisolated(unsafe) let zeroRows = ZeroRows()

/// The largest corpus offset: indices stay far from Int64 overflow whatever the corpus size.
let maxCorpusOffset = 1_000_000_000_000_000_000

extension NormalizeMode: ExpressibleByArgument {}

/// --precision: the arithmetic of --top-k's first pass.
enum Precision: String, CaseIterable, ExpressibleByArgument {
    case f32, int16, int8

    /// The integer codes of the reduced-precision pass (nil: the f32 search).
    var codes: CodePrecision? {
        switch self {
        case .f32: nil
        case .int16: .int16
        case .int8: .int8
        }
    }
}
