import ArgumentParser
import Calibration
import Failure
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Parallel
import Probability
import TensorStream
import ToolKit

enum Mode: String, ExpressibleByArgument, CaseIterable {
    case `default`, torchmetrics, netcal

    var convention: BinningConvention {
        switch self {
        case .default: return .standard
        case .torchmetrics: return .torchmetrics
        case .netcal: return .netcal
        }
    }
}

@main
struct CalibMetrics: Tool, ThreadedTool {
    static let configuration = CommandConfiguration(
        commandName: "calib-metrics",
        abstract: "Score predictions: calibration, uncertainty, OOD detection, similarity and retrieval.",
        discussion: """
            Reads class probabilities ('probs', N×K) or an ensemble's ('member_probs', N×M×K; the \
            prediction is the members' mean) with integer 'labels', from the stream or from --labels \
            FILE, row block by row block, and prints a table (or --json). ECE is top-label with 15 \
            equal-width bins (lo, hi], weights n_b/N, summed in float64; --mode torchmetrics or \
            netcal reproduces those libraries' binning exactly (they disagree at bin edges: the \
            table always shows all three). For two classes the positive-class ECE is shown too \
            (what torchmetrics' binary ECE and netcal compute). NLL clips at the input dtype's eps \
            like scikit-learn and counts the rows it clipped; Brier is the multiclass sum \
            Σ_k (p_k − 1[y=k])², in [0, 2] (scikit-learn halves it for binary input).

            --ood FILE names a stream with an 'ood' 0/1 vector, one per row: OOD rows only give \
            their uncertainty (max probability, entropy, mutual information for ensembles) to \
            AUROC, AUPR-in/out and FPR at 95 % TPR; calibration is scored on the other rows, \
            and OOD rows' labels are ignored (use -1). When 'expected_entropy' and 'mutual_info' \
            (N each, as sve-predict writes them) are declared in the stream next to 'probs', \
            they are reported and mutual information becomes an OOD score too.

            With --gold FILE the input's 'scores' (N) are compared to gold scores (Spearman with \
            average ranks, Pearson); with --relevant FILE the input's 'indices' (N×k, from \
            emb-sim --top-k) are scored against the relevant corpus index of each query (N, or \
            N×R padded with -1): nDCG@k, Recall@k, MRR.

            --confidence NAME or --uncertainty NAME audits any per-row signal of the input (a \
            tensor of N values: margin, top1_sigma, a trace, entropy, mutual_info; a confidence \
            is higher for more trust, an uncertainty lower): how well it predicts the errors \
            (classification: argmax ≠ label; retrieval: the top hit is not relevant), as AUROC \
            (an error less trusted than a correct row; 0.5 is chance), the risk–coverage curve \
            (error rate of the most trusted rows), AURC and E-AURC, always beside the same figures \
            for the trivial baseline: max probability, or for retrieval the margin of 'scores' \
            (top-1 minus top-2). With --bootstrap the intervals are paired, so the difference \
            signal − baseline has its own interval. --risk-coverage-svg draws both curves.

            Memory: the probabilities are read block by block, but a few numbers per row are kept \
            for equal-mass ECE, AURC and the OOD metrics: about 25 bytes per row (51 with --bootstrap, \
            25 more with --ood or sve-predict's uncertainties), so 10^7 rows take about 250 MB. When \
            memory runs out the program says so and exits with status 71.

            Examples:
              tensor paste probs.tsr labels.tsr | calib-metrics
              calib-metrics --labels labels.tsr --bootstrap 1000 --seed 1 preds.tsr
              calib-metrics --mode torchmetrics --bins 10 --json preds.tsr
              calib-metrics --reliability-svg rel.svg preds.tsr
              tensor paste logits.tsr labels.tsr | calib-metrics --logits
              sve-predict --model ens.tsr < x.tsr | tensor paste - y.tsr | calib-metrics
              tensor cat id.tsr ood.tsr | calib-metrics --ood flags.tsr
              emb-sim --paired b.tsr < a.tsr | calib-metrics --gold gold.tsr
              sve-predict --model ens.tsr --pass labels < x.tsr \
                | calib-metrics --uncertainty mutual_info --bootstrap 1000
              emb-sim --corpus c.tsr --top-k 10 < q.tsr \
                | calib-metrics --relevant rel.tsr --uncertainty top1_sigma
              emb-sim --corpus c.tsr --top-k 10 < q.tsr | calib-metrics --relevant rel.tsr
            """,
        version: toolboxVersion)

