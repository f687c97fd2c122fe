import XCTest
@testable import TensorStream

func encode(_ tensors: [Tensor], options: WriterOptions = WriterOptions()) throws -> [UInt8] {
    let sink = ArraySink()
    let w = try TensorStreamWriter(sink: sink, options: options)
    for t in tensors { try w.write(t) }
    try w.finish()
    return sink.bytes
}

func decode(_ bytes: [UInt8], step: Int = .max) throws -> [Tensor] {
    try TensorStreamReader(ArraySource(bytes, step: step)).readAll()
}

/// Deterministic bytes for a tensor of any dtype (a simple LCG: no randomness across runs).
func sampleBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var x = seed &* 6364136223846793005 &+ 1442695040888963407
    return (0..<count).map { _ in
        x = x &* 6364136223846793005 &+ 1442695040888963407
        return UInt8(truncatingIfNeeded: x >> 33)
    }
}

final class RoundTripTests: XCTestCase {
    func testEveryDtypeAndShapeRoundTrips() throws {
        let shapes: [[Int]] = [[], [0], [1], [7], [0, 5], [3, 0], [5, 3], [2, 3, 4], [1, 1, 1, 2, 1, 3]]
        for dtype in DType.allCases {
            for shape in shapes {
                for shuffle in [true, false] {
                    let n = shape.reduce(1, *) * dtype.size
                    let t = Tensor(name: "t_\(dtype.name)", dtype: dtype, shape: shape,
                                   data: sampleBytes(n, seed: UInt64(n + Int(dtype.rawValue))), meta: ["k": "v", "ü": "ß"])
                    let bytes = try encode([t], options: WriterOptions(shuffle: shuffle))
                    for step in [Int.max, 3] {
                        let back = try decode(bytes, step: step)
                        XCTAssertEqual(back.count, 1)
                        XCTAssertEqual(back[0].shape, shape, "\(dtype) \(shape)")
                        XCTAssertEqual(back[0].dtype, dtype)
                        XCTAssertEqual(back[0].data, t.data, "\(dtype) \(shape) shuffle \(shuffle)")
                        XCTAssertEqual(back[0].meta, t.meta)
                        XCTAssertEqual(back[0].info.isScalar, shape.isEmpty)
                    }
                }
            }
        }
    }

    func testLargeTensorSpansManyChunks() throws {
        // 3 M floats = 12 MB: several DATA records at the default 1 MiB, more at 64 KiB.
        let values = (0..<3_000_000).map { Float(sin(Double($0) * 0.001)) }
        let t = Tensor(name: "big", shape: [10_000, 300], floats: values)
        for chunk in [Format.defaultChunkBytes, 1 << 16] {
            let bytes = try encode([t], options: WriterOptions(chunkBytes: chunk))
            let reader = try TensorStreamReader(ArraySource(bytes, step: 100_000))
            var chunks = 0
            var got: [UInt8] = []
            while let e = try reader.next() {
                if case .data(_, _, let b) = e { chunks += 1; got.append(contentsOf: b) }
            }
            let rowsPerChunk = chunk / 1200
            XCTAssertEqual(chunks, (10_000 + rowsPerChunk - 1) / rowsPerChunk)
            XCTAssertEqual(got, t.data)
        }
    }

    func testShuffleIsItsOwnInverseForEverySize() {
        for size in [1, 2, 4, 8, 3] {
            for n in [0, 1, 15, 16, 17, 1000] {
                let src = sampleBytes(n * size, seed: UInt64(size * 1000 + n))
                var mid = [UInt8](repeating: 0, count: src.count)
                var back = [UInt8](repeating: 0, count: src.count)
                src.withUnsafeBytes { s in mid.withUnsafeMutableBytes { byteShuffle(s, into: $0, size: size) } }
                // Plane b holds byte b of every element.
                for i in 0..<n { for b in 0..<size { XCTAssertEqual(mid[b * n + i], src[i * size + b]) } }
                mid.withUnsafeBytes { s in back.withUnsafeMutableBytes { byteUnshuffle(s, into: $0, size: size) } }
                XCTAssertEqual(back, src, "size \(size) n \(n)")
            }
        }
    }

