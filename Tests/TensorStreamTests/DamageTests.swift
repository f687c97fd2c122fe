import XCTest
@testable import TensorStream

/// Streams that were cut off, damaged or forged must be refused, never read as shorter or
/// different data, and never make the reader allocate what a header declares.
final class DamageTests: XCTestCase {
    func small() throws -> [UInt8] {
        try encode([Tensor(name: "embedding", shape: [6, 4], floats: (0..<24).map { Float($0) * 0.5 }, meta: ["m": "x"]),
                    Tensor(name: "labels", shape: [6], int64s: [0, 1, 2, 0, 1, 2]),
                    Tensor(name: "c", shape: [], doubles: [0.25])],
                   options: WriterOptions(chunkBytes: 32))
    }

    func testTruncationAtEveryOffsetIsRefused() throws {
        let full = try small()
        XCTAssertNoThrow(try decode(full))
        for cut in 0..<full.count {
            XCTAssertThrowsError(try decode(Array(full.prefix(cut))), "prefix of \(cut) bytes was accepted") { e in
                guard let se = e as? StreamError else { return XCTFail("\(e)") }
                XCTAssertEqual(se.rule, cut == 0 ? .empty : .cutOff, "\(cut): \(se)")
            }
        }
    }

    /// Every single-byte change is refused, or (where zstd ignores the bit, such as padding of
    /// an entropy-coded bitstream) decodes to exactly the original tensors: the content checksum
    /// guarantees that no changed content gets through.
    func testEveryFlippedByteIsRefusedOrHarmless() throws {
        let full = try small()
        let original = try decode(full)
        var refused = 0, harmless = 0
        for i in 0..<full.count {
            for mask: UInt8 in [0x01, 0x80, 0xFF] {
                var b = full
                b[i] ^= mask
                if let back = try? decode(b) {
                    XCTAssertEqual(back.map(\.data), original.map(\.data), "byte \(i) mask \(mask) changed the content")
                    XCTAssertEqual(back.map(\.info), original.map(\.info), "byte \(i) mask \(mask) changed a header")
                    harmless += 1
                } else {
                    refused += 1
                }
            }
        }
        // Nearly all changes are refused outright.
        XCTAssertGreaterThan(refused, 50 * harmless)
    }

