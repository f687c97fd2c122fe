import Foundation
import XCTest
import TestSupport

/// Checks of the project as a whole: what `make test` prints, what the tracked files name.
final class ProjectTests: XCTestCase {
    func run(_ exe: String, _ args: [String]) throws -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        p.currentDirectoryURL = repositoryRoot()
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let out = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: out, as: UTF8.self))
    }

    /// The summary line of `make test` on recorded XCTest outputs: all pass, one skipped, a
    /// failing test with two failed assertions, a test process that crashed mid-test.
    func testTestSummaryTellsTheTruth() throws {
        let dir = repositoryRoot().appendingPathComponent("Tests/ToolTests/Fixtures/xctest")
        let cases: [(String, String, Int32)] = [
            ("pass", "tests: 5 passed, 0 failed, 0 skipped", 0),
            ("skip", "tests: 4 passed, 0 failed, 1 skipped", 0),
            ("fail", "tests: 3 passed, 1 failed, 1 skipped", 1),
            ("crash", "tests: 0 passed, 1 failed, 0 skipped (1 did not finish: the test process crashed)", 1),
        ]
        for (name, line, status) in cases {
            let (s, out) = try run("/bin/bash", ["scripts/test-summary.sh", dir.appendingPathComponent("\(name).log").path])
            XCTAssertEqual(out.trimmingCharacters(in: .newlines), line, name)
            XCTAssertEqual(s, status, name)
        }
        let (s, out) = try run("/bin/bash", ["scripts/test-summary.sh", "/dev/null"])
        XCTAssertEqual(out.trimmingCharacters(in: .newlines), "tests: 0 passed, 0 failed, 0 skipped (no test ran)")
        XCTAssertEqual(s, 1)
    }
}

/// The man pages: lint clean, and every character of the programs' help survives into them.
final class ManPageTests: XCTestCase {
    func tools() throws -> [String] { try makefileTools() }
}

/// The programs, as the Makefile's TOOLS line lists them.
func makefileTools() throws -> [String] {
    do {
        let makefile = try String(contentsOf: repositoryRoot().appendingPathComponent("Makefile"), encoding: .utf8)
        let line = makefile.split(separator: "\n").first { $0.hasPrefix("TOOLS :=") }!
        return line.dropFirst("TOOLS :=".count).split(separator: " ").map(String.init)
    }
}

extension ManPageTests {

    func mandoc() throws -> String {
        for p in ["/usr/bin/mandoc", "/usr/local/bin/mandoc"] where FileManager.default.fileExists(atPath: p) { return p }
        throw XCTSkip("mandoc is not installed (make test installs it)")
    }

    func pages() throws -> [URL] {
        let dir = repositoryRoot().appendingPathComponent("man")
        return try FileManager.default.contentsOfDirectory(at: dir, includingPropertiesForKeys: nil)
            .filter { ["1", "5"].contains($0.pathExtension) }.sorted { $0.path < $1.path }
    }

    func testPagesLintClean() throws {
        let mandoc = try mandoc()
        let pages = try pages()
        XCTAssertGreaterThan(pages.count, 10)
        for page in pages {
            let r = try runTool(mandoc, ["-T", "lint", "-W", "warning", page.path])
            XCTAssertEqual(r.status, 0, "\(page.lastPathComponent): \(r.stderr)\(String(decoding: r.stdout, as: UTF8.self))")
            XCTAssertEqual(String(decoding: r.stdout, as: UTF8.self) + r.stderr, "", page.lastPathComponent)
        }
    }

    /// Formulas in the help (μ, σ², β, π, ×, …) reach the rendered page; a page of a program
    /// without subcommands has no "subcommand" in its synopsis.
    func testNoCharacterIsLost() throws {
        let mandoc = try mandoc()
        let pages = try pages()
        for tool in try tools() {
            let help = try runTool(tool, ["--help"])
            XCTAssertEqual(help.status, 0, tool)
            let wanted = Set(String(decoding: help.stdout, as: UTF8.self).unicodeScalars.filter { !$0.isASCII })
            let mine = pages.filter { $0.lastPathComponent == "\(tool).1" }
            XCTAssertEqual(mine.count, 1, "man/\(tool).1 is missing: run 'make man'")
            var rendered = ""
            for page in mine {
                let r = try runTool(mandoc, ["-T", "utf8", page.path])
                rendered += String(decoding: r.stdout, as: UTF8.self)
            }
            let have = Set(rendered.unicodeScalars)
            let lost = wanted.subtracting(have)
            XCTAssertTrue(lost.isEmpty, "man/\(tool).1 lost \(lost.map { String($0) }.sorted().joined()): run 'make man'")
            let synopsis = try String(contentsOf: mine[0], encoding: .utf8)
            let hasSubcommands = pages.contains { $0.lastPathComponent.hasPrefix("\(tool).") && $0.lastPathComponent != "\(tool).1" }
            XCTAssertEqual(synopsis.contains(".Ar subcommand"), hasSubcommands, tool)
        }
    }
}

