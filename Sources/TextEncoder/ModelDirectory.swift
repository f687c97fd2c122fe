import Foundation
import TensorFormats
import TensorStream

/// A BERT encoder's hyper-parameters from config.json.
public struct BertConfig: Sendable, Equatable {
    public var hidden: Int
    public var layers: Int
    public var heads: Int
    public var intermediate: Int
    public var maxPositions: Int
    public var typeVocabulary: Int
    public var vocabulary: Int
    public var layerNormEps: Double
}

/// How token vectors become one vector per text (sentence-transformers' Pooling module).
public enum Pooling: String, Sendable, CaseIterable {
    case mean, cls, max
}

/// Reading a Hugging Face model directory: config.json, model.safetensors, tokenizer.json or
/// vocab.txt, and sentence-transformers' modules.json, 1_Pooling/config.json and
/// sentence_bert_config.json when present.
enum ModelDirectory {
    static func url(_ dir: String, _ file: String) -> URL { URL(fileURLWithPath: dir).appendingPathComponent(file) }

    static func exists(_ dir: String, _ file: String) -> Bool { FileManager.default.fileExists(atPath: url(dir, file).path) }

    /// A JSON object from a file of the directory; nil when the file is absent and optional.
    static func json(_ dir: String, _ file: String, required: Bool) throws -> [String: Any]? {
        let u = url(dir, file)
        guard FileManager.default.fileExists(atPath: u.path) else {
            if required { throw EncoderError.missing("\(dir) has no \(file) (a model directory holds config.json, model.safetensors and tokenizer.json or vocab.txt)") }
            return nil
        }
        guard let data = try? Data(contentsOf: u) else { throw EncoderError.missing("cannot read \(u.path)") }
        guard let obj = try? JSONSerialization.jsonObject(with: data), let dict = obj as? [String: Any] else {
            throw EncoderError.data("\(u.path) is not a JSON object")
        }
        return dict
    }

    static func int(_ d: [String: Any], _ k: String, _ file: String) throws -> Int {
        guard let v = d[k] as? NSNumber, let i = Int(exactly: v.doubleValue), i > 0 else {
            throw EncoderError.data("\(file): '\(k)' is missing or not a positive integer")
        }
        return i
    }

    static let architectures: Set<String> = ["BertModel", "BertForMaskedLM", "BertForPreTraining", "BertForSequenceClassification", "BertForTokenClassification", "BertForQuestionAnswering", "BertForNextSentencePrediction", "BertLMHeadModel"]

    static func config(_ dir: String) throws -> BertConfig {
        let c = try json(dir, "config.json", required: true)!
        let type = c["model_type"] as? String
        let archs = c["architectures"] as? [String] ?? []
        guard type == "bert" || (type == nil && archs.contains(where: architectures.contains)) else {
            let what = type ?? archs.first ?? "unknown"
            throw EncoderError.data("config.json: model type '\(what)' is not supported (emb-encode runs BERT-family encoders: model_type \"bert\", e.g. all-MiniLM, bge, e5, gte)")
        }
        if let act = c["hidden_act"] as? String, act != "gelu" {
            throw EncoderError.data("config.json: hidden_act '\(act)' is not supported (BERT's exact 'gelu' is)")
        }
        if let pos = c["position_embedding_type"] as? String, pos != "absolute" {
            throw EncoderError.data("config.json: position_embedding_type '\(pos)' is not supported (only 'absolute')")
        }
        let cfg = BertConfig(hidden: try int(c, "hidden_size", "config.json"), layers: try int(c, "num_hidden_layers", "config.json"),
                             heads: try int(c, "num_attention_heads", "config.json"),
                             intermediate: try int(c, "intermediate_size", "config.json"),
                             maxPositions: try int(c, "max_position_embeddings", "config.json"),
                             typeVocabulary: (c["type_vocab_size"] as? NSNumber)?.intValue ?? 2,
                             vocabulary: try int(c, "vocab_size", "config.json"),
                             layerNormEps: (c["layer_norm_eps"] as? NSNumber)?.doubleValue ?? 1e-12)
        guard cfg.hidden % cfg.heads == 0 else {
            throw EncoderError.data("config.json: hidden_size \(cfg.hidden) is not a multiple of num_attention_heads \(cfg.heads)")
        }
        guard cfg.typeVocabulary >= 1 else { throw EncoderError.data("config.json: type_vocab_size must be at least 1") }
        return cfg
    }