    /// The specialised unshuffle loops (2, 4, 8 bytes) against the plain byte-by-byte one, on
    /// odd element counts and buffers that start at every alignment.
    func testUnshuffleMatchesTheGenericLoop() {
        for size in [2, 4, 8, 3, 16] {
            for n in [1, 7, 15, 16, 17, 31, 33, 127, 129, 4099] {
                for offset in 0..<3 {
                    let src = sampleBytes(n * size + offset, seed: UInt64(size * 7919 + n * 31 + offset))
                    var fast = [UInt8](repeating: 0, count: n * size + offset)
                    var slow = fast
                    src.withUnsafeBytes { s in
                        let planes = UnsafeRawBufferPointer(rebasing: s[offset...])
                        fast.withUnsafeMutableBytes { byteUnshuffle(planes, into: UnsafeMutableRawBufferPointer(rebasing: $0[offset...]), size: size) }
                        slow.withUnsafeMutableBytes { byteUnshuffleGeneric(planes, into: UnsafeMutableRawBufferPointer(rebasing: $0[offset...]), size: size) }
                    }
                    XCTAssertEqual(fast, slow, "size \(size) n \(n) offset \(offset)")
                }
            }
        }
    }

    /// Many records of every multi-byte dtype read the same along the reader's paths
    /// (whole frames in one call, the streaming decoder, unshuffled in place), shuffled or not,
    /// whether the bytes arrive at once or in pieces of a pipe's size.
    func testReaderPathsAgreeOnLargeRecords() throws {
        for shuffle in [true, false] {
            let sink = ArraySink()
            let w = try TensorStreamWriter(sink: sink, options: WriterOptions(shuffle: shuffle, chunkBytes: 40_000))
            var expected: [String: [UInt8]] = [:]
            for (name, dtype, width) in [("h", DType.f16, 5), ("f", DType.f32, 384), ("d", DType.f64, 3), ("i", DType.i32, 9)] {
                let rows = 200_000 / (width * dtype.size) + 3     // records of several sizes, the last a part
                let bytes = sampleBytes(rows * width * dtype.size, seed: UInt64(width))
                let id = try w.add(TensorInfo(name: name, dtype: dtype, rowShape: [width]))
                try bytes.withUnsafeBytes { try w.write(id, rows: rows, bytes: $0) }
                expected[name] = bytes
            }
            try w.finish()
            for step in [Int.max, 4096, 777] {
                for (whole, inPlace) in [(8 << 20, 8 << 20), (20_000, 8 << 20), (0, 8 << 20), (0, 0)] {
                    let reader = try TensorStreamReader(ArraySource(sink.bytes, step: step))
                    reader.wholeFrameBelow = whole
                    reader.unshuffleInPlaceFrom = inPlace
                    for t in try reader.readAll() {
                        XCTAssertEqual(t.data, expected[t.name], "\(t.name) shuffle \(shuffle) step \(step) whole \(whole) in place \(inPlace)")
                    }
                }
            }
        }
    }

    func testInterleavedTensorsAndRowBlocks() throws {
        let sink = ArraySink()
        let w = try TensorStreamWriter(sink: sink)
        let a = try w.add(TensorInfo(name: "mean", dtype: .f32, rowShape: [2]))
        let b = try w.add(TensorInfo(name: "var", dtype: .f64, rowShape: [2]))
        let s = try w.add(TensorInfo(name: "scale", dtype: .f64, shape: []))
        try w.write(s, rows: 1, values: [0.5])
        for block in 0..<5 {
            let rows = block + 1
            try w.write(a, rows: rows, values: (0..<rows * 2).map { Float(block * 100 + $0) })
            try w.write(b, rows: rows, values: (0..<rows * 2).map { Double(block * 100 + $0) })
        }
        try w.finish()
        let blocks = RowBlockReader(try TensorStreamReader(ArraySource(sink.bytes)), names: ["var", "mean"], blockRows: 4)
        var total = 0
        while let blk = try blocks.next() {
            XCTAssertEqual(blk[0].name, "var")
            XCTAssertEqual(blk[0].rows, blk[1].rows)
            XCTAssertEqual(blk[0].doubles(), blk[1].floats().map(Double.init))
            XCTAssertLessThanOrEqual(blk[0].rows, 4)
            total += blk[0].rows
        }
        XCTAssertEqual(total, 15)
    }

