import Foundation
import XCTest
import TestSupport
import TensorStream

/// The README's two GNU parallel recipes (many queries; a large corpus merged with
/// `emb-sim --merge`), read from README.md and run on the real engine with `parallel -j 4`: the
/// result equals the single run. Skipped when GNU parallel is not installed (.ci/run installs it).
final class ParallelRecipeTests: XCTestCase {
    /// The commands under the README comment line that contains `marker`, up to the next blank or
    /// comment line, with the sizes made small for the test and four jobs at a time.
    func recipe(_ marker: String) throws -> [String] {
        let lines = try readmeLines()
        guard let start = lines.firstIndex(where: { $0.trimmingCharacters(in: .whitespaces).hasPrefix("#") && $0.contains(marker) }) else {
            XCTFail("README.md has no recipe \"\(marker)\"")
            return []
        }
        let body = lines[(start + 1)...].prefix {
            let t = $0.trimmingCharacters(in: .whitespaces)
            return !t.isEmpty && !t.hasPrefix("#")
        }
        let commands = shellCommands(Array(body))
        XCTAssertTrue(commands.contains { $0.hasPrefix("parallel ") }, "\(marker): no parallel command in \(commands)")
        return commands.map {
            $0.replacingOccurrences(of: "--rows 100000", with: "--rows 10")
              .replacingOccurrences(of: #"^parallel "#, with: "parallel -j 4 ", options: .regularExpression)
        }
    }

    /// The single run a recipe stands for: its per-shard command (parallel's quoted argument) on the
    /// whole input that `tensor split` cut, to standard output.
    func singleRun(of commands: [String]) throws -> String {
        let split = try XCTUnwrap(commands.first { $0.hasPrefix("tensor split ") })
        let input = try XCTUnwrap(split.components(separatedBy: " > ").first?.split(separator: " ").last.map(String.init))
        let par = try XCTUnwrap(commands.first { $0.hasPrefix("parallel ") })
        let quoted = par.split(separator: "'", omittingEmptySubsequences: false)
        XCTAssertGreaterThanOrEqual(quoted.count, 3, "no quoted per-shard command in \(par)")
        return String(quoted[1]).replacingOccurrences(of: "{}", with: input)
            .replacingOccurrences(of: " -o {.}.hits.tsr", with: "")
    }

    func skipWithoutParallel() throws {
        let found = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":")
            .contains { FileManager.default.isExecutableFile(atPath: "\($0)/parallel") }
        try XCTSkipUnless(found, "GNU parallel is not installed (apt-get install parallel): the README's sharding recipes were not run")
    }

    /// queries.tsr (103 plain embeddings), post.tsr (a posterior), corpus.tsr (200 probabilistic
    /// embeddings), made by the programs from small valid inputs; the environment to run recipes in.
    func makeInputs(_ dir: URL) throws -> [String: String] {
        let wave = { (n: Int, d: Int, phase: Double) in (0..<n * d).map { Float(sin(Double($0) * 0.37 + phase)) } }
        let d = 8
        try Data(try encodeStream([Tensor(name: "query", shape: [40, d], floats: wave(40, d, 0)),
                                   Tensor(name: "positive", shape: [40, d], floats: wave(40, d, 0.2))]))
            .write(to: dir.appendingPathComponent("pairs.tsr"))
        try Data(try encodeStream([Tensor(name: "embedding", shape: [200, d], floats: wave(200, d, 1.3))]))
            .write(to: dir.appendingPathComponent("body.tsr"))
        try Data(try encodeStream([Tensor(name: "embedding", shape: [103, d], floats: wave(103, d, 2.1))]))
            .write(to: dir.appendingPathComponent("queries.tsr"))
        let p = { (n: String) in dir.appendingPathComponent(n).path }
        let fit = try runTool("emb-laplace", ["fit", "--batch-size", "8", p("pairs.tsr"), "-o", p("post.tsr")])
        XCTAssertEqual(fit.status, 0, fit.stderr)
        let apply = try runTool("emb-laplace", ["apply", "--posterior", p("post.tsr"), p("body.tsr"), "-o", p("corpus.tsr")])
        XCTAssertEqual(apply.status, 0, apply.stderr)
        var env = ProcessInfo.processInfo.environment
        env["PATH"] = productsDirectory().path + ":" + (env["PATH"] ?? "/usr/bin:/bin")
        env["TMPDIR"] = dir.path
        return env
    }

    func bash(_ script: String, _ dir: URL, _ env: [String: String]) throws -> ToolRun {
        try runTool("/bin/bash", ["-c", "set -o pipefail\n" + script], environment: env, cwd: dir)
    }

    func decoded(_ bytes: Data) throws -> [Tensor] {
        try TensorStreamReader(ArraySource(Array(bytes))).readAll()
    }

