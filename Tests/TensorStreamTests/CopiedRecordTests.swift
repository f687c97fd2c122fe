import XCTest
@testable import TensorStream
import CZstd

/// DATA records copied from one stream to another still compressed
/// (`TensorStreamReader.lastCompressedData`, `TensorStreamWriter.write(_:copying:)`).
final class CopiedRecordTests: XCTestCase {
    /// 700 rows of 97 floats in records of ~4 KiB (10 rows), with a tensor of bytes between them.
    private func source() throws -> (bytes: [UInt8], x: Tensor) {
        let x = Tensor(name: "x", shape: [700, 97], floats: (0..<700 * 97).map { Float(sin(Double($0) * 0.37)) })
        let sink = ArraySink()
        let w = try TensorStreamWriter(sink: sink, options: WriterOptions(chunkBytes: 4096))
        let id = try w.add(TensorInfo(name: "x", dtype: .f32, rowShape: [97]))
        let other = try w.add(TensorInfo(name: "label", dtype: .u8, rowShape: []))
        for s in stride(from: 0, to: 700, by: 50) {
            let part = x.rows(s ..< s + 50)
            try part.data.withUnsafeBytes { try w.write(id, rows: 50, bytes: $0) }
            try w.write(other, rows: 50, values: [UInt8](repeating: UInt8(s / 50), count: 50))
        }
        try w.finish()
        return (sink.bytes, x)
    }

    /// Every record of `x` copied into another stream's tensor 0, beside a tensor written the
    /// usual way: it reads back as the same rows, and holds the same frames byte for byte; on
    /// the caller's thread, one background thread or three (copies keep their place among the
    /// records compressed by whichever thread is free: the same bytes every way).
    func testACopiedRecordReadsAsItsRowsAndIsTheSameFrame() throws {
        let (bytes, x) = try source()
        var first: [UInt8]? = nil
        for (background, compressors) in [(false, 1), (true, 1), (true, 3)] {
            let reader = try TensorStreamReader(ArraySource(bytes, step: 1000))
            let sink = ArraySink()
            let w = try TensorStreamWriter(sink: sink, options: WriterOptions(chunkBytes: 1024, background: background, compressors: compressors))
            let copy = try w.add(TensorInfo(name: "copy", dtype: .f32, rowShape: [97]))
            let twice = try w.add(TensorInfo(name: "twice", dtype: .f32, rowShape: [97]))
            var frames: [[UInt8]] = []
            while let event = try reader.next() {
                guard case .data(let i, let rows, let payload) = event, reader.tensors[i].name == "x" else { continue }
                let c = try XCTUnwrap(reader.lastCompressedData)
                XCTAssertEqual(c.id, 0)
                XCTAssertEqual(c.rows, rows)
                XCTAssertEqual(c.tensor.name, "x")
                frames.append(Array(c.frame))
                try w.write(copy, copying: c)
                let doubled = Array(payload.bindMemory(to: Float.self)).map { 2 * $0 }
                try w.write(twice, rows: rows, values: doubled)
            }
            try w.finish()
            XCTAssertGreaterThan(frames.count, 50)
            let out = try decode(sink.bytes)
            XCTAssertEqual(out[0].shape, [700, 97])
            XCTAssertEqual(out[0].data, x.data, "background \(background), compressors \(compressors)")
            if let first { XCTAssertEqual(sink.bytes, first, "compressors \(compressors)") }
            first = first ?? sink.bytes
            XCTAssertEqual(out[1].floats(), x.floats().map { 2 * $0 })
            // The output holds each frame as it came.
            var at = 0
            for f in frames {
                guard let r = find(f, in: sink.bytes, from: at) else { return XCTFail("a frame was not copied as it is") }
                at = r + f.count
            }
        }
    }

