import Foundation
import LinearAlgebra
import TestSupport
import TextEncoder
import XCTest

/// emb-encode and `tensor to tsv --lines` as a user runs them.
final class EmbEncodeToolTests: XCTestCase {
    var tmp: URL!
    override func setUpWithError() throws { tmp = try temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: tmp) }

    func csv(_ stream: Data, _ args: [String]) throws -> [String] {
        let r = try runTool("tensor", ["to", "csv"] + args, stdin: stream)
        XCTAssertEqual(r.status, 0, r.stderr)
        return String(decoding: r.stdout, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
    }

    /// Small windows and batches (so that sorting by length reorders), output in input order, equal
    /// to the reference; ids, token counts and the truncation note.
    func testEncodesInInputOrderAgainstReference() throws {
        let model = try modelDirectory()
        let lines = try fixtureLines("embed_lines.txt")
        let input = Data((lines.joined(separator: "\n") + "\n").utf8)
        let r = try runTool("emb-encode", ["--model", model, "--batch-size", "3", "--window", "7", "--threads", "1"], stdin: input)
        XCTAssertEqual(r.status, 0, r.stderr)
        let emb = try csv(r.stdout, ["--tensor", "embedding"])
        XCTAssertEqual(emb.count, 50)
        let (_, ref) = try readNpy("embed_reference.npy")
        for i in [0, 6, 7, 20, 49] {
            let v = emb[i].split(separator: ",").map { Double($0)! }
            for j in 0..<384 { XCTAssertEqual(v[j], Double(ref[i * 384 + j]), accuracy: 1e-4, "row \(i)") }
        }
        XCTAssertEqual(try csv(r.stdout, ["--tensor", "id"]), (0..<50).map(String.init))
        let expected = try fixtureLines("tokenizer_ids.txt")
        let allLines = try fixtureLines("tokenizer_lines.txt")
        let tokens = try csv(r.stdout, ["--tensor", "tokens"])
        var over = 0
        for (i, l) in lines.enumerated() {
            let k = allLines.firstIndex(of: l)!
            let n = String(expected[k].split(separator: "\t")[1])
            XCTAssertEqual(tokens[i], n)
            if Int(n)! > 256 { over += 1 }
        }
        XCTAssertGreaterThan(over, 0)
        XCTAssertEqual(r.stderr, "emb-encode: note: \(over) of 50 texts were longer than 256 tokens and were truncated\n")
        let info = try runTool("tensor", ["info"], stdin: r.stdout)
        XCTAssertTrue(info.stdout.count > 0 && String(decoding: info.stdout, as: UTF8.self).contains("model = all-MiniLM-L6-v2"))
    }

    func testTsvColumnPrefixAndEmit() throws {
        let model = try modelDirectory()
        let a = try runTool("emb-encode", ["--model", model, "--prefix", "query: ", "--emit", "last-layer-input", "--emit", "layer.5.ffn_in"],
                            stdin: Data("where is the cat\nx\n".utf8))
        XCTAssertEqual(a.status, 0, a.stderr)
        let b = try runTool("emb-encode", ["--model", model, "--tsv", "2"], stdin: Data("7\tquery: where is the cat\n8\tquery: x\n".utf8))
        XCTAssertEqual(b.status, 0, b.stderr)
        XCTAssertEqual(try csv(a.stdout, ["--tensor", "embedding"]), try csv(b.stdout, ["--tensor", "embedding"]))
        let info = String(decoding: try runTool("tensor", ["info"], stdin: a.stdout).stdout, as: UTF8.self)
        XCTAssertTrue(info.contains("last_layer_input  f32  [2, 1536]"), info)
        XCTAssertTrue(info.contains("layer = encoder.layer.5.output.dense"), info)
        XCTAssertTrue(info.contains("layer.5.ffn_in  f32  [2, 384]"), info)
        let c = try runTool("emb-encode", ["--model", model, "--tsv", "3"], stdin: Data("a\tb\n".utf8))
        XCTAssertEqual(c.status, 65)
        XCTAssertEqual(c.stderr, "emb-encode: line 1 of <stdin> has no column 3\n")
    }

    /// --emit layer.N.input: token-level hidden states in input order with 'lengths'. The last
    /// point (layer.6.input, the encoder's output), mean-pooled by the lengths and normalised, is the
    /// sentence-transformers embedding of the reference; layer.4.input run through the model's
    /// layers 4 and 5 gives the same. Small windows and batches, so that sorting by length reorders.
    /// The option takes one value: the file after it is the input, not a point.
    func testTokenLevelEmitInInputOrder() throws {
        let model = try modelDirectory()
        let lines = Array(try fixtureLines("embed_lines.txt").prefix(9))
        let file = tmp.appendingPathComponent("in.txt")
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: file)
        let r = try runTool("emb-encode", ["--model", model, "--batch-size", "2", "--window", "5", "--threads", "1",
                                           "--emit", "layer.6.input,layer.4.input", file.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let lengths = try csv(r.stdout, ["--tensor", "lengths"]).map { Int($0)! }
        let enc = try BertEncoder(directory: model)
        XCTAssertEqual(lengths, lines.map { enc.tokenize($0).ids.count })
        let top = try csv(r.stdout, ["--tensor", "layer.6.input"]).map { $0.split(separator: ",").map { Float($0)! } }
        let mid = try csv(r.stdout, ["--tensor", "layer.4.input"]).map { $0.split(separator: ",").map { Float($0)! } }
        XCTAssertEqual(top.count, lengths.reduce(0, +))
        XCTAssertEqual(mid.count, top.count)
        let (_, ref) = try readNpy("embed_reference.npy")
        var first = 0
        for (i, L) in lengths.enumerated() {
            var x = Matrix<Float>(rows: L, cols: 384, data: mid[first ..< first + L].flatMap { $0 })
            for l in 4..<6 { x = enc.layers[l].forward(x, sequences: [0 ..< L]) }
            for (name, rows) in [("layer.6.input", Array(top[first ..< first + L])), ("layers 4-5", (0..<L).map { Array(x.row($0)) })] {
                var mean = [Double](repeating: 0, count: 384)
                for row in rows { for j in 0..<384 { mean[j] += Double(row[j]) / Double(L) } }
                let norm = mean.map { $0 * $0 }.reduce(0, +).squareRoot()
                for j in 0..<384 { XCTAssertEqual(mean[j] / norm, Double(ref[i * 384 + j]), accuracy: 1e-4, "\(name), text \(i)") }
            }
            first += L
        }
        let info = String(decoding: try runTool("tensor", ["info"], stdin: r.stdout).stdout, as: UTF8.self)
        XCTAssertTrue(info.contains("layer.4.input  f32  [\(top.count), 384]"), info)
        XCTAssertTrue(info.contains("layer = encoder.layer.4"), info)
        // --max-length: texts cut at 6 tokens (the last one [SEP]), counted in the note.
        let cut = try runTool("emb-encode", ["--model", model, "--max-length", "6", "--emit", "layer.0.input", file.path])
        XCTAssertEqual(cut.status, 0, cut.stderr)
        XCTAssertEqual(try csv(cut.stdout, ["--tensor", "lengths"]).map { Int($0)! }, lengths.map { min($0, 6) })
        XCTAssertTrue(cut.stderr.contains("texts were longer than 6 tokens and were truncated"), cut.stderr)
        let bad = try runTool("emb-encode", ["--model", model, "--emit", "layer.7.input"], stdin: Data("x\n".utf8))
        XCTAssertEqual(bad.status, 64)
        XCTAssertEqual(bad.stdout.count, 0)
        XCTAssertTrue(bad.stderr.hasPrefix("emb-encode: --emit layer.7.input: the model has layers 0 to 5"), bad.stderr)
    }

    func testInvalidUTF8IsRefusedWithItsLineNumber() throws {
        let model = try modelDirectory()
        var bytes = Data("good line\n".utf8)
        bytes.append(contentsOf: [0x62, 0x61, 0x64, 0xFF, 0xFE, 0x0A])
        bytes.append(contentsOf: Data("after\n".utf8))
        let out = tmp.appendingPathComponent("o.tsr").path
        let r = try runTool("emb-encode", ["--model", model, "-o", out], stdin: bytes)
        XCTAssertEqual(r.status, 65)
        XCTAssertTrue(r.stderr.hasPrefix("emb-encode: line 2 of <stdin> is not valid UTF-8"), r.stderr)
        XCTAssertEqual(r.stderr.filter { $0 == "\n" }.count, 1)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        let ok = try runTool("emb-encode", ["--model", model, "--replace-invalid"], stdin: bytes)
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertEqual(try csv(ok.stdout, ["--tensor", "id"]), ["0", "1", "2"])
    }

    func testLinesReplaceIndices() throws {
        let docs = tmp.appendingPathComponent("docs.txt")
        try Data("zero\none, with comma\ntwo\tTAB\nthree\n".utf8).write(to: docs)
        // A stream with 'indices' (2×2) and 'scores'.
        let csvIn = tmp.appendingPathComponent("i.csv")
        try Data("3,0\n1,2\n".utf8).write(to: csvIn)
        let s = try runTool("tensor", ["from", "csv", "--name", "indices", csvIn.path])
        XCTAssertEqual(s.status, 0, s.stderr)
        let ints = try runTool("tensor", ["to", "csv"], stdin: s.stdout)
        // from csv gives floats: line numbers must be integers, so the float tensor is refused.
        let bad = try runTool("tensor", ["to", "tsv", "--lines", docs.path], stdin: s.stdout)
        XCTAssertEqual(bad.status, 65, bad.stderr)
        XCTAssertEqual(String(decoding: ints.stdout, as: UTF8.self), "3,0\n1,2\n")
        // Real indices come from emb-sim: build them with emb-encode's 'id' instead (i64).
        let model = try modelDirectory()
        let e = try runTool("emb-encode", ["--model", model, docs.path])
        XCTAssertEqual(e.status, 0, e.stderr)
        let t = try runTool("tensor", ["to", "tsv", "--lines", docs.path], stdin: e.stdout)
        XCTAssertEqual(t.status, 0, t.stderr)
        XCTAssertEqual(String(decoding: t.stdout, as: UTF8.self), "zero\none, with comma\ntwo TAB\nthree\n")
        let c = try runTool("tensor", ["to", "csv", "--lines", docs.path, "--tensor", "id"], stdin: e.stdout)
        XCTAssertEqual(String(decoding: c.stdout, as: UTF8.self), "zero\n\"one, with comma\"\ntwo\tTAB\nthree\n")
        let sim = try runTool("emb-sim", ["--corpus", "-", "--top-k", "1"], stdin: e.stdout)
        _ = sim
        let short = tmp.appendingPathComponent("short.txt")
        try Data("only\n".utf8).write(to: short)
        let oob = try runTool("tensor", ["to", "tsv", "--lines", short.path], stdin: e.stdout)
        XCTAssertEqual(oob.status, 65)
        XCTAssertTrue(oob.stderr.contains("refers to line 1"), oob.stderr)
    }
}

/// Bad model directories: one line, exit 65 or 66, nothing written.
final class EmbEncodeBadModelTests: XCTestCase {
    var tmp: URL!
    override func setUpWithError() throws { tmp = try temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: tmp) }

    let config = #"{"architectures": ["BertModel"], "model_type": "bert", "hidden_size": 4, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 8, "max_position_embeddings": 16, "type_vocab_size": 2, "vocab_size": 8, "hidden_act": "gelu", "layer_norm_eps": 1e-12}"#
    let vocab = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\nworld\n!\n"

    func dir(_ files: [String: Data]) throws -> String {
        let d = tmp.appendingPathComponent("m\(files.count)-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        for (k, v) in files { try v.write(to: d.appendingPathComponent(k)) }
        return d.path
    }

    /// A safetensors file of zeros with the given tensors (name → shape), F32.
    func safetensors(_ shapes: [(String, [Int])]) -> Data {
        var entries: [String] = []
        var off = 0
        for (n, s) in shapes {
            let bytes = s.reduce(4, *)
            entries.append("\"\(n)\": {\"dtype\": \"F32\", \"shape\": [\(s.map(String.init).joined(separator: ","))], \"data_offsets\": [\(off), \(off + bytes)]}")
            off += bytes
        }
        let header = Array("{\(entries.joined(separator: ", "))}".utf8)
        var d = Data()
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { d.append(contentsOf: $0) }
        d.append(contentsOf: header)
        d.append(Data(count: off))
        return d
    }

    /// Every tensor of a 1-layer, 4-wide BERT.
    func fullShapes(wordRows: Int = 8, queryShape: [Int] = [4, 4]) -> [(String, [Int])] {
        var s: [(String, [Int])] = [("embeddings.word_embeddings.weight", [wordRows, 4]), ("embeddings.position_embeddings.weight", [16, 4]),
                                    ("embeddings.token_type_embeddings.weight", [2, 4]), ("embeddings.LayerNorm.weight", [4]), ("embeddings.LayerNorm.bias", [4])]
        let p = "encoder.layer.0."
        for n in ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"] {
            s.append((p + n + ".weight", n.hasSuffix("query") ? queryShape : [4, 4])); s.append((p + n + ".bias", [4]))
        }
        s += [(p + "intermediate.dense.weight", [8, 4]), (p + "intermediate.dense.bias", [8]), (p + "output.dense.weight", [4, 8]),
              (p + "output.dense.bias", [4]), (p + "attention.output.LayerNorm.weight", [4]), (p + "attention.output.LayerNorm.bias", [4]),
              (p + "output.LayerNorm.weight", [4]), (p + "output.LayerNorm.bias", [4])]
        return s
    }

    func expectFailure(_ model: String, status: Int32, contains: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let out = tmp.appendingPathComponent("out.tsr").path
        let r = try runTool("emb-encode", ["--model", model, "-o", out], stdin: Data("hello world\n".utf8))
        XCTAssertEqual(r.status, status, r.stderr, file: file, line: line)
        XCTAssertTrue(r.stderr.hasPrefix("emb-encode: ") && r.stderr.contains(contains), r.stderr, file: file, line: line)
        XCTAssertEqual(r.stderr.filter { $0 == "\n" }.count, 1, r.stderr, file: file, line: line)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out), file: file, line: line)
        // Nothing on standard output either.
        let s = try runTool("emb-encode", ["--model", model], stdin: Data("hello world\n".utf8))
        XCTAssertEqual(s.stdout.count, 0, file: file, line: line)
    }

    func testTinyModelWorks() throws {
        // The control: the same files, complete and consistent, encode (all-zero weights give a zero-mean vector).
        let d = try dir(["config.json": Data(config.utf8), "vocab.txt": Data(vocab.utf8), "model.safetensors": safetensors(fullShapes())])
        let r = try runTool("emb-encode", ["--model", d], stdin: Data("hello world\n\n".utf8))
        XCTAssertEqual(r.status, 0, r.stderr)
        let info = String(decoding: try runTool("tensor", ["info"], stdin: r.stdout).stdout, as: UTF8.self)
        XCTAssertTrue(info.contains("embedding  f32  [2, 4]"), info)
    }

    func testMissingDirectory() throws {
        try expectFailure(tmp.appendingPathComponent("nope").path, status: 66, contains: "no model directory")
    }

    func testPartialDirectories() throws {
        try expectFailure(try dir(["vocab.txt": Data(vocab.utf8)]), status: 66, contains: "has no config.json")
        try expectFailure(try dir(["config.json": Data(config.utf8), "vocab.txt": Data(vocab.utf8)]), status: 66, contains: "has no model.safetensors")
        try expectFailure(try dir(["config.json": Data(config.utf8), "model.safetensors": safetensors(fullShapes())]), status: 66, contains: "no tokenizer.json or vocab.txt")
        var partial = fullShapes()
        partial.removeLast(3)
        try expectFailure(try dir(["config.json": Data(config.utf8), "vocab.txt": Data(vocab.utf8), "model.safetensors": safetensors(partial)]),
                          status: 65, contains: "LayerNorm.bias' (a partial or non-BERT checkpoint)")
        try expectFailure(try dir(["config.json": Data(config.utf8), "vocab.txt": Data(vocab.utf8), "model.safetensors": Data("garbage".utf8)]),
                          status: 65, contains: "model.safetensors")
    }

    func testShapesDisagreeingWithConfig() throws {
        try expectFailure(try dir(["config.json": Data(config.utf8), "vocab.txt": Data(vocab.utf8), "model.safetensors": safetensors(fullShapes(queryShape: [4, 8]))]),
                          status: 65, contains: "'encoder.layer.0.attention.self.query.weight' has shape [4, 8] but config.json implies [4, 4]")
        try expectFailure(try dir(["config.json": Data(config.utf8), "vocab.txt": Data(vocab.utf8), "model.safetensors": safetensors(fullShapes(wordRows: 9))]),
                          status: 65, contains: "word_embeddings.weight' has shape [9, 4]")
    }

    func testUnknownTokenizerType() throws {
        let tok = #"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}}"#
        try expectFailure(try dir(["config.json": Data(config.utf8), "tokenizer.json": Data(tok.utf8), "model.safetensors": safetensors(fullShapes())]),
                          status: 65, contains: "tokenizer type 'BPE' is not supported")
    }

    func testVocabularyWithoutSpecials() throws {
        try expectFailure(try dir(["config.json": Data(config.utf8), "vocab.txt": Data("[PAD]\n[CLS]\n[SEP]\nhello\n".utf8), "model.safetensors": safetensors(fullShapes())]),
                          status: 65, contains: "no [UNK] token")
        let tok = #"{"normalizer": {"type": "BertNormalizer", "lowercase": true}, "pre_tokenizer": {"type": "BertPreTokenizer"}, "model": {"type": "WordPiece", "unk_token": "[UNK]", "vocab": {"[UNK]": 0, "[SEP]": 1, "a": 2}}}"#
        try expectFailure(try dir(["config.json": Data(config.utf8), "tokenizer.json": Data(tok.utf8), "model.safetensors": safetensors(fullShapes())]),
                          status: 65, contains: "no [CLS] token")
    }

    func testNonBERTArchitecture() throws {
        let roberta = config.replacingOccurrences(of: "\"bert\"", with: "\"roberta\"").replacingOccurrences(of: "BertModel", with: "RobertaModel")
        try expectFailure(try dir(["config.json": Data(roberta.utf8), "vocab.txt": Data(vocab.utf8), "model.safetensors": safetensors(fullShapes())]),
                          status: 65, contains: "model type 'roberta' is not supported")
    }
}