    /// The sharded result against the single run: the same tensors, the same indices exactly, the
    /// same scores to float rounding. (A shard changes the shapes of the matrix products, and
    /// with them BLAS's order of summation: scores then differ in the last bit, 1.2e-7.)
    func assertSame(_ single: [Tensor], _ sharded: [Tensor], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(single.map(\.name), sharded.map(\.name), what, file: file, line: line)
        XCTAssertEqual(single.map(\.shape), sharded.map(\.shape), what, file: file, line: line)
        for (a, b) in zip(single, sharded) where a.name == b.name && a.shape == b.shape {
            if [.f16, .bf16, .f32, .f64].contains(a.dtype) {
                let diff = zip(a.floats(), b.floats()).map { abs($0 - $1) }.max() ?? 0
                XCTAssertLessThanOrEqual(diff, 1e-6, "\(what): \(a.name) differs from the single run by \(diff)", file: file, line: line)
            } else {
                XCTAssertTrue(a.data == b.data, "\(what): \(a.name) differs from the single run", file: file, line: line)
            }
        }
        XCTAssertTrue(single.contains { $0.name == "indices" } && single.contains { $0.name == "scores" }, "\(what): \(single.map(\.name))",
                      file: file, line: line)
    }

    /// Runs a recipe and checks its hits.tsr against the single run, its shards and its job log.
    func checkRecipe(_ marker: String, minShards: Int) throws {
        try skipWithoutParallel()
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let env = try makeInputs(dir)
        let commands = try recipe(marker)
        let r = try bash(commands.joined(separator: "\n"), dir, env)
        XCTAssertEqual(r.status, 0, "\(marker): \(commands)\n\(r.stderr)")
        let runs = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix("run.") }
        XCTAssertEqual(runs.count, 1, "\(marker): one fresh directory per run: \(runs)")
        if let run = runs.first.map({ dir.appendingPathComponent($0) }) {
            let shards = try String(contentsOf: run.appendingPathComponent("shards.txt"), encoding: .utf8).split(separator: "\n")
            XCTAssertGreaterThanOrEqual(shards.count, minShards, marker)
            // The job log: a header and one line per shard, every exit value (column 7) 0.
            let log = try String(contentsOf: run.appendingPathComponent("jobs.log"), encoding: .utf8).split(separator: "\n")
            XCTAssertEqual(log.count, shards.count + 1, "\(marker): \(log)")
            for line in log.dropFirst() {
                XCTAssertEqual(line.split(separator: "\t", omittingEmptySubsequences: false).dropFirst(6).first, "0", "\(marker): \(line)")
            }
        }
        let single = try bash(try singleRun(of: commands), dir, env)
        XCTAssertEqual(single.status, 0, single.stderr)
        assertSame(try decoded(single.stdout), try decoded(try Data(contentsOf: dir.appendingPathComponent("hits.tsr"))), marker)
    }

    func testManyQueriesRecipeEqualsTheSingleRun() throws {
        try checkRecipe("many queries", minShards: 10)
    }

    func testLargeCorpusRecipeEqualsTheSingleRun() throws {
        try checkRecipe("a large corpus", minShards: 16)
    }

    /// The cron advice: a shard that fails makes the recipe join nothing (parallel's status is the
    /// number of failed jobs, and the join is chained with &&); the same command with
    /// `--resume-failed` then reruns only that shard, and the result equals the single run.
    func testResumeFailedRerunsOnlyTheFailedShard() throws {
        try skipWithoutParallel()
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let env = try makeInputs(dir)
        let commands = try recipe("many queries")
        guard let p = commands.firstIndex(where: { $0.hasPrefix("parallel ") }) else { return }
        let resume = commands[p].replacingOccurrences(of: "parallel ", with: "parallel --resume-failed ")
        var script = commands[..<p].joined(separator: "\n")
        script += """

            cp $run/q-001.tsr $run/keep.tsr && head -c 100 $run/keep.tsr > $run/q-001.tsr
            \(commands[p])
            echo "first $?" > status.txt
            [ ! -e hits.tsr ] || echo "joined after a failure" >> status.txt
            mv $run/keep.tsr $run/q-001.tsr
            \(resume)
            echo "second $?" >> status.txt
            cp $run/jobs.log jobs.log
            """
        let r = try bash(script, dir, env)
        XCTAssertEqual(r.status, 0, r.stderr)
        let status = try String(contentsOf: dir.appendingPathComponent("status.txt"), encoding: .utf8)
        XCTAssertEqual(status, "first 1\nsecond 0\n", r.stderr)
        // The log: header, 11 shards, and the one rerun (the failed shard, now with exit value 0).
        let log = try String(contentsOf: dir.appendingPathComponent("jobs.log"), encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(log.count, 1 + 11 + 1, "\(log)")
        XCTAssertTrue(log.last?.contains("q-001.tsr") ?? false, "rerun: \(log.last ?? "")")
        let single = try bash(try singleRun(of: commands), dir, env)
        assertSame(try decoded(single.stdout), try decoded(try Data(contentsOf: dir.appendingPathComponent("hits.tsr"))), "resumed")
    }
}
