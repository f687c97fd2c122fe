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