    @Argument(help: ArgumentHelp("The predictions stream ('-' or nothing: standard input).", valueName: "FILE"))
    var input: String = "-"

    @Option(help: ArgumentHelp("Read 'labels' (N integers in [0, K)) from FILE, a block at a time beside the input (or FILE's only tensor, whatever its name).", valueName: "FILE"))
    var labels: String?

    @Flag(help: "The input holds 'logits' (or 'member_logits'): apply a softmax per row first.")
    var logits = false

    @Option(parsing: .unconditional, help: ArgumentHelp("Number of bins for ECE, MCE, RMSCE, equal-mass and classwise ECE.", valueName: "B"))
    var bins = 15

    @Option(help: ArgumentHelp("Binning reported as ECE/MCE/RMSCE and drawn: default (lo, hi], torchmetrics, netcal.", valueName: "MODE"))
    var mode: Mode = .default

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    @Option(name: .customLong("reliability-svg"), help: ArgumentHelp("Write a reliability diagram (SVG) to FILE.", valueName: "FILE"))
    var reliabilitySVG: String?

    @Option(parsing: .unconditional, help: ArgumentHelp("Bootstrap resamples for 95 % intervals of accuracy, ECE, NLL and Brier (0: none; at most 100000).", valueName: "N"))
    var bootstrap = 0

    @Option(parsing: .unconditional, help: ArgumentHelp("Seed of the bootstrap: the same input and seed give the same intervals.", valueName: "S"))
    var seed: UInt64 = 0

    @Option(help: ArgumentHelp("A stream with an 'ood' 0/1 vector (or one tensor) marking out-of-distribution rows, read beside the input.", valueName: "FILE"))
    var ood: String?

    @Flag(name: .customLong("no-classwise"), help: "Skip classwise ECE (it costs a bin lookup per probability).")
    var noClasswise = false

    @Option(help: ArgumentHelp("Similarity mode: gold scores ('gold', or the file's only tensor) for the input's 'scores'.", valueName: "FILE"))
    var gold: String?

    @Option(help: ArgumentHelp("Retrieval mode: relevant corpus indices ('relevant', or the only tensor), N or N×R with -1 padding.", valueName: "FILE"))
    var relevant: String?

    @Option(name: .customLong("k"), parsing: .unconditional, help: ArgumentHelp("Cut-offs for nDCG@k and Recall@k in retrieval mode.", valueName: "K,K,..."))
    var cutoffs = "1,5,10"

    @Option(name: .customLong("confidence"), help: ArgumentHelp("Audit the input's per-row tensor NAME as a confidence (higher = more trust) against the baseline.", valueName: "NAME"))
    var confidenceName: String?

    @Option(name: .customLong("uncertainty"), help: ArgumentHelp("Audit the input's per-row tensor NAME as an uncertainty (higher = less trust) against the baseline.", valueName: "NAME"))
    var uncertaintyName: String?

    @Option(name: .customLong("risk-coverage-svg"), help: ArgumentHelp("With --confidence or --uncertainty: write the risk–coverage curves (SVG) to FILE.", valueName: "FILE"))
    var riskCoverageSVG: String?

    @OptionGroup var common: CommonOptions
    @OptionGroup var notes: NoteOptions

    var ks: [Int] { cutoffs.split(separator: ",").compactMap { let w = $0.split(whereSeparator: \.isWhitespace); return w.count == 1 ? Int(w[0]) : nil } }

