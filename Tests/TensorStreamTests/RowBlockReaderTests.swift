import XCTest
@testable import TensorStream

/// The one row-block reader: alternative names, optional slots, the bound on buffered bytes.
final class RowBlockReaderTests: XCTestCase {
    func matrix(_ name: String, rows: Int, cols: Int = 2, base: Float = 0) -> Tensor {
        Tensor(name: name, shape: [rows, cols], floats: (0..<rows * cols).map { base + Float($0) })
    }

    /// Writes the tensors interleaved, `block` rows of each in turn.
    func interleaved(_ tensors: [Tensor], block: Int) throws -> [UInt8] {
        let sink = ArraySink()
        let w = try TensorStreamWriter(sink: sink)
        let ids = try tensors.map { t -> Int in var i = t.info; i.rows = nil; return try w.add(i) }
        var r = 0
        while r < tensors[0].rows {
            let n = min(block, tensors[0].rows - r)
            for (t, id) in zip(tensors, ids) {
                let rb = t.info.rowBytes
                try Array(t.data[r * rb ..< (r + n) * rb]).withUnsafeBytes { try w.write(id, rows: n, bytes: $0) }
            }
            r += n
        }
        try w.finish()
        return sink.bytes
    }

    func testAlternativesPreferTheFirstNameAndOptionalSlotsMayBeAbsent() throws {
        // 'embedding' is declared first, but 'mean' is preferred; 'var' is optional and absent.
        let bytes = try interleaved([matrix("embedding", rows: 5, base: 100), matrix("mean", rows: 5)], block: 2)
        let r = RowBlockReader(try TensorStreamReader(ArraySource(bytes)),
                               slots: [RowSlot("mean", "embedding"), RowSlot("var", optional: true)], blockRows: 3)
        let infos = try r.slotHeaders()
        XCTAssertEqual(infos[0]?.name, "mean")
        XCTAssertNil(infos[1])
        var rows: [Float] = []
        while let b = try r.nextSlots() {
            XCTAssertNil(b[1])
            XCTAssertLessThanOrEqual(b[0]!.rows, 3)
            rows += b[0]!.floats()
        }
        XCTAssertEqual(rows, (0..<10).map(Float.init))
        XCTAssertEqual(r.rowsDone, 5)
    }

    func testOptionalSlotIsFilledAndCanBeDropped() throws {
        let bytes = try interleaved([matrix("embedding", rows: 4), matrix("var", rows: 4, base: 50)], block: 1)
        let r = RowBlockReader(try TensorStreamReader(ArraySource(bytes)),
                               slots: [RowSlot("mean", "embedding"), RowSlot("var", optional: true)], blockRows: 4)
        XCTAssertEqual(try r.slotHeaders().map { $0?.name }, ["embedding", "var"])
        r.drop(slot: 1)
        let b = try XCTUnwrap(try r.nextSlots())
        XCTAssertEqual(b[0]?.rows, 4)
        XCTAssertNil(b[1])
        XCTAssertNil(try r.nextSlots())
    }

    /// A slot `orOnly` takes the only tensor of a stream whatever its name, prefers its own name
    /// when the stream has several, and is refused when none of several carries its name.
    func testOrOnlySlotTakesTheOnlyTensor() throws {
        func read(_ tensors: [Tensor]) throws -> (name: String, values: [Float]) {
            let r = RowBlockReader(try TensorStreamReader(ArraySource(try interleaved(tensors, block: 2))),
                                   slots: [RowSlot("labels", orOnly: true, hint: "one tensor, or one named 'labels'")], blockRows: 3)
            let name = try r.headers()[0].name
            var values: [Float] = []
            while let b = try r.next() { values += b[0].floats() }
            return (name, values)
        }
        let only = try read([matrix("y", rows: 5, cols: 1, base: 7)])
        XCTAssertEqual(only.name, "y")
        XCTAssertEqual(only.values, (7..<12).map(Float.init))      // the rows that came before resolving too
        let named = try read([matrix("y", rows: 4, cols: 1), matrix("labels", rows: 4, cols: 1, base: 20)])
        XCTAssertEqual(named.name, "labels")
        XCTAssertEqual(named.values, (20..<24).map(Float.init))
        XCTAssertThrowsError(try read([matrix("y", rows: 4, cols: 1), matrix("z", rows: 4, cols: 1)])) { e in
            XCTAssertEqual("\(e)", "<stdin> has no tensor 'labels' (it has: y, z; one tensor, or one named 'labels')")
        }
        // Without `orOnly` the only tensor is not taken.
        let r = RowBlockReader(try TensorStreamReader(ArraySource(try interleaved([matrix("y", rows: 2, cols: 1)], block: 2))),
                               slots: [RowSlot("labels")], blockRows: 3)
        XCTAssertThrowsError(try r.headers())
    }

    func testMissingRequiredSlotNamesItsAlternativesAndHint() throws {
        let bytes = try interleaved([matrix("probs", rows: 2)], block: 2)
        let r = RowBlockReader(try TensorStreamReader(ArraySource(bytes)),
                               slots: [RowSlot("probs"), RowSlot("labels", hint: "or give --labels FILE")], blockRows: 4)
        XCTAssertThrowsError(try r.slotHeaders()) { e in
            XCTAssertEqual("\(e)", "<stdin> has no tensor 'labels' (it has: probs; or give --labels FILE)")
        }
        let s = RowBlockReader(try TensorStreamReader(ArraySource(bytes)), slots: [RowSlot("mean", "embedding")], blockRows: 4)
        XCTAssertThrowsError(try s.next()) { e in
            XCTAssertTrue("\(e)".contains("no tensor 'mean' or 'embedding' (it has: probs)"), "\(e)")
        }
    }

    func testTensorsNotInterleavedAreBufferedUpToTheBound() throws {
        // All of 'mean' (16 KiB) before 'var': read whole under a 1 MiB bound, refused under 8 KiB.
        let bytes = try encode([matrix("mean", rows: 1024, cols: 4), matrix("var", rows: 1024, cols: 4)])
        let ok = RowBlockReader(try TensorStreamReader(ArraySource(bytes)), names: ["mean", "var"], blockRows: 100,
                                maxBufferedBytes: 1 << 20)
        var n = 0
        while let b = try ok.next() { n += b[1].rows }
        XCTAssertEqual(n, 1024)
        let small = RowBlockReader(try TensorStreamReader(ArraySource(bytes)), names: ["mean", "var"], blockRows: 100,
                                   maxBufferedBytes: 8 << 10)
        XCTAssertThrowsError(try { while try small.next() != nil {} }()) { e in
            XCTAssertTrue("\(e)".contains("are not interleaved") && "\(e)".contains("tensor paste"), "\(e)")
        }
    }

    /// A block larger than the bound is the caller's request, not a stream out of order: one
    /// tensor of 16 KiB in blocks of 1024 rows under a 1 KiB bound (emb-sim's query blocks of half
    /// its memory budget were refused past 1 GiB, with a message about interleaving).
    func testABlockLargerThanTheBoundIsNotRefused() throws {
        let bytes = try encode([matrix("embedding", rows: 1024, cols: 4)])
        let r = RowBlockReader(try TensorStreamReader(ArraySource(bytes)), names: ["embedding"], blockRows: 1024,
                               maxBufferedBytes: 1 << 10)
        let b = try XCTUnwrap(try r.next())
        XCTAssertEqual(b[0].rows, 1024)
        XCTAssertNil(try r.next())
    }
}
