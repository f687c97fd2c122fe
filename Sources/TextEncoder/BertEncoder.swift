import CBLAS
import Foundation
import Layers
import LinearAlgebra
import Probability

/// A named point whose activations the encoder can return beside the embedding: pooled (one row
/// per text, the embedding's pooling) or token level (one row per token, the hidden states entering
/// a layer, so that a stack of upper layers can be trained on them without running the lower ones).
public struct EmitPoint: Sendable, Hashable, CustomStringConvertible {
    public let layer: Int
    /// The point inside `layer` whose activations are pooled; nil for the token-level hidden
    /// states entering `layer` (layer == layers: the last layer's output, before pooling).
    public let point: TransformerLayer<Float>.Point?
    /// The name the user gave ("last-layer-input", "layer.N.ffn_in", "layer.N.input" …).
    public let name: String
    /// Layers of the model.
    public let layers: Int

    /// "last-layer-input" (the input of the last layer's output.dense, i.e. layer.L-1.ffn_hidden),
    /// "layer.N.P" with P one of ffn_in, ffn_hidden, out (pooled), or "layer.N.input" (token level,
    /// N from 0 to L; layer.L.input is the encoder's output before pooling).
    public init(parsing s: String, layers: Int) throws {
        self.layers = layers
        if s == "last-layer-input" {
            layer = layers - 1; point = .ffnHidden; name = s
            return
        }
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "layer", let n = Int(parts[1]) else {
            throw EncoderError(.usage, "unknown --emit point '\(s)' (last-layer-input, layer.N.input, or layer.N.ffn_in, layer.N.ffn_hidden, layer.N.out)")
        }
        if parts[2] == "input" {
            guard n >= 0 && n <= layers else {
                throw EncoderError(.usage, "--emit \(s): the model has layers 0 to \(layers - 1) (layer.\(layers).input is its output)")
            }
            layer = n; point = nil; name = s
            return
        }
        guard let p = TransformerLayer<Float>.Point(rawValue: String(parts[2])) else {
            throw EncoderError(.usage, "unknown --emit point '\(s)' (last-layer-input, layer.N.input, or layer.N.ffn_in, layer.N.ffn_hidden, layer.N.out)")
        }
        guard n >= 0 && n < layers else {
            throw EncoderError(.usage, "--emit \(s): the model has layers 0 to \(layers - 1)")
        }
        layer = n; point = p; name = s
    }

    /// One row per token rather than one per text.
    public var tokenLevel: Bool { point == nil }

    /// The tensor name in the output stream.
    public var tensorName: String { name == "last-layer-input" ? "last_layer_input" : name }

    /// The weight this activation feeds, in the checkpoint's naming.
    public var feeds: String {
        switch point {
        case nil: return layer < layers ? "encoder.layer.\(layer)" : "pooling"
        case .ffnIn: return "encoder.layer.\(layer).intermediate.dense"
        case .ffnHidden: return "encoder.layer.\(layer).output.dense"
        case .output: return layer + 1 < layers ? "encoder.layer.\(layer + 1).attention.self" : "pooling"
        }
    }

    public var description: String { name }
}

/// The result of encoding a batch of texts: one row per text.
public struct EncodedBatch: Sendable {
    public var embeddings: Matrix<Float>
    /// Activations at the requested points, in their order: one row per text (pooled), or one
    /// row per token (token-level points: the texts' tokens back to back, in the batch's order).
    public var emitted: [Matrix<Float>]
}

/// A BERT encoder with its tokenizer and sentence-transformers' pooling:
/// embeddings (word + position + token type) and LayerNorm, the transformer layers, pooling over the
/// real tokens, optional L2 normalisation.
public final class BertEncoder: @unchecked Sendable {
    public let name: String
    public let config: BertConfig
    public var tokenizer: WordPieceTokenizer
    public var pooling: Pooling
    public var normalize: Bool
    /// sentence-transformers' do_lower_case: the text is lower-cased before tokenisation.
    public let lowercaseInput: Bool

    let wordEmbeddings: [Float]
    let positionEmbeddings: [Float]
    let tokenType0: [Float]
    let embeddingNorm: LayerNorm<Float>
    public let layers: [TransformerLayer<Float>]
    /// Per layer, the query, key and value projections stacked into one 3h × h layer: one GEMM
    /// reads the layer's input once for all three.
    let stackedQKV: [Linear<Float>]

