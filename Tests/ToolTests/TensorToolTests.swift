import Foundation
import XCTest
import TestSupport
import TensorFormats
import TensorStream

/// The `tensor` executable as users run it: conversions, row and tensor operations, errors
/// with sysexits statuses, atomic output, pipes.
final class TensorToolTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws { dir = try temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    func write(_ tensors: [Tensor], to name: String) throws -> String {
        let sink = ArraySink()
        let w = try TensorStreamWriter(sink: sink)
        for t in tensors { try w.write(t) }
        try w.finish()
        try Data(sink.bytes).write(to: URL(fileURLWithPath: path(name)))
        return path(name)
    }

    func read(_ data: Data) throws -> [Tensor] { try TensorStreamReader(ArraySource(Array(data))).readAll() }

    func matrix(_ name: String, rows: Int, cols: Int, offset: Float = 0) -> Tensor {
        Tensor(name: name, shape: [rows, cols], floats: (0..<rows * cols).map { Float($0) * 0.5 + offset })
    }

    func testNpyThroughStreamAndBackIsByteIdentical() throws {
        let fixture = repositoryRoot().appendingPathComponent("Tests/TensorFormatsTests/Fixtures/f32_2d.npy")
        let original = try Data(contentsOf: fixture)
        let imported = try runTool("tensor", ["from", "npy", fixture.path, "--name", "embedding", "--meta", "model=m1"])
        XCTAssertEqual(imported.status, 0, imported.stderr)
        let t = try read(imported.stdout)
        XCTAssertEqual(t.map(\.name), ["embedding"])
        XCTAssertEqual(t[0].meta["model"], "m1")
        let back = try runTool("tensor", ["to", "npy"], stdin: imported.stdout)
        XCTAssertEqual(back.status, 0, back.stderr)
        XCTAssertEqual(back.stdout, original)
    }

    /// `tensor from npy` writes records that all hold the same rows but the last, for rows of a
    /// size that does not divide the writer's 1 MiB records (10 float32: 26 214 rows a record),
    /// and the rows are the file's.
    func testNpyImportWritesRecordsOfEqualRows() throws {
        let t = Tensor(name: "p", shape: [300_000, 10], floats: (0..<3_000_000).map { Float($0 % 977) / 977 })
        try Data(try Npy.write(t)).write(to: URL(fileURLWithPath: path("p.npy")))
        let imported = try runTool("tensor", ["from", "npy", path("p.npy"), "--name", "p"])
        XCTAssertEqual(imported.status, 0, imported.stderr)
        let reader = try TensorStreamReader(ArraySource(Array(imported.stdout)))
        var records: [Int] = [], data: [UInt8] = []
        while let event = try reader.next() {
            if case .data(_, let rows, let bytes) = event { records.append(rows); data += bytes }
        }
        XCTAssertEqual(data, t.data)
        XCTAssertEqual(records.reduce(0, +), 300_000)
        XCTAssertEqual(Set(records.dropLast()), [26_214], "records of \(Set(records))")
        XCTAssertGreaterThan(records.count, 10)
    }

    func testCSVRoundTripWithHeaderAndVector() throws {
        let csv = "a,b,c\n1,2,3\n4.5,-6,7e-3\n\n# comment\n8,9,10\n"
        let imported = try runTool("tensor", ["from", "csv", "--name", "x"], stdin: Data(csv.utf8))
        XCTAssertEqual(imported.status, 0, imported.stderr)
        let t = try read(imported.stdout)[0]
        XCTAssertEqual(t.shape, [3, 3])
        XCTAssertEqual(t.floats(), [1, 2, 3, 4.5, -6, 0.007, 8, 9, 10])
        XCTAssertEqual(t.meta["columns"], "a,b,c")
        let out = try runTool("tensor", ["to", "csv", "--header"], stdin: imported.stdout)
        XCTAssertEqual(String(decoding: out.stdout, as: UTF8.self), "a,b,c\n1,2,3\n4.5,-6,0.007\n8,9,10\n")
        let vector = try runTool("tensor", ["from", "tsv", "--name", "labels", "--dtype", "i64"], stdin: Data("3\n1\n2\n".utf8))
        let v = try read(vector.stdout)[0]
        XCTAssertEqual(v.shape, [3])
        XCTAssertEqual(try v.int64s(), [3, 1, 2])
        let bad = try runTool("tensor", ["from", "csv"], stdin: Data("1,2\n3,x\n".utf8))
        XCTAssertEqual(bad.status, 65)
        XCTAssertTrue(bad.stderr.hasPrefix("tensor: ") && bad.stderr.contains(":2:"), bad.stderr)
        let ragged = try runTool("tensor", ["from", "csv"], stdin: Data("1,2\n3\n".utf8))
        XCTAssertEqual(ragged.status, 65, ragged.stderr)
    }