/// Release binaries (make release, make dist) run without the Swift toolchain.
final class StandaloneTests: XCTestCase {
    func testReleaseBinariesNeedOnlySystemLibraries() throws {
        let root = repositoryRoot()
        let release = root.appendingPathComponent(".build/release")
        let tools = try makefileTools()
        let present = tools.filter { FileManager.default.fileExists(atPath: release.appendingPathComponent($0).path) }
        guard present.count == tools.count else {
            throw XCTSkip("no release build (make release builds one; CI runs make dist-check first)")
        }
        let r = try runTool("/bin/bash", [root.appendingPathComponent("scripts/check-standalone.sh").path]
                            + present.map { release.appendingPathComponent($0).path })
        XCTAssertEqual(r.status, 0, String(decoding: r.stdout, as: UTF8.self) + r.stderr)
        // And the checker does reject a binary that needs the toolchain: the debug build's.
        let debug = productsDirectory().appendingPathComponent("tensor").path
        if productsDirectory().lastPathComponent == "debug" {
            let d = try runTool("/bin/bash", [root.appendingPathComponent("scripts/check-standalone.sh").path, debug])
            XCTAssertNotEqual(d.status, 0)
            XCTAssertTrue(String(decoding: d.stdout, as: UTF8.self).contains("libswiftCore"))
        }
    }
}

/// The OpenBLAS kernel the programs run: `-v` names it, and on a CPU with AVX2 it is never an SSE
/// fallback (the programs restart themselves with a better OPENBLAS_CORETYPE when OpenBLAS picked
/// one); a user's own OPENBLAS_CORETYPE wins.
final class BLASKernelToolTests: XCTestCase {
    func fitVerbose(environment: [String: String]) throws -> String {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var rows: [String] = []
        for i in 0..<64 {
            var cells: [String] = []
            for j in 0..<8 {
                let v: Double = Double((i * 7 + j * 3) % 11) / 11.0 - 0.4
                cells.append(String(v))
            }
            rows.append(cells.joined(separator: ","))
        }
        let csv = Data((rows.joined(separator: "\n") + "\n").utf8)
        for name in ["query", "positive"] {
            let r = try runTool("tensor", ["from", "csv", "--name", name, "-o", dir.appendingPathComponent("\(name).tsr").path], stdin: csv)
            XCTAssertEqual(r.status, 0, r.stderr)
        }
        let pairs = try runTool("tensor", ["paste", dir.appendingPathComponent("query.tsr").path, dir.appendingPathComponent("positive.tsr").path])
        XCTAssertEqual(pairs.status, 0, pairs.stderr)
        let fit = try runTool("emb-laplace", ["fit", "-v", "--threads", "2", "-o", dir.appendingPathComponent("post.tsr").path],
                              stdin: pairs.stdout, environment: environment)
        XCTAssertEqual(fit.status, 0, fit.stderr)
        return fit.stderr.split(separator: "\n").first { $0.hasPrefix("BLAS:") }.map(String.init) ?? ""
    }

    func testVerboseNamesTheKernelAndItIsNotAFallback() throws {
        var env = ProcessInfo.processInfo.environment
        let userSet = env["OPENBLAS_CORETYPE"] != nil
        env.removeValue(forKey: "UNCERTAINTY_TOOLBOX_BLAS_RESTARTED")
        let line = try fitVerbose(environment: env)
        XCTAssertTrue(line.hasPrefix("BLAS: OpenBLAS core "), line)
        XCTAssertTrue(line.hasSuffix("2 threads"), line)
        let flags = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        if !userSet && flags.contains(" avx2") && flags.contains(" fma") {
            for weak in ["Prescott", "Core2", "Penryn", "Nehalem", "Dunnington", "Atom", "Sandybridge"] {
                XCTAssertFalse(line.contains("core \(weak) "), "an AVX2 CPU runs the \(weak) kernel: \(line)")
            }
        }
        // The user's choice wins, whatever the CPU.
        env["OPENBLAS_CORETYPE"] = "Prescott"
        let forced = try fitVerbose(environment: env)
        XCTAssertTrue(forced.contains("core Prescott (set by OPENBLAS_CORETYPE)"), forced)
    }