    func validate() throws {
        if bins < 1 || bins > 10_000 { throw ValidationError("--bins must be between 1 and 10000") }
        if bootstrap < 0 || bootstrap > maxBootstrap { throw ValidationError("--bootstrap must be between 0 and \(maxBootstrap) resamples") }
        if gold != nil && relevant != nil { throw ValidationError("--gold and --relevant are different modes: give one") }
        let sides = [labels, ood, gold, relevant].compactMap { $0 }
        if ([input] + sides).filter({ $0 == "-" }).count > 1 {
            throw ValidationError("only one input can be standard input ('-')")
        }
        let parts = cutoffs.split(separator: ",", omittingEmptySubsequences: false)
        if parts.isEmpty || ks.count != parts.count || ks.contains(where: { $0 < 1 }) {
            throw ValidationError("--k takes positive integers separated by commas, e.g. 1,5,10")
        }
        if confidenceName != nil && uncertaintyName != nil { throw ValidationError("give --confidence NAME or --uncertainty NAME, not both") }
        if let name = confidenceName ?? uncertaintyName, name.isEmpty { throw ValidationError("--confidence and --uncertainty take a tensor name") }
        if riskCoverageSVG != nil && auditRequest == nil { throw ValidationError("--risk-coverage-svg needs --confidence NAME or --uncertainty NAME") }
        if gold != nil && auditRequest != nil { throw ValidationError("--confidence and --uncertainty audit classification or retrieval (--relevant), not --gold") }
        if (gold != nil || relevant != nil) && (labels != nil || ood != nil || logits || reliabilitySVG != nil) {
            throw ValidationError("--labels, --ood, --logits and --reliability-svg apply to class probabilities, not to --gold or --relevant")
        }
    }

    func run() throws {
        keepLargeBuffersInHeap()   // blocks of rows are decoded into buffers allocated again for every block
        if let gold {
            try runSimilarity(goldPath: gold)
        } else if let relevant {
            try runRetrieval(relevantPath: relevant)
        } else {
            try runClassification()
        }
    }

    // MARK: - Class probabilities