    func testErrorsAreOneLineWithSysexitsStatus() throws {
        let good = try write([matrix("e", rows: 4, cols: 3)], to: "good.tsr")
        let cases: [([String], Data, Int32, String)] = [
            (["info", "--bogus"], Data(), 64, "Unknown option"),
            (["info", path("missing.tsr")], Data(), 66, "cannot open"),
            (["info"], Data("hello,world\n".utf8), 65, "not a tensor stream"),
            (["info"], Data(), 65, "empty input"),
            (["info"], try Data(contentsOf: URL(fileURLWithPath: good)).prefix(60), 65, "cut off"),
            (["to", "npy", "--tensor", "nope", good], Data(), 65, "no tensor 'nope'"),
            (["select", "nope", "--input", good], Data(), 65, "no tensor 'nope'"),
            (["head", "--rows=-3", good], Data(), 64, "-n must be"),
            (["split", good], Data(), 64, "exactly one of"),
            (["from", "npy"], Data("not npy at all".utf8), 65, "not a .npy file"),
        ]
        for (args, stdin, status, text) in cases {
            let r = try runTool("tensor", args, stdin: stdin)
            XCTAssertEqual(r.status, status, "\(args): \(r.stderr)")
            XCTAssertTrue(r.stderr.hasPrefix("tensor: "), "\(args): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(text), "\(args): \(r.stderr)")
            XCTAssertEqual(r.stderr.filter { $0 == "\n" }.count, 1, "\(args): not one line: \(r.stderr)")
            XCTAssertTrue(r.stdout.isEmpty || status == 65, "\(args)")
        }
    }

    func testFailedOutputLeavesNoFile() throws {
        let good = try write([matrix("e", rows: 4, cols: 3)], to: "good.tsr")
        let bytes = try Data(contentsOf: URL(fileURLWithPath: good))
        try bytes.prefix(bytes.count - 5).write(to: URL(fileURLWithPath: path("cut.tsr")))
        let r = try runTool("tensor", ["cat", good, path("cut.tsr"), "-o", path("out.tsr")])
        XCTAssertEqual(r.status, 65, r.stderr)
        let left = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        XCTAssertEqual(left, ["cut.tsr", "good.tsr"], "a partial or temporary file was left behind")
        let ok = try runTool("tensor", ["cat", good, good, "-o", path("out.tsr")])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertEqual(try read(try Data(contentsOf: URL(fileURLWithPath: path("out.tsr"))))[0].shape, [8, 3])
    }

    func testOutputToADeviceOrFIFOWritesInPlace() throws {
        let good = try write([matrix("e", rows: 4, cols: 3)], to: "good.tsr")
        // A FIFO stands in for /dev/null: -o must write into it, not rename a file over it.
        let fifo = path("fifo")
        XCTAssertEqual(mkfifo(fifo, 0o644), 0)
        let reader = Process()
        reader.executableURL = URL(fileURLWithPath: "/bin/sh")
        reader.arguments = ["-c", "cat '\(fifo)' > '\(path("received.tsr"))'"]
        try reader.run()
        let r = try runTool("tensor", ["cat", good, "-o", fifo])
        reader.waitUntilExit()
        XCTAssertEqual(r.status, 0, r.stderr)
        var st = stat()
        XCTAssertEqual(stat(fifo, &st), 0)
        XCTAssertEqual(st.st_mode & S_IFMT, S_IFIFO, "the FIFO was replaced by a file")
        XCTAssertEqual(try read(try Data(contentsOf: URL(fileURLWithPath: path("received.tsr"))))[0].shape, [4, 3])
    }

    func testClosedPipeEndsQuietly() throws {
        let big = try write([matrix("e", rows: 200_000, cols: 4)], to: "big.tsr")
        let tensor = productsDirectory().appendingPathComponent("tensor").path
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = ["-c", "set -o pipefail; '\(tensor)' to csv '\(big)' 2>\(path("err.txt")) | head -n 2 >/dev/null; echo ${PIPESTATUS[0]} > \(path("status.txt"))"]
        try p.run(); p.waitUntilExit()
        let status = try String(contentsOfFile: path("status.txt"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertTrue(["0", "141"].contains(status), "status \(status)")
        XCTAssertEqual(try String(contentsOfFile: path("err.txt"), encoding: .utf8), "", "a closed pipe printed an error")
    }

    func testRowAndTensorOperations() throws {
        let a = try write([matrix("mean", rows: 10, cols: 2), Tensor(name: "c", shape: [], doubles: [3])], to: "a.tsr")
        let b = try write([Tensor(name: "labels", shape: [10], int64s: (0..<10).map { Int64($0 % 3) })], to: "b.tsr")

        let pasted = try runTool("tensor", ["paste", a, b])
        XCTAssertEqual(pasted.status, 0, pasted.stderr)
        XCTAssertEqual(Set(try read(pasted.stdout).map(\.name)), ["mean", "labels", "c"])

        let sliced = try read(try runTool("tensor", ["slice", "--start", "3", "--end", "7"], stdin: pasted.stdout).stdout)
        let mean = try XCTUnwrap(sliced.first { $0.name == "mean" })
        XCTAssertEqual(mean.floats(), (6..<14).map { Float($0) * 0.5 })
        XCTAssertEqual(try sliced.first { $0.name == "labels" }!.int64s(), [0, 1, 2, 0])
        XCTAssertEqual(sliced.first { $0.name == "c" }!.doubles(), [3], "0-d tensors pass through whole")

        let head = try read(try runTool("tensor", ["head", "-n", "2"], stdin: pasted.stdout).stdout)
        XCTAssertEqual(head.first { $0.name == "mean" }!.rows, 2)

        let selected = try read(try runTool("tensor", ["select", "labels"], stdin: pasted.stdout).stdout)
        XCTAssertEqual(selected.map(\.name), ["labels"])
        let dropped = try read(try runTool("tensor", ["drop", "labels", "c"], stdin: pasted.stdout).stdout)
        XCTAssertEqual(dropped.map(\.name), ["mean"])
        let renamed = try read(try runTool("tensor", ["rename", "mean=embedding"], stdin: pasted.stdout).stdout)
        XCTAssertEqual(Set(renamed.map(\.name)), ["embedding", "labels", "c"])

        // Pasting streams with different row counts, or the same name twice, is refused.
        let short = try write([Tensor(name: "y", shape: [9], int64s: Array(repeating: 1, count: 9))], to: "s.tsr")
        let mismatch = try runTool("tensor", ["paste", a, short])
        XCTAssertEqual(mismatch.status, 65)
        XCTAssertTrue(mismatch.stderr.contains("row counts differ"), mismatch.stderr)
        XCTAssertEqual(try runTool("tensor", ["paste", a, a]).status, 65)
    }

    /// Commands that copy rows write the records they copy whole as they came, still compressed,
    /// when the tensor keeps its id; they compress the others (a record cut by head or slice, a
    /// tensor whose id changes); --level or --no-shuffle asks for every record anew. Whatever
    /// they copy, the tensors read the same.
    func testWholeRecordsAreCopiedStillCompressed() throws {
        let x = matrix("x", rows: 300, cols: 7), y = matrix("y", rows: 300, cols: 3, offset: 1)
        // x in records of 20 rows (560 bytes), y after it (id 1), at level 19.
        let sink = ArraySink()
        let w = try TensorStreamWriter(sink: sink, options: WriterOptions(level: 19, chunkBytes: 560))
        try w.write(x); try w.write(y); try w.finish()
        let file = path("xy.tsr")
        try Data(sink.bytes).write(to: URL(fileURLWithPath: file))
        // The input's frames of each tensor.
        var frames: [String: [[UInt8]]] = [:]
        let reader = try TensorStreamReader(ArraySource(sink.bytes))
        while let event = try reader.next() {
            if case .data(let i, _, _) = event { frames[reader.tensors[i].name, default: []].append(Array(try XCTUnwrap(reader.lastCompressedData).frame)) }
        }
        XCTAssertEqual(frames["x"]?.count, 15)
        func copied(_ out: Data, _ name: String) -> Int {
            frames[name]!.filter { [UInt8](out).firstRange(of: $0) != nil }.count
        }
        for (args, xCopied, yCopied) in [(["cat", file, file], 15, 7), (["rename", "x=z"], 15, 7), (["head", "-n", "50"], 2, 1),
                                        (["slice", "--start", "20", "--end", "300"], 14, 6), (["select", "y"], 0, 0),
                                        (["drop", "y"], 15, 0), (["cat", "--level", "1", file], 0, 0), (["rename", "--no-shuffle", "x=z"], 0, 0)] {
            let r = try runTool("tensor", args, stdin: args.contains(file) ? Data() : Data(sink.bytes))
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertEqual(copied(r.stdout, "x"), xCopied, "\(args): records of x copied")
            XCTAssertEqual(copied(r.stdout, "y"), yCopied, "\(args): records of y copied")
            let out = try read(r.stdout)
            if let t = out.first(where: { $0.name == "x" || $0.name == "z" }) {
                let rows = args[0] == "head" ? 0 ..< 50 : args[0] == "slice" ? 20 ..< 300 : 0 ..< 300
                let whole = args.filter { $0 == file }.count == 2 ? x.floats() + x.floats() : x.rows(rows).floats()
                XCTAssertEqual(t.floats(), whole, "\(args)")
            }
        }
        // paste: x keeps its id (0), y does not (it is 2 after z of the other stream).
        let z = try write([matrix("z", rows: 300, cols: 2)], to: "z.tsr")
        let pasted = try runTool("tensor", ["paste", file, z])
        XCTAssertEqual(pasted.status, 0, pasted.stderr)
        XCTAssertEqual([copied(pasted.stdout, "x"), copied(pasted.stdout, "y")], [15, 0])
        XCTAssertEqual(try read(pasted.stdout).map(\.name), ["x", "z", "y"])
        XCTAssertEqual(try read(pasted.stdout)[0].data, x.data)
        // split: every record of x goes whole to a shard of 40 rows; none of y's 46-row records does.
        for (prefix, extra, xCopied) in [("c-", [String](), 15), ("d-", ["--level", "1"], 0)] {
            let r = try runTool("tensor", ["split", "--rows", "40", "--prefix", path(prefix)] + extra, stdin: Data(sink.bytes))
            XCTAssertEqual(r.status, 0, r.stderr)
            let files = String(decoding: r.stdout, as: UTF8.self).split(separator: "\n").map(String.init)
            XCTAssertEqual(files.count, 8)
            let shards = try files.reduce(into: Data()) { $0 += try Data(contentsOf: URL(fileURLWithPath: $1)) }
            XCTAssertEqual(copied(shards, "x"), xCopied, "split \(extra)")
            XCTAssertEqual(copied(shards, "y"), 0, "split \(extra)")
            let joined = try read(try runTool("tensor", ["cat"] + files).stdout)
            XCTAssertEqual(joined.map(\.data), [x.data, y.data], "split \(extra)")
        }
    }

    func testTakeAndWhere() throws {
        let data = try write([matrix("x", rows: 6, cols: 2),
                              Tensor(name: "split", shape: [6], int64s: [0, 1, 0, 2, 0, 1]),
                              Tensor(name: "c", shape: [], doubles: [1])], to: "d.tsr")
        let idx = try write([Tensor(name: "i", shape: [4], int64s: [5, 0, 0, -1])], to: "i.tsr")
        let taken = try read(try runTool("tensor", ["take", "--indices", idx, data]).stdout)
        XCTAssertEqual(taken.first { $0.name == "x" }!.floats(), [5, 5.5, 0, 0.5, 0, 0.5, 5, 5.5])
        XCTAssertEqual(try taken.first { $0.name == "split" }!.int64s(), [1, 0, 0, 1])
        let bad = try write([Tensor(name: "i", shape: [1], int64s: [6])], to: "bad.tsr")
        let refused = try runTool("tensor", ["take", "--indices", bad, data])
        XCTAssertEqual(refused.status, 65)
        XCTAssertTrue(refused.stderr.contains("out of range"), refused.stderr)

        let train = try read(try runTool("tensor", ["where", "split=0", data]).stdout)
        XCTAssertEqual(train.first { $0.name == "x" }!.floats(), [0, 0.5, 2, 2.5, 4, 4.5])
        XCTAssertEqual(train.first { $0.name == "c" }!.doubles(), [1])
        let rest = try read(try runTool("tensor", ["where", "split!=0", "--drop-condition", data]).stdout)
        XCTAssertEqual(rest.map(\.name), ["x", "c"])
        XCTAssertEqual(rest[0].floats(), [1, 1.5, 3, 3.5, 5, 5.5])
        XCTAssertEqual(try runTool("tensor", ["where", "nope=1", data]).status, 65)
        XCTAssertEqual(try runTool("tensor", ["where", "split", data]).status, 64)
    }

    func testSplitThenCatGivesTheOriginal() throws {
        let whole = try write([matrix("mean", rows: 103, cols: 3),
                               Tensor(name: "labels", shape: [103], int64s: (0..<103).map { Int64($0) }),
                               Tensor(name: "scale", shape: [], doubles: [0.5])], to: "whole.tsr")
        let split = try runTool("tensor", ["split", "--shards", "4", "--prefix", path("part-"), whole])
        XCTAssertEqual(split.status, 0, split.stderr)
        let files = String(decoding: split.stdout, as: UTF8.self).split(separator: "\n").map(String.init)
        XCTAssertEqual(files.count, 4)
        var rows: [Int] = []
        for f in files {
            let t = try read(try Data(contentsOf: URL(fileURLWithPath: f)))
            rows.append(t.first { $0.name == "mean" }!.rows)
            XCTAssertEqual(t.first { $0.name == "scale" }!.doubles(), [0.5], "every shard has the 0-d tensors")
        }
        XCTAssertEqual(rows, [26, 26, 26, 25])
        let cat = try runTool("tensor", ["cat"] + files)
        XCTAssertEqual(cat.status, 65, "0-d tensors cannot be concatenated: \(cat.stderr)")
        let noScalar = try runTool("tensor", ["drop", "scale", "--input", whole])
        let byRows = try runTool("tensor", ["split", "--rows", "50", "--prefix", path("r-")], stdin: noScalar.stdout)
        let rfiles = String(decoding: byRows.stdout, as: UTF8.self).split(separator: "\n").map(String.init)
        XCTAssertEqual(rfiles.count, 3)
        let joined = try read(try runTool("tensor", ["cat"] + rfiles).stdout)
        let original = try read(noScalar.stdout)
        XCTAssertEqual(joined.map(\.data), original.map(\.data))
    }

    func testInfoReportsShapesAndStats() throws {
        let f = try write([matrix("mean", rows: 5, cols: 2), Tensor(name: "n", shape: [2], doubles: [.nan, 1])], to: "i.tsr")
        let r = try runTool("tensor", ["info", "--stats", "--json", f])
        XCTAssertEqual(r.status, 0, r.stderr)
        let json = try JSONSerialization.jsonObject(with: r.stdout) as! [[String: Any]]
        XCTAssertEqual(json.map { $0["name"] as! String }, ["mean", "n"])
        XCTAssertEqual(json[0]["shape"] as! [Int], [5, 2])
        let stats = json[0]["stats"] as! [String: Any]
        XCTAssertEqual(stats["max"] as! Double, 4.5)
        XCTAssertEqual((json[1]["stats"] as! [String: Any])["nonfinite"] as! Int, 1)
    }

    /// Every program of the toolbox (keep in step with TOOLS in the Makefile).
    let allTools = ["tensor", "emb-encode", "emb-laplace", "emb-fuse", "emb-sim", "sve-decompose", "sve-train", "sve-predict", "calib-metrics"]

    func testCompletionsAndManPagesAreUpToDate() throws {
        let makefile = try String(contentsOf: repositoryRoot().appendingPathComponent("Makefile"), encoding: .utf8)
        XCTAssertTrue(makefile.contains("TOOLS := " + allTools.joined(separator: " ")), "Makefile TOOLS differs from the tests' list")
        let root = repositoryRoot()
        for tool in allTools {
            for (shell, file) in [("bash", "completions/bash/\(tool)"), ("zsh", "completions/zsh/_\(tool)"), ("fish", "completions/fish/\(tool).fish")] {
                let generated = try runTool(tool, ["--generate-completion-script", shell]).stdout
                let committed = try Data(contentsOf: root.appendingPathComponent(file))
                XCTAssertEqual(generated, committed, "\(file) is out of date: run 'make completions'")
            }
            // Every option of every subcommand appears in the man page.
            let pages = try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("man").path)
                .filter { $0 == "\(tool).1" || $0.hasPrefix("\(tool).") && $0.hasSuffix(".1") }
            XCTAssertTrue(pages.contains("\(tool).1"))
            let man = try pages.map { try String(contentsOf: root.appendingPathComponent("man/\($0)"), encoding: .utf8) }.joined()
            let dump = try runTool(tool, ["--experimental-dump-help"]).stdout
            let options = Set(String(decoding: dump, as: UTF8.self).matches(of: /"kind" : "long",\s*"name" : "([a-z0-9-]+)"/).map { String($0.1) })
            XCTAssertGreaterThan(options.count, 5)
            for o in options {
                XCTAssertTrue(man.contains("Fl -\(o)") || man.contains("--\(o)"), "man/\(tool).*.1 lack --\(o): run 'make man'")
            }
        }
    }
}
