import Foundation
import XCTest
import TestSupport
import TensorStream

/// `tensor` against hostile names, closed or full outputs, earlier shards and large arrays
/// (issue 10): each test failed before the fix it names.
final class TensorHardeningTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws { dir = try temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    func stream(_ tensors: [Tensor], chunkBytes: Int = Format.defaultChunkBytes) throws -> Data {
        let sink = ArraySink()
        let w = try TensorStreamWriter(sink: sink, options: WriterOptions(chunkBytes: chunkBytes))
        for t in tensors { try w.write(t) }
        try w.finish()
        return Data(sink.bytes)
    }

    func save(_ tensors: [Tensor], _ name: String) throws -> String {
        try stream(tensors).write(to: URL(fileURLWithPath: path(name)))
        return path(name)
    }

    /// Runs a shell command line with the built tools first on PATH.
    func sh(_ line: String) throws -> ToolRun {
        try runTool("/bin/sh", ["-c", line], environment: ["PATH": productsDirectory().path + ":/usr/bin:/bin"])
    }

    func testInfoEscapesNamesAndMetadata() throws {
        let evil = Tensor(name: "x\nfake  f32  [999, 999]\u{1b}[31m", shape: [2], floats: [1, 2],
                          meta: ["k\n": "v\r\u{7}\\"])
        let r = try runTool("tensor", ["info"], stdin: try stream([evil]))
        XCTAssertEqual(r.status, 0, r.stderr)
        let out = String(decoding: r.stdout, as: UTF8.self)
        XCTAssertEqual(out, "x\\nfake  f32  [999, 999]\\x1b[31m  f32  [2]\n    k\\n = v\\r\\x07\\\\\n")
        // Messages escape names too.
        let missing = try runTool("tensor", ["to", "csv", "--tensor", "y"], stdin: try stream([evil]))
        XCTAssertEqual(missing.status, 65)
        XCTAssertEqual(missing.stderr.filter { $0 == "\n" }.count, 1, missing.stderr)
        XCTAssertFalse(missing.stderr.contains("\u{1b}"), missing.stderr)
    }

    func testInfoToAFullDeviceFails() throws {
        let f = try save([Tensor(name: "x", shape: [2], floats: [1, 2])], "x.tsr")
        guard mknod(path("full"), S_IFCHR | 0o666, dev_t((1 << 8) | 7)) == 0 else { throw XCTSkip("no mknod") }
        let r = try sh("tensor info '\(f)' > '\(path("full"))'")
        XCTAssertEqual(r.status, 74, r.stderr)
        XCTAssertTrue(r.stderr.hasPrefix("tensor: "), r.stderr)
    }

    func testCSVHeaderIsQuoted() throws {
        let t = Tensor(name: "x", shape: [1, 3], floats: [1, 2, 3], meta: ["columns": "a\n9,\"b\",c d"])
        // "a\n9" would add a fake data row; a comma inside a name would add a column.
        let t2 = Tensor(name: "x", shape: [1, 3], floats: [1, 2, 3], meta: ["columns": "a\n9,b\"q\",c"])
        for (tensor, expect) in [(t, "\"a\n9\",\"\"\"b\"\"\",c d\n1,2,3\n"), (t2, "\"a\n9\",\"b\"\"q\"\"\",c\n1,2,3\n")] {
            let r = try runTool("tensor", ["to", "csv", "--header"], stdin: try stream([tensor]))
            XCTAssertEqual(String(decoding: r.stdout, as: UTF8.self), expect, r.stderr)
        }
    }

