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
}
