import Foundation
import XCTest
import TestSupport
import TensorStream

/// examples/tensorstream.py, the Python reader and writer, against the conformance corpus and
/// the `tensor` tool, both ways. Runs with the project's virtual environment (.venv/bin/python
/// with numpy and zstandard, made by .ci/run); skipped when it is not there.
final class PythonTests: XCTestCase {
    var dir: URL!
    let root = repositoryRoot()

    override func setUpWithError() throws { dir = try temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func python() throws -> String {
        let py = root.appendingPathComponent(".venv/bin/python").path
        guard FileManager.default.isExecutableFile(atPath: py),
              (try? runTool(py, ["-c", "import numpy, zstandard"]))?.status == 0 else {
            throw XCTSkip("no .venv/bin/python with numpy and zstandard (python3 -m venv .venv && .venv/bin/pip install numpy zstandard)")
        }
        return py
    }

    /// Runs Python code with examples/ on the path.
    func py(_ code: String, stdin: Data = Data()) throws -> ToolRun {
        let prelude = "import sys, json, io; sys.path.insert(0, \(String(reflecting: root.appendingPathComponent("examples").path))); import numpy as np; import tensorstream as ts\n"
        return try runTool(try python(), ["-c", prelude + code], stdin: stdin)
    }

    func testConformanceCorpusIsClassified() throws {
        let r = try runTool(try python(), [root.appendingPathComponent("tests/conformance/check.py").path])
        let out = String(decoding: r.stdout, as: UTF8.self)
        XCTAssertEqual(r.status, 0, out + r.stderr)
        XCTAssertTrue(out.hasSuffix("files classified\n") && !out.contains("accepted") && !out.contains("refused"), out)
    }

    func testPythonReadsWhatTheToolWrites() throws {
        // Every dtype, chunked, shuffled and not, two segments concatenated.
        let values: [Double] = [1, -2.5, 0, 3, 0.125, 64]
        var stream: [UInt8] = []
        for shuffle in [true, false] {
            let made = try runTool("tensor", ["from", "csv", "--name", "x", "--dtype", "f32"] + (shuffle ? [] : ["--no-shuffle"]),
                                   stdin: Data("a,b\n1,-2.5\n0,3\n0.125,64\n".utf8))
            XCTAssertEqual(made.status, 0, made.stderr)
            stream += Array(made.stdout)
        }
        let sink = ArraySink()
        let w = try TensorStreamWriter(sink: sink, options: WriterOptions(chunkBytes: 8))
        for dt in DType.allCases where dt != .bool {
            try w.write(Tensor(info: TensorInfo(name: "t_\(dt.name)", dtype: dt, rowShape: [2], rows: 3),
                               data: convertFromDouble(values.map { abs($0) }, to: dt)))
        }
        try w.write(Tensor(name: "s", shape: [], doubles: [0.5]))
        try w.finish()
        stream += sink.bytes
        let r = try py("a = ts.read(sys.stdin.buffer); print(json.dumps({k: [str(v.dtype), list(v.shape), v.reshape(-1).astype(float).tolist()] for k, v in a.items()}))",
                       stdin: Data(stream))
        XCTAssertEqual(r.status, 0, r.stderr)
        let got = try JSONSerialization.jsonObject(with: r.stdout) as! [String: [Any]]
        XCTAssertEqual(got["x"]?[1] as? [Int], [6, 2])
        XCTAssertEqual(got["x"]?[2] as? [Double], values + values)
        for dt in DType.allCases where dt != .bool {
            XCTAssertEqual(got["t_\(dt.name)"]?[2] as? [Double], values.map { abs($0) }.map { dt.isInteger ? $0.rounded(.towardZero) : $0 }, dt.name)
        }
        XCTAssertEqual(got["s"]?[1] as? [Int], [])
        XCTAssertEqual(got["s"]?[2] as? [Double], [0.5])
        // A stream the tool refuses, the module refuses too, for the same rule.
        let cut = try py("a = ts.read(sys.stdin.buffer)", stdin: Data(stream.dropLast(3)))
        XCTAssertNotEqual(cut.status, 0)
        XCTAssertTrue(cut.stderr.contains("[cut-off]"), cut.stderr)
    }

    func testToolReadsWhatPythonWrites() throws {
        let code = """
            m = np.arange(12, dtype=np.float32).reshape(4, 3) / 4
            with ts.Writer(sys.stdout.buffer, chunk_bytes=24) as w:
                i = w.add("mean", "f32", row_shape=[3], meta={"model": "py"})
                j = w.add("b", "bf16", row_shape=[3])
                k = w.add("n", "i64")
                for r in range(4):
                    w.append(i, m[r:r + 1]); w.append(j, m[r:r + 1] * 2); w.append(k, np.array([r * 10]))
            ts.write(sys.stdout.buffer, {"s": np.float64(2.5), "flags": np.array([True, False])})
            """
        let r = try py(code)
        XCTAssertEqual(r.status, 0, r.stderr)
        let back = try TensorStreamReader(ArraySource(Array(r.stdout))).readAll()
        XCTAssertEqual(back.map(\.name), ["mean", "b", "n", "s", "flags"])
        XCTAssertEqual(back[0].floats(), (0..<12).map { Float($0) / 4 })
        XCTAssertEqual(back[0].meta["model"], "py")
        XCTAssertEqual(back[1].dtype, .bf16)
        XCTAssertEqual(back[1].floats(), (0..<12).map { Float($0) / 2 })
        XCTAssertEqual(try back[2].int64s(), [0, 10, 20, 30])
        XCTAssertEqual(back[3].shape, [])
        XCTAssertEqual(back[4].dtype, .bool)
        // And the tool itself reads it.
        let csv = try runTool("tensor", ["to", "csv", "--tensor", "n"], stdin: r.stdout)
        XCTAssertEqual(String(decoding: csv.stdout, as: UTF8.self), "0\n10\n20\n30\n", csv.stderr)
        // A Python producer that fails half-way leaves a stream the tool refuses.
        let failed = try py("""
            try:
                with ts.Writer(sys.stdout.buffer) as w:
                    i = w.add("x", "f32", row_shape=[2]); w.append(i, np.zeros((3, 2))); raise RuntimeError("boom")
            except RuntimeError:
                pass
            """)
        XCTAssertEqual(failed.status, 0, failed.stderr)
        let info = try runTool("tensor", ["info"], stdin: failed.stdout)
        XCTAssertEqual(info.status, 65, info.stderr)
        XCTAssertTrue(info.stderr.contains("cut off"), info.stderr)
    }
}