    func runClassification() throws {
        let reader = try openStream(input)
        let main = logits ? ["logits", "member_logits"] : ["probs", "member_probs"]
        // Slots: the predictions, the labels (unless --labels), and, optionally, the per-row
        // uncertainty sve-predict writes next to 'probs' (used as OOD scores and reported).
        var slots = [RowSlot(names: main)]
        var labelSlot: Int? = nil
        if labels == nil { labelSlot = slots.count; slots.append(RowSlot("labels", hint: "or give --labels FILE")) }
        let eeSlot = slots.count, miSlot = slots.count + 1
        slots += [RowSlot("expected_entropy", optional: true), RowSlot("mutual_info", optional: true)]
        // The audited signal: its own slot, or the optional one that already reads that tensor.
        var signalSlot: Int? = nil
        if let (name, direction) = auditRequest {
            signalSlot = slots.firstIndex { $0.names == [name] } ?? slots.count
            if signalSlot == slots.count { slots.append(RowSlot(name, hint: "the signal named by --\(direction.rawValue)")) }
        }
        var signal: [Double] = []
        let source = RowBlockReader(reader, slots: slots, blockRows: 1)
        // --labels and --ood are opened, and their first rows read, on a second thread while this
        // one reads the predictions' headers (their errors still come after the predictions');
        // after them with --threads 1.
        var infos: [TensorInfo?] = []
        var sides: Result<(labels: SideColumn?, ood: SideColumn?), Error> = .success((nil, nil))
        let openSides = {
            sides = Result {
                let l = try labels.map { try SideColumn($0, preferred: ["labels"], option: "--labels") }
                let o = try ood.map { try SideColumn($0, preferred: ["ood"], option: "--ood") }
                try l?.readAhead()
                try o?.readAhead()
                return (l, o)
            }
        }
        if labels == nil && ood == nil {
            infos = try source.slotHeaders()
        } else if ThreadBudget.allowsHelpers {
            try onTwoThreads({ infos = try source.slotHeaders() }, openSides)
        } else {
            infos = try source.slotHeaders()
            openSides()
        }
        guard let p = infos[0] else { throw ToolError.data("no '\(main[0])' in the input") }
        if let signalSlot, infos[signalSlot] == nil, let (name, _) = auditRequest {
            throw ToolError.data("the input has no tensor '\(name)' to audit (it has: \(source.reader.tensors.map(\.name).joined(separator: ", ")))")
        }
        guard p.dtype.isFloat else {
            throw ToolError.data("'\(p.name)' has dtype \(p.dtype.name): expected floating-point probabilities")
        }
        let isEnsemble = p.name.hasPrefix("member_")
        let shape = "[" + (["N"] + p.rowShape.map(String.init)).joined(separator: ", ") + "]"
        let members: Int, classes: Int, binaryVector: Bool
        if isEnsemble {
            guard p.rowShape.count == 2, p.rowShape[0] >= 1, p.rowShape[1] >= 2 else {
                throw ToolError.data("'\(p.name)' has shape \(shape), expected [N, M, K] with K >= 2 classes")
            }
            members = p.rowShape[0]; classes = p.rowShape[1]; binaryVector = false
        } else if p.rowShape.isEmpty || p.rowShape == [1] {
            guard !logits else { throw ToolError.data("'\(p.name)' has shape \(shape): one logit per row cannot be soft-maxed; give [N, K]") }
            members = 1; classes = 2; binaryVector = true     // P(class 1) per row
        } else {
            guard p.rowShape.count == 1, p.rowShape[0] >= 2 else {
                throw ToolError.data("'\(p.name)' has shape \(shape), expected [N, K] with K >= 2 classes (or [N] for P(class 1))")
            }
            members = 1; classes = p.rowShape[0]; binaryVector = false
        }
        if let labelSlot, let l = infos[labelSlot] {
            guard l.rowShape.isEmpty || l.rowShape == [1] else {
                throw ToolError.data("'labels' has shape [N, \(l.rowShape.map(String.init).joined(separator: ", "))], expected [N] (one class per row)")
            }
        }
        // --labels and --ood are read in step with the predictions, a block at a time.
        let (sideLabels, oodColumn) = try sides.get()

        var useUncertainty = false
        if !isEnsemble, let ee = infos[eeSlot], let mi = infos[miSlot] {
            for t in [ee, mi] where !(t.rowShape.isEmpty || t.rowShape == [1]) {
                throw ToolError.data("'\(t.name)' has shape [N, \(t.rowShape.map(String.init).joined(separator: ", "))], expected [N] (one value per row)")
            }
            useUncertainty = true
        }
        var options = ClassificationOptions()
        options.bins = bins
        options.convention = mode.convention
        options.precision = p.dtype == .f64 ? .float64 : .float32
        options.classwise = !noClasswise
        options.keepLosses = bootstrap > 0
        options.reportSortsRowsInPlace = auditRequest == nil      // the audit reads them after the report
        options.ood = oodColumn != nil
        // Classwise sums on a second thread, unless memory is tight: under a limit of a few
        // hundred MB (`ulimit -v` counts each thread's 8 MB stack) they stay on this thread.
        options.threads = common.threadCount > 1 && MachineMemory.available() >= 1 << 30 ? 2 : 1
        let single = isEnsemble ? nil : ClassificationAccumulator(classes: classes, options: options)
        let ensemble = isEnsemble ? EnsembleAccumulator(members: members, classes: classes, options: options) : nil

        let width = members * classes
        // Blocks of ~2 MB; of a record's rows when records are within 4× of that, so that every
        // block costs the reading thread one record to decompress (a block that straddles two
        // records costs one block two and the next none, and this thread waits at every other).
        let preferred = max(1, min(65_536, (1 << 21) / width))
        try source.readAhead()
        let record = source.rowsWaiting(slot: 0)
        source.blockRows = record >= preferred / 4 && record <= preferred * 4 ? record : preferred
        // The predictions alone (labels from --labels): a block is a record, handed over as the
        // array it was unshuffled into (no copy), whatever its rows: a stream's records need not
        // hold the same rows (a writer leaves a short record after each piece it is given that
        // is not whole records, as `tensor from npy` did until ebbf88b).
        // Room for records a little longer than the first (each block's array is topped up to
        // the room when it comes back from a shorter record).
        if source.blockRows == record && infos.compactMap({ $0 }).count == 1 {
            source.blocksEndWithRecords = true
            source.blockRows = record + max(1, record / 64)
        }
        let progress = Progress("calib-metrics", total: p.rows)
        var done = 0
        // What is kept per row grows by doubling: before each doubling, ask the checked allocator
        // whether the grown arrays fit, then grow them, so that running out of memory is one
        // line (exit 71) and never an append that fails.
        let perRow = bytesPerRow(bootstrap: bootstrap > 0, ood: oodColumn != nil || useUncertainty)
        var probedRows = 1 << 16
        // A header that declares its rows lets them be reserved once (copying nothing at each
        // doubling): up to 2^22 rows, and only when the system grants it; a header that declares
        // more than the stream holds then costs address space, never resident memory.
        if let declared = p.rows, declared > probedRows,
           case let want = min(declared, 1 << 22),
           (try? reserveMemory(bytes: perRow * want * 2, what: "")) != nil {
            probedRows = want
            (single ?? ensemble!.mean).reserveRows(want)
        }
        // The next block (and its labels and OOD flags) is read and decompressed on a second
        // thread while this one scores the current block. Plain float32 rows: the two threads
        // share the block's classwise sums by classes (`ClasswiseSplit`).
        let splitClasswise = single.map { $0.addsPlainRows && $0.options.classwise } == true
            && oodColumn == nil && !useUncertainty && !logits && !binaryVector && p.dtype == .f32
        let split = ClasswiseSplit(classes: classes)
        // The reading thread's share of the last block it handed over (classes 0..<there), added
        // when it starts on the next one: this thread has then taken that block, so it has
        // finished the one before; and it takes the next block only once the share is added.
        // A class's sums are then added block after block, by one thread at a time, whatever
        // the split.
        var share: (data: [UInt8], labels: [Int64], there: Int, valid: Int)? = nil
        let blocks = Prefetcher { () throws -> (slots: [Tensor?], labels: [Int64]?, ood: [Int64]?, split: Int, valid: Int?)? in
            if var s = share {
                share = nil
                let start = ContinuousClock.now
                s.data.withUnsafeBytes {
                    single!.addClasswise(block: $0.bindMemory(to: Float.self), labels: s.labels, classes: 0..<s.there, validRows: s.valid)
                }
                split.added(seconds: seconds(since: start), classes: s.there, rows: s.labels.count)
                source.recycle(&s.data)
            }
            let start = ContinuousClock.now
            guard let b = try source.nextSlots() else { return nil }
            let n = b[0]!.rows
            let side = try sideLabels?.next(n)
            let there = splitClasswise ? split.reading() : 0
            // Labels that cannot be read here are refused on the other thread, and the block
            // with them: then none of its sums count.
            var valid: Int? = nil
            if there > 0, let y = side ?? labelSlot.flatMap({ try? b[$0]?.int64s() }), y.count == n {
                let rows = b[0]!.data.withUnsafeBytes { single!.validRows(block: $0.bindMemory(to: Float.self), labels: y) }
                valid = rows
                share = (b[0]!.data, y, there, rows)
            }
            if splitClasswise { split.read(seconds: seconds(since: start), rows: n) }
            return (b, side, try oodColumn?.next(n), there, valid)
        }
        while case (var block, let sideY, let oodValues, let there, let valid)? = try blocks.next() {
            let busyFrom = ContinuousClock.now
            defer { if splitClasswise { split.scored(split: there, rows: block[0]?.rows ?? 0, seconds: seconds(since: busyFrom)) } }
            // The block's bytes go back to the reader for the blocks after it.
            defer { for k in block.indices where block[k] != nil { source.recycle(&block[k]!.data) } }
            let n = block[0]!.rows
            if done + n > probedRows {
                while done + n > probedRows { probedRows *= 2 }
                try reserveMemory(bytes: perRow * probedRows * 2, what: "the per-row scores of \(probedRows) rows, \(perRow) bytes each")
                (single ?? ensemble!.mean).reserveRows(probedRows)
            }
            let y: [Int64]
            if let sideY {
                guard sideY.count == n else {
                    throw ToolError.data("'\(p.name)' has more rows than --labels (\(done + sideY.count))")
                }
                y = sideY
            } else {
                y = try block[labelSlot!]!.int64s()
            }
            var flags: [Bool]? = nil
            if let oodValues, let ood {
                guard oodValues.count == n else {
                    throw ToolError.data("'\(p.name)' has more rows than --ood (\(done + oodValues.count))")
                }
                if let bad = oodValues.firstIndex(where: { $0 != 0 && $0 != 1 }) {
                    throw ToolError.data("--ood \(ood): row \(done + bad) holds \(oodValues[bad]), expected 0 (in distribution) or 1 (out of distribution)")
                }
                flags = oodValues.map { $0 == 1 }
            }
            var uncertainty: (expectedEntropy: [Double], mutualInfo: [Double])? = nil
            if useUncertainty {
                let ee = block[eeSlot]!.doubles(), mi = block[miSlot]!.doubles()
                for (name, v) in [("expected_entropy", ee), ("mutual_info", mi)] {
                    if let i = firstNonFinite(v) {
                        throw ToolError.data("\(name): row \(done + i) holds \(v[i])")
                    }
                }
                uncertainty = (ee, mi)
            }
            if logits || binaryVector || p.dtype != .f32 {
                var v = block[0]!.doubles()
                if logits {
                    if let i = firstNonFinite(v) {
                        throw ToolError.data("'\(p.name)': row \(done + i / width) holds \(v[i]) (expected finite logits)")
                    }
                    softmaxRows(&v, width: classes)
                }
                if binaryVector {
                    // P(class 1) per row -> rows (1 - p, p), in one allocation.
                    v = [Double](unsafeUninitializedCapacity: 2 * v.count) { w, n in
                        for (i, p) in v.enumerated() { w[2 * i] = 1 - p; w[2 * i + 1] = p }
                        n = 2 * v.count
                    }
                }
                try v.withUnsafeBufferPointer { b in
                    if let single { try single.add(block: b, labels: y, firstRow: done, ood: flags, uncertainty: uncertainty) }
                    if let ensemble { try ensemble.add(block: b, labels: y, firstRow: done, ood: flags) }
                }
            } else {
                try block[0]!.data.withUnsafeBytes { raw in
                    let b = raw.bindMemory(to: Float.self)
                    if let single, splitClasswise { try single.add(block: b, labels: y, firstRow: done, classwiseOf: there..<classes, validRows: valid) }
                    else if let single { try single.add(block: b, labels: y, firstRow: done, ood: flags, uncertainty: uncertainty) }
                    if let ensemble { try ensemble.add(block: b, labels: y, firstRow: done, ood: flags) }
                }
            }
            if let signalSlot {
                let v = try signalValues(block[signalSlot]!)
                signal += flags.map { f in v.indices.filter { !f[$0] }.map { v[$0] } } ?? v
            }
            done += n
            progress.update(done)
        }
        progress.finish()
        for (option, column) in [("--labels", sideLabels), ("--ood", oodColumn)] {
            if let column, case let more = try column.remaining(), more > 0 {
                throw ToolError.data("'\(p.name)' has \(done) rows but \(option) has \(done + more)")
            }
        }
        // The report sorts the kept confidences: a key a row and the sort's second buffer (8 bytes
        // each at most), and the correctness flags beside them when the keys cannot hold them (1 + 1):
        // asked of the system first, so that running out is one line.
        try reserveMemory(bytes: done * 18, what: "sorting the confidences of \(done) rows")
        let report = try single?.report(bootstrap: bootstrap, seed: seed) ?? ensemble!.report(bootstrap: bootstrap, seed: seed)
        if report.rowsNotSummingToOne > 0 {
            notes.note("calib-metrics", "warning: \(report.rowsNotSummingToOne) of \(report.rows + report.oodRows) rows of '\(p.name)' do not sum to 1 (largest |sum - 1|: \(report.worstRowSum.map { cFormat("%.2g", abs($0 - 1)) } ?? "?")); scored as given, not renormalised")
        }
        var what = isEnsemble ? "ensemble of \(members) (mean of member probabilities)" : (logits ? "softmax of logits" : "probabilities")
        if useUncertainty { what += " with expected_entropy and mutual_info" }
        if let svg = reliabilitySVG {
            let subtitle = cFormat("ECE %.4f · MCE %.4f · accuracy %.4f · %ld rows, ",
                                   report.calibration.ece, report.calibration.mce, report.accuracy, report.rows)
                + mode.rawValue + cFormat(" binning, %ld bins", bins)
            let text = reliabilityDiagramSVG(report.calibration, title: "Reliability diagram (top-label confidence)", subtitle: subtitle)
            try OutputFile.write(text, to: svg)
        }
        let scored = single ?? ensemble!.mean
        let audited = try auditRequest.map { _ in
            try audit(values: signal, baseline: Signal(name: "max_prob", direction: .confidence, values: scored.rowConfidence),
                      correct: scored.rowCorrect, outcome: "argmax == label")
        }
        if json {
            try printJSON(WithAudit(report: report, audit: audited))
        } else {
            try OutputFile.write(classificationTable(report, input: what, dtype: p.dtype.name, mode: mode) + (audited.map(auditTable) ?? ""), to: nil)
        }
    }