    func testRowBlocksRefuseMismatchedRowsAndMissingTensors() throws {
        let m = Tensor(name: "mean", shape: [3, 2], floats: Array(repeating: 1, count: 6))
        let v = Tensor(name: "var", shape: [2, 2], floats: Array(repeating: 1, count: 4))
        let blocks = RowBlockReader(try TensorStreamReader(ArraySource(try encode([m, v]))), names: ["mean", "var"], blockRows: 10)
        XCTAssertThrowsError(try { while try blocks.next() != nil {} }()) { e in
            XCTAssertTrue("\(e)".contains("different row counts"), "\(e)")
        }
        let missing = RowBlockReader(try TensorStreamReader(ArraySource(try encode([m]))), names: ["mean", "var"], blockRows: 10)
        XCTAssertThrowsError(try missing.next()) { e in
            XCTAssertTrue("\(e)".contains("no tensor 'var'") && "\(e)".contains("mean"), "\(e)")
        }
    }

    func testHalfConversionsAreExactAndRoundToNearestEven() {
        // Every finite half converts to float and back unchanged.
        for bits in 0...UInt16.max {
            let f = halfToFloat(bits)
            if f.isNaN { XCTAssertTrue(halfToFloat(floatToHalf(f)).isNaN); continue }
            XCTAssertEqual(floatToHalf(f), bits, "half bits \(bits)")
        }
        XCTAssertEqual(halfToFloat(0x3C00), 1)
        XCTAssertEqual(halfToFloat(0x0001), 5.960464477539063e-08)  // smallest subnormal
        XCTAssertEqual(floatToHalf(65520), 0x7C00)                    // rounds up to infinity
        XCTAssertEqual(floatToHalf(1 + 1.0 / 2048), 0x3C00)           // tie -> even
        XCTAssertEqual(floatToHalf(1 + 3.0 / 2048), 0x3C02)           // tie -> even (up)
        XCTAssertEqual(bfloat16ToFloat(floatToBFloat16(1.00390625)), 1.0)  // tie -> even
        XCTAssertEqual(floatToBFloat16(-2.5), 0xC020)
    }

    func testConcatenatedStreamsReadAsOne() throws {
        let a = try encode([Tensor(name: "x", shape: [2, 3], floats: Array(repeating: 1, count: 6)),
                            Tensor(name: "y", shape: [2], int64s: [1, 2])])
        let b = try encode([Tensor(name: "x", shape: [1, 3], floats: [7, 8, 9]),
                            Tensor(name: "z", shape: [], doubles: [4])])
        let all = try decode(a + b)
        XCTAssertEqual(all.map(\.name), ["x", "y", "z"])
        XCTAssertEqual(all[0].shape, [3, 3])
        XCTAssertEqual(all[0].floats(), [1, 1, 1, 1, 1, 1, 7, 8, 9])
        XCTAssertEqual(try all[1].int64s(), [1, 2])
        XCTAssertEqual(all[2].doubles(), [4])
        // The same name with another row shape or dtype is refused.
        let c = try encode([Tensor(name: "x", shape: [1, 4], floats: [1, 2, 3, 4])])
        XCTAssertThrowsError(try decode(a + c)) { XCTAssertTrue("\($0)".contains("must agree"), "\($0)") }
        let d = try encode([Tensor(name: "x", shape: [1, 3], doubles: [1, 2, 3])])
        XCTAssertThrowsError(try decode(a + d))
    }

    func testSameInputEncodesToTheSameBytes() throws {
        let t = Tensor(name: "e", shape: [50, 8], floats: (0..<400).map { Float($0) / 7 }, meta: ["b": "2", "a": "1", "c": "3"])
        XCTAssertEqual(try encode([t]), try encode([t]))
    }
}
