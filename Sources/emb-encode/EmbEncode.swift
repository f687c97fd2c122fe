import ArgumentParser
import Failure
import Foundation
import LinearAlgebra
import TensorStream
import TextEncoder
import ToolKit

@main
struct EmbEncode: Tool, ThreadedTool {
    static let configuration = CommandConfiguration(
        commandName: "emb-encode",
        abstract: "Text in, embeddings out: a BERT-family encoder (all-MiniLM, bge, e5, gte) run natively.",
        discussion: """
            Reads one text per line (UTF-8) and writes 'embedding' (N×D f32), 'id' (N, the 0-based line \
            number) and 'tokens' (N, the token count before truncation), with the model's name in the \
            metadata. The model is a Hugging Face directory: config.json, model.safetensors (F32, F16 or \
            BF16), tokenizer.json (WordPiece) or vocab.txt, and sentence-transformers' modules.json, \
            1_Pooling/config.json and sentence_bert_config.json when present (pooling, normalisation, \
            max_seq_length). Tokens match the Hugging Face tokenizers library; embeddings match \
            sentence-transformers (cosine ≥ 0.99999).

            Texts longer than the model's limit are truncated (a note counts them). The input is read \
            in windows of lines; each window is sorted by length so that batches group texts of similar \
            length, and the output keeps the input order. Attention runs over each text's real tokens \
            only: no padding is computed.

            --emit adds pooled activations at named points (the same pooling as the embedding): \
            'last-layer-input' is the input of the model's last linear layer (the last layer's \
            output.dense, 1536-d for MiniLM), written as 'last_layer_input' with the layer's name in \
            its metadata, for emb-laplace; 'layer.N.ffn_in' (the input of layer N's feed-forward \
            block), 'layer.N.ffn_hidden' and 'layer.N.out' are written under those names, e.g. as \
            sve-train features. 'layer.N.input' is token level: the hidden states entering layer N \
            (N from 0, the embeddings' output, to the number of layers, the last layer's output), one \
            row per token — the tokens of all texts back to back in input order, [CLS] and [SEP] \
            included, truncated texts cut at the limit — written as 'layer.N.input' (T×hidden f32) \
            with 'lengths' (N, i64: the rows of each text, summing to T), so that sve-train can train \
            the upper layers without running the lower ones every epoch. --emit takes one point; give \
            it again, or a comma list, for several.

            Examples:
              emb-encode --model models/all-MiniLM-L6-v2 < docs.txt > docs.tsr
              emb-encode --model models/all-MiniLM-L6-v2 < queries.txt \\
                | emb-sim --corpus docs.tsr --top-k 5 | tensor to tsv --lines docs.txt
              emb-encode --model models/e5-small --prefix "query: " questions.txt -o q.tsr
              cut -f2 data.tsv | emb-encode --model M --emit last-layer-input -o f.tsr
              emb-encode --model M --emit layer.5.ffn_in --emit layer.5.out t.txt > f.tsr
              emb-encode --model M --emit layer.4.input --max-length 128 t.txt > h.tsr
              emb-encode --model M --tsv 3 --replace-invalid < table.tsv > emb.tsr

            Bad input (exit 65 or 66, nothing written): a missing or partial model directory, weights \
            whose shapes disagree with config.json, a tokenizer that is not WordPiece, a vocabulary \
            without [UNK]/[CLS]/[SEP], a model that is not BERT, a line that is not UTF-8 (its number is \
            given; or --replace-invalid).
            """,
        version: toolboxVersion)

    @Argument(help: ArgumentHelp("Text file, one text per line ('-' = standard input).", valueName: "FILE"))
    var input = "-"
    @Option(help: ArgumentHelp("Model directory (Hugging Face layout).", valueName: "DIR"))
    var model: String
    @Option(help: ArgumentHelp("Take the text from column COL (1-based) of tab-separated lines.", valueName: "COL"))
    var tsv: Int?
    @Option(help: ArgumentHelp("Put TEXT before every line (e.g. \"query: \" or \"passage: \" for e5 models).", valueName: "TEXT"))
    var prefix = ""
    @Flag(name: .customLong("replace-invalid"), help: "Replace bytes that are not UTF-8 by U+FFFD instead of refusing the line.")
    var replaceInvalid = false
    @Option(help: ArgumentHelp("Also write activations at POINT: last-layer-input, layer.N.ffn_in, layer.N.ffn_hidden, layer.N.out (pooled), layer.N.input (token level, with 'lengths'). Repeat it, or give a comma list.", valueName: "POINT"))
    var emit: [String] = []
    @Option(help: ArgumentHelp("Pooling: mean, cls or max (default: the model's, else mean).", valueName: "MODE"))
    var pooling: Pooling?
    @Flag(inversion: .prefixedNo, help: "L2-normalise the embeddings (default: as the model's modules.json says).")
    var normalize: Bool?
    @Option(name: .customLong("max-length"), help: ArgumentHelp("Truncate texts at N tokens, [CLS] and [SEP] included (default and upper bound: the model's limit).", valueName: "N"))
    var maxLength: Int?
    @Option(name: .customLong("batch-size"), help: "Texts per forward pass.")
    var batchSize = 32
    @Option(help: "Lines read and sorted by length at a time (a multiple of the batch size is best).")
    var window = 1024
    @Flag(name: .shortAndLong, help: "No notes on standard error.")
    var quiet = false
    @Flag(name: .short, help: "Say what was chosen: model, pooling, threads.")
    var verbose = false