    // MARK: - Similarity and retrieval

    func runSimilarity(goldPath: String) throws {
        let scores = try openStream(input).readTensors(["scores"])[0]
        let gold = try readSideTensor(goldPath, preferred: ["gold", "scores"], option: "--gold")
        for t in [scores, gold] where !(t.shape.count == 1 || (t.shape.count == 2 && t.shape[1] == 1)) {
            throw ToolError.data("'\(t.name)' has shape [\(t.shape.map(String.init).joined(separator: ", "))], expected [N] (one score per pair)")
        }
        guard scores.rows == gold.rows else {
            throw ToolError.data("'scores' has \(scores.rows) rows but --gold has \(gold.rows)")
        }
        guard scores.rows > 0 else { throw ToolError.data("no rows: N = 0") }
        let x = scores.doubles(), y = gold.doubles()
        if let i = firstNonFinite(x) { throw ToolError.data("'scores': row \(i) holds \(x[i])") }
        if let i = firstNonFinite(y) { throw ToolError.data("--gold: row \(i) holds \(y[i])") }
        let r = SimilarityReport(rows: x.count, spearman: spearman(x, y), pearson: pearson(x, y))
        if json { try printJSON(r); return }
        var t = Table()
        t.add("pairs", "\(r.rows)")
        t.add("spearman", metric(r.spearman), "average ranks for ties")
        t.add("pearson", metric(r.pearson))
        try OutputFile.write(t.render(), to: nil)
    }