    func testNpzRefusesUnsafeMemberNames() throws {
        for name in ["../../x", "/abs", "a/b", "..", "nul\u{0}", "bell\u{7}"] {
            let r = try runTool("tensor", ["to", "npz"], stdin: try stream([Tensor(name: name, shape: [1], floats: [1])]))
            XCTAssertEqual(r.status, 65, "\(name): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("cannot be an npz member"), r.stderr)
            XCTAssertTrue(r.stdout.isEmpty)
        }
    }

    func testNpyAndNpzOfInterleavedTensorsAreExact() throws {
        // Interleaved chunks of two tensors, a scalar, and an empty tensor: each array comes out whole.
        let a = Tensor(name: "a", shape: [300, 4], floats: (0..<1200).map { Float($0) / 8 })
        let b = Tensor(name: "b", shape: [300], int64s: (0..<300).map { Int64($0) * 3 })
        let sink = ArraySink()
        let w = try TensorStreamWriter(sink: sink, options: WriterOptions(chunkBytes: 64))
        let ia = try w.add(a.info), ib = try w.add(b.info)
        for r in stride(from: 0, to: 300, by: 50) {
            try w.write(ia, rows: 50, bytes: UnsafeRawBufferPointer(rebasing: a.data.withUnsafeBytes { $0 }[r * 16 ..< (r + 50) * 16]))
            try b.data.withUnsafeBytes { try w.write(ib, rows: 50, bytes: UnsafeRawBufferPointer(rebasing: $0[r * 8 ..< (r + 50) * 8])) }
        }
        try w.write(Tensor(name: "s", shape: [], doubles: [2.5]))
        try w.write(Tensor(name: "e", shape: [0, 3], floats: []))
        try w.finish()
        let input = Data(sink.bytes)
        for compress in [false, true] {
            let r = try runTool("tensor", ["to", "npz"] + (compress ? ["--compress"] : []), stdin: input)
            XCTAssertEqual(r.status, 0, r.stderr)
            try r.stdout.write(to: URL(fileURLWithPath: path("o.npz")))
            let back = try runTool("tensor", ["from", "npz", path("o.npz")])
            XCTAssertEqual(back.status, 0, back.stderr)
            let t = try TensorStreamReader(ArraySource(Array(back.stdout))).readAll()
            XCTAssertEqual(t.map(\.name), ["a", "b", "s", "e"])
            XCTAssertEqual(t[0].data, a.data)
            XCTAssertEqual(t[1].data, b.data)
            XCTAssertEqual(t[2].doubles(), [2.5])
            XCTAssertEqual(t[3].shape, [0, 3])
        }
        let npy = try runTool("tensor", ["to", "npy", "--tensor", "a"], stdin: input)
        XCTAssertEqual(npy.status, 0, npy.stderr)
        XCTAssertEqual(Array(npy.stdout.suffix(a.data.count)), a.data)
        XCTAssertTrue(String(decoding: npy.stdout.prefix(128), as: UTF8.self).contains("'shape': (300, 4)"))
    }

    func testSplitRefusesEarlierShardsUnlessForced() throws {
        let rows = Tensor(name: "x", shape: [30], floats: (0..<30).map(Float.init))
        let f = try save([rows], "x.tsr")
        let first = try runTool("tensor", ["split", "--shards", "3", "--prefix", path("p-"), f])
        XCTAssertEqual(first.status, 0, first.stderr)
        let again = try runTool("tensor", ["split", "--shards", "2", "--prefix", path("p-"), f])
        XCTAssertEqual(again.status, 73, again.stderr)
        XCTAssertTrue(again.stderr.contains("--force"), again.stderr)
        let forced = try runTool("tensor", ["split", "--shards", "2", "--prefix", path("p-"), "--force", f])
        XCTAssertEqual(forced.status, 0, forced.stderr)
        let left = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix("p-") }.sorted()
        XCTAssertEqual(left, ["p-000.tsr", "p-001.tsr"], "shards of the earlier run were left")
        // Joining the set gives the input back, not 30 + 20 rows.
        let cat = try sh("tensor cat '\(dir.path)'/p-*.tsr | tensor to csv")
        XCTAssertEqual(String(decoding: cat.stdout, as: UTF8.self).split(separator: "\n").count, 30, cat.stderr)
    }

    func testSplitWithStdoutClosedFailsAndLeavesNothing() throws {
        let f = try save([Tensor(name: "x", shape: [4], floats: [1, 2, 3, 4])], "x.tsr")
        let r = try sh("tensor split --shards 2 --prefix '\(path("q-"))' '\(f)' >&-")
        XCTAssertEqual(r.status, 74, r.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted(), ["x.tsr"])
        guard mknod(path("full"), S_IFCHR | 0o666, dev_t((1 << 8) | 7)) == 0 else { throw XCTSkip("no mknod") }
        let full = try sh("tensor split --shards 2 --prefix '\(path("q-"))' '\(f)' > '\(path("full"))'")
        XCTAssertEqual(full.status, 74, full.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted(), ["full", "x.tsr"])
    }

    func testMessagesSayWhatIsWrong() throws {
        let f = try save([Tensor(name: "x", shape: [4], floats: [1, 2, 3, 4])], "x.tsr")
        let head = try runTool("tensor", ["head", "-n", "-1", f])
        XCTAssertEqual(head.status, 64)
        XCTAssertTrue(head.stderr.contains("-n must be 0 or more"), head.stderr)
        let none = try runTool("tensor", [])
        XCTAssertEqual(none.status, 64, none.stderr)
        XCTAssertTrue(none.stderr.contains("subcommand"), none.stderr)
        // Two 0-d tensors of the same name cannot be joined: the message says so, not "f64[] but f64[]".
        let s = try save([Tensor(name: "s", shape: [], doubles: [1])], "s.tsr")
        let cat = try runTool("tensor", ["cat", s, s])
        XCTAssertEqual(cat.status, 65)
        XCTAssertTrue(cat.stderr.contains("0-d tensor 's'") && !cat.stderr.contains("f64[] before"), cat.stderr)
        let g = try save([Tensor(name: "x", shape: [2, 2], floats: [1, 2, 3, 4])], "g.tsr")
        let shape = try runTool("tensor", ["cat", f, g])
        XCTAssertTrue(shape.stderr.contains("rows of shape [2]") && shape.stderr.contains("[] before it"), shape.stderr)
    }