    /// OpenBLAS is opened when first needed: `--help` and a usage error work without it, and a
    /// run that needs it says in one line that it is missing (status 71), writing nothing.
    func testOpenBLASIsOpenedOnlyWhenNeeded() throws {
        var env = ProcessInfo.processInfo.environment
        env["UNCERTAINTY_TOOLBOX_OPENBLAS"] = "/nonexistent/libopenblas.so.0"
        for tool in ["emb-sim", "emb-laplace", "sve-train", "emb-encode"] {
            let help = try runTool(tool, ["--help"], environment: env)
            XCTAssertEqual(help.status, 0, "\(tool): \(help.stderr)")
            XCTAssertTrue(String(decoding: help.stdout, as: UTF8.self).contains("USAGE"), tool)
            let usage = try runTool(tool, ["--threads", "0"], environment: env)
            XCTAssertEqual(usage.status, 64, "\(tool): \(usage.stderr)")
        }
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let csv = Data("0.1,0.2,0.3\n0.3,0.1,0.2\n0.2,0.2,0.1\n".utf8)
        let a = try runTool("tensor", ["from", "csv", "--name", "query", "-o", dir.appendingPathComponent("q.tsr").path], stdin: csv)
        XCTAssertEqual(a.status, 0, a.stderr)
        let b = try runTool("tensor", ["from", "csv", "--name", "positive", "-o", dir.appendingPathComponent("p.tsr").path], stdin: csv)
        XCTAssertEqual(b.status, 0, b.stderr)
        let pairs = try runTool("tensor", ["paste", dir.appendingPathComponent("q.tsr").path, dir.appendingPathComponent("p.tsr").path])
        XCTAssertEqual(pairs.status, 0, pairs.stderr)
        let out = dir.appendingPathComponent("post.tsr")
        let fit = try runTool("emb-laplace", ["fit", "-o", out.path], stdin: pairs.stdout, environment: env)
        XCTAssertEqual(fit.status, 71, fit.stderr)
        let lines = fit.stderr.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, fit.stderr)
        XCTAssertTrue(fit.stderr.hasPrefix("emb-laplace: cannot load OpenBLAS and LAPACKE (/nonexistent/libopenblas.so.0"), fit.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted(), ["p.tsr", "q.tsr"])
    }
}

/// The README's text-to-text pipeline (its second ```sh block), run as written on a few lines with
/// the real model that `make real-model` installs.
final class TextPipelineTests: XCTestCase {
    func testReadmeTextPipeline() throws {
        let root = repositoryRoot()
        let model = root.appendingPathComponent("models/all-MiniLM-L6-v2")
        guard FileManager.default.fileExists(atPath: model.appendingPathComponent("model.safetensors").path) else {
            throw XCTSkip("models/all-MiniLM-L6-v2 is not installed ('make real-model' installs it)")
        }
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        let blocks = readme.components(separatedBy: "```sh\n").dropFirst().map { $0.components(separatedBy: "```")[0] }
        XCTAssertGreaterThanOrEqual(blocks.count, 2)
        let block = blocks[1]
        XCTAssertTrue(block.contains("emb-encode") && block.contains("--lines docs.txt"), block)
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createSymbolicLink(at: dir.appendingPathComponent("models"), withDestinationURL: root.appendingPathComponent("models"))
        let docs = ["The cat sat on the mat.", "Stocks fell sharply on Monday.", "The striker scored twice in the final.",
                    "A new phone was launched today.", "Parliament passed the budget bill.", "It rained all day in London."]
        try (docs.joined(separator: "\n") + "\n").write(to: dir.appendingPathComponent("docs.txt"), atomically: false, encoding: .utf8)
        try "football match goals\nshare prices drop\n".write(to: dir.appendingPathComponent("queries.txt"), atomically: false, encoding: .utf8)
        var env = ProcessInfo.processInfo.environment
        env["PATH"] = productsDirectory().path + ":" + (env["PATH"] ?? "/usr/bin:/bin")
        let r = try runTool("/bin/bash", ["-c", "set -eo pipefail\n" + block], environment: env, cwd: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        let lines = String(decoding: r.stdout, as: UTF8.self).split(separator: "\n").map { $0.split(separator: "\t").map(String.init) }
        XCTAssertEqual(lines.count, 2)
        for row in lines {
            XCTAssertEqual(row.count, 5)
            XCTAssertTrue(row.allSatisfy(docs.contains), "\(row)")
        }
        // The texts come back, and the obvious match comes first.
        XCTAssertEqual(lines.first?.first, "The striker scored twice in the final.")
        XCTAssertEqual(lines.last?.first, "Stocks fell sharply on Monday.")
    }
}

/// What the programs say about themselves: one version everywhere; --threads only where it acts;
/// programs that do no linear algebra do not load OpenBLAS.
final class ProgramSurfaceTests: XCTestCase {
    func testOneVersionEverywhere() throws {
        let source = try String(contentsOf: repositoryRoot().appendingPathComponent("Sources/ToolKit/Version.swift"), encoding: .utf8)
        let version = try XCTUnwrap(source.split(separator: "\"").dropFirst().first.map(String.init))
        for tool in try makefileTools() {
            let r = try runTool(tool, ["--version"])
            XCTAssertEqual(r.status, 0, tool)
            XCTAssertEqual(String(decoding: r.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines), version, tool)
        }
    }