    /// The weights as Float, by name, with any "bert." style prefix removed.
    static func weights(_ dir: String) throws -> [String: (shape: [Int], values: [Float])] {
        let u = url(dir, "model.safetensors")
        guard FileManager.default.fileExists(atPath: u.path) else {
            throw EncoderError.missing("\(dir) has no model.safetensors (convert pytorch_model.bin with the safetensors package)")
        }
        // The file mapped, each tensor converted straight from the page cache: one copy of the
        // weights, where reading the file into an array and slicing it made four.
        do {
            return try withMappedFile(u.path) { raw in
                let entries: [Safetensors.Entry]
                do { entries = try Safetensors.entries(raw).entries } catch { throw EncoderError.data("\(u.path): \(error)") }
                guard let anchor = entries.first(where: { $0.name.hasSuffix("embeddings.word_embeddings.weight") }) else {
                    throw EncoderError.data("\(u.path) has no embeddings.word_embeddings.weight (not a BERT checkpoint, or a partial one)")
                }
                let prefix = String(anchor.name.dropLast("embeddings.word_embeddings.weight".count))
                var out: [String: (shape: [Int], values: [Float])] = [:]
                for t in entries where t.name.hasPrefix(prefix) {
                    guard t.dtype.isFloat else { continue }
                    var name = String(t.name.dropFirst(prefix.count))
                    // Old checkpoints call the LayerNorm parameters gamma and beta.
                    if name.hasSuffix("LayerNorm.gamma") { name = String(name.dropLast(5)) + "weight" }
                    if name.hasSuffix("LayerNorm.beta") { name = String(name.dropLast(4)) + "bias" }
                    out[name] = (t.shape, floats(of: UnsafeRawBufferPointer(rebasing: raw[t.bytes]), dtype: t.dtype))
                }
                return out
            }
        } catch let e as FormatError {   // the file could not be opened or mapped
            throw EncoderError.missing(e.description)
        }
    }

