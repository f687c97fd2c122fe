import Foundation
import XCTest
import TestSupport

/// Every example in every program's `--help`, as printed into a pipe (80 columns), is a whole
/// command line: not split by re-wrapping, and accepted by the program's option parser.
final class HelpExampleTests: XCTestCase {
    /// The example commands of a help text: the indented lines after "Examples:", with
    /// backslash continuations joined.
    func examples(_ help: String) -> [String] {
        var out: [String] = [], inBlock = false, pending = ""
        for line in help.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if line.hasPrefix("Example") && line.hasSuffix(":") { inBlock = true; continue }
            guard inBlock else { continue }
            if line.trimmingCharacters(in: .whitespaces).isEmpty || !line.hasPrefix(" ") { inBlock = false; continue }
            var text = line.trimmingCharacters(in: .whitespaces)
            if text.hasSuffix("\\") {
                text.removeLast()
                pending += text + " "
                continue
            }
            out.append(pending + text)
            pending = ""
        }
        if !pending.isEmpty { out.append(pending) }
        return out
    }

    /// Splits a command line into pipeline segments of words, quote-aware, dropping comments and
    /// redirections (their targets need not exist).
    func segments(_ line: String) -> [[String]] {
        var segs: [[String]] = [[]], word = "", quote: Character? = nil, hasWord = false
        func endWord() { if hasWord { segs[segs.count - 1].append(word) }; word = ""; hasWord = false }
        for c in line {
            if let q = quote {
                word.append(c)
                if c == q { quote = nil }
                continue
            }
            switch c {
            case "'", "\"": quote = c; word.append(c); hasWord = true
            case " ", "\t": endWord()
            case "|": endWord(); segs.append([])
            case "#" where !hasWord: return segs.map(dropRedirections)
            default: word.append(c); hasWord = true
            }
        }
        endWord()
        XCTAssertNil(quote, "example line '\(line)' has an unclosed quote: split by re-wrapping?")
        return quote == nil ? segs.map(dropRedirections) : []
    }

    func dropRedirections(_ words: [String]) -> [String] {
        var out: [String] = [], skip = false
        for w in words {
            if skip { skip = false; continue }
            if ["<", ">", ">>", "2>"].contains(w) { skip = true; continue }
            if w.hasPrefix("<") || w.hasPrefix(">") || w.hasPrefix("2>") { continue }
            out.append(w)
        }
        return out
    }

    /// The program and each of its subcommands, as argument prefixes ([] for the program itself).
    func subcommands(_ tool: String) throws -> [[String]] {
        let dump = try runTool(tool, ["--experimental-dump-help"]).stdout
        let json = try JSONSerialization.jsonObject(with: dump) as? [String: Any]
        var out: [[String]] = [[]]
        func walk(_ cmd: [String: Any], _ path: [String]) {
            for sub in cmd["subcommands"] as? [[String: Any]] ?? [] {
                guard let name = sub["commandName"] as? String, name != "help" else { continue }
                out.append(path + [name])
                walk(sub, path + [name])
            }
        }
        walk(json?["command"] as? [String: Any] ?? [:], [])
        return out
    }

    func testExamplesAreWholeCommands() throws {
        let tools = try makefileTools()
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var script = "cd '\(dir.path)'\nexport PATH='\(productsDirectory().path)':$PATH\nbad=0\n"
        script += "check() { \"$@\" </dev/null >/dev/null 2>err; s=$?; if [ $s = 64 ]; then echo \"usage error ($*): $(head -1 err)\"; bad=1; fi; }\n"
        var count = 0
        for tool in tools {
            let help = String(decoding: try runTool(tool, ["--help"]).stdout, as: UTF8.self)
            XCTAssertFalse(examples(help).isEmpty, "\(tool) --help has no examples")
            var lines: [String] = []
            for sub in try subcommands(tool) {
                lines += examples(String(decoding: try runTool(tool, sub + ["--help"]).stdout, as: UTF8.self))
            }
            for line in lines {
                for seg in segments(line) where !seg.isEmpty {
                    let first = seg[0]
                    if first.contains("=") && !first.hasPrefix("-") {
                        script += seg.joined(separator: " ") + "\n"   // a variable the next lines use
                    } else if tools.contains(first) {
                        script += "check " + seg.joined(separator: " ") + "\n"
                        count += 1
                    } else {
                        XCTAssertTrue(["parallel", "seq", "cat", "head", "tail", "sort", "cut", "paste", "awk", "printf", "echo", "sh", "bash", "xargs"].contains(first),
                                      "\(tool) --help: example line '\(line)' starts with '\(first)': split by re-wrapping?")
                    }
                }
            }
        }
        script += "exit $bad\n"
        let r = try runTool("/bin/bash", ["-c", script])
        XCTAssertEqual(r.status, 0, String(decoding: r.stdout, as: UTF8.self) + r.stderr)
        XCTAssertGreaterThan(count, 20)
    }

    /// `tool [sub] --help` (and `-h`, `-help`) is rendered without parsing (ToolRunner's
    /// shortcut); `--help --help` still goes through ArgumentParser's parse. The two give the
    /// same bytes and status for every program and subcommand.
    func testHelpShortcutPrintsWhatTheParsePrints() throws {
        var checked = 0
        for tool in try makefileTools() {
            for sub in try subcommands(tool) {
                let parsed = try runTool(tool, sub + ["--help", "--help"])
                XCTAssertEqual(parsed.status, 0, "\(tool) \(sub) --help --help: \(parsed.stderr)")
                XCTAssertTrue(String(decoding: parsed.stdout, as: UTF8.self).contains("USAGE:"))
                for flag in ["--help", "-h", "-help"] {
                    let r = try runTool(tool, sub + [flag])
                    XCTAssertEqual(r.status, 0, "\(tool) \(sub) \(flag): \(r.stderr)")
                    XCTAssertEqual(r.stderr, "")
                    XCTAssertEqual(r.stdout, parsed.stdout, "\(tool) \(sub) \(flag) differs from the parse's help")
                    checked += 1
                }
            }
        }
        XCTAssertGreaterThan(checked, 30)
    }
}
