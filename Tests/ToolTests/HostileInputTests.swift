import Foundation
import XCTest
import TestSupport
import TensorStream

/// The commands of issue 10 ("tried as an attacker would") for the UEC, SVE and metrics programs:
/// hostile numbers, limits and inputs. Each ends with one line and a sysexits status (or a
/// warning and a correct result), never a crash, a hang or a silently wrong output.
final class HostileInputTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = try temporaryDirectory()
        try makeSideInputs(dir)   // post.tsr (D = 4), corpus.tsr (6 rows), basis.tsr, model.tsr
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    @discardableResult
    func save(_ tensors: [Tensor], _ name: String) throws -> String {
        try Data(try encodeStream(tensors)).write(to: URL(fileURLWithPath: path(name)))
        return path(name)
    }

    func read(_ data: Data) throws -> [Tensor] { try TensorStreamReader(ArraySource(Array(data))).readAll() }
    func read(_ file: String) throws -> [Tensor] { try read(try Data(contentsOf: URL(fileURLWithPath: file))) }

    func wave(_ n: Int, _ d: Int, _ phase: Double) -> [Float] { (0..<n * d).map { Float(sin(Double($0) * 0.7 + phase)) } }

    /// Asserts a refusal: the status, one line `tool: ...` containing `message`, no complete output.
    func assertRefused(_ tool: String, _ args: [String], stdin: [UInt8] = [], status: Int32, _ message: String,
                       file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try runTool(tool, args, stdin: Data(stdin))
        let label = "\(tool) \(args.joined(separator: " "))"
        XCTAssertFalse(r.terminatedBySignal, "\(label) crashed: \(r.stderr)", file: file, line: line)
        XCTAssertEqual(r.status, status, "\(label): \(r.stderr)", file: file, line: line)
        XCTAssertTrue(r.stderr.hasPrefix("\(tool): "), "\(label): \(r.stderr)", file: file, line: line)
        XCTAssertEqual(r.stderr.filter { $0 == "\n" }.count, 1, "\(label): not one line: \(r.stderr)", file: file, line: line)
        XCTAssertTrue(r.stderr.contains(message), "\(label): \(r.stderr)", file: file, line: line)
        // A stream cut short by the error may have begun on standard output: it must not read as complete.
        if !r.stdout.isEmpty, let reader = try? TensorStreamReader(ArraySource(Array(r.stdout))) {
            XCTAssertThrowsError(try reader.readAll(), "\(label) wrote a complete stream", file: file, line: line)
        }
    }

    // MARK: - Crashes and hangs

    func testHugeTopKCostsTheCorpusNotK() throws {
        let queries = try save([Tensor(name: "embedding", shape: [3, 4], floats: wave(3, 4, 5))], "q.tsr")
        for k in ["1000000000000", "4611686018427387904", "100000000"] {
            let t0 = Date()
            let r = try runTool("emb-sim", ["--corpus", path("corpus.tsr"), "--top-k", k, queries])
            XCTAssertEqual(r.status, 0, "--top-k \(k): \(r.stderr)")
            XCTAssertLessThan(Date().timeIntervalSince(t0), 10, "--top-k \(k) took too long")
            let out = try read(r.stdout)
            XCTAssertEqual(out[0].shape, [3, 6], "--top-k \(k): the width is the corpus's 6 rows")
            XCTAssertEqual(try out[0].int64s().sorted().filter { $0 < 0 }, [], "every slot is a real row")
        }
        // --merge with a huge k: the width is what the shards hold.
        let hits = path("hits.tsr")
        XCTAssertEqual(try runTool("emb-sim", ["--corpus", path("corpus.tsr"), "--top-k", "2", queries, "-o", hits]).status, 0)
        let m = try runTool("emb-sim", ["--merge", hits, "--top-k", "4611686018427387904"])
        XCTAssertEqual(m.status, 0, m.stderr)
        XCTAssertEqual(try read(m.stdout)[0].shape, [3, 2])
    }

    func testOutOfRangeNumbersAreUsageErrors() throws {
        let stack = ["--basis", path("basis.tsr"), "--stack", "linear:l"]
        let cases: [(String, [String], String)] = [
            ("emb-sim", ["--corpus", path("corpus.tsr"), "--top-k", "2", "--corpus-offset", "9223372036854775807"], "--corpus-offset must be between 0 and"),
            ("emb-sim", ["--corpus", path("corpus.tsr"), "--top-k", "-1"], "--top-k must be at least 1"),
            ("emb-sim", ["--matrix", "--beta", "-1"], "--beta must be a number ≥ 0"),
            ("emb-sim", ["--matrix", "--query-block", "0"], "--query-block must be between 1 and"),
            ("sve-train", stack + ["--epochs", "4611686018427387904"], "--epochs must be between 1 and 1000000"),
            ("sve-train", stack + ["--batch-size", "9223372036854775807"], "--batch-size must be between 1 and 1000000"),
            ("sve-train", stack + ["--lr", "-1"], "--lr must be positive"),
            ("sve-train", stack + ["--weight-decay", "inf"], "--weight-decay must be a number ≥ 0"),
            ("calib-metrics", ["--bootstrap", "1000000000"], "--bootstrap must be between 0 and 100000"),
            ("emb-laplace", ["fit", "--batch-size", "100000000"], "--batch-size must be at most 16384"),
            ("emb-laplace", ["apply", "--posterior", path("post.tsr"), "--block-rows", "-5"], "--block-rows must be between 1 and"),
            ("emb-fuse", ["--weights", "0,0", path("corpus.tsr"), path("corpus.tsr")], "--weights must be numbers ≥ 0 with a positive sum"),
            ("emb-fuse", ["--weights=-1,2", path("corpus.tsr"), path("corpus.tsr")], "--weights must be numbers ≥ 0 with a positive sum"),
            ("emb-fuse", ["--weights", "-1,2", path("corpus.tsr"), path("corpus.tsr")], "--weights must be numbers ≥ 0 with a positive sum"),
            ("sve-predict", ["--model", path("model.tsr"), "--chunk", "-1"], "--chunk must be between 1 and"),
            ("sve-decompose", ["--threads", "-2"], "--threads must be between 1 and 1024"),
            ("sve-decompose", ["--level", "-9"], "--level must be between -7 and 19"),
        ]
        for (tool, args, message) in cases {
            try assertRefused(tool, args, status: 64, message)
        }
        // A negative value that is in range is taken as a value, not as an option.
        let r = try runTool("emb-laplace", ["fit", "--batch-size", "4", "--level", "-7", "-o", path("p7.tsr")],
                            stdin: Data(try encodeStream([Tensor(name: "query", shape: [8, 4], floats: wave(8, 4, 0)),
                                                          Tensor(name: "positive", shape: [8, 4], floats: wave(8, 4, 0.3))])))
        XCTAssertEqual(r.status, 0, r.stderr)
    }

    /// Runs a shell command (for `ulimit`), with a time limit.
    func shell(_ script: String) throws -> (status: Int32, stderr: String, seconds: Double) {
        let t0 = Date()
        let r = try runTool("/bin/sh", ["-c", script])
        return (r.status, r.stderr, Date().timeIntervalSince(t0))
    }

    /// --memory's default (25 %) is a share of what the process may use: under ulimit -v 400000
    /// (409.6 MB) the budget is 102.4 MB, not a quarter of the machine.
    func testMemoryBudgetFollowsTheAddressSpaceLimit() throws {
        let bin = productsDirectory().path
        let queries = try save([Tensor(name: "embedding", shape: [5, 4], floats: wave(5, 4, 1))], "q-budget.tsr")
        let r = try shell("ulimit -v 400000; exec timeout 20 '\(bin)/emb-sim' --threads 1 -v --corpus '\(path("corpus.tsr"))' --top-k 2 '\(queries)' -o '\(path("budget.tsr"))'")
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("memory 102.4 MB:"), r.stderr)
    }

    func testBLASToolsUnderAnAddressSpaceLimitEndCleanly() throws {
        let bin = productsDirectory().path
        let queries = try save([Tensor(name: "embedding", shape: [5, 4], floats: wave(5, 4, 1))], "q.tsr")
        // Before: OpenBLAS retried its 128 MB buffer forever at 100 % CPU (the timeout killed it: 124).
        for (limit, command) in [
            (307200, "'\(bin)/emb-laplace' apply --posterior '\(path("post.tsr"))' '\(queries)' -o '\(path("a.tsr"))'"),
            (307200, "'\(bin)/emb-sim' --corpus '\(path("corpus.tsr"))' --top-k 2 '\(queries)' -o '\(path("s.tsr"))'"),
            (200000, "'\(bin)/emb-sim' --corpus '\(path("corpus.tsr"))' --top-k 2 '\(queries)' -o '\(path("s.tsr"))'"),
        ] {
            let r = try shell("ulimit -v \(limit); exec timeout 20 \(command)")
            XCTAssertTrue([0, 71].contains(r.status), "ulimit -v \(limit) \(command): status \(r.status): \(r.stderr)")
            XCTAssertLessThan(r.seconds, 15)
            if r.status == 71 {
                XCTAssertEqual(r.stderr.filter { $0 == "\n" }.count, 1, r.stderr)
                XCTAssertTrue(r.stderr.contains("not enough address space for OpenBLAS"), r.stderr)
            }
        }
        // So little that not even one buffer fits: always 71, one line.
        let r = try shell("ulimit -v 200000; exec timeout 20 '\(bin)/emb-laplace' apply --posterior '\(path("post.tsr"))' '\(queries)'")
        XCTAssertEqual(r.status, 71, r.stderr)
        XCTAssertTrue(r.stderr.hasPrefix("emb-laplace: not enough address space for OpenBLAS's work buffer"), r.stderr)
    }

    func testCalibMetricsUnderAMemoryLimitEndsCleanly() throws {
        // 2·10^6 rows of P(class 1): the per-row scores outgrow 130 MB of address space.
        let n = 2_000_000
        let input = try save([Tensor(name: "probs", shape: [n], floats: (0..<n).map { Float(($0 * 7919) % 1000) / 1000 }),
                              Tensor(name: "labels", shape: [n], int64s: (0..<n).map { Int64($0 % 2) })], "big.tsr")
        // The build under test, and the release build when there is one: an optimiser once
        // removed the checked allocator's probe (malloc then free) from release builds only.
        let release = repositoryRoot().appendingPathComponent(".build/release/calib-metrics").path
        // Which allocation meets the limit first depends on the threads' timing: a trap (a small
        // block buffer after the per-row scores had taken the last of the address space) came
        // in 3 runs of 40, so each build runs several times. The checked allocator's refusal
        // names what it was for; an unchecked one's (the programs' malloc) says what was refused.
        let builds = ["\(productsDirectory().path)/calib-metrics"] + (FileManager.default.fileExists(atPath: release) ? [release] : [])
        for bin in builds.flatMap({ Array(repeating: $0, count: 6) }) {
            let r = try shell("ulimit -v 130000; exec timeout 60 '\(bin)' '\(input)'")
            XCTAssertTrue([0, 71].contains(r.status), "\(bin): status \(r.status): \(r.stderr)")
            if r.status == 71 {
                XCTAssertEqual(r.stderr.filter { $0 == "\n" }.count, 1, r.stderr)
                XCTAssertTrue(r.stderr.hasPrefix("calib-metrics: cannot allocate")
                              || r.stderr.hasPrefix("calib-metrics: out of memory: the system refused"), r.stderr)
            }
            XCTAssertFalse(r.stderr.contains("Fatal error"), "\(bin): \(r.stderr)")
        }
    }

    // MARK: - Accepted silently, now refused or warned

    func testNonFiniteOutputsFromFiniteInputsAreRefused() throws {
        var rows = wave(3, 4, 2)
        rows[4] = 3e38
        try assertRefused("emb-laplace", ["apply", "--posterior", path("post.tsr")],
                          stdin: try encodeStream([Tensor(name: "embedding", shape: [3, 4], floats: rows)]),
                          status: 65, "row 1 of 'embedding' holds values up to 3e+38")
        for tiny in [Float(1e-30), Float.leastNonzeroMagnitude] {
            var small = wave(3, 4, 2)
            for j in 8..<12 { small[j] = tiny }
            try assertRefused("emb-laplace", ["apply", "--posterior", path("post.tsr"), "--normalize", "delta"],
                              stdin: try encodeStream([Tensor(name: "embedding", shape: [3, 4], floats: small)]),
                              status: 65, "row 2 of 'embedding' has a mean of norm")
        }
    }

    func testAllZeroRowsAreWarnedOnce() throws {
        var q = wave(4, 4, 1)
        for j in 4..<8 { q[j] = 0 }
        for j in 12..<16 { q[j] = 0 }
        let queries = try save([Tensor(name: "embedding", shape: [4, 4], floats: q)], "q.tsr")
        let r = try runTool("emb-sim", ["--corpus", path("corpus.tsr"), "--top-k", "2", "--query-block", "1", queries])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stderr, "emb-sim: warning: all zero, so their cosine with anything is 0: 2 query rows of \(queries)\n")
        XCTAssertEqual(try read(r.stdout)[0].shape, [4, 2])
    }

    func testOverlappingShardsAreRefused() throws {
        let queries = try save([Tensor(name: "embedding", shape: [3, 4], floats: wave(3, 4, 5))], "q.tsr")
        let a = path("a.hits.tsr"), b = path("b.hits.tsr")
        XCTAssertEqual(try runTool("emb-sim", ["--corpus", path("corpus.tsr"), "--top-k", "2", queries, "-o", a]).status, 0)
        try assertRefused("emb-sim", ["--merge", a, "--merge", a, "--top-k", "2"], status: 64, "is named twice")
        XCTAssertEqual(link(a, b), 0)
        try assertRefused("emb-sim", ["--merge", a, b, "--top-k", "2"], status: 64, "are the same file")
        try FileManager.default.removeItem(atPath: b)
        try FileManager.default.copyItem(atPath: a, toPath: b)
        try assertRefused("emb-sim", ["--merge", a, b, "--top-k", "2"], status: 65, "the shards overlap")
    }

    func testUECToolsRefuseNonFloatTensors() throws {
        let ints = Tensor(name: "embedding", shape: [3, 4], int64s: (0..<12).map { Int64($0) })
        let bools = Tensor(name: "embedding", dtype: .bool, shape: [3, 4], data: [UInt8](repeating: 1, count: 12))
        let i8 = Tensor(name: "mean", dtype: .i8, shape: [3, 4], data: [UInt8](repeating: 1, count: 12))
        for t in [ints, bools] {
            try assertRefused("emb-laplace", ["apply", "--posterior", path("post.tsr")], stdin: try encodeStream([t]),
                              status: 65, "'embedding' is \(t.dtype.name), not floating point (convert it when importing: tensor from … --dtype f32)")
            try assertRefused("emb-sim", ["--corpus", path("corpus.tsr"), "--top-k", "2"], stdin: try encodeStream([t]),
                              status: 65, "not floating point")
        }
        let v = Tensor(name: "var", shape: [3, 4], floats: [Float](repeating: 0.1, count: 12))
        try assertRefused("emb-fuse", ["-", path("corpus.tsr")], stdin: try encodeStream([i8, v]), status: 65, "'mean' is i8, not floating point")
        try assertRefused("emb-laplace", ["fit"],
                          stdin: try encodeStream([Tensor(name: "query", shape: [4, 2], int64s: [1, 2, 3, 4, 5, 6, 7, 8]),
                                                   Tensor(name: "positive", shape: [4, 2], int64s: [1, 2, 3, 4, 5, 6, 7, 8])]),
                          status: 65, "'query' is i64, not floating point")
    }

    /// Pairs with no columns crashed the fit (an illegal instruction in the Fisher's pieces);
    /// the layer, like the pairs, cannot come from standard input twice.
    func testFitRefusesPairsWithoutColumnsAndTwoStandardInputs() throws {
        let empty = try encodeStream([Tensor(name: "query", shape: [4, 0], floats: []), Tensor(name: "positive", shape: [4, 0], floats: [])])
        try assertRefused("emb-laplace", ["fit"], stdin: empty, status: 65, "the pairs have no columns ('query' is f32[4,0])")
        try assertRefused("emb-laplace", ["fit", "--layer", "-"], status: 64, "the pairs and --layer cannot both be standard input")
        try assertRefused("emb-laplace", ["fit", "--layer", "-", "--heldout", "-", path("corpus.tsr")], status: 64,
                          "--layer and --heldout cannot both be standard input")
        try assertRefused("emb-laplace", ["fit", "--layer", "-", "--heldout", "-"], status: 64,
                          "the pairs, --layer and --heldout cannot all be standard input")
    }

    /// A --layer that cannot be opened is said at once, while the pairs' producer has written
    /// nothing yet (the layer is loaded beside the first block of pairs, but opened before).
    func testAMissingLayerIsSaidBeforeAnyPairArrives() throws {
        let bin = productsDirectory().path, fifo = path("pairs.fifo")
        // The FIFO held open for writing by the command itself: pairs that never come, and no end.
        let r = try shell("mkfifo '\(fifo)' && exec 3<>'\(fifo)' && "
                          + "exec timeout 10 '\(bin)/emb-laplace' fit --layer '\(path("no-such-layer.tsr"))' < '\(fifo)'")
        XCTAssertEqual(r.status, 66, r.stderr)
        XCTAssertTrue(r.stderr.hasPrefix("emb-laplace: "), r.stderr)
        XCTAssertTrue(r.stderr.contains("no-such-layer.tsr"), r.stderr)
        XCTAssertLessThan(r.seconds, 9, "waited for the pairs before saying the layer is missing")
    }

    func testRetrievalIndicesAndCutoffs() throws {
        let hits = try save([Tensor(name: "indices", shape: [2, 2], int64s: [0, 1, 2, 3])], "hits.tsr")
        let badRelevant = try save([Tensor(name: "relevant", shape: [2], int64s: [1, -5])], "rel-bad.tsr")
        try assertRefused("calib-metrics", ["--relevant", badRelevant, hits], status: 65, "--relevant: row 1 holds -5: corpus indices are 0 or more (-1 is padding)")
        let relevant = try save([Tensor(name: "relevant", shape: [2], int64s: [1, -1])], "rel.tsr")
        let negHits = try save([Tensor(name: "indices", shape: [2, 2], int64s: [0, -7, 2, 3])], "hits-neg.tsr")
        try assertRefused("calib-metrics", ["--relevant", relevant, negHits], status: 65, "'indices': row 0 holds -7")
        let r = try runTool("calib-metrics", ["--relevant", relevant, "--k", "1,5", hits])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stderr, "calib-metrics: warning: --k 5 is more than the 2 indices retrieved per query: nDCG and recall are reported at 2\n")
    }

    func testMessagesSayWhatIsWrong() throws {
        let logits = try encodeStream([Tensor(name: "logits", shape: [3, 2], floats: [1, 2, 0, 1, .infinity, 0]),
                                       Tensor(name: "labels", shape: [3], int64s: [0, 1, 0])])
        try assertRefused("calib-metrics", ["--logits"], stdin: logits, status: 65, "'logits': row 2 holds inf (expected finite logits)")
        let stack = ["--basis", path("basis.tsr"), "--stack", "linear:l"]
        for n in [0, 1] {
            let data = try encodeStream([Tensor(name: "features", shape: [n, 4], floats: wave(n, 4, 0)),
                                         Tensor(name: "labels", shape: [n], int64s: [Int64](repeating: 0, count: n))])
            try assertRefused("sve-train", stack, stdin: data, status: 65, "'features' has \(n) row\(n == 1 ? "" : "s"): training needs at least 2")
        }
    }

    func testTrainingWithoutValidationRowsSaysSo() throws {
        let data = try encodeStream([Tensor(name: "features", shape: [6, 4], floats: wave(6, 4, 0)),
                                     Tensor(name: "labels", shape: [6], int64s: [0, 1, 0, 1, 0, 1])])
        let split = try save([Tensor(name: "split", shape: [6], int64s: [0, 0, 0, 0, 0, 0])], "split.tsr")
        for extra in [["--split", split], ["--val-fraction", "0"]] {
            let out = path("m.tsr")
            let r = try runTool("sve-train", ["--basis", path("basis.tsr"), "--stack", "linear:l", "--epochs", "2", "-o", out] + extra,
                                stdin: Data(data))
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertTrue(r.stderr.hasPrefix("sve-train: warning: no validation rows ("), r.stderr)
            XCTAssertTrue(r.stderr.hasSuffix("keeping the last epoch, temperature 1 (not fitted)\n"), r.stderr)
            let t = try read(out).first { $0.name == "temperature" }!
            XCTAssertEqual(t.meta["sve.validation"], "none: last epoch kept, temperature 1 (not fitted)")
            XCTAssertEqual(t.meta["sve.validation_rows"], "0")
        }
    }
}