    /// The tokenizer: tokenizer.json (WordPiece) or else vocab.txt with tokenizer_config.json.
    static func tokenizer(_ dir: String, maxLength: Int) throws -> WordPieceTokenizer {
        if let t = try json(dir, "tokenizer.json", required: false) {
            guard let model = t["model"] as? [String: Any] else { throw EncoderError.data("tokenizer.json has no 'model'") }
            let type = model["type"] as? String ?? "unknown"
            guard type == "WordPiece" else {
                throw EncoderError.data("tokenizer.json: tokenizer type '\(type)' is not supported (emb-encode reads WordPiece, the BERT tokenizer)")
            }
            var opt = WordPieceTokenizer.Options()
            switch t["normalizer"] {
            case let n as [String: Any]:
                guard n["type"] as? String == "BertNormalizer" else {
                    throw EncoderError.data("tokenizer.json: normalizer '\(n["type"] as? String ?? "?")' is not supported (BertNormalizer is)")
                }
                opt.lowercase = n["lowercase"] as? Bool ?? true
                opt.stripAccents = n["strip_accents"] as? Bool
                opt.cleanText = n["clean_text"] as? Bool ?? true
                opt.handleChineseChars = n["handle_chinese_chars"] as? Bool ?? true
            default:
                opt.lowercase = false; opt.stripAccents = false; opt.cleanText = false; opt.handleChineseChars = false
            }
            if let p = t["pre_tokenizer"] as? [String: Any], p["type"] as? String != "BertPreTokenizer" {
                throw EncoderError.data("tokenizer.json: pre-tokenizer '\(p["type"] as? String ?? "?")' is not supported (BertPreTokenizer is)")
            }
            if let p = model["continuing_subword_prefix"] as? String { opt.continuingSubwordPrefix = p }
            if let m = model["max_input_chars_per_word"] as? NSNumber { opt.maxInputCharsPerWord = m.intValue }
            guard let v = model["vocab"] as? [String: Any], !v.isEmpty else { throw EncoderError.data("tokenizer.json: the WordPiece model has no vocabulary") }
            var vocab: [String: Int32] = [:]
            for (k, id) in v {
                guard let n = id as? NSNumber else { throw EncoderError.data("tokenizer.json: vocabulary id of '\(k)' is not a number") }
                vocab[k] = Int32(truncatingIfNeeded: n.intValue)
            }
            var added: [WordPieceTokenizer.AddedToken] = []
            for a in t["added_tokens"] as? [[String: Any]] ?? [] {
                guard let c = a["content"] as? String, let id = a["id"] as? NSNumber else { continue }
                // Tokens that are matched after normalisation are ordinary vocabulary entries for BERT.
                if a["normalized"] as? Bool == true { continue }
                added.append(.init(content: c, id: Int32(id.intValue), lstrip: a["lstrip"] as? Bool ?? false, rstrip: a["rstrip"] as? Bool ?? false))
            }
            let unk = model["unk_token"] as? String ?? "[UNK]"
            return try WordPieceTokenizer(vocab: vocab, options: opt, unk: unk, addedTokens: added, maxLength: maxLength)
        }
        let u = url(dir, "vocab.txt")
        guard FileManager.default.fileExists(atPath: u.path) else {
            throw EncoderError.missing("\(dir) has no tokenizer.json or vocab.txt (the model's tokenizer)")
        }
        guard let data = FileManager.default.contents(atPath: u.path) else { throw EncoderError.missing("cannot read \(u.path)") }
        var vocab: [String: Int32] = [:]
        var lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        if lines.last == "" { lines.removeLast() }
        for (i, l) in lines.enumerated() {
            let tok = l.hasSuffix("\r") ? String(l.dropLast()) : String(l)
            if vocab[tok] == nil { vocab[tok] = Int32(i) }
        }
        var opt = WordPieceTokenizer.Options()
        let tc = try json(dir, "tokenizer_config.json", required: false) ?? [:]
        opt.lowercase = tc["do_lower_case"] as? Bool ?? true
        opt.stripAccents = tc["strip_accents"] as? Bool
        opt.handleChineseChars = tc["tokenize_chinese_chars"] as? Bool ?? true
        var added: [WordPieceTokenizer.AddedToken] = []
        for s in ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] { if let id = vocab[s] { added.append(.init(content: s, id: id)) } }
        return try WordPieceTokenizer(vocab: vocab, options: opt, addedTokens: added, maxLength: maxLength)
    }

    /// sentence-transformers' settings: pooling, normalisation, max_seq_length, lower-casing.
    static func sentenceTransformers(_ dir: String) throws -> (pooling: Pooling, normalize: Bool, maxSeq: Int?, lowercaseInput: Bool) {
        var pooling = Pooling.mean, normalize = false
        var poolingDir = "1_Pooling"
        let modulesURL = url(dir, "modules.json")
        if FileManager.default.fileExists(atPath: modulesURL.path) {
            guard let data = try? Data(contentsOf: modulesURL),
                  let mods = (try? JSONSerialization.jsonObject(with: data)) as? [[String: Any]] else {
                throw EncoderError.data("\(modulesURL.path) is not a JSON list of modules")
            }
            for m in mods {
                let type = m["type"] as? String ?? ""
                if type.hasSuffix("Normalize") { normalize = true }
                if type.hasSuffix("Pooling"), let p = m["path"] as? String { poolingDir = p }
                if type.hasSuffix("Dense") { throw EncoderError.data("modules.json: a Dense module after pooling is not supported") }
            }
        }
        if let p = try json(dir, poolingDir + "/config.json", required: false) {
            let modes = ["pooling_mode_cls_token": Pooling.cls, "pooling_mode_mean_tokens": .mean, "pooling_mode_max_tokens": .max]
            let on = p.filter { ($0.value as? Bool) == true && $0.key.hasPrefix("pooling_mode_") }.map(\.key)
            guard on.count == 1, let mode = modes[on[0]] else {
                throw EncoderError.data("\(poolingDir)/config.json: pooling \(on.sorted().joined(separator: "+")) is not supported (one of cls, mean, max)")
            }
            pooling = mode
        }
        var maxSeq: Int? = nil, lower = false
        if let s = try json(dir, "sentence_bert_config.json", required: false) {
            maxSeq = (s["max_seq_length"] as? NSNumber)?.intValue
            lower = s["do_lower_case"] as? Bool ?? false
        }
        return (pooling, normalize, maxSeq, lower)
    }
}

extension WordPieceTokenizer {
    /// The tokenizer of a model directory (tokenizer.json, or vocab.txt with tokenizer_config.json).
    public init(directory: String, maxLength: Int) throws {
        self = try ModelDirectory.tokenizer(directory, maxLength: maxLength)
    }
}
