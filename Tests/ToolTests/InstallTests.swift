import Foundation
import XCTest
import TestSupport

/// `make install` and `make uninstall` in a scratch prefix: binaries, man pages and
/// completions go in, and all of them come out again.
final class InstallTests: XCTestCase {
    func make(_ args: [String]) throws -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["make", "-s", "-C", repositoryRoot().path] + args
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let out = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: out, as: UTF8.self))
    }

    func files(under url: URL) -> [String] {
        let e = FileManager.default.enumerator(atPath: url.path)
        var out: [String] = []
        while let f = e?.nextObject() as? String {
            var isDir: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: url.appendingPathComponent(f).path, isDirectory: &isDir)
            if !isDir.boolValue { out.append(f) }
        }
        return out.sorted()
    }

    func testInstallAndUninstallInScratchPrefix() throws {
        let prefix = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: prefix) }
        let config = productsDirectory().lastPathComponent  // debug or release: whatever the tests run on
        let (status, log) = try make(["install-only", "PREFIX=\(prefix.path)", "CONFIG=\(config)"])
        XCTAssertEqual(status, 0, log)
        let installed = files(under: prefix)
        for expected in ["bin/tensor", "share/man/man1/tensor.1", "share/man/man1/tensor.from.1",
                         "share/man/man5/tensor-stream.5", "share/bash-completion/completions/tensor",
                         "share/zsh/site-functions/_tensor", "share/fish/vendor_completions.d/tensor.fish"] {
            XCTAssertTrue(installed.contains(expected), "\(expected) not installed: \(installed)")
        }
        let version = try runTool(prefix.appendingPathComponent("bin/tensor").path, ["--version"])
        let source = try String(contentsOf: repositoryRoot().appendingPathComponent("Sources/ToolKit/Version.swift"), encoding: .utf8)
        let expected = source.split(separator: "\"").dropFirst().first.map(String.init) ?? "?"
        XCTAssertEqual(String(decoding: version.stdout, as: UTF8.self), expected + "\n")
        let (ustatus, ulog) = try make(["uninstall", "PREFIX=\(prefix.path)"])
        XCTAssertEqual(ustatus, 0, ulog)
        XCTAssertEqual(files(under: prefix), [], "uninstall left files behind")
    }
}
