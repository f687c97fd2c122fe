import Foundation
import XCTest
import TestSupport
import TensorStream

/// Beyond one machine: shard with `tensor split`, run a program per shard (as GNU parallel or a
/// cluster array job would), merge with `tensor cat`: the result equals the single run.
final class ShardingTests: XCTestCase {
    func testShardedRunsEqualTheSingleRun() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try makeSideInputs(dir)
        let p = { (name: String) in dir.appendingPathComponent(name).path }
        let queries = (0..<103 * 4).map { Float(sin(Double($0) * 0.61)) }
        try Data(try encodeStream([Tensor(name: "embedding", shape: [103, 4], floats: queries)]))
            .write(to: URL(fileURLWithPath: p("queries.tsr")))
        // The per-shard command, exactly as it would run under parallel or an array job.
        let perShard: [[String]] = [
            ["emb-laplace", "apply", "--posterior", p("post.tsr"), "--normalize", "delta"],
            ["emb-sim", "--corpus", p("corpus.tsr"), "--top-k", "3"],
        ]
        for command in perShard {
            let tool = command[0], args = Array(command.dropFirst())
            let single = try runTool(tool, args + [p("queries.tsr")])
            XCTAssertEqual(single.status, 0, single.stderr)
            let split = try runTool("tensor", ["split", "--shards", "4", "--prefix", p("\(tool)-part-"), p("queries.tsr")])
            XCTAssertEqual(split.status, 0, split.stderr)
            let shards = String(decoding: split.stdout, as: UTF8.self).split(separator: "\n").map(String.init)
            XCTAssertEqual(shards.count, 4)
            var outputs: [String] = []
            for shard in shards {
                let out = shard + ".out.tsr"
                let r = try runTool(tool, args + [shard, "-o", out])
                XCTAssertEqual(r.status, 0, r.stderr)
                outputs.append(out)
            }
            let merged = try runTool("tensor", ["cat"] + outputs)
            XCTAssertEqual(merged.status, 0, merged.stderr)
            let a = try TensorStreamReader(ArraySource(Array(single.stdout))).readAll()
            let b = try TensorStreamReader(ArraySource(Array(merged.stdout))).readAll()
            XCTAssertEqual(a.map(\.name), b.map(\.name), tool)
            XCTAssertEqual(a.map(\.shape), b.map(\.shape), tool)
            XCTAssertEqual(a.map(\.data), b.map(\.data), "\(tool): sharded result differs from the single run")
        }
    }

    /// A corpus too large for one machine: shard it, retrieve from every shard, merge the top-k lists.
    func testCorpusShardsMergeToTheSingleTopK() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let p = { (name: String) in dir.appendingPathComponent(name).path }
        // Rows repeat every 50, so there are exact ties across shards: the merge must break them
        // toward the lower corpus row, as the single run does.
        let corpus: [Float] = (0..<233 * 6).map { (i: Int) -> Float in
            let row = Double((i / 6) % 50), col = Double(i % 6)
            return Float(sin(row * 1.7 + col))
        }
        let queries = (0..<37 * 6).map { Float(cos(Double($0) * 0.43)) }
        try Data(try encodeStream([Tensor(name: "embedding", shape: [233, 6], floats: corpus)])).write(to: URL(fileURLWithPath: p("corpus.tsr")))
        try Data(try encodeStream([Tensor(name: "embedding", shape: [37, 6], floats: queries)])).write(to: URL(fileURLWithPath: p("q.tsr")))
        let single = try runTool("emb-sim", ["--corpus", p("corpus.tsr"), "--top-k", "7", p("q.tsr")])
        XCTAssertEqual(single.status, 0, single.stderr)
        let split = try runTool("tensor", ["split", "--shards", "3", "--prefix", p("c-"), p("corpus.tsr")])
        let shards = String(decoding: split.stdout, as: UTF8.self).split(separator: "\n").map(String.init)
        XCTAssertEqual(shards.count, 3)
        var hits: [String] = []
        for s in shards {
            let r = try runTool("emb-sim", ["--corpus", s, "--top-k", "7", p("q.tsr"), "-o", s + ".hits.tsr"])
            XCTAssertEqual(r.status, 0, r.stderr)
            hits.append(s + ".hits.tsr")
        }
        let merged = try runTool("emb-sim", ["--merge"] + hits + ["--top-k", "7"])
        XCTAssertEqual(merged.status, 0, merged.stderr)
        let a = try TensorStreamReader(ArraySource(Array(single.stdout))).readAll()
        let b = try TensorStreamReader(ArraySource(Array(merged.stdout))).readAll()
        let ai = try a.first { $0.name == "indices" }!.int64s(), bi = try b.first { $0.name == "indices" }!.int64s()
        XCTAssertEqual(ai, bi, "merged indices differ from the single run")
        XCTAssertEqual(a.first { $0.name == "scores" }!.floats(), b.first { $0.name == "scores" }!.floats())
        XCTAssertTrue(ai.contains { $0 >= 156 }, "no hit from the last shard: offsets not applied?")
    }
}