    @OptionGroup var common: CommonOptions
    @OptionGroup var output: OutputOptions

    func validate() throws {
        if let c = tsv, c < 1 { throw ValidationError("--tsv takes a column number, 1 or more") }
        if batchSize < 1 { throw ValidationError("--batch-size must be at least 1") }
        if window < 1 { throw ValidationError("--window must be at least 1") }
        if let m = maxLength, m < 2 { throw ValidationError("--max-length must be at least 2 ([CLS] and [SEP])") }
        if model.isEmpty { throw ValidationError("--model needs a directory") }
    }

    func run() throws {
        let blasThreads = try prepareBLAS(threads: common.threadCount)
        if verbose { writeStderr(BLASKernel.summary(threads: blasThreads) + "\n") }
        let encoder = try BertEncoder(directory: model)
        if let p = pooling { encoder.pooling = p }
        if let n = normalize { encoder.normalize = n }
        if let m = maxLength { encoder.tokenizer.maxLength = min(m, encoder.tokenizer.maxLength) }
        let names = emit.flatMap { $0.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) } }
        if names.contains(where: \.isEmpty) { throw ToolError.usage("--emit has an empty point (give POINT or A,B)") }
        let points = try names.map { try EmitPoint(parsing: $0, layers: encoder.config.layers) }
        if Set(points.map(\.tensorName)).count != points.count { throw ToolError.usage("--emit names a point twice") }
        let source = try FileSource(path: input)
        let totalLines = input == "-" ? nil : countLines(source.fd)
        if verbose {
            writeStderr("emb-encode: model \(encoder.name): \(encoder.config.layers) layers, \(encoder.dimension) dimensions, pooling \(encoder.pooling.rawValue), \(encoder.normalize ? "normalised" : "not normalised"), at most \(encoder.tokenizer.maxLength) tokens; \(common.threadCount) threads\n")
        }

        let out = try output.open()
        let w = out.writer
        var meta = ["model": encoder.name, "pooling": encoder.pooling.rawValue,
                    "normalized": encoder.normalize ? "true" : "false", "max_tokens": "\(encoder.tokenizer.maxLength)"]
        if !prefix.isEmpty { meta["prefix"] = prefix }
        let embID = try w.add(TensorInfo(name: "embedding", dtype: .f32, rowShape: [encoder.dimension], meta: meta))
        let idID = try w.add(TensorInfo(name: "id", dtype: .i64, rowShape: [], meta: ["what": "0-based line number of the input"]))
        let tokID = try w.add(TensorInfo(name: "tokens", dtype: .i64, rowShape: [], meta: ["what": "tokens of the text before truncation, [CLS] and [SEP] included"]))
        var emitIDs: [Int] = []
        let anyTokenLevel = points.contains(where: \.tokenLevel)
        let lengthsID = anyTokenLevel
            ? try w.add(TensorInfo(name: "lengths", dtype: .i64, rowShape: [], meta: ["what": "rows of each text in the token-level tensors ([CLS] and [SEP] included, after truncation)"]))
            : -1
        for p in points {
            if p.tokenLevel {
                emitIDs.append(try w.add(TensorInfo(name: p.tensorName, dtype: .f32, rowShape: [encoder.dimension],
                                                    meta: ["model": encoder.name, "layer": p.feeds, "point": p.name,
                                                           "level": "token", "lengths": "lengths"])))
                continue
            }
            let width = p.point == .ffnHidden ? encoder.config.intermediate : encoder.dimension
            emitIDs.append(try w.add(TensorInfo(name: p.tensorName, dtype: .f32, rowShape: [width],
                                                meta: ["model": encoder.name, "layer": p.feeds, "point": p.name,
                                                       "pooling": encoder.pooling.rawValue])))
        }

        let reader = LineReader(source)
        let progress = Progress("emb-encode", total: totalLines, unit: "lines")
        let started = Date()
        var lineNo = 0, truncated = 0
        var done = false
        while !done {
            // A window of lines, tokenised.
            var ids: [[Int32]] = [], counts: [Int] = []
            while ids.count < window {
                guard let raw = try reader.next() else { done = true; break }
                lineNo += 1
                var bytes = raw
                if let c = tsv {
                    guard let col = tsvColumn(raw, c) else {
                        throw ToolError.data("line \(lineNo) of \(source.label) has no column \(c)")
                    }
                    bytes = col
                }
                guard let text = decodeLine(bytes, replacing: replaceInvalid) else {
                    throw ToolError.data("line \(lineNo) of \(source.label) is not valid UTF-8 (fix the encoding, e.g. iconv -f latin1 -t utf-8, or use --replace-invalid)")
                }
                let enc = encoder.tokenize(prefix.isEmpty ? text : prefix + text)
                if enc.count > enc.ids.count { truncated += 1 }
                ids.append(enc.ids); counts.append(enc.count)
            }
            if ids.isEmpty { break }
            // Longest first, so that batches hold texts of similar lengths.
            let order = ids.indices.sorted { ids[$0].count != ids[$1].count ? ids[$0].count > ids[$1].count : $0 < $1 }
            let n = ids.count, d = encoder.dimension
            var emb = [Float](repeating: 0, count: n * d)
            var extra = points.map { $0.tokenLevel ? [] : [Float](repeating: 0, count: n * ($0.point == .ffnHidden ? encoder.config.intermediate : d)) }
            // Token-level points: each text's rows, put back in input order after the window.
            var tokenRows = points.map { $0.tokenLevel ? [[Float]](repeating: [], count: n) : [] }
            for b in stride(from: 0, to: n, by: batchSize) {
                let rows = Array(order[b ..< min(b + batchSize, n)])
                let r = encoder.encode(rows.map { ids[$0] }, emit: points)
                for (k, row) in rows.enumerated() {
                    emb.replaceSubrange(row * d ..< (row + 1) * d, with: r.embeddings.row(k))
                    for (e, m) in r.emitted.enumerated() where !points[e].tokenLevel {
                        extra[e].replaceSubrange(row * m.cols ..< (row + 1) * m.cols, with: m.row(k))
                    }
                }
                var first = 0
                for row in rows {
                    let L = ids[row].count
                    for (e, m) in r.emitted.enumerated() where points[e].tokenLevel {
                        tokenRows[e][row] = Array(m.data[first * d ..< (first + L) * d])
                    }
                    first += L
                }
                progress.update(lineNo - n + b + rows.count,
                                note: cFormat("%.0f lines/s", Double(lineNo - n + b + rows.count) / max(Date().timeIntervalSince(started), 1e-3)))
            }
            let first = lineNo - n
            try w.write(embID, rows: n, values: emb)
            try w.write(idID, rows: n, values: (0..<n).map { Int64(first + $0) })
            try w.write(tokID, rows: n, values: counts.map(Int64.init))
            if anyTokenLevel { try w.write(lengthsID, rows: n, values: ids.map { Int64($0.count) }) }
            for (e, id) in emitIDs.enumerated() {
                if points[e].tokenLevel {
                    let flat = tokenRows[e].flatMap { $0 }
                    try w.write(id, rows: flat.count / d, values: flat)
                } else {
                    try w.write(id, rows: n, values: extra[e])
                }
            }
        }
        progress.finish()
        try out.finish()
        if truncated > 0 && !quiet {
            writeStderr("emb-encode: note: \(truncated) of \(lineNo) texts were longer than \(encoder.tokenizer.maxLength) tokens and were truncated\n")
        }
    }

    /// Lines of a regular file (for the progress's eta), read through a second descriptor; nil otherwise.
    func countLines(_ fd: Int32) -> Int? {
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG,
              let h = FileHandle(forReadingAtPath: input) else { return nil }
        defer { try? h.close() }
        var n = 0, last: UInt8 = 0x0A
        while let chunk = try? h.read(upToCount: 1 << 20), !chunk.isEmpty {
            chunk.withUnsafeBytes { b in for x in b where x == 0x0A { n += 1 } }
            last = chunk.last!
        }
        return last == 0x0A ? n : n + 1
    }
}

extension Pooling: ExpressibleByArgument {}
