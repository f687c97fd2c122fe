import Foundation
import XCTest
@testable import TensorStream

/// The conformance corpus (tests/conformance, made by make_corpus.py independently of this
/// reader): every valid stream reads as its .json says, and every invalid/<rule>.*.tsr is
/// refused for exactly that rule, whichever way the bytes arrive and whichever path the
/// payloads take.
final class ConformanceTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../tests/conformance").standardized

    func files(_ kind: String) throws -> [URL] {
        let dir = Self.root.appendingPathComponent(kind)
        return try FileManager.default.contentsOfDirectory(at: dir, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "tsr" }.sorted { $0.path < $1.path }
    }

    /// The reader's three paths: whole frames decoded in one call (the default for frames below
    /// 8 MiB), every frame through the streaming decoder, and streaming with every shuffled
    /// payload unshuffled in place as it is decompressed.
    enum Path: CaseIterable { case wholeFrames, streaming, inPlace }

    /// Reads a stream with the given read step along one of the reader's paths.
    func read(_ bytes: [UInt8], step: Int, path: Path) throws -> [Tensor] {
        let reader = try TensorStreamReader(ArraySource(bytes, step: step))
        if path != .wholeFrames { reader.wholeFrameBelow = 0 }
        if path == .inPlace { reader.unshuffleInPlaceFrom = 0 }
        return try reader.readAll()
    }

    func testInvalidStreamsBreakTheirRule() throws {
        let invalid = try files("invalid")
        var covered = Set<StreamRule>()
        for url in invalid {
            let name = url.deletingPathExtension().lastPathComponent
            let ruleName = String(name.split(separator: ".")[0])
            guard let rule = StreamRule(rawValue: ruleName) else { XCTFail("\(name): no rule \(ruleName)"); continue }
            covered.insert(rule)
            let bytes = [UInt8](try Data(contentsOf: url))
            for step in [Int.max, 1, 7] {
                for path in Path.allCases {
                    XCTAssertThrowsError(try read(bytes, step: step, path: path), "\(name) accepted") { e in
                        XCTAssertEqual((e as? StreamError)?.rule, rule, "\(name) (step \(step), \(path)): \(e)")
                        XCTAssertEqual((e as? StreamError)?.kind, .badData)
                    }
                }
            }
        }
        // Every rule has a file, except the 2^20-tensor limit (tested below without a file).
        XCTAssertEqual(Set(StreamRule.allCases).subtracting(covered), [.segmentTensors])
    }

    func testValidStreamsReadAsExpected() throws {
        for url in try files("valid") {
            let name = url.lastPathComponent
            let json = try JSONSerialization.jsonObject(with: Data(contentsOf: url.deletingPathExtension().appendingPathExtension("json"))) as! [String: Any]
            let expect = json["tensors"] as! [[String: Any]]
            let bytes = [UInt8](try Data(contentsOf: url))
            for step in [Int.max, 1, 7] {
                for path in Path.allCases {
                    let got = try read(bytes, step: step, path: path)
                    XCTAssertEqual(got.map(\.name), expect.map { $0["name"] as! String }, name)
                    for (t, e) in zip(got, expect) {
                        XCTAssertEqual(t.dtype.name, e["dtype"] as? String, "\(name) \(t.name)")
                        XCTAssertEqual(t.shape, e["shape"] as? [Int], "\(name) \(t.name)")
                        XCTAssertEqual(t.info.meta, e["meta"] as? [String: String], "\(name) \(t.name)")
                        XCTAssertEqual(t.doubles(), (e["values"] as! [NSNumber]).map(\.doubleValue), "\(name) \(t.name)")
                    }
                }
            }
        }
    }

    /// The records reader (records without zstd, for the fuzzer) reads the corpus's valid
    /// streams as the stream reader does, and refuses records cut off or too long.
    func testUncompressedRecords() throws {
        let seeds = Self.root.appendingPathComponent("../../fuzz/corpus/records").standardized
        let basic = [UInt8](try Data(contentsOf: seeds.appendingPathComponent("valid-basic.rec")))
        let stream = [UInt8](try Data(contentsOf: Self.root.appendingPathComponent("valid/basic.tsr")))
        let fromRecords = try TensorStreamReader(uncompressedRecords: ArraySource(basic, step: 5)).readAll()
        XCTAssertEqual(fromRecords.map(\.data), try TensorStreamReader(ArraySource(stream)).readAll().map(\.data))
        for cut in 0..<basic.count {
            XCTAssertThrowsError(try TensorStreamReader(uncompressedRecords: ArraySource(Array(basic.prefix(cut)))).readAll()) {
                XCTAssertEqual(($0 as? StreamError)?.rule, cut == 0 ? .empty : .cutOff, "cut at \(cut): \($0)")
            }
        }
        var huge = ByteWriter()
        huge.u32(Format.tagStart); huge.u32(UInt32(Format.maxRecordBody + 1))
        XCTAssertThrowsError(try TensorStreamReader(uncompressedRecords: ArraySource(huge.bytes + [0])).readAll()) {
            XCTAssertEqual(($0 as? StreamError)?.rule, .recordSize, "\($0)")
        }
    }

    func testSegmentTensorLimit() throws {
        // One tensor more than the limit in one segment: the last HEAD is refused. (The limit
        // is lowered from 2^20 to keep the test short; the check is the same.)
        // Frames of stored (uncompressed) blocks, made by hand: compressing a million records
        // would take longer than reading them.
        func stored(_ tag: UInt32, _ body: [UInt8]) -> [UInt8] {
            var r = ByteWriter(); r.u32(tag); r.u32(UInt32(body.count)); r.bytes += body
            // Frame header: magic, descriptor (single segment, 1-byte content size), then one
            // raw block (last, raw, size << 3 | 1).
            let size = r.bytes.count
            return [0x28, 0xB5, 0x2F, 0xFD, 0x20, UInt8(size)] + [UInt8((size << 3 | 1) & 0xFF), UInt8(size >> 5), 0] + r.bytes
        }
        var s = stored(Format.tagStart, [])
        for id in 0...1000 {
            var w = ByteWriter()
            w.u32(UInt32(id)); w.u8(DType.u8.rawValue); w.u8(1); w.u8(1); w.u8(0); w.u64(0)
            let name = Array("t\(id)".utf8)
            w.u16(UInt16(name.count)); w.bytes += name; w.u32(0)
            s += stored(Format.tagHead, w.bytes)
        }
        let ok = try TensorStreamReader(ArraySource(s + stored(Format.tagEnd, [0, 0, 0, 0])))
        XCTAssertThrowsError(try ok.readAll()) { XCTAssertEqual(($0 as? StreamError)?.rule, .endsCount, "\($0)") }
        let reader = try TensorStreamReader(ArraySource(s))
        reader.maxSegmentTensors = 1000
        XCTAssertThrowsError(try reader.readAll()) {
            XCTAssertEqual(($0 as? StreamError)?.rule, .segmentTensors, "\($0)")
        }
    }
    /// Every valid stream copied record by record, still compressed where the reader offers its
    /// frame (as tensor cat does), reads as the original; frames without a content size are not
    /// offered (no-content-size.tsr), and the others are.
    func testValidStreamsCopiedRecordByRecordReadTheSame() throws {
        var copiedAny = false
        for url in try files("valid") {
            let bytes = [UInt8](try Data(contentsOf: url))
            let name = url.deletingPathExtension().lastPathComponent
            let reader = try TensorStreamReader(ArraySource(bytes, step: 13))
            let sink = ArraySink()
            let copied = try TensorStreamWriter(sink: sink).copyAll(from: reader).copied
            let a = try decode(bytes), b = try decode(sink.bytes)
            XCTAssertEqual(b.map(\.name), a.map(\.name), name)
            XCTAssertEqual(b.map(\.data), a.map(\.data), name)
            if name == "no-content-size" { XCTAssertEqual(copied, 0, name) }
            copiedAny = copiedAny || copied > 0
        }
        XCTAssertTrue(copiedAny)
    }
}
