import Foundation
import XCTest
import TestSupport

/// A fresh clone must work on any machine: no tracked file may name a directory of one machine
/// (a data directory, a virtual environment, a fixed scratch file) outside the repository.
final class PathTests: XCTestCase {
    func testTrackedFilesNameNoAbsolutePathOutsideTheRepository() throws {
        let root = repositoryRoot()
        try XCTSkipUnless(FileManager.default.fileExists(atPath: root.appendingPathComponent(".git").path),
                          "not a git checkout: no list of tracked files")
        let ls = try runTool("/usr/bin/env", ["git", "-C", root.path, "ls-files", "-z"])
        try XCTSkipIf(ls.status != 0, "git ls-files failed: \(ls.stderr)")
        let files = ls.stdout.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        XCTAssertGreaterThan(files.count, 50)
        // Top-level directories where one machine's files live. The pattern is assembled here so
        // that this file does not contain what it looks for. A path must start the word (so
        // `examples/work/` is fine); system programs (/usr/bin/env, /dev/null) and a deployment
        // example's directories (/srv/… in a crontab line) are fine.
        let tops = ["work", "root", "home", "Users", "mnt", "scratch", "tmp", "data", "var/folders"]
        let pattern = try NSRegularExpression(pattern: "(^|[^A-Za-z0-9._~/$-])/(" + tops.joined(separator: "|") + ")/[A-Za-z0-9._-]")
        var hits: [String] = []
        for file in files {
            guard let data = FileManager.default.contents(atPath: root.appendingPathComponent(file).path),
                  !data.prefix(8192).contains(0) else { continue }  // binary files (fixtures, fuzz corpus)
            let text = String(decoding: data, as: UTF8.self)
            for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let s = String(line)
                if pattern.firstMatch(in: s, range: NSRange(s.startIndex..., in: s)) != nil {
                    hits.append("\(file):\(n + 1): \(s.trimmingCharacters(in: .whitespaces).prefix(120))")
                }
            }
        }
        XCTAssertEqual(hits, [], "absolute paths of one machine in tracked files (use paths inside the project, "
                       + "mktemp -d, or $TMPDIR):\n" + hits.joined(separator: "\n"))
    }
}