    /// A stream holding one large shuffled record: `tensor info` holds it once (it held the
    /// decompressed record and its unshuffled copy: twice).
    func testInfoHoldsOneRecordAtATime() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/time") else { throw XCTSkip("no /usr/bin/time") }
        let mib = 64
        let count = mib << 20
        var data = [UInt8](repeating: 0, count: count)
        for i in stride(from: 0, to: count, by: 4093) { data[i] = UInt8(truncatingIfNeeded: i) }
        let t = Tensor(info: TensorInfo(name: "big", dtype: .f32, rowShape: [count / 4], rows: 1), data: data)
        let sink = ArraySink()
        let w = try TensorStreamWriter(sink: sink, options: WriterOptions(level: 1, chunkBytes: count))
        try w.write(t); try w.finish()
        try Data(sink.bytes).write(to: URL(fileURLWithPath: path("big.tsr")))
        let r = try runTool("/usr/bin/time", ["-f", "%M", "-o", path("rss"), productsDirectory().appendingPathComponent("tensor").path,
                                              "info", path("big.tsr")])
        XCTAssertEqual(r.status, 0, r.stderr)
        let kb = Int(try String(contentsOfFile: path("rss"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))!
        XCTAssertLessThan(kb, (mib + mib / 2) << 10, "peak \(kb) KB for one record of \(mib) MiB")
    }

    func testLossyDtypeConversionsAreRefusedUnlessSaturate() throws {
        let cases: [(String, String, String)] = [
            ("1\n1e10\n", "i8", "out of the range of i8"), ("1\nnan\n", "i64", "NaN"),
            ("1\nnan\n", "bool", "not 0 or 1"), ("0\n2\n", "bool", "not 0 or 1"),
            ("1\n70000\n", "f16", "overflows f16"), ("1\n2.5\n", "i32", "not a whole number"),
            ("1\n-1\n", "u8", "out of the range of u8"),
        ]
        for (csv, dtype, why) in cases {
            let r = try runTool("tensor", ["from", "csv", "--dtype", dtype], stdin: Data(csv.utf8))
            XCTAssertEqual(r.status, 65, "\(dtype): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(":2: ") && r.stderr.contains(why) && r.stderr.contains("--saturate"), r.stderr)
            let s = try runTool("tensor", ["from", "csv", "--dtype", dtype, "--saturate"], stdin: Data(csv.utf8))
            XCTAssertEqual(s.status, 0, s.stderr)
        }
        let sat = try runTool("tensor", ["from", "csv", "--dtype", "i8", "--saturate"], stdin: Data("1e10\n-1e10\n".utf8))
        XCTAssertEqual(try TensorStreamReader(ArraySource(Array(sat.stdout))).readAll()[0].doubles(), [127, -128])
        // CSV numbers beyond a double's range.
        let big = try runTool("tensor", ["from", "csv", "--dtype", "f64"], stdin: Data("1\n1e400\n".utf8))
        XCTAssertEqual(big.status, 65, big.stderr)
        XCTAssertTrue(big.stderr.contains("'1e400'") && big.stderr.contains(":2:"), big.stderr)
        let inf = try runTool("tensor", ["from", "csv", "--dtype", "f64"], stdin: Data("1\ninf\n".utf8))
        XCTAssertEqual(inf.status, 0, "an explicit inf is a value: \(inf.stderr)")
        // Whole-array conversions (npy, npz, safetensors) name the row.
        let nan = Tensor(name: "x", shape: [3, 2], doubles: [1, 2, 3, 4, .nan, 6])
        let sink = ArraySink()
        let w = try TensorStreamWriter(sink: sink)
        try w.write(nan); try w.finish()
        let npy = try runTool("tensor", ["to", "npy", "-o", path("x.npy")], stdin: Data(sink.bytes))
        XCTAssertEqual(npy.status, 0, npy.stderr)
        let back = try runTool("tensor", ["from", "npy", path("x.npy"), "--dtype", "i32"])
        XCTAssertEqual(back.status, 65, back.stderr)
        XCTAssertTrue(back.stderr.contains("row 2: NaN"), back.stderr)
    }

    func testFromNpzQuiet() throws {
        // An archive with a string array (skipped with a note) and a float one.
        let fixture = repositoryRoot().appendingPathComponent("Tests/TensorFormatsTests/Fixtures")
        let npz = try FileManager.default.contentsOfDirectory(atPath: fixture.path).filter { $0.hasSuffix(".npz") }
        var noted = false
        for f in npz {
            let loud = try runTool("tensor", ["from", "npz", fixture.appendingPathComponent(f).path])
            guard loud.status == 0, loud.stderr.contains("skipping") else { continue }
            noted = true
            let quiet = try runTool("tensor", ["from", "npz", "-q", fixture.appendingPathComponent(f).path])
            XCTAssertEqual(quiet.status, 0)
            XCTAssertEqual(quiet.stderr, "")
            XCTAssertEqual(quiet.stdout, loud.stdout)
        }
        if !noted { throw XCTSkip("no fixture archive with a skipped array") }
    }
}