    func testOtherFormatsAreNamed() throws {
        let npy: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0, 0, 0]
        XCTAssertThrowsError(try decode(npy)) { XCTAssertTrue("\($0)".contains("tensor from npy"), "\($0)") }
        XCTAssertThrowsError(try decode(Array("1.0,2.0\n3.0,4.0\n".utf8))) { XCTAssertTrue("\($0)".contains("csv"), "\($0)") }
        XCTAssertThrowsError(try decode(Array("PK\u{3}\u{4}xxxxxxxxx".utf8))) { XCTAssertTrue("\($0)".contains("npz"), "\($0)") }
        XCTAssertThrowsError(try decode([])) { e in
            XCTAssertEqual((e as? StreamError)?.rule, .empty, "\(e)")
        }
    }

    /// A HEAD body by hand: id, dtype, rank, flags, shape, name, no metadata.
    func head(id: UInt32 = 0, dtype: UInt8 = DType.f32.rawValue, shape: [UInt64], declared: Bool = true,
              name: String = "x") -> [UInt8] {
        var w = ByteWriter()
        w.u32(id); w.u8(dtype); w.u8(UInt8(shape.count)); w.u8(declared ? 1 : 0); w.u8(0)
        for (i, d) in shape.enumerated() { w.u64(i == 0 && !declared ? 0 : d) }  // undeclared rows are 0
        w.u16(UInt16(name.utf8.count)); w.raw(name); w.u32(0)
        return w.bytes
    }

    func data(id: UInt32 = 0, rows: UInt64, payload: [UInt8]) -> [UInt8] {
        var w = ByteWriter()
        w.u32(id); w.u8(0); w.u8(0); w.u8(0); w.u8(0); w.u64(rows)
        return w.bytes + payload
    }

    func end(_ rows: [UInt64]) -> [UInt8] {
        var w = ByteWriter()
        w.u32(UInt32(rows.count))
        for r in rows { w.u64(r) }
        return w.bytes
    }

    func stream(_ records: [(UInt32, [UInt8])]) -> [UInt8] {
        records.flatMap { encodeRecord(tag: $0.0, body: $0.1) }
    }

    func testHandWrittenStreamIsAccepted() throws {
        // The forging helpers themselves produce a valid stream (so the refusals below are meaningful).
        let s = stream([(Format.tagStart, []), (Format.tagHead, head(shape: [2, 2])),
                        (Format.tagData, data(rows: 2, payload: [UInt8](repeating: 0, count: 16))),
                        (Format.tagEnd, end([2]))])
        XCTAssertEqual(try decode(s)[0].shape, [2, 2])
    }

    func testForgedHugeShapeDoesNotAllocate() throws {
        // 10^12 rows of 10^5 floats declared: 400 PB. The reader must refuse it when the rows do
        // not come, without trying to make room for them.
        let s = stream([(Format.tagStart, []), (Format.tagHead, head(shape: [1_000_000_000_000, 100_000])),
                        (Format.tagData, data(rows: 1, payload: [UInt8](repeating: 0, count: 400_000))),
                        (Format.tagEnd, end([1]))])
        XCTAssertThrowsError(try decode(s)) { XCTAssertTrue("\($0)".contains("declares"), "\($0)") }
        // A row larger than a record can be is refused at the header.
        let t = stream([(Format.tagStart, []), (Format.tagHead, head(shape: [1, 1 << 20, 1 << 20])), (Format.tagEnd, end([0]))])
        XCTAssertThrowsError(try decode(t)) { XCTAssertTrue("\($0)".contains("rows of more than"), "\($0)") }
        // Overflowing products of dimensions are refused.
        let u = stream([(Format.tagStart, []), (Format.tagHead, head(shape: [1, UInt64(Int64.max >> 2), 1 << 40]))])
        XCTAssertThrowsError(try decode(u))
    }

    func testForgedRecordsAreRefused() throws {
        let ok16 = [UInt8](repeating: 0, count: 16)
        // Each an otherwise valid stream (ending with a proper ENDS), breaking one rule.
        let cases: [(StreamRule, [(UInt32, [UInt8])])] = [
            (.noStart, [(Format.tagHead, head(shape: [2, 2])), (Format.tagEnd, end([0]))]),
            (.headDtype, [(Format.tagStart, []), (Format.tagHead, head(dtype: 99, shape: [1])), (Format.tagEnd, end([0]))]),
            (.headRank, [(Format.tagStart, []), (Format.tagHead, head(shape: Array(repeating: 1, count: 9))), (Format.tagEnd, end([0]))]),
            (.headId, [(Format.tagStart, []), (Format.tagHead, head(id: 1, shape: [0])), (Format.tagEnd, end([0]))]),
            (.headName, [(Format.tagStart, []), (Format.tagHead, head(shape: [0], name: "")), (Format.tagEnd, end([0]))]),
            (.headDuplicate, [(Format.tagStart, []), (Format.tagHead, head(shape: [0])), (Format.tagHead, head(id: 1, shape: [0])),
                              (Format.tagEnd, end([0, 0]))]),
            (.dataId, [(Format.tagStart, []), (Format.tagData, data(rows: 2, payload: ok16)), (Format.tagEnd, end([]))]),
            (.dataLength, [(Format.tagStart, []), (Format.tagHead, head(shape: [2, 2])),
                           (Format.tagData, data(rows: 3, payload: ok16)), (Format.tagEnd, end([3]))]),
            (.dataRows, [(Format.tagStart, []), (Format.tagHead, head(shape: [1, 2])),
                         (Format.tagData, data(rows: 2, payload: ok16)), (Format.tagEnd, end([2]))]),
            (.endsRows, [(Format.tagStart, []), (Format.tagHead, head(shape: [2, 2], declared: false)),
                         (Format.tagData, data(rows: 2, payload: ok16)), (Format.tagEnd, end([5]))]),
            (.endsCount, [(Format.tagStart, []), (Format.tagHead, head(shape: [0])), (Format.tagEnd, end([]))]),
            (.startInSegment, [(Format.tagStart, []), (Format.tagStart, []), (Format.tagEnd, end([]))]),
            (.unknownTag, [(Format.tagStart, []), (Format.tag("WHAT"), []), (Format.tagEnd, end([]))]),
            (.cutOff, [(Format.tagStart, []), (Format.tagHead, head(shape: [0]))]),
            (.scalarRows, [(Format.tagStart, []), (Format.tagHead, head(shape: [])),
                           (Format.tagData, data(rows: 1, payload: [0, 0, 0, 0])),
                           (Format.tagData, data(rows: 1, payload: [0, 0, 0, 0])), (Format.tagEnd, end([2]))]),
        ]
        for (rule, records) in cases {
            XCTAssertThrowsError(try decode(stream(records)), rule.rawValue) {
                XCTAssertEqual(($0 as? StreamError)?.rule, rule, "\($0)")
            }
        }
        // Two records in one frame, and a frame holding less than a record prefix.
        var w = ByteWriter()
        w.u32(Format.tagStart); w.u32(0)
        let start = w.bytes
        var e = ByteWriter()
        e.u32(Format.tagEnd); e.u32(4); e.u32(0)
        XCTAssertNoThrow(try decode(encodeFrame(start) + encodeFrame(e.bytes)))
        XCTAssertThrowsError(try decode(encodeFrame(start + e.bytes))) { XCTAssertEqual(($0 as? StreamError)?.rule, .frameRecord) }
        XCTAssertThrowsError(try decode(encodeFrame(Array(start.prefix(5))) + encodeFrame(e.bytes))) {
            XCTAssertEqual(($0 as? StreamError)?.rule, .frameRecord)
        }
    }

    func testProducerThatStopsWithoutFinishingIsRefused() throws {
        let sink = ArraySink()
        let w = try TensorStreamWriter(sink: sink)
        let id = try w.add(TensorInfo(name: "x", dtype: .f32, rowShape: [2]))
        try w.write(id, rows: 2, values: [Float](repeating: 1, count: 4))
        // No finish(): the producer died.
        XCTAssertThrowsError(try decode(sink.bytes)) { e in
            XCTAssertEqual((e as? StreamError)?.rule, .cutOff, "\(e)")
        }
    }

    func testWriterRefusesMisuse() throws {
        let w = try TensorStreamWriter(sink: ArraySink())
        let id = try w.add(TensorInfo(name: "x", dtype: .f32, rowShape: [2], rows: 3))
        XCTAssertThrowsError(try w.add(TensorInfo(name: "x", dtype: .f32, rowShape: [2])))
        XCTAssertThrowsError(try w.write(id, rows: 1, values: [Float(1)]))           // wrong byte count
        try w.write(id, rows: 2, values: [Float](repeating: 0, count: 4))
        XCTAssertThrowsError(try w.finish())                                        // declared 3, wrote 2
    }
}