    /// A tensor that is not the same id, dtype or row shape does not take a copied record, and
    /// the writer refuses it with a message (nothing is written).
    func testTheWriterRefusesARecordOfAnotherIdOrShape() throws {
        let (bytes, _) = try source()
        let reader = try TensorStreamReader(ArraySource(bytes))
        var record: CompressedData?
        while record == nil, let event = try reader.next() {
            if case .data = event { record = reader.lastCompressedData }
        }
        let c = try XCTUnwrap(record)
        let sink = ArraySink()
        let w = try TensorStreamWriter(sink: sink)
        let wide = try w.add(TensorInfo(name: "wide", dtype: .f32, rowShape: [98]))
        let same = try w.add(TensorInfo(name: "same", dtype: .f32, rowShape: [97]))
        XCTAssertThrowsError(try w.write(wide, copying: c)) { XCTAssertTrue("\($0)".contains("cannot take a record"), "\($0)") }
        XCTAssertThrowsError(try w.write(same, copying: c)) { XCTAssertTrue("\($0)".contains("tensor id 0"), "\($0)") }
        let declared = try TensorStreamWriter(sink: ArraySink())
        let few = try declared.add(TensorInfo(name: "few", dtype: .f32, rowShape: [97], rows: 3))
        XCTAssertThrowsError(try declared.write(few, copying: c)) { XCTAssertTrue("\($0)".contains("declared 3 rows"), "\($0)") }
    }

    /// `write(_:rows:bytes:orCopying:)`, the rule every program applies: the record is copied
    /// when it can go to the tensor as it is, else the bytes are compressed; the rows read the same.
    func testWriteOrCopyCopiesOnlyWhereTheRecordFits() throws {
        let (bytes, x) = try source()
        let reader = try TensorStreamReader(ArraySource(bytes))
        let sink = ArraySink()
        let w = try TensorStreamWriter(sink: sink)
        let same = try w.add(TensorInfo(name: "same", dtype: .f32, rowShape: [97]))      // id 0, as x
        let other = try w.add(TensorInfo(name: "other", dtype: .f32, rowShape: [97]))    // id 1
        var copied: [Bool] = [], n = 0
        while let event = try reader.next() {
            guard case .data(let i, let rows, let payload) = event, reader.tensors[i].name == "x" else { continue }
            let c = reader.lastCompressedData
            copied.append(try w.write(same, rows: rows, bytes: payload, orCopying: n % 3 == 2 ? nil : c))
            copied.append(try w.write(other, rows: rows, bytes: payload, orCopying: c))
            n += 1
        }
        try w.finish()
        XCTAssertEqual(copied.count, 2 * n)
        for k in 0 ..< n {
            XCTAssertEqual(copied[2 * k], k % 3 != 2, "record \(k) of 'same'")
            XCTAssertFalse(copied[2 * k + 1], "record \(k) of 'other' (id 1) copied")
        }
        let out = try decode(sink.bytes)
        XCTAssertEqual(out[0].data, x.data)
        XCTAssertEqual(out[1].data, x.data)
    }

    /// Only frames that a writer may write are offered: a frame without the checksum flag (the
    /// same record), and a record decoded as it streams (larger than the whole-frame path takes),
    /// are not.
    func testFramesWithoutAChecksumOrTooLargeToHoldAreNotOffered() throws {
        let x = Tensor(name: "x", shape: [4, 3], floats: (0..<12).map { Float($0) })
        var bytes = try encode([x])
        // The frames: START, HEAD, DATA, ENDS; strip the DATA frame's checksum.
        var frames: [[UInt8]] = []
        var at = 0
        while at < bytes.count {
            let n = bytes[at...].withUnsafeBytes { ZSTD_findFrameCompressedSize($0.baseAddress, $0.count) }
            frames.append(Array(bytes[at ..< at + n])); at += n
        }
        XCTAssertEqual(frames.count, 4)
        XCTAssertNotEqual(frames[2][4] & 4, 0, "the writer sets the checksum flag")
        frames[2][4] &= ~4
        frames[2].removeLast(4)
        bytes = frames.flatMap { $0 }
        let reader = try TensorStreamReader(ArraySource(bytes))
        var offered: [Bool] = []
        while let event = try reader.next() { if case .data = event { offered.append(reader.lastCompressedData != nil) } }
        XCTAssertEqual(offered, [false])
        XCTAssertEqual(try decode(bytes)[0].data, x.data, "the frame is valid")

        let small = try TensorStreamReader(ArraySource(try encode([x])))
        small.wholeFrameBelow = 0     // every frame decoded as it streams
        offered = []
        while let event = try small.next() { if case .data = event { offered.append(small.lastCompressedData != nil) } }
        XCTAssertEqual(offered, [false])
    }

    private func find(_ needle: [UInt8], in haystack: [UInt8], from: Int) -> Int? {
        guard !needle.isEmpty, haystack.count >= needle.count else { return nil }
        var i = from
        while i + needle.count <= haystack.count {
            if haystack[i] == needle[0] && Array(haystack[i ..< i + needle.count]) == needle { return i }
            i += 1
        }
        return nil
    }
}