    public var dimension: Int { config.hidden }

    /// Loads a model directory. Missing files are `.missingInput`; anything inconsistent
    /// (shapes against config.json, unsupported architecture or tokenizer) is `.badData`.
    public init(directory dir: String) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
            throw EncoderError.missing("no model directory \(dir) (give a Hugging Face model directory: config.json, model.safetensors, tokenizer.json)")
        }
        let cfg = try ModelDirectory.config(dir)
        config = cfg
        let st = try ModelDirectory.sentenceTransformers(dir)
        pooling = st.pooling; normalize = st.normalize; lowercaseInput = st.lowercaseInput
        var maxLength = st.maxSeq ?? 0
        if maxLength <= 0, let t = try ModelDirectory.json(dir, "tokenizer.json", required: false),
           let tr = t["truncation"] as? [String: Any], let m = tr["max_length"] as? NSNumber {
            maxLength = m.intValue
        }
        if maxLength <= 0 { maxLength = cfg.maxPositions }
        maxLength = min(maxLength, cfg.maxPositions)
        let tok = try ModelDirectory.tokenizer(dir, maxLength: maxLength)
        tokenizer = tok
        name = URL(fileURLWithPath: dir).standardizedFileURL.lastPathComponent

        let w = try ModelDirectory.weights(dir)
        let h = cfg.hidden, eps = Float(cfg.layerNormEps)
        func tensor(_ n: String, _ shape: [Int]) throws -> [Float] {
            guard let t = w[n] else {
                throw EncoderError.data("model.safetensors has no '\(n)' (a partial or non-BERT checkpoint)")
            }
            guard t.shape == shape else {
                throw EncoderError.data("model.safetensors: '\(n)' has shape \(t.shape) but config.json implies \(shape)")
            }
            return t.values
        }
        func linear(_ n: String, out: Int, in i: Int) throws -> Linear<Float> {
            Linear(weight: Matrix(rows: out, cols: i, data: try tensor(n + ".weight", [out, i])), bias: try tensor(n + ".bias", [out]))
        }
        func norm(_ n: String) throws -> LayerNorm<Float> {
            LayerNorm(weight: try tensor(n + ".weight", [h]), bias: try tensor(n + ".bias", [h]), eps: eps)
        }
        wordEmbeddings = try tensor("embeddings.word_embeddings.weight", [cfg.vocabulary, h])
        positionEmbeddings = try tensor("embeddings.position_embeddings.weight", [cfg.maxPositions, h])
        tokenType0 = Array(try tensor("embeddings.token_type_embeddings.weight", [cfg.typeVocabulary, h]).prefix(h))
        embeddingNorm = try norm("embeddings.LayerNorm")
        var ls: [TransformerLayer<Float>] = []
        for i in 0..<cfg.layers {
            let p = "encoder.layer.\(i)."
            let att = SelfAttention(query: try linear(p + "attention.self.query", out: h, in: h),
                                    key: try linear(p + "attention.self.key", out: h, in: h),
                                    value: try linear(p + "attention.self.value", out: h, in: h),
                                    output: try linear(p + "attention.output.dense", out: h, in: h), heads: cfg.heads)
            ls.append(TransformerLayer(attention: att, attentionNorm: try norm(p + "attention.output.LayerNorm"),
                                       intermediate: try linear(p + "intermediate.dense", out: cfg.intermediate, in: h),
                                       output: try linear(p + "output.dense", out: h, in: cfg.intermediate),
                                       outputNorm: try norm(p + "output.LayerNorm")))
        }
        if w["encoder.layer.\(cfg.layers).output.dense.weight"] != nil {
            throw EncoderError.data("model.safetensors has more layers than num_hidden_layers = \(cfg.layers) in config.json")
        }
        layers = ls
        stackedQKV = ls.map { $0.attention.stackedProjections() }
        let largest = tok.largestID
        guard largest < cfg.vocabulary else {
            throw EncoderError.data("the tokenizer has token id \(largest) but the model has \(cfg.vocabulary) word embeddings")
        }
    }

    /// Token ids of one text ([CLS] … [SEP], truncated) and the count before truncation.
    public func tokenize(_ text: String) -> (ids: [Int32], count: Int) {
        tokenizer.encode(lowercaseInput ? text.lowercased() : text)
    }

    /// Encodes a batch of tokenised texts (packed: no padding anywhere); one output row per text.
    ///
    /// Threads over sequences: when OpenBLAS may use T > 1 threads, the batch is cut into T shards
    /// of about equal work, and each shard runs the whole forward on a thread of its own, OpenBLAS
    /// being set to one thread meanwhile (and restored after). Everything is then parallel
    /// (embeddings, attention, LayerNorm, GELU, pooling, not only the GEMMs), no thread waits for
    /// another between layers. A text's result depends on the split only through the GEMMs'
    /// rounding (OpenBLAS's sums depend on a product's shape and a row's place in it): on the
    /// bundled texts, embeddings at 1 and 2 threads differ by at most 1.4e-7 (unit vectors' entries
    /// of ~0.05). Not for calling concurrently from several threads (the OpenBLAS setting is
    /// process-wide).
    public func encode(_ batch: [[Int32]], emit: [EmitPoint] = []) -> EncodedBatch {
        for ids in batch {
            precondition(ids.count <= config.maxPositions, "encode: a sequence is longer than the position table")
        }
        let blasThreads = Int(blas_get_num_threads())
        let shards = BertEncoder.shards(batch.map(\.count), count: min(blasThreads, batch.count), hidden: config.hidden,
                                        intermediate: config.intermediate)
        if shards.count <= 1 { return forward(batch, emit: emit) }
        let parts = BLASThreading.onThreads(shards.count) { s in forward(shards[s].map { batch[$0] }, emit: emit) }
        // Back in the batch's order: one row per text, or (token-level points) each text's rows.
        var start = [Int](repeating: 0, count: batch.count + 1)
        for (t, ids) in batch.enumerated() { start[t + 1] = start[t] + ids.count }
        var out = EncodedBatch(embeddings: Matrix(rows: batch.count, cols: config.hidden),
                               emitted: emit.indices.map { Matrix(rows: emit[$0].tokenLevel ? start[batch.count] : batch.count,
                                                                  cols: parts[0].emitted[$0].cols) })
        for (s, texts) in shards.enumerated() {
            var from = 0
            for (k, t) in texts.enumerated() {
                BertEncoder.copyRows(parts[s].embeddings, k ..< k + 1, into: &out.embeddings, at: t)
                let tokens = from ..< from + batch[t].count
                for e in emit.indices {
                    if emit[e].tokenLevel { BertEncoder.copyRows(parts[s].emitted[e], tokens, into: &out.emitted[e], at: start[t]) }
                    else { BertEncoder.copyRows(parts[s].emitted[e], k ..< k + 1, into: &out.emitted[e], at: t) }
                }
                from = tokens.upperBound
            }
        }
        return out
    }

    /// Rows `rows` of a into b from row j on.
    static func copyRows(_ a: Matrix<Float>, _ rows: Range<Int>, into b: inout Matrix<Float>, at j: Int) {
        let d = a.cols
        b.data.replaceSubrange(j * d ..< (j + rows.count) * d, with: a.data[rows.lowerBound * d ..< rows.upperBound * d])
    }

    /// The batch's texts (by index) cut into at most `count` shards of about equal work: longest
    /// first, each to the shard with the least work so far (the GEMMs cost in proportion to the
    /// tokens, attention to their square). Empty shards are dropped.
    public static func shards(_ lengths: [Int], count: Int, hidden h: Int, intermediate i: Int) -> [[Int]] {
        balancedShards(work: lengths.map { transformerWork(length: $0, hidden: h, intermediate: i) }, count: count)
    }

    /// The forward of a batch on the calling thread: embeddings and LayerNorm, the layers (each
    /// TransformerLayer's forward with the stacked Q, K, V projection, into buffers allocated once
    /// per batch), pooling.
    func forward(_ batch: [[Int32]], emit: [EmitPoint]) -> EncodedBatch {
        let h = config.hidden
        let input = embed(batch)
        var x = input.x
        let sequences = input.sequences, total = x.rows
        var emitted = emit.map { p in
            p.tokenLevel ? Matrix<Float>(rows: total, cols: h)
                         : Matrix<Float>(rows: batch.count, cols: p.point == .ffnHidden ? config.intermediate : h)
        }
        var buffers = TransformerLayer<Float>.Buffers(rows: total, hidden: h, intermediate: config.intermediate)
        for (i, layer) in layers.enumerated() {
            for k in emit.indices where emit[k].tokenLevel && emit[k].layer == i { emitted[k] = x }
            let wanted = emit.indices.filter { emit[$0].layer == i && !emit[$0].tokenLevel }
            layer.forward(&x, sequences: sequences, stackedQKV: stackedQKV[i], buffers: &buffers,
                          observe: wanted.isEmpty ? nil : { point, m in
                              for k in wanted where emit[k].point == point { emitted[k] = self.pool(m, sequences) }
                          })
        }
        for k in emit.indices where emit[k].tokenLevel && emit[k].layer == layers.count { emitted[k] = x }
        var e = pool(x, sequences)
        if normalize { BertEncoder.l2Normalize(&e) }
        return EncodedBatch(embeddings: e, emitted: emitted)
    }

    /// The packed batch's input to the first layer, word + position + token type embeddings and
    /// LayerNorm (one row per token), and each text's rows.
    func embed(_ batch: [[Int32]]) -> (x: Matrix<Float>, sequences: [Range<Int>]) {
        let h = config.hidden
        var sequences: [Range<Int>] = []
        var total = 0
        for ids in batch {
            sequences.append(total ..< total + ids.count); total += ids.count
        }
        var x = Matrix<Float>(rows: total, cols: h)
        x.data.withUnsafeMutableBufferPointer { px in
            wordEmbeddings.withUnsafeBufferPointer { we in
                positionEmbeddings.withUnsafeBufferPointer { pe in
                    tokenType0.withUnsafeBufferPointer { te in
                        var r = 0
                        for ids in batch {
                            for (pos, id) in ids.enumerated() {
                                let o = r * h, wo = Int(id) * h, po = pos * h
                                for j in 0..<h { px[o + j] = we[wo + j] + pe[po + j] + te[j] }
                                r += 1
                            }
                        }
                    }
                }
            }
        }
        embeddingNorm.forwardInPlace(&x)
        return (x, sequences)
    }

    /// The same forward through TransformerLayer.forward (Layers' own attention, one thread of
    /// ours), kept as the reference the tests compare `encode` with.
    public func referenceForward(_ batch: [[Int32]]) -> Matrix<Float> {
        let input = embed(batch)
        var x = input.x
        for layer in layers { x = layer.forward(x, sequences: input.sequences) }
        var e = pool(x, input.sequences)
        if normalize { BertEncoder.l2Normalize(&e) }
        return e
    }

    /// One row per sequence: mean over its tokens, its first token, or the maximum.
    func pool(_ m: Matrix<Float>, _ sequences: [Range<Int>]) -> Matrix<Float> {
        let d = m.cols
        var out = Matrix<Float>(rows: sequences.count, cols: d)
        m.data.withUnsafeBufferPointer { pm in
            out.data.withUnsafeMutableBufferPointer { po in
                for (i, s) in sequences.enumerated() where !s.isEmpty {
                    let o = i * d
                    switch pooling {
                    case .cls:
                        for j in 0..<d { po[o + j] = pm[s.lowerBound * d + j] }
                    case .mean:
                        var acc = [Double](repeating: 0, count: d)
                        for r in s { for j in 0..<d { acc[j] += Double(pm[r * d + j]) } }
                        let inv = 1 / Double(s.count)
                        for j in 0..<d { po[o + j] = Float(acc[j] * inv) }
                    case .max:
                        for j in 0..<d { po[o + j] = -.infinity }
                        for r in s { for j in 0..<d { po[o + j] = Swift.max(po[o + j], pm[r * d + j]) } }
                    }
                }
            }
        }
        return out
    }

    /// Each row divided by its Euclidean norm (rows of zeros stay zero), as torch's F.normalize.
    static func l2Normalize(_ m: inout Matrix<Float>) {
        let d = m.cols
        for r in 0..<m.rows {
            var s = 0.0
            for j in 0..<d { s += Double(m.data[r * d + j]) * Double(m.data[r * d + j]) }
            let inv = Float(1 / Swift.max(s.squareRoot(), 1e-12))
            for j in 0..<d { m.data[r * d + j] *= inv }
        }
    }
}
