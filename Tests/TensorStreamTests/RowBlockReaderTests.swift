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

    /// A tentative only tensor is held whole (its rows are kept until the end of the stream tells);
    /// past the bound, the error says how to make it stream: the slot's name, which reads the same
    /// rows a block at a time under the same bound.
    func testAnOnlyTensorHeldPastTheBoundIsToldToTakeTheSlotsName() throws {
        func count(_ name: String) throws -> Int {
            let bytes = try interleaved([matrix(name, rows: 2000, cols: 1)], block: 100)
            let r = RowBlockReader(try TensorStreamReader(ArraySource(bytes)), slots: [RowSlot("labels", orOnly: true)],
                                   blockRows: 1, maxBufferedBytes: 1024)
            var n = 0
            while let b = try r.next() { n += b[0].rows }
            return n
        }
        XCTAssertEqual(try count("labels"), 2000)
        XCTAssertThrowsError(try count("y")) { e in
            XCTAssertEqual("\(e)", "<stdin>: 'y' is held whole until the end of the stream shows that it is the only tensor, and it passed 0 MiB: name it 'labels' ('tensor rename y=labels'), and it is read a block at a time")
        }
    }

    /// `readTensor` gives the slot's tensor whole (the same bytes as reading everything), the only
    /// tensor for a slot `orOnly`, and the reader's error with the hint when there is neither.
    func testReadTensorTakesTheSlotsTensorWhole() throws {
        let tensors = [matrix("probs", rows: 70_000, cols: 3), matrix("gold", rows: 70_000, cols: 1, base: 5)]
        for bytes in [try interleaved(tensors, block: 1000), try encode(tensors)] {
            let all = try TensorStreamReader(ArraySource(bytes)).readAll()
            let gold = try TensorStreamReader(ArraySource(bytes)).readTensor(RowSlot("gold", "scores"))
            XCTAssertEqual(gold.name, "gold")
            XCTAssertEqual(gold.rows, 70_000)
            XCTAssertEqual(gold.data, all[1].data)
            XCTAssertThrowsError(try TensorStreamReader(ArraySource(bytes)).readTensor(RowSlot("labels", orOnly: true, hint: "h"))) { e in
                XCTAssertEqual("\(e)", "<stdin> has no tensor 'labels' (it has: probs, gold; h)")
            }
        }
        let one = try interleaved([matrix("y", rows: 3, cols: 2, base: 1)], block: 2)
        let only = try TensorStreamReader(ArraySource(one)).readTensor(RowSlot("labels", orOnly: true))
        XCTAssertEqual(only.name, "y")
        XCTAssertEqual(only.floats(), (1..<7).map(Float.init))
        XCTAssertThrowsError(try TensorStreamReader(ArraySource(one)).readTensor(RowSlot("labels")))
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

    /// 103 rows of `mean` and `var` (3 columns), written three ways: interleaved in chunks of 7
    /// rows; one tensor after the other in chunks of 5 rows (60 bytes); and each whole.
    func meanAndVarianceThreeWays() throws -> (mean: Tensor, variance: Tensor, streams: [[UInt8]]) {
        let mean = matrix("mean", rows: 103, cols: 3), variance = matrix("var", rows: 103, cols: 3, base: 1000)
        return (mean, variance, [
            try interleaved([mean, variance], block: 7),
            try encode([mean, variance], options: WriterOptions(chunkBytes: 60)),
            try encode([mean, variance]),
        ])
    }

    /// Blocks are cut from the chunks as they arrived, whatever their sizes: a block that spans
    /// several chunks, one that ends inside a chunk, one that is a whole chunk; interleaved or
    /// not. Every block holds exactly the rows it says, in order.
    func testBlocksCutAcrossChunksHoldTheirRowsInOrder() throws {
        let (mean, variance, streams) = try meanAndVarianceThreeWays()
        for (s, bytes) in streams.enumerated() {
            for blockRows in [1, 5, 10, 64, 200] {
                let r = RowBlockReader(try TensorStreamReader(ArraySource(bytes)), names: ["mean", "var"], blockRows: blockRows)
                var got: [[UInt8]] = [[], []], rows = 0
                while let b = try r.next() {
                    XCTAssertEqual(b[0].rows, min(blockRows, 103 - rows), "stream \(s), blocks of \(blockRows)")
                    XCTAssertEqual(b[0].data.count, b[0].rows * 12)
                    XCTAssertEqual(b[1].data.count, b[1].rows * 12)
                    got[0] += b[0].data
                    got[1] += b[1].data
                    rows += b[0].rows
                }
                XCTAssertEqual(rows, 103)
                for (g, want) in zip(got, [mean.data, variance.data]) {
                    XCTAssertTrue(g == want, "stream \(s), blocks of \(blockRows): first wrong byte at \(g.indices.first { $0 >= want.count || g[$0] != want[$0] } ?? g.count)")
                }
            }
        }
    }

    /// After `readAhead`, `rowsWaiting` is the rows of the slot's first record (those of the
    /// whole tensor when it is shorter), 0 for an empty slot; blocks then take them.
    func testRowsWaitingAfterReadAheadIsTheFirstRecord() throws {
        for (rows, perRecord) in [(1000, 100), (1000, 37), (30, 100)] {
            let sink = ArraySink()
            var o = WriterOptions(); o.chunkBytes = perRecord * 16
            let w = try TensorStreamWriter(sink: sink, options: o)
            try w.write(matrix("a", rows: rows, cols: 4))
            try w.finish()
            let r = RowBlockReader(try TensorStreamReader(ArraySource(sink.bytes)), slots: [RowSlot("a"), RowSlot("b", optional: true)],
                                   blockRows: 64)
            try r.readAhead()
            XCTAssertEqual(r.rowsWaiting(slot: 0), min(rows, perRecord), "\(rows) rows, \(perRecord) a record")
            XCTAssertEqual(r.rowsWaiting(slot: 1), 0)
            r.blockRows = r.rowsWaiting(slot: 0)
            XCTAssertEqual(try r.nextSlots()?[0]?.rows, min(rows, perRecord))
            XCTAssertEqual(r.rowsWaiting(slot: 0), 0)
        }
    }

    /// `Spares` keeps an array handed back, bytes and all, even while someone else still holds
    /// its storage — the same storage once however often it comes back — and whoever writes to
    /// it first gets a copy of their own: the other holder's bytes are never written over. An
    /// array it holds alone is given out again with its storage: emptied for appends
    /// (`take(capacity:)`), or `count` bytes long to be written over (`take(count:)`).
    func testSparesNeverWriteOverAHeldArrayAndGiveTheirOwnAgain() {
        let spares = Spares()
        var shared = [UInt8](repeating: 1, count: 1 << 16)
        let other = shared
        spares.put(&shared)
        XCTAssertTrue(shared.isEmpty)
        var again = other
        spares.put(&again)
        XCTAssertEqual(spares.held, 1)
        var written = spares.take(count: 1 << 16)
        XCTAssertEqual(written.count, 1 << 16)
        written.withUnsafeMutableBytes { _ = $0.initializeMemory(as: UInt8.self, repeating: 2) }
        XCTAssertTrue(other == [UInt8](repeating: 1, count: 1 << 16))
        XCTAssertEqual(spares.held, 0)

        var owned = [UInt8](repeating: 3, count: 1 << 16)
        let storage = owned.withUnsafeBufferPointer { $0.baseAddress }
        spares.put(&owned)
        var shorter = spares.take(count: 1000)
        XCTAssertEqual(shorter.count, 1000)
        XCTAssertEqual(shorter.withUnsafeBufferPointer { $0.baseAddress }, storage)
        spares.put(&shorter)
        var longer = spares.take(count: 1 << 15)        // longer than it was handed back: topped up
        XCTAssertEqual(longer.count, 1 << 15)
        XCTAssertEqual(longer.withUnsafeBufferPointer { $0.baseAddress }, storage)
        spares.put(&longer)
        let empty = spares.take(capacity: 1 << 16)
        XCTAssertTrue(empty.isEmpty)
        XCTAssertGreaterThanOrEqual(empty.capacity, 1 << 16)
        XCTAssertEqual(empty.withUnsafeBufferPointer { $0.baseAddress }, storage)
        XCTAssertEqual(spares.held, 0)
        XCTAssertEqual(spares.take(count: 100).count, 100)     // none left: a new one
    }

    /// A shuffled record's payload goes into the caller's buffer when it fits and fills more
    /// than half of it (the event's bytes are then that buffer, the rows right), else into the
    /// reader's own; never for a payload that was not shuffled. Both decoding paths: whole
    /// frames, and payloads unshuffled while they are decompressed.
    func testAPayloadIsUnshuffledIntoTheCallersBufferWhenItFits() throws {
        let t = matrix("m", rows: 50, cols: 3)          // 600 bytes
        for shuffle in [true, false] {
            let bytes = try encode([t], options: WriterOptions(shuffle: shuffle))
            for inPlace in [Int.max, 0] {
                for (offer, used) in [(600, true), (599, false), (1199, true), (1200, false), (0, false)] {
                    let reader = try TensorStreamReader(ArraySource(bytes))
                    reader.unshuffleInPlaceFrom = inPlace
                    var buffer = [UInt8](repeating: 0xEE, count: offer)
                    var got: [UInt8] = []
                    var inOffered = false
                    while true {
                        let event = try buffer.withUnsafeMutableBytes { try reader.next(unshufflingInto: $0) }
                        guard let event else { break }
                        if case .data(_, let rows, let data) = event {
                            XCTAssertEqual(rows, 50)
                            got = Array(data)
                            inOffered = reader.lastDataInOffered
                            if inOffered { XCTAssertEqual(data.baseAddress, buffer.withUnsafeBytes { $0.baseAddress }) }
                        }
                    }
                    let what = "shuffle \(shuffle), in place from \(inPlace), offered \(offer)"
                    XCTAssertEqual(got, t.data, what)
                    XCTAssertEqual(inOffered, used && shuffle, what)
                    if inOffered { XCTAssertEqual(Array(buffer[..<600]), t.data, what) }
                }
            }
        }
    }

    /// `blocksEndWithRecords`: a block that has half its rows ends where a record ends; records
    /// that fill more than half a block are the blocks, each handed out as the array its rows
    /// were unshuffled into (no copy); a short record joins the next; the rows are the stream's.
    func testBlocksEndWithRecords() throws {
        let records = [10, 1, 10, 10, 7, 3, 12, 2]
        let total = records.reduce(0, +)
        let t = matrix("m", rows: total)
        let sink = ArraySink()
        let w = try TensorStreamWriter(sink: sink)
        var info = t.info; info.rows = nil
        let id = try w.add(info)
        var at = 0
        for n in records {
            try Array(t.data[at * 8 ..< (at + n) * 8]).withUnsafeBytes { try w.write(id, rows: n, bytes: $0) }
            at += n
        }
        try w.finish()
        var copied: [Int] = []
        for ends in [true, false] {
            let r = RowBlockReader(try TensorStreamReader(ArraySource(sink.bytes)), names: ["m"], blockRows: 12)
            r.blocksEndWithRecords = ends
            var sizes: [Int] = [], rows: [UInt8] = []
            while var b = try r.next() {
                sizes.append(b[0].rows)
                rows += b[0].data
                r.recycle(&b[0].data)
            }
            XCTAssertEqual(rows, t.data, "ends with records \(ends)")
            // 10 | 1 + 10 | 10 | 7 | 3 + 9 of 12 (no record end from 6 rows on) | 3 + 2
            XCTAssertEqual(sizes, ends ? [10, 11, 10, 7, 12, 5] : [12, 12, 12, 12, 7])
            copied.append(r.blocksCopied)
        }
        // Only blocks of pieces are copied (1 + 10, 3 + 9, 3 + 2 at most), fewer than when
        // blocks cut across records.
        XCTAssertLessThanOrEqual(copied[0], 3)
        XCTAssertLessThan(copied[0], copied[1])
    }

    /// Blocks handed back with `recycle` carry the next blocks' bytes (the same storage: the
    /// pages are not touched anew), and a block the caller still holds a copy of is never
    /// written over. After each recycle a decoy of the same size is allocated and kept alive:
    /// had the reader dropped the array, the allocator would give its address to the decoy.
    func testRecycledBlocksAreReusedAndAHeldCopyIsNeverWrittenOver() throws {
        let (mean, variance, streams) = try meanAndVarianceThreeWays()
        for (s, bytes) in streams.enumerated() {
            for blockRows in [1, 5, 10, 64] {
                let r = RowBlockReader(try TensorStreamReader(ArraySource(bytes)), names: ["mean", "var"], blockRows: blockRows)
                var got: [[UInt8]] = [[], []], held: [(row: Int, data: [UInt8])] = [], decoys: [[UInt8]] = []
                var rows = 0, blocks = 0, reused = 0
                var recycled: Set<UnsafeRawPointer> = []
                while var b = try r.next() {
                    for k in 0..<2 {
                        got[k] += b[k].data
                        let at = b[k].data.withUnsafeBytes { UnsafeRawPointer($0.baseAddress!) }
                        if recycled.contains(at) { reused += 1 }
                        if blocks % 3 == 0 && k == 0 {
                            held.append((rows, b[k].data))      // a second reference: not reused
                        } else {
                            recycled.insert(at)
                        }
                        let size = b[k].data.count
                        r.recycle(&b[k].data)
                        XCTAssertTrue(b[k].data.isEmpty)
                        decoys.append([UInt8](repeating: 0xEE, count: size))
                    }
                    rows += b[0].rows
                    blocks += 1
                }
                XCTAssertEqual(rows, 103)
                for (g, want) in zip(got, [mean.data, variance.data]) {
                    XCTAssertTrue(g == want, "stream \(s), blocks of \(blockRows): first wrong byte at \(g.indices.first { $0 >= want.count || g[$0] != want[$0] } ?? g.count)")
                }
                for (row, data) in held {
                    XCTAssertTrue(data == Array(mean.data[(row * 12)..<(row * 12 + data.count)]), "stream \(s), blocks of \(blockRows): the block held at row \(row) was written over")
                }
                // (Two blocks are too few to tell: the first ones find nothing to reuse.)
                if blocks >= 10 { XCTAssertGreaterThan(reused, blocks / 2, "stream \(s), blocks of \(blockRows): \(reused) of \(2 * blocks) blocks in recycled storage") }
                XCTAssertFalse(decoys.isEmpty)
            }
        }
    }

    /// Rows kept for a block go straight into an array of the block's size, which is then
    /// handed out as the block (no second copy): with the threshold lowered so that these small
    /// blocks qualify, every layout still gives every row once, in order, held blocks stay as
    /// they were, and (interleaved or in chunks) almost no block is a copy, where without it
    /// most blocks that span chunks are.
    func testBlocksAreAssembledWhereTheyAreKept() throws {
        let (mean, variance, streams) = try meanAndVarianceThreeWays()
        for (s, bytes) in streams.enumerated() {
            for blockRows in [1, 5, 10, 64, 200] {
                var copies: [Int] = []
                for fill in [0, Int.max] {
                    let r = RowBlockReader(try TensorStreamReader(ArraySource(bytes)), names: ["mean", "var"], blockRows: blockRows)
                    r.fillBlocksFrom = fill
                    var got: [[UInt8]] = [[], []], held: [(row: Int, data: [UInt8])] = [], rows = 0, blocks = 0
                    while var b = try r.next() {
                        XCTAssertEqual(b[0].rows, min(blockRows, 103 - rows))
                        for k in 0..<2 {
                            got[k] += b[k].data
                            if blocks % 2 == 0 { held.append((rows, b[k].data)) }
                            r.recycle(&b[k].data)
                        }
                        rows += b[0].rows
                        blocks += 1
                    }
                    let what = "stream \(s), blocks of \(blockRows), filled from \(fill)"
                    XCTAssertEqual(rows, 103, what)
                    for (g, want) in zip(got, [mean.data, variance.data]) {
                        XCTAssertTrue(g == want, "\(what): first wrong byte at \(g.indices.first { $0 >= want.count || g[$0] != want[$0] } ?? g.count)")
                    }
                    for (i, h) in held.enumerated() {
                        let source = i % 2 == 0 ? mean.data : variance.data
                        XCTAssertTrue(h.data == Array(source[(h.row * 12)..<(h.row * 12 + h.data.count)]), "\(what): the block held at row \(h.row) was written over")
                    }
                    copies.append(r.blocksCopied)
                }
                XCTAssertLessThanOrEqual(copies[0], copies[1], "stream \(s), blocks of \(blockRows)")
                if s < 2 && blockRows >= 10 && blockRows < 103 {
                    XCTAssertLessThanOrEqual(copies[0], 2, "stream \(s), blocks of \(blockRows): \(copies[0]) blocks copied")
                    let blocks = 2 * ((103 + blockRows - 1) / blockRows)
                    XCTAssertGreaterThanOrEqual(copies[1], blocks / 2 + copies[0], "stream \(s), blocks of \(blockRows): \(copies[1]) of \(blocks) blocks copied without filling")
                }
            }
        }
    }

    /// `readAhead` reads rows of every slot's tensor before they are asked for (the headers
    /// alone read none), and the blocks after it are the blocks without it; a stream that lacks
    /// a slot's tensor is refused by it with the same message as by `next`.
    func testReadAheadReadsRowsAndChangesNoBlock() throws {
        let (mean, variance, streams) = try meanAndVarianceThreeWays()
        for (s, bytes) in streams.enumerated() {
            let reader = try TensorStreamReader(ArraySource(bytes))
            let r = RowBlockReader(reader, names: ["mean", "var"], blockRows: 10)
            _ = try r.headers()
            let before = reader.rowsRead.reduce(0, +)
            try r.readAhead()
            XCTAssertGreaterThan(reader.rowsRead[reader.index(of: "var")!], 0, "stream \(s)")
            XCTAssertGreaterThan(reader.rowsRead.reduce(0, +), before, "stream \(s)")
            var got: [[UInt8]] = [[], []]
            while let b = try r.next() { got[0] += b[0].data; got[1] += b[1].data }
            XCTAssertTrue(got[0] == mean.data && got[1] == variance.data, "stream \(s)")
        }
        let one = try encode([matrix("mean", rows: 5)])
        func message(_ body: (RowBlockReader) throws -> Void) -> String {
            let r = RowBlockReader(try! TensorStreamReader(ArraySource(one)), names: ["mean", "var"], blockRows: 2)
            do { try body(r); return "no error" } catch { return "\(error)" }
        }
        XCTAssertEqual(message { try $0.readAhead() }, message { _ = try $0.next() })
        XCTAssertTrue(message { try $0.readAhead() }.contains("'var'"))
    }

    /// `write(interleaving:)`: every tensor whole when read back, and those of one row count
    /// readable together under a bound far below one of them (chunks of a few rows each turn),
    /// where `write` one after the other is refused as not interleaved.
    func testWriterInterleavesTensorsOfOneRowCount() throws {
        let q = matrix("query", rows: 300, cols: 8), p = matrix("positive", rows: 300, cols: 8, base: 5000)
        let labels = Tensor(name: "labels", shape: [300], floats: (0..<300).map { Float($0 % 7) })
        let other = matrix("other", rows: 11, cols: 3, base: -50)
        let scalar = Tensor(name: "t", shape: [], floats: [2.5])
        let all = [q, other, p, scalar, labels]
        let small = WriterOptions(chunkBytes: 256)
        let sink = ArraySink()
        let w = try TensorStreamWriter(sink: sink, options: small)
        try w.write(interleaving: all)
        try w.finish()
        let back = try TensorStreamReader(ArraySource(sink.bytes)).readAll()
        XCTAssertEqual(back.map(\.name), all.map(\.name))
        for (b, t) in zip(back, all) { XCTAssertTrue(b.data == t.data && b.shape == t.shape, b.name) }
        // Read together a block at a time, at most 1 KiB buffered beyond the block (q is 9.6 KB).
        let r = RowBlockReader(try TensorStreamReader(ArraySource(sink.bytes)), names: ["query", "positive", "labels"],
                               blockRows: 16, maxBufferedBytes: 1 << 10)
        var rows = 0
        while let b = try r.next() {
            XCTAssertTrue(b[0].data == Array(q.data[rows * 32 ..< (rows + b[0].rows) * 32]))
            XCTAssertTrue(b[1].data == Array(p.data[rows * 32 ..< (rows + b[1].rows) * 32]))
            rows += b[0].rows
        }
        XCTAssertEqual(rows, 300)
        // One after the other: refused under the same bound.
        let one = try encode([q, p], options: small)
        let r2 = RowBlockReader(try TensorStreamReader(ArraySource(one)), names: ["query", "positive"], blockRows: 16,
                                maxBufferedBytes: 1 << 10)
        XCTAssertThrowsError(try { while try r2.next() != nil {} }()) { XCTAssertTrue("\($0)".contains("not interleaved"), "\($0)") }
    }

    /// `floats(into:)` gives `floats()` for every float dtype and an integer one, replacing what
    /// the array held; it fills the array's own storage when that is the last reference to it,
    /// and leaves an array shared elsewhere as it was.
    func testFloatsIntoGivesFloatsAndReusesTheStorage() {
        let values: [Float] = [0, 1.5, -2.25, 1e-3, 65504, -0.5]
        let f32 = Tensor(name: "x", shape: [3, 2], floats: values)
        var tensors = [f32]
        for dtype in [DType.f16, .bf16, .f64, .i64] {
            var info = f32.info
            info.dtype = dtype
            let bytes: [UInt8]
            switch dtype {
            case .f16: bytes = values.flatMap { withUnsafeBytes(of: floatToHalf($0).littleEndian, Array.init) }
            case .bf16: bytes = values.flatMap { withUnsafeBytes(of: UInt16($0.bitPattern >> 16).littleEndian, Array.init) }
            case .f64: bytes = values.flatMap { withUnsafeBytes(of: Double($0).bitPattern.littleEndian, Array.init) }
            default: bytes = values.flatMap { withUnsafeBytes(of: Int64($0.rounded(.towardZero)).littleEndian, Array.init) }
            }
            tensors.append(Tensor(info: info, data: bytes))
        }
        var out = [Float](repeating: 7, count: 100)
        for t in tensors {
            let before = out.withUnsafeBufferPointer { $0.baseAddress }
            t.floats(into: &out)
            XCTAssertEqual(out.map(\.bitPattern), t.floats().map(\.bitPattern), "\(t.dtype)")
            XCTAssertEqual(out.withUnsafeBufferPointer { $0.baseAddress }, before, "\(t.dtype): a new array for a storage that was free")
        }
        let held = out
        f32.floats(into: &out)
        XCTAssertEqual(held.map(\.bitPattern), tensors.last!.floats().map(\.bitPattern), "the shared array was written over")
        XCTAssertNotEqual(out.withUnsafeBufferPointer { $0.baseAddress }, held.withUnsafeBufferPointer { $0.baseAddress })
        XCTAssertEqual(out, values)
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
    /// `nextRecord`: the one slot's records in order, as they arrived (other tensors skipped),
    /// each with its compressed frame; after a block, once no rows wait for the next one.
    func testRecordsOfTheOneSlotInOrderWithTheirFrames() throws {
        let bytes = try interleaved([matrix("other", rows: 10, base: 500), matrix("embedding", rows: 10)], block: 3)
        let r = RowBlockReader(try TensorStreamReader(ArraySource(bytes, step: 7)), names: ["embedding"], blockRows: 3)
        XCTAssertEqual(try r.headers()[0].name, "embedding")
        let first = try XCTUnwrap(try r.next())
        XCTAssertEqual(first[0].floats(), (0..<6).map(Float.init))
        var rows: [Int] = [], values: [Float] = []
        while let record = try r.nextRecord() {
            rows.append(record.rows)
            values += Array(record.bytes.bindMemory(to: Float.self))
            XCTAssertEqual(record.compressed?.id, 1)
            XCTAssertEqual(record.compressed?.rows, record.rows)
            XCTAssertEqual(r.rowsDone, 3 + rows.reduce(0, +))
        }
        XCTAssertEqual(rows, [3, 3, 1])
        XCTAssertEqual(values, (6..<20).map(Float.init))
        XCTAssertNil(try r.nextRecord())
    }
}