    func runRetrieval(relevantPath: String) throws {
        let all = try openStream(input).readAll()
        guard let indices = all.first(where: { $0.name == "indices" }) else {
            throw ToolError.data("\(input == "-" ? "standard input" : input) has no tensor 'indices' (it has: \(all.map(\.name).joined(separator: ", ")))")
        }
        let rel = try readSideTensor(relevantPath, preferred: ["relevant", "labels"], option: "--relevant")
        guard indices.shape.count == 2 else {
            throw ToolError.data("'indices' has shape [\(indices.shape.map(String.init).joined(separator: ", "))], expected [N, k] (emb-sim --top-k)")
        }
        guard rel.shape.count == 1 || rel.shape.count == 2 else {
            throw ToolError.data("--relevant '\(rel.name)' has shape [\(rel.shape.map(String.init).joined(separator: ", "))], expected [N] or [N, R]")
        }
        guard indices.rows == rel.rows else {
            throw ToolError.data("'indices' has \(indices.rows) rows but --relevant has \(rel.rows)")
        }
        guard indices.rows > 0 else { throw ToolError.data("no rows: N = 0") }
        let k = indices.shape[1], r = rel.shape.count == 2 ? rel.shape[1] : 1
        let idx: [Int64], rv: [Int64]
        idx = try indices.int64s(); rv = try rel.int64s()
        for (name, values, width) in [("'indices'", idx, k), ("--relevant", rv, r)] {
            if let i = values.firstIndex(where: { $0 < -1 }) {
                throw ToolError.data("\(name): row \(i / max(1, width)) holds \(values[i]): corpus indices are 0 or more (-1 is padding)")
            }
        }
        let over = ks.filter { $0 > k }
        if !over.isEmpty {
            notes.note("calib-metrics", "warning: --k \(over.map(String.init).joined(separator: ",")) is more than the \(k) indices retrieved per query: nDCG and recall are reported at \(k)")
        }
        let retrieved = (0..<indices.rows).map { Array(idx[($0 * k)..<(($0 + 1) * k)]) }
        let relevantSets = (0..<rel.rows).map { Array(rv[($0 * r)..<(($0 + 1) * r)]) }
        let m = RetrievalMetrics(retrieved: retrieved, relevant: relevantSets, ks: ks)
        var audited: UncertaintyAudit? = nil
        if let (name, _) = auditRequest {
            guard let t = all.first(where: { $0.name == name }) else {
                throw ToolError.data("the input has no tensor '\(name)' to audit (it has: \(all.map(\.name).joined(separator: ", ")))")
            }
            let v = try signalValues(t)
            guard v.count == indices.rows else { throw ToolError.data("'\(name)' has \(v.count) rows but 'indices' has \(indices.rows)") }
            // Queries with a relevant item; the outcome is hit@1.
            let used = relevantSets.indices.filter { relevantSets[$0].contains { $0 >= 0 } }
            let hit = used.map { q in retrieved[q].first.map { i in i >= 0 && relevantSets[q].contains(i) } ?? false }
            let baseline = all.first(where: { $0.name == "scores" }).flatMap { s in s.rows == indices.rows ? marginBaseline(s, rows: used) : nil }
            audited = try audit(values: used.map { v[$0] }, baseline: baseline, correct: hit, outcome: "hit@1 (the top hit is relevant)")
        }
        if json { try printJSON(WithAudit(report: m, audit: audited)); return }
        var t = Table()
        t.add("queries", "\(m.queries)", m.queriesWithoutRelevant > 0 ? "\(m.queriesWithoutRelevant) without a relevant item, left out" : "")
        for a in m.atK {
            t.add("ndcg@\(a.k)", metric(a.ndcg), "binary relevance")
            t.add("recall@\(a.k)", metric(a.recall))
        }
        t.add("mrr", metric(m.mrr), "over the \(k) retrieved")
        try OutputFile.write(t.render() + (audited.map(auditTable) ?? ""), to: nil)
    }
}

/// Bytes calib-metrics keeps per row of class probabilities: confidence and correctness (9), the
/// copies sorted for equal-mass ECE and AURC (16), per-row losses for --bootstrap (26), OOD flags
/// and scores (25). The help and man page state it.
func bytesPerRow(bootstrap: Bool, ood: Bool) -> Int { 25 + (bootstrap ? 26 : 0) + (ood ? 25 : 0) }

/// The most bootstrap resamples: each costs a pass over the kept rows (10^5 passes over 10^6 rows
/// is already hours), and the intervals stop changing long before.
let maxBootstrap = 100_000

struct SimilarityReport: Codable {
    var rows: Int
    var spearman: Double?
    var pearson: Double?
}

func printJSON<T: Encodable>(_ value: T) throws {
    let e = JSONEncoder()
    e.outputFormatting = [.prettyPrinted, .sortedKeys]
    e.keyEncodingStrategy = .convertToSnakeCase
    e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    try OutputFile.write(String(decoding: try e.encode(value), as: UTF8.self) + "\n", to: nil)
}

/// Seconds from `start` to now.
func seconds(since start: ContinuousClock.Instant) -> Double {
    let d = ContinuousClock.now - start
    return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
}