    func testThreadsOnlyWhereTheyAct() throws {
        // tensor's work is I/O and zstd; calib-metrics runs its passes and its reading on two
        // threads, emb-fuse compresses beside its work: --threads 1 keeps them on one.
        for tool in ["tensor"] {
            let help = String(decoding: try runTool(tool, ["--help"]).stdout, as: UTF8.self)
            XCTAssertFalse(help.contains("--threads"), "\(tool) offers --threads but computes nothing in parallel")
        }
        for tool in ["emb-encode", "emb-laplace fit", "emb-laplace apply", "emb-fuse", "emb-sim", "sve-decompose", "sve-train", "sve-predict",
                     "calib-metrics"] {
            let words = tool.split(separator: " ").map(String.init)
            let help = String(decoding: try runTool(words[0], Array(words.dropFirst()) + ["--help"]).stdout, as: UTF8.self)
            XCTAssertTrue(help.contains("--threads"), tool)
        }
    }

    /// No program links OpenBLAS, LAPACK or the Fortran runtime: the ones that multiply open them
    /// when they first need them (Sources/CBLAS; BLASKernelToolTests checks that they do, and
    /// that --help works without them), so the others (tensor, calib-metrics, emb-fuse) never map them.
    func testNoProgramLinksOpenBLAS() throws {
        for tool in ["tensor", "calib-metrics", "emb-fuse", "emb-sim", "emb-laplace", "emb-encode", "sve-train", "sve-predict", "sve-decompose"] {
            let r = try runTool("/usr/bin/ldd", [productsDirectory().appendingPathComponent(tool).path])
            XCTAssertEqual(r.status, 0)
            let libs = String(decoding: r.stdout, as: UTF8.self)
            for lib in ["openblas", "lapack", "gfortran"] { XCTAssertFalse(libs.contains(lib), "\(tool) links \(lib)") }
        }
    }

    /// -q silences a warning, and only the warning.
    func testQuietSilencesWarnings() throws {
        let probs = try runTool("tensor", ["from", "csv", "--name", "probs"], stdin: Data("0.3,0.3\n0.2,0.5\n0.6,0.1\n".utf8))
        let labels = try runTool("tensor", ["from", "csv", "--name", "labels", "--dtype", "i64"], stdin: Data("0\n1\n0\n".utf8))
        XCTAssertEqual(probs.status, 0, probs.stderr)
        XCTAssertEqual(labels.status, 0, labels.stderr)
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try probs.stdout.write(to: dir.appendingPathComponent("p.tsr"))
        try labels.stdout.write(to: dir.appendingPathComponent("l.tsr"))
        let both = try runTool("tensor", ["paste", dir.appendingPathComponent("p.tsr").path, dir.appendingPathComponent("l.tsr").path])
        let loud = try runTool("calib-metrics", [], stdin: both.stdout)
        let quiet = try runTool("calib-metrics", ["-q"], stdin: both.stdout)
        XCTAssertEqual(loud.status, 0, loud.stderr)
        XCTAssertEqual(quiet.status, 0, quiet.stderr)
        XCTAssertTrue(loud.stderr.contains("do not sum to 1"), loud.stderr)
        XCTAssertEqual(quiet.stderr, "")
        XCTAssertEqual(loud.stdout, quiet.stdout)
    }
}
